// Hostile underlay traffic for the outside-path fuzz tests: arbitraries for
// well-formed VXLAN, IP-in-IP and flannel-UDP datagrams (inner IPv4 with
// TCP, UDP, ICMP or anything, built with the codecs in src/packet), the
// mutations an attacker or a broken peer produces, and a model of what the
// outside path must do with each datagram: pass exactly which bytes, or
// drop it for one of which reasons.
import fc from 'fast-check'
import { parseCidr, contains } from '../../src/packet/net'
import type { Ip4Net } from '../../src/packet/net'
import { IPPROTO_ICMP, IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_DF, setIpv4Checksum, writeIpv4Header } from '../../src/packet/ipv4'
import { writeVxlan } from '../../src/packet/vxlan'
import { fold, onesSum, pseudoHeaderSum4At } from '../../src/packet/checksum'
import { bytes, icmpMessage, ipv4Packet, tcpPacket, udpPacket, u8, u16, u32, L4 } from '../packet/builders'
import type { Datagram, EncapKind, From } from './drive'
import { NETWORK, NODE, OUR_MAC, OWN_SUBNET, PEER, PEER_MAC, PEER_SUBNET, VNI } from './drive'

const OWN = parseCidr(OWN_SUBNET)
const PEER_NET = parseCidr(PEER_SUBNET)
const NET = parseCidr(NETWORK)

const inNet = (n: Ip4Net): fc.Arbitrary<number> => fc.integer({ min: 0, max: 255 }).map((x) => (n.ip + x) >>> 0)
/** Mostly `usual`, sometimes anything. */
/** usual, and now and then (1 in weight + 1) other */
export const mostly = <T>(usual: fc.Arbitrary<T>, other: fc.Arbitrary<T>, weight = 6): fc.Arbitrary<T> => fc.oneof({ weight, arbitrary: usual }, { weight: 1, arbitrary: other })

/** Payload lengths: mostly short, sometimes around and beyond the MTU. */
const payloadBytes = fc.oneof(
  { weight: 6, arbitrary: bytes(64) },
  { weight: 2, arbitrary: fc.integer({ min: 64, max: 1400 }).chain((n) => bytes(n, n)) },
  { weight: 1, arbitrary: fc.integer({ min: 1400, max: 1520 }).chain((n) => bytes(n, n)) }
)

/** IPv4 options: none mostly, else 1..10 words of NOP/EOL (valid) or of anything. */
const options = (anyBytes: boolean): fc.Arbitrary<Buffer> => mostly(
  fc.constant(Buffer.alloc(0)),
  fc.integer({ min: 1, max: 10 }).chain((w) => anyBytes
    ? fc.oneof(bytes(w * 4, w * 4), fc.constant(Buffer.alloc(w * 4, 1)))
    : fc.constant(Buffer.alloc(w * 4, 1))),
  3
)

export interface Inner {
  src: number
  dst: number
  ttl: number
  tos: number
  id: number
  fragField: number
  l4: 'udp' | 'tcp' | 'icmp' | 'other'
  proto: number
  payload: Buffer
  options: Buffer
  /** TCP: a data offset other than the builder's 5 (0..15), or undefined */
  doff: number | undefined
}

/** Inner sources a peer may not send from: our pods, another node's, loopback. */
const spoofedSource = fc.oneof(inNet(OWN), inNet(parseCidr('10.244.9.0/24')), fc.constant(0x7f000001))

export const inner: fc.Arbitrary<Inner> = fc.record({
  src: mostly(inNet(PEER_NET), fc.oneof(u32, spoofedSource), 4),
  dst: mostly(inNet(OWN), fc.oneof(u32, inNet(PEER_NET)), 8),
  ttl: mostly(fc.constant(64), fc.oneof(fc.constantFrom(0, 1, 2, 255), u8), 2),
  tos: mostly(fc.constant(0), u8),
  id: u16,
  // fragments: more-fragments, an offset, or both
  fragField: mostly(fc.constantFrom(0, IPV4_FLAG_DF), fc.oneof(fc.constant(0x2000), u16), 4),
  l4: fc.constantFrom('udp', 'tcp', 'icmp', 'other'),
  proto: u8,
  payload: payloadBytes,
  options: options(true),
  doff: mostly(fc.constant(undefined), fc.integer({ min: 0, max: 15 }), 4)
})

