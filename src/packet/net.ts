// IPv4 networks as (uint32 address, prefix length), like flannel's
// pkg/ip.IP4Net, plus flannel's subnet-key form ("10.244.1.0-24", and the
// dual-stack "10.244.1.0-24&fc00::-64").
import { WeftError } from '../errors'
import { ip4ToString, parseIp4 } from './ip'
import { parseIp6, subnetKey6 } from './net6'
import type { Ip6Net } from './net6'

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

/** The subnets a store key names: a dual-stack or IPv6-only key adds subnet6. */
export interface SubnetKeyParts {
  /** 0.0.0.0/0 in an IPv6-only key, as flannel writes it */
  readonly subnet: Ip4Net
  readonly subnet6?: Ip6Net
}

/**
 * flannel's MakeSubnetKey: "10.244.1.0-24", or "10.244.1.0-24&fc00::-64"
 * with an IPv6 subnet (an IPv6-only lease: "0.0.0.0-0&fc00::-64"). The one
 * function that names a lease in a store, so that every map keyed by lease
 * agrees with the stores (an IPv6-only lease's IPv4 part is the same for all).
 */
export function makeSubnetKey (subnet: Ip4Net, subnet6?: Ip6Net): string {
  // flannel writes the IPv4 form alone when the IPv6 net is empty (::/0)
  if (subnet6 === undefined || (subnet6.ip === 0n && subnet6.prefixLen === 0)) return subnetKey(subnet)
  return `${subnetKey(subnet)}&${subnetKey6(subnet6)}`
}

// flannel's subnetRegex, anchored at both ends (flannel's is not at the
// start, so "x10.244.1.0-24" would pass there); the IPv6 half in lower
// case only, as flannel's [a-f\d:]+ and as MakeSubnetKey writes it.
const KEY_RE = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})-(\d{1,2})(?:&([0-9a-f:]+)-(\d{1,3}))?$/

/**
 * flannel's ParseSubnetKey: both halves of "10.244.1.0-24&fc00::-64".
 * Returns undefined for keys that do not parse, which callers skip with a
 * warning, as flannel does. Host bits are not checked here (store/decode.ts
 * does, as flannel's regex lets them through).
 */
export function parseLeaseKey (key: string): SubnetKeyParts | undefined {
  const m = KEY_RE.exec(key)
  if (m === null) return undefined
  const len = Number(m[2])
  if (len > 32) return undefined
  let subnet: Ip4Net
  try {
    subnet = { ip: parseIp4(m[1]), prefixLen: len }
  } catch {
    return undefined
  }
  if (m[3] === undefined) return { subnet }
  const len6 = Number(m[4])
  if (len6 > 128) return undefined
  try {
    return { subnet, subnet6: { ip: parseIp6(m[3]), prefixLen: len6 } }
  } catch {
    return undefined
  }
}

/** The IPv4 half of a key (see parseLeaseKey); undefined for keys that do not parse. */
export function parseSubnetKey (key: string): Ip4Net | undefined {
  return parseLeaseKey(key)?.subnet
}
