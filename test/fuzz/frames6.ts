// Hostile underlay traffic for the IPv6 outside path: VXLAN datagrams
// carrying inner IPv6 (TCP, UDP, ICMPv6 with Neighbour Discovery among it,
// anything else), with extension headers (hop-by-hop, routing, destination
// options, fragments; sound, misplaced, too many, too long, jumbo options),
// lying payload lengths, NDP, spoofed sources, RCO marks, then mutated (bit
// flips, cuts, extensions); and a model of what the node must do with each,
// written from RFC 8200 / 4861 / 7348 and weft's documented choices, not from
// the code: pass exactly which bytes, or drop for one of which reasons.
import fc from 'fast-check'
import { contains6, ip6FromBytes, parseIp6 } from '../../src/packet/net6'
import { fold, onesSum } from '../../src/packet/checksum'
import { pseudoHeaderSum6At } from '../../src/packet/ipv6'
import { bytes, u8, u16 } from '../packet/builders'
import { packet6, tcpBytes, udpBytes, icmp6Bytes } from '../packet/v6'
import type { Ext } from '../packet/v6'
import type { Datagram, From } from './drive'
import { buildVxlan, mostly } from './frames'
import type { VxlanHeader } from './frames'
import { MTU6, NETWORK6, OUR_MAC6, OWN6, PEER6_SUBNET, PEER_MAC6 } from './drive6'

const host = (base: string): fc.Arbitrary<string> => fc.integer({ min: 1, max: 0xffff }).map((x) => base + x.toString(16))

const src = mostly(host('fc00:0:0:1::'), fc.oneof(host('fc00:0:0:2::'), host('fc00:0:0:9::'), fc.constant('::1'), host('2001:db8::'), fc.constant('fe80::1')), 4)
const dst = mostly(host('fc00:0:0:2::'), fc.oneof(host('fc00:0:0:1::'), fc.constant('ff02::1'), fc.constant('ff02::1:ff00:1'), host('2001:db8::')), 8)

const ext: fc.Arbitrary<Ext> = fc.oneof(
  fc.record({ type: fc.constantFrom(0, 43, 60), len: fc.constantFrom(8, 16, 24) }).map((e): Ext => e),
  fc.constant<Ext>({ type: 0, options: [0xc2, 4, 0, 1, 0, 0] }), // jumbo payload option
  fc.record({ type: fc.constant(44), fragOffset: fc.integer({ min: 0, max: 200 }), more: fc.boolean() }).map((e): Ext => e)
)

interface Inner6 { src: string, dst: string, kind: 'tcp' | 'udp' | 'icmp' | 'other', icmpType: number, payload: number, ext: Ext[], hop: number, doff: number | undefined, other: number }

const inner6: fc.Arbitrary<Inner6> = fc.record({
  src,
  dst,
  kind: fc.constantFrom('tcp', 'udp', 'icmp', 'other'),
  icmpType: mostly(fc.constantFrom(128, 129, 1, 2), fc.constantFrom(133, 134, 135, 136, 137), 2),
  payload: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 64 }) }, { weight: 2, arbitrary: fc.integer({ min: 64, max: 1380 }) }, { weight: 1, arbitrary: fc.integer({ min: 1380, max: 1500 }) }),
  ext: mostly(fc.constant([]), fc.array(ext, { minLength: 1, maxLength: 10 }), 3),
  hop: mostly(fc.constant(64), fc.constantFrom(0, 1, 255)),
  doff: mostly(fc.constant(undefined), fc.integer({ min: 0, max: 15 }), 6),
  other: fc.constantFrom(59, 50, 51, 132, 253)
})

function buildInner6 (p: Inner6): Buffer {
  if (p.kind === 'tcp') {
    const l4 = tcpBytes({ payload: p.payload, flags: 0x18 })
    const b = packet6({ src: p.src, dst: p.dst, nh: 6, l4, ext: p.ext, hop: p.hop, checksum: true })
    if (p.doff !== undefined) b[b.length - l4.length + 12] = p.doff << 4
    return b
  }
  if (p.kind === 'udp') return packet6({ src: p.src, dst: p.dst, nh: 17, l4: udpBytes(p.payload), ext: p.ext, hop: p.hop, checksum: true })
  if (p.kind === 'icmp') return packet6({ src: p.src, dst: p.dst, nh: 58, l4: icmp6Bytes(p.icmpType, 0, p.payload), ext: p.ext, hop: 255, checksum: true })
  return packet6({ src: p.src, dst: p.dst, nh: p.other, l4: Buffer.alloc(p.payload, 7), ext: p.ext, hop: p.hop })
}