/** The inner IPv4 packet, its header and L4 checksums valid. */
export function buildInner (p: Inner): Buffer {
  let l4: Buffer
  let proto = p.proto
  if (p.l4 === 'udp') { l4 = udpPacket(p.src, p.dst, 40000, 7000, p.payload).subarray(L4); proto = IPPROTO_UDP } else if (p.l4 === 'tcp') {
    l4 = tcpPacket(p.src, p.dst, { sport: 40000, dport: 5201, seq: p.id, ack: 0, flags: 0x18, window: 512 }, Buffer.alloc(0), p.payload).subarray(L4)
    proto = IPPROTO_TCP
    // a data offset that lies (below 5, or past the packet); the checksum is left as it was
    if (p.doff !== undefined) l4[12] = (p.doff << 4) | (l4[12] & 15)
  } else if (p.l4 === 'icmp') { l4 = icmpMessage(8, 0, p.id, p.payload); proto = IPPROTO_ICMP } else l4 = p.payload
  return ipv4Packet({ tos: p.tos, id: p.id, fragField: p.fragField, ttl: p.ttl, protocol: proto, src: p.src, dst: p.dst }, l4, p.options)
}

export interface VxlanHeader { flags: number, reserved: number, vni: number, dstMac: Buffer, etherType: number }

const mac = (b: number[]): Buffer => Buffer.from(b)
export const vxlanHeader: fc.Arbitrary<VxlanHeader> = fc.record({
  flags: mostly(fc.constant(0x08), u8),
  reserved: mostly(fc.constant(0), fc.integer({ min: 1, max: 0xffffffff })),
  vni: mostly(fc.constant(VNI), fc.oneof(fc.constantFrom(0, 2, 0xffffff, 256), fc.integer({ min: 0, max: 0xffffff }))),
  dstMac: mostly(fc.constant(OUR_MAC), fc.oneof(fc.constant(PEER_MAC), fc.constant(mac([255, 255, 255, 255, 255, 255])), bytes(6, 6))),
  etherType: mostly(fc.constant(0x0800), fc.oneof(fc.constantFrom(0x86dd, 0x0806, 0x8100, 0x0000), u16))
})

/**
 * Mark a VXLAN datagram for remote checksum offload (draft-herbert-vxlan-rco:
 * R flag 0x20 in byte 1; byte 7 = the inner L4 header's offset from the inner
 * Ethernet header / 2, bit 7 for UDP) and leave its inner TCP/UDP checksum
 * as the pseudo-header sum. Inner packets that are neither are left alone.
 */
function markRco (d: Buffer): void {
  if (d.length < 42) return
  const ihl = (d[22] & 15) * 4
  const proto = d[31]
  const field = proto === IPPROTO_TCP ? 16 : proto === IPPROTO_UDP ? 6 : -1
  if (field < 0 || d.length < 22 + ihl + field + 2) return
  d[1] = 0x20
  d[7] = ((14 + ihl) >> 1) | (proto === IPPROTO_UDP ? 0x80 : 0)
  const total = d.readUInt16BE(24)
  const p = fold(pseudoHeaderSum4At(d, 22, proto, total - ihl))
  d.writeUInt16BE(p, 22 + ihl + field)
}

/** A VXLAN datagram from srcMac (the peer's VTEP; frames6.ts gives its own) carrying innerPacket. */
export function buildVxlan (h: VxlanHeader, innerPacket: Buffer, srcMac = PEER_MAC): Buffer {
  const f = Buffer.alloc(22 + innerPacket.length)
  writeVxlan(f, 0, h.vni)
  f[0] = h.flags
  // reserved bits: bytes 1..3 and 7
  f[1] = h.reserved >>> 24; f[2] = (h.reserved >>> 16) & 255; f[3] = (h.reserved >>> 8) & 255; f[7] = h.reserved & 255
  h.dstMac.copy(f, 8)
  srcMac.copy(f, 14)
  f.writeUInt16BE(h.etherType, 20)
  innerPacket.copy(f, 22)
  return f
}

export interface OuterHeader { version: number, options: Buffer, proto: number, ttl: number, tos: number, id: number, total: number | null, src: number }

/** IP-in-IP outer headers as a raw socket might deliver them (direct rig): anything goes. */
export const anyOuter: fc.Arbitrary<OuterHeader> = fc.record({
  version: mostly(fc.constant(4), fc.integer({ min: 0, max: 15 })),
  options: options(true),
  proto: mostly(fc.constant(IPPROTO_IPIP), u8),
  ttl: u8,
  tos: u8,
  id: u16,
  total: mostly(fc.constant(null), fc.oneof(u16, fc.integer({ min: 0, max: 80 }))),
  src: fc.constant(PEER)
})

