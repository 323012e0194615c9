// IPv6 addresses and networks for the control plane (config, leases, routes,
// logs), as flannel's pkg/ip IP6 and IP6Net: an address is a bigint (128
// bits, network order as a number), a network is (address, prefix length).
// The dataplane never sees these: it reads addresses as four big-endian
// uint32 words (ip6Words) straight from packets and tables.
import { WeftError } from '../errors'
import { AddressParseError } from './errors'

export interface Ip6Net {
  /** network address (host bits may be set only where a caller says so) */
  readonly ip: bigint
  readonly prefixLen: number
}

const ALL = (1n << 128n) - 1n

export function mask6 (prefixLen: number): bigint {
  return prefixLen === 0 ? 0n : (ALL << BigInt(128 - prefixLen)) & ALL
}

const HEX16 = /^[0-9a-fA-F]{1,4}$/
const V4_TAIL = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/

/**
 * Parse an IPv6 address in any RFC 4291 text form ("fc00::1",
 * "::ffff:1.2.3.4"); no zone, no brackets, no surrounding space. Throws
 * AddressParseError for anything else.
 */
export function parseIp6 (str: string): bigint {
  const bad = (): never => { throw new AddressParseError('ipv6', str) }
  if (str.length < 2 || str.length > 45) bad()
  const groups: number[] = []
  let tail = str
  const dbl = str.indexOf('::')
  if (dbl >= 0 && str.indexOf('::', dbl + 1) >= 0) bad()
  const parseSide = (s: string, allowV4: boolean): number[] => {
    if (s === '') return []
    const parts = s.split(':')
    const out: number[] = []
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]
      if (allowV4 && i === parts.length - 1 && p.includes('.')) {
        const m = V4_TAIL.exec(p)
        if (m === null) bad()
        const q = m as RegExpExecArray
        out.push((Number(q[1]) << 8) | Number(q[2]), (Number(q[3]) << 8) | Number(q[4]))
      } else {
        if (!HEX16.test(p)) bad()
        out.push(parseInt(p, 16))
      }
    }
    return out
  }
  if (dbl >= 0) {
    const head = parseSide(str.slice(0, dbl), false)
    const rest = parseSide(str.slice(dbl + 2), true)
    if (head.length + rest.length > 7) bad()
    groups.push(...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest)
  } else {
    tail = str
    groups.push(...parseSide(tail, true))
    if (groups.length !== 8) bad()
  }
  let v = 0n
  for (const g of groups) v = (v << 16n) | BigInt(g)
  return v
}

/**
 * The address as Go's net.IP.String() writes it (RFC 5952: lower case, the
 * longest run of two or more zero groups as "::", the first on a tie;
 * IPv4-mapped addresses as ::ffff:a.b.c.d), so that keys and subnet.env
 * match flannel's byte for byte.
 */
export function ip6ToString (ip: bigint): string {
  const g: number[] = []
  for (let i = 7; i >= 0; i--) g.push(Number((ip >> BigInt(i * 16)) & 0xffffn))
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}`
  }
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':')
  if (bestLen < 2) return hex(g)
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`
}

/** "fc00::/48" (host bits are kept, as in parseCidr). */
export function parseCidr6 (s: string): Ip6Net {
  const slash = s.indexOf('/')
  if (slash < 0) throw new WeftError('EBADCIDR', `invalid CIDR ${JSON.stringify(s)}: expected an IPv6 address/len`)
  const len = s.slice(slash + 1)
  if (!/^(12[0-8]|1[01][0-9]|[1-9]?[0-9])$/.test(len)) throw new WeftError('EBADCIDR', `invalid CIDR ${JSON.stringify(s)}: prefix length must be 0..128`)
  let ip: bigint
  try {
    ip = parseIp6(s.slice(0, slash))
  } catch {
    throw new WeftError('EBADCIDR', `invalid CIDR ${JSON.stringify(s)}: not an IPv6 address`)
  }
  return { ip, prefixLen: Number(len) }
}

export function formatCidr6 (n: Ip6Net): string {
  return `${ip6ToString(n.ip)}/${n.prefixLen}`
}

export function networkOf6 (n: Ip6Net): Ip6Net {
  return { ip: n.ip & mask6(n.prefixLen), prefixLen: n.prefixLen }
}

export function contains6 (n: Ip6Net, ip: bigint): boolean {
  return ((ip ^ n.ip) & mask6(n.prefixLen)) === 0n
}

export function overlaps6 (a: Ip6Net, b: Ip6Net): boolean {
  return ((a.ip ^ b.ip) & mask6(Math.min(a.prefixLen, b.prefixLen))) === 0n
}

export function equal6 (a: Ip6Net, b: Ip6Net): boolean {
  return a.ip === b.ip && a.prefixLen === b.prefixLen
}

/** flannel's IP6Net.StringSep(":", "-"): "fc00::-64", the dual-stack key's second half. */
export function subnetKey6 (n: Ip6Net): string {
  return `${ip6ToString(n.ip)}-${n.prefixLen}`
}

/** The 16 bytes, network order. */
export function ip6Bytes (ip: bigint): Buffer {
  const b = Buffer.alloc(16)
  for (let i = 0; i < 4; i++) b.writeUInt32BE(Number((ip >> BigInt((3 - i) * 32)) & 0xffffffffn), i * 4)
  return b
}

/** The four big-endian words (word 0 = bytes 0..3), as the dataplane's tables hold them. */
export function ip6Words (ip: bigint): [number, number, number, number] {
  return [0, 1, 2, 3].map((i) => Number((ip >> BigInt((3 - i) * 32)) & 0xffffffffn)) as [number, number, number, number]
}

export function ip6FromBytes (b: Buffer | Uint8Array, off = 0): bigint {
  let v = 0n
  for (let i = 0; i < 16; i++) v = (v << 8n) | BigInt(b[off + i])
  return v
}

export function ip6FromWords (w: ArrayLike<number>, off = 0): bigint {
  let v = 0n
  for (let i = 0; i < 4; i++) v = (v << 32n) | BigInt(w[off + i] >>> 0)
  return v
}
