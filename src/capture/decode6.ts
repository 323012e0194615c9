// The IPv6 pieces of `weft capture`'s decoder (decode.ts calls them): the
// extension headers a packet carries, by name, its fragment header, and
// ICMPv6 (Neighbour Discovery among it). Pure; nothing here throws on any
// bytes decode.ts has already bounds-checked (validateIpv6 first).
import {
  ICMP6_DEST_UNREACH, ICMP6_ECHO_REPLY, ICMP6_ECHO_REQUEST, ICMP6_PACKET_TOO_BIG, ICMP6_TIME_EXCEEDED,
  ND_NEIGHBOR_ADVERT, ND_NEIGHBOR_SOLICIT, ND_REDIRECT, NEXTHDR_DEST, NEXTHDR_FRAGMENT, NEXTHDR_HOP, NEXTHDR_ROUTING,
  ip6FromBytes, ip6ToString, readU32
} from '../packet'

const EXT_NAMES: Readonly<Record<number, string>> = {
  [NEXTHDR_HOP]: 'hop-by-hop', [NEXTHDR_ROUTING]: 'routing', [NEXTHDR_DEST]: 'dstopts', [NEXTHDR_FRAGMENT]: 'fragment'
}

/** The names of the extension headers before `upperAt` (an offset walkIpv6 gave) in the valid IPv6 packet at buf[off]. */
export function extensionNames (buf: Buffer, off: number, upperAt: number): string[] {
  const names: string[] = []
  let nh = buf[off + 6]
  let at = 40
  while (at < upperAt && EXT_NAMES[nh] !== undefined) {
    names.push(EXT_NAMES[nh])
    const len = nh === NEXTHDR_FRAGMENT ? 8 : (buf[off + at + 1] + 1) * 8
    nh = buf[off + at]
    at += len
  }
  return names
}

/** The fragment header at buf[at] (8 bytes, present): the fragmented protocol, byte offset, more, identification. */
export function fragmentHeader (buf: Buffer, at: number): { proto: number, offset: number, more: boolean, id: number } {
  const field = (buf[at + 2] << 8) | buf[at + 3]
  return { proto: buf[at], offset: field & 0xfff8, more: (field & 1) !== 0, id: readU32(buf, at + 4) }
}

export interface Icmp6Fields {
  icmpType: number
  code: number
  id?: number
  seq?: number
  mtu?: number
  /** Neighbour solicitation/advertisement, redirect: the address it is about */
  target?: string
}

/** ICMPv6 header fields worth showing, from the `len`-byte message at buf[l4] (len >= 4). */
export function icmp6Fields (buf: Buffer, l4: number, len: number): Icmp6Fields {
  const t = buf[l4]
  const f: Icmp6Fields = { icmpType: t, code: buf[l4 + 1] }
  if ((t === ICMP6_ECHO_REQUEST || t === ICMP6_ECHO_REPLY) && len >= 8) {
    f.id = (buf[l4 + 4] << 8) | buf[l4 + 5]
    f.seq = (buf[l4 + 6] << 8) | buf[l4 + 7]
  } else if (t === ICMP6_PACKET_TOO_BIG && len >= 8) {
    f.mtu = readU32(buf, l4 + 4)
  } else if ((t === ND_NEIGHBOR_SOLICIT || t === ND_NEIGHBOR_ADVERT || t === ND_REDIRECT) && len >= 24) {
    f.target = ip6ToString(ip6FromBytes(buf, l4 + 8))
  }
  return f
}

const ICMP6_NAMES: Readonly<Record<number, string>> = {
  [ICMP6_DEST_UNREACH]: 'destination unreachable',
  [ICMP6_PACKET_TOO_BIG]: 'packet too big',
  [ICMP6_TIME_EXCEEDED]: 'time exceeded',
  4: 'parameter problem',
  [ICMP6_ECHO_REQUEST]: 'echo request',
  [ICMP6_ECHO_REPLY]: 'echo reply',
  130: 'multicast listener query',
  131: 'multicast listener report',
  132: 'multicast listener done',
  133: 'router solicitation',
  134: 'router advertisement',
  [ND_NEIGHBOR_SOLICIT]: 'neighbor solicitation',
  [ND_NEIGHBOR_ADVERT]: 'neighbor advertisement',
  [ND_REDIRECT]: 'redirect',
  143: 'multicast listener report v2'
}

/** tcpdump-like text for an ICMPv6 message: "ICMP6 echo request id 5 seq 1", "ICMP6 neighbor solicitation who has fc00::1". */
export function describeIcmp6 (f: Icmp6Fields): string {
  const name = ICMP6_NAMES[f.icmpType]
  if (name === undefined) return `ICMP6 type ${f.icmpType} code ${f.code}`
  if (f.id !== undefined) return `ICMP6 ${name} id ${f.id} seq ${f.seq ?? 0}`
  if (f.mtu !== undefined) return `ICMP6 ${name} mtu ${f.mtu}`
  if (f.target !== undefined) {
    if (f.icmpType === ND_NEIGHBOR_SOLICIT) return `ICMP6 ${name} who has ${f.target}`
    if (f.icmpType === ND_NEIGHBOR_ADVERT) return `ICMP6 ${name} tgt is ${f.target}`
    return `ICMP6 ${name} ${f.target}`
  }
  return f.code !== 0 ? `ICMP6 ${name} code ${f.code}` : `ICMP6 ${name}`
}