interface Outer extends VxlanHeader { rco: boolean }
const outer: fc.Arbitrary<Outer> = fc.record({
  flags: mostly(fc.constant(0x08), u8, 12),
  reserved: mostly(fc.constant(0), fc.integer({ min: 1, max: 0xffffffff }), 12),
  vni: mostly(fc.constant(1), fc.integer({ min: 0, max: 0xffffff }), 12),
  dstMac: mostly(fc.constant(OUR_MAC6), fc.oneof(fc.constant(PEER_MAC6), bytes(6, 6)), 12),
  etherType: mostly(fc.constant(0x86dd), fc.constantFrom(0x0800, 0x0806, 0), 12),
  rco: mostly(fc.constant(false), fc.constant(true), 4)
})

function buildVxlan6 (h: Outer, inner: Buffer): Buffer {
  const f = buildVxlan(h, inner, PEER_MAC6)
  // RCO: the R flag, where the inner TCP/UDP header starts, its checksum left as the pseudo-header sum
  const nh = inner.length >= 40 ? inner[6] : -1
  if (h.rco && (nh === 6 || nh === 17) && inner.length >= 40 + (nh === 6 ? 18 : 8)) {
    f[1] = 0x20
    f[7] = (54 >> 1) | (nh === 17 ? 0x80 : 0)
    const l4len = inner.readUInt16BE(4)
    f.writeUInt16BE(fold(pseudoHeaderSum6At(f, 22, nh, l4len)), 22 + 40 + (nh === 6 ? 16 : 6))
  }
  return f
}