/** Outer headers a kernel accepts and a raw socket delivers (socket rig): options NOP only. */
export const validOuter: fc.Arbitrary<OuterHeader> = fc.record({
  version: fc.constant(4),
  options: options(false),
  proto: fc.constant(IPPROTO_IPIP),
  ttl: fc.integer({ min: 1, max: 255 }),
  tos: fc.constantFrom(0, 0x10, 0xb8),
  id: fc.integer({ min: 1, max: 0xffff }),
  total: fc.constant(null),
  src: fc.constant(PEER)
})

export function buildIpip (o: OuterHeader, innerPacket: Buffer): Buffer {
  const hlen = 20 + o.options.length
  const f = Buffer.alloc(hlen + innerPacket.length)
  writeIpv4Header(f, 0, o.tos, f.length, o.id, 0, o.ttl, o.proto, o.src, NODE)
  f[0] = ((o.version & 15) << 4) | (hlen >> 2)
  o.options.copy(f, 20)
  if (o.total !== null) f.writeUInt16BE(o.total, 2)
  setIpv4Checksum(f, 0)
  innerPacket.copy(f, hlen)
  return f
}

// Mutations of the finished datagram's bytes, at or after `protect` (a
// socket rig keeps the IP-in-IP outer header intact: the kernel would drop
// the packet before any socket saw it).
export type Mutation =
  | { op: 'flip', at: number, bit: number }
  | { op: 'set', at: number, value: number }
  | { op: 'truncate', at: number }
  | { op: 'extend', tail: Buffer }
  | { op: 'innerTotal', value: number }

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: u8 }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('extend' as const), tail: bytes(64, 1) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('innerTotal' as const), value: fc.oneof(u16, fc.integer({ min: 0, max: 100 })) }) }
)

/** Apply mutations; `innerAt` is where the inner IPv4 header starts (for innerTotal). */
export function mutate (d: Buffer, ms: readonly Mutation[], protect: number, innerAt: number): Buffer {
  let b = Buffer.from(d)
  for (const m of ms) {
    const room = b.length - protect
    if (m.op === 'extend') { b = Buffer.concat([b, m.tail]); continue }
    if (m.op === 'innerTotal') { if (b.length >= innerAt + 4) b.writeUInt16BE(m.value, innerAt + 2); continue }
    if (room <= 0) continue
    const at = protect + (m.at % room)
    if (m.op === 'flip') b[at] ^= 1 << m.bit
    else if (m.op === 'set') b[at] = m.value
    else if (at > 0 && at > protect) b = b.subarray(0, at) // never to nothing: an empty datagram has its own test
  }
  return b
}

/** A datagram and who sends it. */
export type Case = Datagram

const from: fc.Arbitrary<From> = mostly(fc.constant<From>('peer'), fc.constant<From>('stranger'), 5)
const mutations = mostly(fc.constant<Mutation[]>([]), fc.array(mutation, { minLength: 1, maxLength: 4 }), 1)

/** Random bytes of any length from 1 to 1600, short ones more often. */
const randomBytes = fc.oneof(bytes(80, 1), fc.integer({ min: 1, max: 1600 }).chain((n) => bytes(n, n)))

/** Fully random bytes (never empty), from the peer or a stranger. */
export const randomCase: fc.Arbitrary<Case> = fc.record({ datagram: randomBytes, from })

/**
 * Random bytes behind a valid encapsulation header (VXLAN + Ethernet to our
 * MAC; for IP-in-IP an outer header from `outer`): random inner "packets",
 * which get past the outer checks and so reach the inner ones.
 */
export function randomInnerCase (kind: EncapKind, outer: fc.Arbitrary<OuterHeader> = anyOuter): fc.Arbitrary<Case> {
  const good: VxlanHeader = { flags: 0x08, reserved: 0, vni: VNI, dstMac: OUR_MAC, etherType: 0x0800 }
  // half the time the random inner packet starts as IPv4 (version 4, IHL 5),
  // half the time its length field fits, half the time it is addressed to us
  const body = fc.tuple(randomBytes, fc.boolean(), fc.boolean(), fc.boolean()).map(([b, v4, fits, own]) => {
    const r = Buffer.from(b)
    if (v4) r[0] = 0x45
    if (fits && r.length >= 20) r.writeUInt16BE(r.length, 2)
    if (own && r.length >= 20) r.writeUInt32BE((OWN.ip | r[19]) >>> 0, 16)
    return r
  })
  if (kind === 'vxlan') return fc.record({ b: body, from }).map(({ b, from }) => ({ datagram: buildVxlan(good, b), from }))
  if (kind === 'udp') return fc.record({ b: body, from }).map(({ b, from }) => ({ datagram: b, from }))
  return fc.record({ o: outer, b: body, from }).map(({ o, b, from }) => ({ datagram: buildIpip(o, b), from }))
}

