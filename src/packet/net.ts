// IPv4 networks as (uint32 address, prefix length), like flannel's
// pkg/ip.IP4Net, plus flannel's subnet-key form ("10.244.1.0-24").
import { WeftError } from '../errors'
import { ip4ToString, parseIp4 } from './ip'

export interface Ip4Net {
  /** network address, host order (host bits may be set only where a caller says so) */
  readonly ip: number
  readonly prefixLen: number
}

export function mask (prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0
}

/** Number of addresses in a /prefixLen. */
export function size (prefixLen: number): number {
  return 2 ** (32 - prefixLen)
}

export function net (ip: number, prefixLen: number): Ip4Net {
  return { ip: ip >>> 0, prefixLen }
}

/** The network a net belongs to (host bits cleared), as net.ParseCIDR gives it. */
export function networkOf (n: Ip4Net): Ip4Net {
  return { ip: (n.ip & mask(n.prefixLen)) >>> 0, prefixLen: n.prefixLen }
}

/** "10.244.1.0/24" (also accepts "10.244.1.1/24": the host bits are kept). */
export function parseCidr (s: string): Ip4Net {
  const slash = s.indexOf('/')
  if (slash < 0) throw new WeftError('EBADCIDR', `invalid CIDR ${JSON.stringify(s)}: expected a.b.c.d/len`)
  const len = s.slice(slash + 1)
  if (!/^(3[0-2]|[12]?[0-9])$/.test(len)) throw new WeftError('EBADCIDR', `invalid CIDR ${JSON.stringify(s)}: prefix length must be 0..32`)
  let ip: number
  try {
    ip = parseIp4(s.slice(0, slash))
  } catch {
    throw new WeftError('EBADCIDR', `invalid CIDR ${JSON.stringify(s)}: not an IPv4 address`)
  }
  return { ip, prefixLen: Number(len) }
}

export function formatCidr (n: Ip4Net): string {
  return `${ip4ToString(n.ip)}/${n.prefixLen}`
}

export function contains (n: Ip4Net, ip: number): boolean {
  return ((ip ^ n.ip) & mask(n.prefixLen)) === 0
}

export function overlaps (a: Ip4Net, b: Ip4Net): boolean {
  const p = Math.min(a.prefixLen, b.prefixLen)
  return ((a.ip ^ b.ip) & mask(p)) === 0
}

export function equal (a: Ip4Net, b: Ip4Net): boolean {
  return a.ip === b.ip && a.prefixLen === b.prefixLen
}

/** flannel's MakeSubnetKey for IPv4: dots kept, "/" becomes "-". */
export function subnetKey (n: Ip4Net): string {
  return `${ip4ToString(n.ip)}-${n.prefixLen}`
}

const KEY_RE = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})-(\d{1,2})(?:&([0-9a-fA-F:]+)-(\d{1,3}))?$/

/**
 * flannel's subnetRegex: "10.244.1.0-24", optionally "&<v6>-<len>" (dual
 * stack; weft keeps only the IPv4 part). Returns undefined for keys that do
 * not parse, which callers skip with a warning, as flannel does.
 */
export function parseSubnetKey (key: string): Ip4Net | undefined {
  const m = KEY_RE.exec(key)
  if (m === null) return undefined
  const len = Number(m[2])
  if (len > 32) return undefined
  try {
    return { ip: parseIp4(m[1]), prefixLen: len }
  } catch {
    return undefined
  }
}