type Mutation = { kind: 'none' } | { kind: 'flip', at: number, bit: number } | { kind: 'cut', keep: number } | { kind: 'extend', extra: Buffer } | { kind: 'plen', value: number } | { kind: 'byte', at: number, value: number }
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 10, arbitrary: fc.constant({ kind: 'none' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(200), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cut' as const), keep: fc.nat(120) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('extend' as const), extra: bytes(40, 1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('plen' as const), value: fc.oneof(u16, fc.integer({ min: 0, max: 100 })) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('byte' as const), at: fc.integer({ min: 22, max: 140 }), value: u8 }) }
)

function mutate (d: Buffer, m: Mutation): Buffer {
  const b = Buffer.from(d)
  switch (m.kind) {
    case 'none': return b
    case 'flip': if (m.at < b.length) b[m.at] ^= 1 << m.bit; return b
    case 'cut': return b.subarray(0, Math.min(b.length, m.keep))
    case 'extend': return Buffer.concat([b, m.extra])
    case 'plen': if (b.length >= 28) b.writeUInt16BE(m.value, 26); return b
    case 'byte': if (m.at < b.length) b[m.at] = m.value; return b
  }
}

export const structuredCase6: fc.Arbitrary<Datagram> = fc.record({ o: outer, i: inner6, m: mutation, from: mostly(fc.constant<From>('peer'), fc.constant<From>('stranger'), 8) })
  .map(({ o, i, m, from }) => ({ datagram: mutate(buildVxlan6(o, buildInner6(i)), m), from }))

/** Random bytes behind a valid VXLAN header and inner Ethernet (86DD, our MAC), from the peer. */
export const randomInnerCase6: fc.Arbitrary<Datagram> = fc.integer({ min: 0, max: 240 }).chain((n) => bytes(n, n)).map((b) => {
  const f = buildVxlan6({ flags: 8, reserved: 0, vni: 1, dstMac: OUR_MAC6, etherType: 0x86dd, rco: false }, b)
  if (f.length > 22) f[22] = (f[22] & 0x0f) | 0x60
  // a believable payload length and our subnet as the destination, often, so that the bytes after them are judged too
  if (f.length >= 62 && (b[1] & 1) === 0) f.writeUInt16BE(Math.min(f.length - 62, b[2]), 26)
  if (f.length >= 62 && (b[1] & 2) === 0) Buffer.from('fc000000000000020000000000000005', 'hex').copy(f, 46)
  if (f.length >= 62 && (b[1] & 4) === 0) Buffer.from('fc000000000000010000000000000005', 'hex').copy(f, 30)
  return { datagram: f, from: 'peer' as From }
})

export interface Expected6 { pass: Buffer | undefined, reasons: Set<string> }

/** Where the walk over extension headers ends: [upper protocol, its offset] or the reason it fails. */
function walk (p: Buffer, total: number): [number, number] | string {
  let nh = p[6]
  let at = 40
  for (let n = 0; ; n++) {
    if (nh === 44) return at + 8 > total ? 'bad_extension_header' : [44, at]
    if (nh !== 0 && nh !== 43 && nh !== 60) return [nh, at]
    if (n >= 8 || (nh === 0 && n > 0) || at + 8 > total) return 'bad_extension_header'
    const len = (p[at + 1] + 1) * 8
    if (at + len > total) return 'bad_extension_header'
    if (nh === 0) {
      for (let i = 2; i < len;) {
        const t = p[at + i]
        if (t === 0xc2) return 'jumbogram'
        if (t === 0) { i++; continue }
        if (i + 1 >= len) break
        i += 2 + p[at + i + 1]
      }
    }
    nh = p[at]
    at += len
  }
}

export function expected6 (d: Buffer, sender: From): Expected6 {
  const reasons = new Set<string>()
  // longer than any datagram the node must take: the socket may cut it (counted)
  if (d.length > 22 + 64 + MTU6) reasons.add('rx_truncated')
  if (sender === 'stranger') return { pass: undefined, reasons: reasons.add('unknown_source') }
  if (d.length < 42) reasons.add('truncated')
  const rco = d.length >= 8 && d[1] === 0x20
  if (d.length >= 8) {
    if ((d[0] & 0x08) === 0) reasons.add('bad_vxlan_flags')
    if ((d[0] & ~0x08) !== 0 || (d[2] | d[3]) !== 0 || (!rco && (d[1] | d[7]) !== 0)) reasons.add('bad_vxlan_reserved')
    if (((d[4] << 16) | (d[5] << 8) | d[6]) !== 1) reasons.add('wrong_vni')
  }
  if (d.length >= 14 && !d.subarray(8, 14).equals(OUR_MAC6)) reasons.add('not_our_mac')
  if (d.length >= 22 && d.readUInt16BE(20) !== 0x86dd) reasons.add('not_ipv6')
  let partial = false
  if (rco && d.length >= 42) {
    const nh = d[28]
    const total = 40 + d.readUInt16BE(26)
    const named = (d[7] & 0x80) !== 0 ? 17 : 6
    if (d[22] >> 4 !== 6 || (nh !== 6 && nh !== 17) || (d[7] & 0x7f) * 2 !== 54 || named !== nh || total < 40 + (nh === 6 ? 18 : 8) || total > d.length - 22) reasons.add('bad_vxlan_rco')
    else partial = true
  }
  const p = d.subarray(22)
  if (p.length > 0 && p[0] >> 4 !== 6) reasons.add('bad_version')
  if (p.length < 40) { reasons.add('truncated'); return { pass: undefined, reasons } }
  const plen = p.readUInt16BE(4)
  if (plen === 0 && p[6] === 0) reasons.add('jumbogram')
  const total = 40 + plen
  if (total > p.length) { reasons.add('bad_payload_length'); return { pass: undefined, reasons } }
  const w = walk(p, total)
  if (typeof w === 'string') { reasons.add(w); return { pass: undefined, reasons } }
  const [upper, l4] = w
  if (upper === 58 && l4 < total && p[l4] >= 133 && p[l4] <= 137) reasons.add('ndp')
  if (total > MTU6) reasons.add('too_big')
  if (!contains6(OWN6, ip6FromBytes(p, 24))) reasons.add('not_for_us')
  const s = ip6FromBytes(p, 8)
  if (contains6(NETWORK6, s) ? !contains6(PEER6_SUBNET, s) : s === parseIp6('::1')) reasons.add('spoofed_source')
  if (upper === 6 && (total < l4 + 20 || p[l4 + 12] >> 4 < 5 || l4 + (p[l4 + 12] >> 4) * 4 > total)) reasons.add('bad_tcp_data_offset')
  if ([...reasons].some((r) => r !== 'rx_truncated')) return { pass: undefined, reasons }
  let pass = Buffer.from(p.subarray(0, total))
  if (partial) {
    // RCO taken: the node (no vnet header here) finishes the checksum over the L4 bytes, the field as the seed
    const nh = pass[6]
    let c = ~fold(onesSum(pass, 40, total - 40)) & 0xffff
    if (nh === 17 && c === 0) c = 0xffff
    pass = Buffer.from(pass)
    pass.writeUInt16BE(c, 40 + (nh === 6 ? 16 : 6))
  }
  return { pass, reasons }
}