/** Well-formed datagrams of `kind` (as the outside loop receives them), then perhaps mutated. */
export function structuredCase (kind: EncapKind, outer: fc.Arbitrary<OuterHeader> = anyOuter, protectOuter = false): fc.Arbitrary<Case> {
  if (kind === 'vxlan') {
    // a third of them with a remote checksum offload mark for their own
    // inner packet, its checksum left partial, as a weft peer sends them
    return fc.record({ h: vxlanHeader, i: inner, rco: fc.integer({ min: 0, max: 2 }), ms: mutations, from })
      .map(({ h, i, rco, ms, from }) => {
        const d = buildVxlan(h, buildInner(i))
        if (rco === 0) markRco(d)
        return { datagram: mutate(d, ms, 0, 22), from }
      })
  }
  if (kind === 'udp') {
    return fc.record({ i: inner, ms: mutations, from })
      .map(({ i, ms, from }) => ({ datagram: mutate(buildInner(i), ms, 0, 0), from }))
  }
  return fc.record({ o: outer, i: inner, ms: mutations, from })
    .map(({ o, i, ms, from }) => {
      const hlen = 20 + o.options.length
      return { datagram: mutate(buildIpip(o, buildInner(i)), ms, protectOuter ? hlen : 0, hlen), from }
    })
}

/**
 * What a raw socket hands over for an IPv4 packet: never a byte past the
 * outer total length (the kernel trims the packet to it on receipt). Applied
 * to IP-in-IP datagrams fed to the direct rig; what the dataplane does with
 * bytes past the outer end has its own test.
 */
export function asRawSocketDelivers (c: Case): Case {
  const d = c.datagram
  if (d.length < 20) return c
  const total = d.readUInt16BE(2)
  return total >= 20 && total < d.length ? { ...c, datagram: d.subarray(0, total) } : c
}

/** What the outside path must do with a datagram. */
export interface Expected {
  /** the inner packet it must pass to the TUN (before a TTL decrement), or undefined if it must drop it */
  pass: Buffer | undefined
  /** reasons it may count the drop under (any one of them; the order of checks is the dataplane's business) */
  reasons: Set<string>
}

/** Bytes in front of the inner packet for a well-formed datagram of each kind (IP-in-IP: without options). */
const OVERHEAD: Record<EncapKind, number> = { vxlan: 22, udp: 0, ipip: 20 }

/**
 * The outside path's contract, written from the formats (RFC 7348 as Linux
 * applies it, RFC 2003, flannel's UDP proxy), not from the code.
 */
export function expected (kind: EncapKind, d: Buffer, sender: From, mtu: number): Expected {
  const reasons = new Set<string>()
  // Longer than any frame the node must take: the socket may cut it (counted).
  if (d.length > OVERHEAD[kind] + 60 + mtu) reasons.add('rx_truncated')
  if (sender === 'stranger') return { pass: undefined, reasons: reasons.add('unknown_source') }
  let at = 0
  let end = d.length
  /** VXLAN remote checksum offload, taken: the inner checksum arrives partial and must leave finished */
  let partial = false
  if (kind === 'vxlan') {
    if (d.length < 22 + 20) reasons.add('truncated')
    // RCO (the rig's peer asked for it, as weft nodes do): the R flag alone
    // in byte 1 is no reserved bit, and gives byte 7 its meaning
    const rco = d.length >= 8 && d[1] === 0x20
    if (d.length >= 8) {
      if ((d[0] & 0x08) === 0) reasons.add('bad_vxlan_flags')
      if ((d[0] & ~0x08) !== 0 || (d[2] | d[3]) !== 0 || (!rco && (d[1] | d[7]) !== 0)) reasons.add('bad_vxlan_reserved')
      if (((d[4] << 16) | (d[5] << 8) | d[6]) !== VNI) reasons.add('wrong_vni')
    }
    if (d.length >= 14 && !d.subarray(8, 14).equals(OUR_MAC)) reasons.add('not_our_mac')
    if (d.length >= 22 && d.readUInt16BE(20) !== 0x0800) reasons.add('not_ipv4')
    at = 22
    if (rco && d.length >= 42) {
      // the mark must name the inner packet's own TCP/UDP checksum field, inside it
      const ihl = (d[22] & 15) * 4
      const proto = d[31]
      const total = d.readUInt16BE(24)
      const named = d[7] & 0x80 ? IPPROTO_UDP : IPPROTO_TCP
      if (d[22] >> 4 !== 4 || ihl < 20 || (d[7] & 0x7f) * 2 !== 14 + ihl || proto !== named || (d.readUInt16BE(28) & 0x3fff) !== 0 ||
        total < ihl + (proto === IPPROTO_TCP ? 18 : 8) || total > d.length - 22) reasons.add('bad_vxlan_rco')
      else partial = true
    }
  } else if (kind === 'ipip') {
    if (d.length < 20) return { pass: undefined, reasons: reasons.add('truncated') }
    const hlen = (d[0] & 15) * 4
    const total = d.readUInt16BE(2)
    if (d[0] >> 4 !== 4) reasons.add('bad_version')
    if (hlen < 20) reasons.add('bad_ihl')
    if (hlen > d.length) reasons.add('truncated')
    if (d[9] !== IPPROTO_IPIP) reasons.add('wrong_protocol')
    if (total < hlen || total > d.length) reasons.add('bad_total_length')
    if (total === hlen) reasons.add('truncated')
    // past a broken outer header, "the inner packet" means nothing
    if ([...reasons].some((r) => r !== 'rx_truncated')) return { pass: undefined, reasons }
    at = hlen
    // the inner packet ends where the outer one does
    end = Math.min(d.length, total)
  }
  const avail = end - at
  if (avail < 20) reasons.add('truncated')
  // each field is judged wherever the buffer holds it, even past a short packet:
  // a drop for what those bytes say is a drop for a true reason
  if (d.length > at && d[at] >> 4 !== 4) { reasons.add('bad_version'); reasons.add('not_ipv4') }
  if (d.length - at < 20) return { pass: undefined, reasons }
  const vihl = d[at]
  if (kind === 'udp' && d[at + 8] <= 1) reasons.add('ttl_exceeded')
  const ihl = (vihl & 15) * 4
  if (ihl < 20) reasons.add('bad_ihl')
  const total = d.readUInt16BE(at + 2)
  if (total < ihl || total > avail) reasons.add('bad_total_length')
  if (total > mtu) reasons.add('too_big')
  if (!contains(OWN, d.readUInt32BE(at + 16))) reasons.add('not_for_us')
  // the node checks inner sources (as the backends do by default): the peer
  // holds PEER_SUBNET only; outside the network, anything but loopback
  const src = d.readUInt32BE(at + 12)
  if (contains(NET, src) ? !contains(PEER_NET, src) : (src >>> 24) === 127) reasons.add('spoofed_source')
  // a TCP header (not in a later fragment) must be at least 20 bytes and fit the packet
  if (d[at + 9] === IPPROTO_TCP && ((d[at + 6] & 0x1f) | d[at + 7]) === 0) {
    const doff = at + ihl + 12 < d.length ? d[at + ihl + 12] >> 4 : -1
    if (total < ihl + 20 || (doff >= 0 && (doff < 5 || ihl + doff * 4 > total))) reasons.add('bad_tcp_data_offset')
  }
  let pass = [...reasons].every((r) => r === 'rx_truncated') ? d.subarray(at, at + total) : undefined
  if (pass !== undefined && partial) {
    // The rig's TUN has no vnet header, so the node finishes the checksum
    // itself, as RCO has the receiver do (and Linux does with
    // CHECKSUM_PARTIAL): the sum from the L4 header to the end, the field
    // taken as the seed the sender vouched for. Had the bytes changed on
    // the way, the outer UDP checksum would have dropped the datagram first.
    pass = Buffer.from(pass)
    let c = ~fold(onesSum(pass, ihl, total - ihl)) & 0xffff
    if (pass[9] === IPPROTO_UDP && c === 0) c = 0xffff
    pass.writeUInt16BE(c, ihl + (pass[9] === IPPROTO_TCP ? 16 : 6))
  }
  return { pass, reasons }
}
