// Userspace GRO on the way into the TUN: TCP segments of one flow that the
// socket received (and whose checksums it checked) are written as one TSO
// super-packet with a vnet header, the way the kernel's own GRO would hand
// them up; everything else is written as it is, one packet per write.
// The "TUN" is one end of a SOCK_SEQPACKET pair (it keeps write boundaries,
// as a TUN does), read back from the other end byte for byte.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Count, Drop } from '../../src/dataplane/stats'
import { SUPER_SEGMENT_MTU } from '../../src/dataplane/outside-limits'
import { GSO_NONE, GSO_TCPV4, GSO_UDP_L4, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from '../../src/native/vnet'
import { probeOffloads } from '../../src/native'
import { fold, pseudoHeaderSum4At } from '../../src/packet/checksum'
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_DF, IPV4_FLAG_MF, setIpv4Checksum, verifyIpv4Checksum, writeIpv4Header } from '../../src/packet/ipv4'
import { parseIp4 } from '../../src/packet/ip'
import { finishPartialChecksum } from '../../src/packet/partial-checksum'
import { readTcpSeq, setTcp4Checksum, TCP_ACK, TCP_CWR, TCP_ECE, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG, verifyTcp4Checksum, writeTcpHeader } from '../../src/packet/tcp'
import { setIcmpChecksum } from '../../src/packet/icmp'
import { setUdp4Checksum, verifyUdp4Checksum, writeUdpHeader } from '../../src/packet/udp'
import { collect, inject, link, node, udpPacket } from './helpers'
import type { NodeOptions, TestNode } from './helpers'
import { waitFor } from '../../lab/wait'
import { parseWritten, tunRig, vxlanSender } from './tun-rig'
import type { TunRig, Written } from './tun-rig'

interface Seg {
  seq: number
  payload: number
  flags?: number
  ack?: number
  window?: number
  sport?: number
  dst?: string
  ttl?: number
  tos?: number
  /** TCP timestamp value; null: no options */
  tsval?: number | null
  fragField?: number
  tag?: number
}

function fillPayload (b: Buffer, off: number, len: number, tag: number): void {
  for (let i = 0; i < len; i++) b[off + i] = (i * 7 + Math.floor(i / 251) * 13 + tag) & 255
}

/** An IPv4 + TCP segment 10.244.1.2 -> 10.244.2.3, with TCP timestamps unless tsval is null; checksums valid. */
function segment (s: Seg): Buffer {
  const thl = s.tsval === null ? 20 : 32
  const total = 20 + thl + s.payload
  const b = Buffer.alloc(total)
  writeIpv4Header(b, 0, s.tos ?? 0, total, 0x1000, s.fragField ?? IPV4_FLAG_DF, s.ttl ?? 64, IPPROTO_TCP, parseIp4('10.244.1.2'), parseIp4(s.dst ?? '10.244.2.3'))
  writeTcpHeader(b, 20, s.sport ?? 40000, 5201, s.seq, s.ack ?? 777, s.flags ?? TCP_ACK, s.window ?? 501)
  if (thl === 32) {
    b[32] = 8 << 4
    b.writeUInt32BE(s.tsval ?? 0x1234, 44)
    Buffer.from([1, 1, 8, 10]).copy(b, 40)
    b.writeUInt32BE(0x5678, 48)
  }
  fillPayload(b, 20 + thl, s.payload, s.tag ?? (s.seq & 255))
  setTcp4Checksum(b, 20, thl + s.payload, 0)
  return b
}

function icmpPacket (): Buffer {
  const b = Buffer.alloc(28 + 32)
  writeIpv4Header(b, 0, 0, b.length, 1, 0, 64, IPPROTO_ICMP, parseIp4('10.244.1.2'), parseIp4('10.244.2.3'))
  b[20] = 8
  setIcmpChecksum(b, 20, 40)
  return b
}

/** TunWrites over an in-memory TUN; packets are placed in its slab and handed over one by one. */
function harness (vnet: boolean, checked = VNET_F_DATA_VALID, uso = false): TunRig & {
  tcp: (p: Buffer) => void, udp: (p: Buffer) => void, partial: (p: Buffer) => void, single: (p: Buffer) => void
} {
  const r = tunRig(vnet, checked, uso)
  const { writes, place } = r
  return {
    ...r,
    tcp: (p) => writes.tcp(place(p), p.length),
    udp: (p) => writes.udp(place(p), p.length),
    // a TCP/UDP packet whose checksum the sender left partial (VXLAN RCO)
    partial: (p) => p[9] === IPPROTO_TCP ? writes.tcp(place(p), p.length, true) : writes.udp(place(p), p.length, true),
    single: (p) => writes.single(place(p), p.length)
  }
}

const SINGLE = { flags: VNET_F_DATA_VALID, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 }

/**
 * `w` is the super-packet TSO would have been given for `segs` (consecutive
 * segments of one flow): headers of the first with the total length, PSH if
 * any had it, the TCP checksum partial, the payloads back to back.
 */
function assertSuperPacket (w: Written, segs: Buffer[]): void {
  const first = segs[0]
  const thl = (first[32] >> 4) * 4
  const hdr = 20 + thl
  const payload = Buffer.concat(segs.map((s) => s.subarray(hdr)))
  assert.deepEqual(w.vnet, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: hdr, gsoSize: first.length - hdr, csumStart: 20, csumOffset: 16 })
  const ip = w.ip
  assert.equal(ip.length, hdr + payload.length)
  assert.equal((ip[2] << 8) | ip[3], hdr + payload.length, 'IP total length = the sum')
  assert.ok(verifyIpv4Checksum(ip, 0), 'IP header checksum')
  assert.ok(ip.subarray(0, 2).equals(first.subarray(0, 2)) && ip.subarray(4, 10).equals(first.subarray(4, 10)) && ip.subarray(12, 20).equals(first.subarray(12, 20)), 'the first segment\'s IP fields')
  assert.equal(readTcpSeq(ip, 20), readTcpSeq(first, 20), 'the first sequence number')
  const psh = segs.some((s) => (s[33] & TCP_PSH) !== 0) ? TCP_PSH : 0
  assert.equal(ip[33], first[33] | psh, 'flags: the first\'s, PSH if any segment had it')
  assert.ok(ip.subarray(20, 33).equals(first.subarray(20, 33)) && ip.subarray(34, 36).equals(first.subarray(34, 36)) && ip.subarray(38, hdr).equals(first.subarray(38, hdr)), 'the first segment\'s TCP fields and options')
  assert.equal((ip[36] << 8) | ip[37], fold(pseudoHeaderSum4At(ip, 0, IPPROTO_TCP, thl + payload.length)), 'TCP checksum field = the folded pseudo-header sum (partial)')
  assert.ok(ip.subarray(hdr).equals(payload), 'payload = the segments\' payloads in order')
  // what the kernel does with NEEDS_CSUM: finish it; the result must verify
  const finished = Buffer.from(ip)
  assert.ok(finishPartialChecksum(finished, 0, finished.length))
  assert.ok(verifyTcp4Checksum(finished, 20, thl + payload.length, 0), 'finished, the checksum covers the whole')
}

/** `w` is `p` written as it is, with a vnet header saying `flags` and no GSO. */
function assertSingle (w: Written, p: Buffer, flags = VNET_F_DATA_VALID): void {
  assert.deepEqual(w.vnet, { ...SINGLE, flags })
  assert.ok(w.ip.equals(p), 'the packet as it was')
}

/** n consecutive segments of `size` bytes from seq, flags ACK unless given. */
function run (seq: number, n: number, size: number, extra: Partial<Seg> = {}): Buffer[] {
  return Array.from({ length: n }, (_, i) => segment({ ...extra, seq: (seq + i * size) >>> 0, payload: size }))
}

test('consecutive TCP segments of one flow are written as one TSO super-packet with a NEEDS_CSUM vnet header', () => {
  const h = harness(true)
  try {
    const segs = run(0xfffff000, 5, 1000) // the sequence number wraps inside the run
    segs.forEach(h.tcp)
    const w = h.flush()
    assert.equal(w.length, 1)
    assertSuperPacket(w[0], segs)
    assert.equal(h.stats[Count.OUTSIDE_SUPER_PACKETS], 1)
    assert.equal(h.stats[Count.OUTSIDE_COALESCED], 5)
    assert.equal(h.tun.stats().txWritev, 1, 'one writev: header, first segment, four payloads')
    assert.equal(h.tun.stats().txPackets, 1)
  } finally { h.close() }
})

test('a shorter last segment ends the run and belongs to it; gso_size is the first segment\'s payload', () => {
  const h = harness(true)
  try {
    const segs = [...run(1, 3, 1398), segment({ seq: 1 + 3 * 1398, payload: 402 })]
    const next = segment({ seq: 1 + 3 * 1398 + 402, payload: 1398 })
    ;[...segs, next].forEach(h.tcp)
    const w = h.flush()
    assert.equal(w.length, 2)
    assertSuperPacket(w[0], segs)
    assert.equal(w[0].vnet?.gsoSize, 1398)
    assertSingle(w[1], next)
  } finally { h.close() }
})

test('PSH ends the run and is set on the super-packet; a segment with PSH that starts a run stands alone', () => {
  const h = harness(true)
  try {
    const segs = [...run(100, 2, 1000), segment({ seq: 2100, payload: 1000, flags: TCP_ACK | TCP_PSH })]
    const pshFirst = segment({ seq: 3100, payload: 1000, flags: TCP_ACK | TCP_PSH })
    const later = run(4100, 2, 1000)
    ;[...segs, pshFirst, ...later].forEach(h.tcp)
    const w = h.flush()
    assert.equal(w.length, 3)
    assertSuperPacket(w[0], segs)
    assert.equal(w[0].ip[33], TCP_ACK | TCP_PSH)
    assertSingle(w[1], pshFirst)
    assertSuperPacket(w[2], later)
    assert.equal(w[2].ip[33], TCP_ACK, 'no PSH where none of its segments had it')
  } finally { h.close() }
})

// Each of these would continue the run of two segments before it but for one
// difference: it must be written on its own, the run before it intact.
const BREAKERS: Array<[string, Partial<Seg>]> = [
  ['a gap in the sequence', { seq: 2000 + 1 }],
  ['an overlap (retransmission)', { seq: 1500 }],
  ['another flow (source port)', { sport: 40001 }],
  ['another destination', { dst: '10.244.2.4' }],
  ['another ACK number', { ack: 778 }],
  ['another window', { window: 502 }],
  ['SYN', { flags: TCP_ACK | TCP_SYN }],
  ['FIN', { flags: TCP_ACK | TCP_FIN }],
  ['RST', { flags: TCP_ACK | TCP_RST }],
  ['URG', { flags: TCP_ACK | TCP_URG }],
  ['ECE', { flags: TCP_ACK | TCP_ECE }],
  ['CWR', { flags: TCP_ACK | TCP_CWR }],
  ['no ACK flag', { flags: TCP_PSH }],
  ['other option bytes (timestamp)', { tsval: 0x1235 }],
  ['no options (header length)', { tsval: null }],
  ['a larger payload than the first', { payload: 1001 }],
  ['another TTL', { ttl: 63 }],
  ['another TOS', { tos: 0x10 }]
]

for (const [what, change] of BREAKERS) {
  test(`a segment with ${what} starts a new write`, () => {
    const h = harness(true)
    try {
      const segs = run(0, 2, 1000)
      const odd = segment({ seq: 2000, payload: 1000, ...change })
      ;[...segs, odd].forEach(h.tcp)
      const w = h.flush()
      assert.equal(w.length, 2)
      assertSuperPacket(w[0], segs)
      assertSingle(w[1], odd)
    } finally { h.close() }
  })
}

test('a TCP segment that is an IP fragment starts a new write', () => {
  const h = harness(true)
  try {
    const segs = run(0, 2, 1000)
    const frag = segment({ seq: 2000, payload: 1000, fragField: IPV4_FLAG_MF })
    ;[...segs, frag].forEach(h.tcp)
    const w = h.flush()
    assert.equal(w.length, 2)
    assertSuperPacket(w[0], segs)
    assert.ok(w[1].ip.equals(frag))
    assert.equal(w[1].vnet?.gsoType, GSO_NONE)
  } finally { h.close() }
})

// The addon's inner check skips fragments (a fragment's checksum covers the
// whole datagram, which no single fragment holds), so nothing vouches for
// them: DATA_VALID on all fragments of a datagram would carry through the
// kernel's reassembly (inet_frag_reasm_finish keeps CHECKSUM_UNNECESSARY when
// every fragment has it) and the TCP/UDP checksum would never be verified.
// (Linux 6.18's TUN ignores DATA_VALID on writes, so today this costs nothing.)
test('TCP and UDP fragments are written without DATA_VALID: the socket could not check their checksums', () => {
  const h = harness(true)
  try {
    const tcpFirst = segment({ seq: 1, payload: 1000, fragField: IPV4_FLAG_MF })
    const tcpLater = segment({ seq: 1, payload: 1000, fragField: 185 })
    const udpFrag = udpPacket('10.244.1.2', '10.244.2.3', 300, 4)
    udpFrag[6] = 0x20 // MF (the IP checksum is not what is tested here)
    h.tcp(tcpFirst)
    h.tcp(tcpLater)
    h.single(udpFrag)
    const w = h.flush()
    assert.equal(w.length, 3)
    assert.deepEqual(w.map((x) => x.vnet?.flags), [0, 0, 0])
  } finally { h.close() }
})

test('a segment that continues nothing starts a run of its own: A, A, B, B, B is two super-packets', () => {
  const h = harness(true)
  try {
    const a = run(0, 2, 1000)
    const b = run(90000, 3, 1000, { sport: 40001 })
    ;[...a, ...b].forEach(h.tcp)
    const w = h.flush()
    assert.equal(w.length, 2)
    assertSuperPacket(w[0], a)
    assertSuperPacket(w[1], b)
  } finally { h.close() }
})

test('interleaved flows coalesce nothing but lose nothing: each segment is its own write, in order', () => {
  const h = harness(true)
  try {
    const a = run(0, 3, 1000)
    const b = run(90000, 3, 1000, { sport: 40001 })
    const order = [a[0], b[0], a[1], b[1], a[2], b[2]]
    order.forEach(h.tcp)
    const w = h.flush()
    assert.equal(w.length, 6)
    w.forEach((x, i) => assertSingle(x, order[i]))
  } finally { h.close() }
})

test('at most 64 segments go into one super-packet: 70 small segments are written as 64 + 6', () => {
  const h = harness(true)
  try {
    const segs = run(7, 70, 100)
    segs.forEach(h.tcp)
    const w = h.flush()
    assert.equal(w.length, 2)
    assertSuperPacket(w[0], segs.slice(0, 64))
    assertSuperPacket(w[1], segs.slice(64))
    assert.equal(h.stats[Count.OUTSIDE_COALESCED], 70)
  } finally { h.close() }
})

test('a run stops before the super-packet would pass 65535 bytes: 50 segments of 1398 are written as 46 + 4', () => {
  const h = harness(true)
  try {
    const segs = run(7, 50, 1398)
    segs.forEach(h.tcp)
    const w = h.flush()
    assert.equal(w.length, 2)
    assertSuperPacket(w[0], segs.slice(0, 46))
    assert.ok(w[0].ip.length <= 65535)
    assertSuperPacket(w[1], segs.slice(46))
  } finally { h.close() }
})

test('single packets carry DATA_VALID when TCP or UDP (their checksums were checked) and no flags when ICMP', () => {
  const h = harness(true)
  try {
    const udp = udpPacket('10.244.1.2', '10.244.2.3', 300, 4)
    const icmp = icmpPacket()
    const syn = segment({ seq: 1, payload: 0, flags: TCP_SYN, tsval: null })
    const pureAck = segment({ seq: 1, payload: 0 })
    h.single(udp)
    h.single(icmp)
    h.tcp(syn)
    h.tcp(pureAck)
    const w = h.flush()
    assert.equal(w.length, 4)
    assertSingle(w[0], udp)
    assertSingle(w[1], icmp, 0)
    assertSingle(w[2], syn)
    assertSingle(w[3], pureAck)
    assert.equal(h.stats[Count.OUTSIDE_SUPER_PACKETS], 0)
  } finally { h.close() }
})

/** `p` with its TCP (16) or UDP (6) checksum field holding only the pseudo-header sum, as VXLAN RCO carries it. */
function leftPartial (p: Buffer): Buffer {
  const q = Buffer.from(p)
  const at = 20 + (q[9] === IPPROTO_TCP ? 16 : 6)
  const s = fold(pseudoHeaderSum4At(q, 0, q[9], q.length - 20))
  q[at] = s >> 8
  q[at + 1] = s & 255
  return q
}

test('packets the sender left partial (VXLAN RCO) go alone with NEEDS_CSUM at their own checksum, and in a run like any other segment', () => {
  const h = harness(true, VNET_F_DATA_VALID, true)
  try {
    const psh = leftPartial(segment({ seq: 1, payload: 700, flags: TCP_ACK | TCP_PSH }))
    const udp = leftPartial(udpPacket('10.244.1.2', '10.244.2.3', 300, 4))
    const segs = run(701, 3, 1000).map(leftPartial)
    h.partial(psh)
    h.partial(udp)
    segs.forEach(h.partial)
    const w = h.flush()
    assert.equal(w.length, 3)
    assert.deepEqual(w[0].vnet, { ...SINGLE, flags: VNET_F_NEEDS_CSUM, csumStart: 20, csumOffset: 16 })
    assert.ok(w[0].ip.equals(psh), 'the packet as it was')
    assert.deepEqual(w[1].vnet, { ...SINGLE, flags: VNET_F_NEEDS_CSUM, csumStart: 20, csumOffset: 6 }, 'a lone UDP datagram: its checksum at offset 6')
    assertSuperPacket(w[2], segs)
  } finally { h.close() }
})

test('a run of one partial segment keeps NEEDS_CSUM: the header written when the run opened already says so', () => {
  const h = harness(true)
  try {
    const one = leftPartial(segment({ seq: 1, payload: 1000 }))
    const other = segment({ seq: 1, payload: 1000, tag: 9, sport: 40001 })
    h.partial(one)
    h.tcp(other) // another flow: closes the first run at one segment
    const w = h.flush()
    assert.equal(w.length, 2)
    assert.deepEqual(w[0].vnet, { ...SINGLE, flags: VNET_F_NEEDS_CSUM, csumStart: 20, csumOffset: 16 })
    assertSingle(w[1], other)
  } finally { h.close() }
})

test('without a vnet header nothing is coalesced: each segment is written as it is, with no header', () => {
  const h = harness(false, 0)
  try {
    const segs = run(0, 5, 1000)
    segs.forEach(h.tcp)
    const w = h.flush()
    assert.equal(w.length, 5)
    w.forEach((x, i) => { assert.equal(x.vnet, undefined); assert.ok(x.ip.equals(segs[i])) })
    assert.equal(h.tun.stats().txWritev, 0)
  } finally { h.close() }
})

test('with a vnet header but unchecked checksums nothing is coalesced and nothing is marked valid', () => {
  const h = harness(true, 0)
  try {
    const segs = run(0, 5, 1000)
    segs.forEach(h.tcp)
    const w = h.flush()
    assert.equal(w.length, 5)
    w.forEach((x, i) => assertSingle(x, segs[i], 0))
  } finally { h.close() }
})

test('a batch\'s runs are closed by send(): the next batch starts afresh even if it continues the flow', () => {
  const h = harness(true)
  try {
    const segs = run(0, 4, 1000)
    segs.slice(0, 2).forEach(h.tcp)
    const w1 = h.flush()
    segs.slice(2).forEach(h.tcp)
    const w2 = h.flush()
    assert.equal(w1.length, 1)
    assertSuperPacket(w1[0], segs.slice(0, 2))
    assert.equal(w2.length, 1)
    assertSuperPacket(w2[0], segs.slice(2))
  } finally { h.close() }
})

// With TUN USO (Linux >= 6.2), UDP datagrams of one flow and one size are
// coalesced the same way into a UDP_L4 super-packet, which the kernel cuts
// back into the same datagrams (at gso_size) before any socket sees them.

interface Dgram {
  payload: number
  sport?: number
  dport?: number
  dst?: string
  ttl?: number
  tos?: number
  id?: number
  fragField?: number
  /** false: checksum 0 (none) */
  checksum?: boolean
  tag?: number
}

/** An IPv4 + UDP datagram 10.244.1.2 -> 10.244.2.3, checksums valid. */
function datagram (d: Dgram): Buffer {
  const total = 28 + d.payload
  const b = Buffer.alloc(total)
  writeIpv4Header(b, 0, d.tos ?? 0, total, d.id ?? 7, d.fragField ?? IPV4_FLAG_DF, d.ttl ?? 64, IPPROTO_UDP, parseIp4('10.244.1.2'), parseIp4(d.dst ?? '10.244.2.3'))
  writeUdpHeader(b, 20, d.sport ?? 40000, d.dport ?? 7000, 8 + d.payload)
  fillPayload(b, 28, d.payload, d.tag ?? 0)
  if (d.checksum !== false) setUdp4Checksum(b, 20, 8 + d.payload, 0)
  return b
}

/** n datagrams of `size`, one flow, each with its own ID and content */
function flow (n: number, size: number, extra: Partial<Dgram> = {}): Buffer[] {
  return Array.from({ length: n }, (_, i) => datagram({ payload: size, id: 100 + i, tag: i * 3, ...extra }))
}

/** `w` is the UDP_L4 super-packet for `dgrams`: the first's headers, lengths for the whole, the UDP checksum partial, payloads in order. */
function assertUdpSuperPacket (w: Written, dgrams: Buffer[]): void {
  const first = dgrams[0]
  const payload = Buffer.concat(dgrams.map((d) => d.subarray(28)))
  assert.deepEqual(w.vnet, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_UDP_L4, hdrLen: 28, gsoSize: first.length - 28, csumStart: 20, csumOffset: 6 })
  const ip = w.ip
  assert.equal(ip.length, 28 + payload.length)
  assert.equal((ip[2] << 8) | ip[3], 28 + payload.length, 'IP total length = the sum')
  assert.ok(verifyIpv4Checksum(ip, 0), 'IP header checksum')
  assert.ok(ip.subarray(0, 2).equals(first.subarray(0, 2)) && ip.subarray(4, 10).equals(first.subarray(4, 10)) && ip.subarray(12, 24).equals(first.subarray(12, 24)), 'the first datagram\'s IP fields and ports')
  assert.equal((ip[24] << 8) | ip[25], 8 + payload.length, 'UDP length = the sum')
  assert.equal((ip[26] << 8) | ip[27], fold(pseudoHeaderSum4At(ip, 0, IPPROTO_UDP, 8 + payload.length)), 'UDP checksum field = the folded pseudo-header sum (partial)')
  assert.ok(ip.subarray(28).equals(payload), 'payload = the datagrams\' payloads in order')
  const finished = Buffer.from(ip)
  assert.ok(finishPartialChecksum(finished, 0, finished.length))
  assert.ok(verifyUdp4Checksum(finished, 20, 8 + payload.length, 0), 'finished, the checksum covers the whole')
}

test('with USO, UDP datagrams of one flow and one size are written as one UDP_L4 super-packet; a shorter one ends it', () => {
  const h = harness(true, VNET_F_DATA_VALID, true)
  try {
    const dgrams = [...flow(5, 1200), datagram({ payload: 333, id: 200, tag: 9 })]
    const next = datagram({ payload: 1200, id: 201 })
    ;[...dgrams, next].forEach(h.udp)
    const w = h.flush()
    assert.equal(w.length, 2)
    assertUdpSuperPacket(w[0], dgrams)
    assertSingle(w[1], next)
    assert.equal(h.stats[Count.OUTSIDE_SUPER_PACKETS], 1)
    assert.equal(h.stats[Count.OUTSIDE_COALESCED], 6)
  } finally { h.close() }
})

const UDP_BREAKERS: Array<[string, Partial<Dgram>]> = [
  ['another source port', { sport: 40001 }],
  ['another destination port', { dport: 7001 }],
  ['another destination', { dst: '10.244.2.4' }],
  ['another TTL', { ttl: 63 }],
  ['another TOS', { tos: 0x10 }],
  ['no DF', { fragField: 0 }],
  ['a larger payload than the first', { payload: 1201 }]
]

for (const [what, change] of UDP_BREAKERS) {
  test(`with USO, a UDP datagram with ${what} starts a new write`, () => {
    const h = harness(true, VNET_F_DATA_VALID, true)
    try {
      const dgrams = flow(2, 1200)
      const odd = datagram({ payload: 1200, id: 300, ...change })
      ;[...dgrams, odd].forEach(h.udp)
      const w = h.flush()
      assert.equal(w.length, 2)
      assertUdpSuperPacket(w[0], dgrams)
      assertSingle(w[1], odd)
    } finally { h.close() }
  })
}

test('with USO, datagrams without a UDP checksum, with IP options or fragmented are written one by one', () => {
  const h = harness(true, VNET_F_DATA_VALID, true)
  try {
    const noSum = flow(3, 1000, { checksum: false })
    const withOptions = flow(2, 1000).map((d) => {
      const b = Buffer.alloc(d.length + 4)
      d.copy(b, 0, 0, 20)
      b[0] = 0x46
      b[3] += 4
      b.set([1, 1, 1, 0], 20) // NOP NOP NOP EOL
      d.copy(b, 24, 20)
      setIpv4Checksum(b, 0)
      return b
    })
    const frags = flow(2, 1000, { fragField: IPV4_FLAG_MF })
    const all = [...noSum, ...withOptions, ...frags]
    all.forEach(h.udp)
    const w = h.flush()
    assert.equal(w.length, all.length)
    w.forEach((x, i) => assertSingle(x, all[i], i >= 5 ? 0 : VNET_F_DATA_VALID))
    assert.equal(h.stats[Count.OUTSIDE_SUPER_PACKETS], 0)
  } finally { h.close() }
})

test('with USO, at most 64 datagrams or 65535 bytes go into one super-packet', () => {
  const h = harness(true, VNET_F_DATA_VALID, true)
  try {
    const small = flow(70, 100)
    small.forEach(h.udp)
    const w1 = h.flush()
    assert.equal(w1.length, 2)
    assertUdpSuperPacket(w1[0], small.slice(0, 64))
    assertUdpSuperPacket(w1[1], small.slice(64))
    const big = flow(50, 1400)
    big.forEach(h.udp)
    const w2 = h.flush()
    const first = Math.floor((65535 - 28) / 1400)
    assert.equal(w2.length, 2)
    assertUdpSuperPacket(w2[0], big.slice(0, first))
    assert.ok(w2[0].ip.length <= 65535)
    assertUdpSuperPacket(w2[1], big.slice(first))
  } finally { h.close() }
})

test('with USO, a TCP run and a UDP run of the same hosts stay apart: TCP, TCP, UDP, UDP, TCP is three writes', () => {
  const h = harness(true, VNET_F_DATA_VALID, true)
  try {
    const tcp = run(0, 3, 1000)
    const udp = flow(2, 1000)
    h.tcp(tcp[0])
    h.tcp(tcp[1])
    udp.forEach(h.udp)
    h.tcp(tcp[2])
    const w = h.flush()
    assert.equal(w.length, 3)
    assertSuperPacket(w[0], tcp.slice(0, 2))
    assertUdpSuperPacket(w[1], udp)
    assertSingle(w[2], tcp[2])
  } finally { h.close() }
})

test('without USO, UDP datagrams of one flow are written one by one, DATA_VALID', () => {
  const h = harness(true, VNET_F_DATA_VALID, false)
  try {
    const dgrams = flow(4, 1200)
    dgrams.forEach(h.udp)
    const w = h.flush()
    assert.equal(w.length, 4)
    w.forEach((x, i) => assertSingle(x, dgrams[i]))
  } finally { h.close() }
})

// End to end: two Pipelines over loopback UDP, each with an in-memory TUN
// that carries vnet headers.

const offloads = probeOffloads()
const offloadSkip = offloads.udpGso && offloads.udpGro ? undefined : 'the kernel lacks UDP GSO or UDP GRO'
const MTU = 1450
const MSS = MTU - 52

function offloadNode (subnet: string, mac: string, off: NonNullable<NodeOptions['offloads']>, remCsum = false): TestNode {
  return node(subnet, mac, { mtu: MTU, offloads: off, rcvbuf: 8 << 20, wireSlot: 65600, wireTxSize: 8, remCsum })
}

/** [vnet header][packet], as a TUN with TSO hands a super-packet to its reader. */
function withVnet (p: Buffer, gsoType: number, gsoSize: number): Buffer {
  const h = Buffer.alloc(VNET_HDR_LEN)
  const hdrLen = gsoType === GSO_NONE ? 0 : 20 + (p[32] >> 4) * 4
  writeVnetHdr(h, 0, gsoType === GSO_NONE ? 0 : VNET_F_NEEDS_CSUM, gsoType, hdrLen, gsoSize, gsoType === GSO_NONE ? 0 : 20, gsoType === GSO_NONE ? 0 : 16)
  return Buffer.concat([h, p])
}

test('a 64 KB TSO super-packet written into A\'s TUN comes out of B\'s TUN as one super-packet with the same bytes', { skip: offloadSkip }, async (t) => {
  const off = { vnet: true, tso: true, gro: true, gso: true }
  const a = offloadNode('10.244.1.0/24', '02:00:00:00:00:0a', off)
  const b = offloadNode('10.244.2.0/24', '02:00:00:00:00:0b', off)
  t.after(() => { a.close(); b.close() })
  link(a, b)
  const payload = 46 * MSS - 300
  const sup = segment({ seq: 0x7ffff000, payload, flags: TCP_ACK | TCP_PSH })
  // as the kernel leaves it: the TCP checksum partial
  const partial = Buffer.from(sup)
  const p = fold(pseudoHeaderSum4At(partial, 0, IPPROTO_TCP, partial.length - 20))
  partial[36] = p >> 8
  partial[37] = p & 255
  inject(a, [withVnet(partial, GSO_TCPV4, MSS)])
  const got = await collect(b, 1)
  assert.equal(got.length, 1)
  const w = parseWritten(got[0])
  assert.deepEqual(w.vnet, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 52, gsoSize: MSS, csumStart: 20, csumOffset: 16 })
  assert.ok(w.ip.subarray(52).equals(sup.subarray(52)), 'the same payload')
  assert.equal((w.ip[2] << 8) | w.ip[3], sup.length)
  assert.equal(w.ip[33], TCP_ACK | TCP_PSH)
  assert.ok(verifyIpv4Checksum(w.ip, 0))
  assert.equal(readTcpSeq(w.ip, 20), 0x7ffff000)
  assert.equal((w.ip[36] << 8) | w.ip[37], p, 'TCP checksum partial again')
  assert.equal(a.pipeline.stats[Count.INSIDE_SUPER_PACKETS], 1)
  assert.equal(a.pipeline.snapshot().sock.txSegmented, 46)
  assert.equal(b.pipeline.stats[Count.OUTSIDE_COALESCED], 46)
  assert.equal(b.pipeline.stats[Count.OUTSIDE_SUPER_PACKETS], 1)
  assert.equal(b.pipeline.stats[Drop.BAD_INNER_CHECKSUM], 0)
})

test('a USO super-packet written into A\'s TUN comes out of B\'s TUN as one UDP_L4 super-packet with the same bytes', { skip: offloadSkip }, async (t) => {
  const off = { vnet: true, tso: true, gro: true, uso: true, gso: true }
  const a = offloadNode('10.244.1.0/24', '02:00:00:00:00:0a', off)
  const b = offloadNode('10.244.2.0/24', '02:00:00:00:00:0b', off)
  t.after(() => { a.close(); b.close() })
  link(a, b)
  const size = MTU - 28
  const sup = datagram({ payload: 30 * size + 17, id: 5 })
  const h = Buffer.alloc(VNET_HDR_LEN)
  writeVnetHdr(h, 0, VNET_F_NEEDS_CSUM, GSO_UDP_L4, 28, size, 20, 6)
  const partial = Buffer.from(sup)
  const p = fold(pseudoHeaderSum4At(partial, 0, IPPROTO_UDP, partial.length - 20))
  partial[26] = p >> 8
  partial[27] = p & 255
  inject(a, [Buffer.concat([h, partial])])
  const got = await collect(b, 1)
  assert.equal(got.length, 1)
  const w = parseWritten(got[0])
  assert.deepEqual(w.vnet, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_UDP_L4, hdrLen: 28, gsoSize: size, csumStart: 20, csumOffset: 6 })
  assert.ok(w.ip.subarray(28).equals(sup.subarray(28)), 'the same payload')
  assert.equal((w.ip[2] << 8) | w.ip[3], sup.length)
  assert.equal((w.ip[24] << 8) | w.ip[25], sup.length - 20)
  assert.equal((w.ip[26] << 8) | w.ip[27], p, 'UDP checksum partial again')
  assert.ok(verifyIpv4Checksum(w.ip, 0))
  assert.equal(a.pipeline.snapshot().sock.txSegmented, 31)
  assert.equal(b.pipeline.stats[Count.OUTSIDE_COALESCED], 31)
})

test('a segment corrupted on the wire is dropped as a bad inner checksum and the run is written around the gap', { skip: offloadSkip }, async (t) => {
  const off = { vnet: true, tso: true, gro: true }
  const b = offloadNode('10.244.2.0/24', '02:00:00:00:00:0b', off)
  t.after(() => b.close())
  const a = vxlanSender(t, b, 2048, true)
  const segs = run(5000, 6, MSS)
  const onWire = segs.map((s) => Buffer.from(s))
  onWire[3][200] ^= 0x20 // flipped in flight: the checksum no longer matches
  a.send(onWire)
  const got = await collect(b, 2)
  assert.equal(got.length, 2)
  assertSuperPacket(parseWritten(got[0]), segs.slice(0, 3))
  assertSuperPacket(parseWritten(got[1]), segs.slice(4))
  assert.equal(b.pipeline.stats[Drop.BAD_INNER_CHECKSUM], 1)
})

test('without offloads the same segments cross one by one, each exactly as sent', async (t) => {
  const off = { vnet: false, tso: false, gro: false }
  const a = offloadNode('10.244.1.0/24', '02:00:00:00:00:0a', off)
  const b = offloadNode('10.244.2.0/24', '02:00:00:00:00:0b', off)
  t.after(() => { a.close(); b.close() })
  link(a, b)
  const segs = run(0, 8, MSS)
  inject(a, segs)
  const got = await collect(b, 8)
  assert.equal(got.length, 8)
  got.forEach((g, i) => assert.ok(g.equals(segs[i]), `segment ${i}`))
  assert.equal(b.pipeline.stats[Count.OUTSIDE_SUPER_PACKETS], 0)
})

// VXLAN remote checksum offload between two pipelines that both speak it.

/** `w` is the TSO super-packet `sup` (MSS segments, TCP timestamps) as the pod sent it, its checksum left for the kernel to finish. */
function assertSentSuperPacket (w: Written, sup: Buffer): void {
  assert.deepEqual(w.vnet, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 52, gsoSize: MSS, csumStart: 20, csumOffset: 16 })
  const finished = Buffer.from(w.ip)
  assert.ok(finishPartialChecksum(finished, 0, finished.length))
  assert.ok(finished.equals(sup), 'finished, it is the super-packet the pod sent, byte for byte')
}

test('with remote checksum offload, a 64 KB TSO super-packet crosses with no payload summed on either side and comes out as the same super-packet', { skip: offloadSkip }, async (t) => {
  const off = { vnet: true, tso: true, gro: true, gso: true }
  const a = offloadNode('10.244.1.0/24', '02:00:00:00:00:0a', off, true)
  const b = offloadNode('10.244.2.0/24', '02:00:00:00:00:0b', off, true)
  t.after(() => { a.close(); b.close() })
  link(a, b)
  const sup = segment({ seq: 0x10, payload: 46 * MSS, flags: TCP_ACK })
  const partial = leftPartial(sup) // as the kernel leaves it
  const p = (partial[36] << 8) | partial[37]
  inject(a, [withVnet(partial, GSO_TCPV4, MSS)])
  const got = await collect(b, 1)
  assert.equal(got.length, 1)
  const w = parseWritten(got[0])
  assert.equal((w.ip[36] << 8) | w.ip[37], p, 'TCP checksum partial, for the kernel to finish')
  assertSentSuperPacket(w, sup)
  assert.equal(a.pipeline.stats[Count.INSIDE_PARTIAL], 1)
  assert.equal(a.pipeline.snapshot().sock.txCsumPartial, 46, 'every segment left partial by the sender')
  assert.equal(b.pipeline.snapshot().sock.rxCsumRemote, 46, 'and not checked by the receiver')
  assert.equal(b.pipeline.snapshot().sock.rxCsumFinished, 0)
  assert.equal(b.pipeline.stats[Count.OUTSIDE_PARTIAL], 46)
  assert.equal(b.pipeline.stats[Count.OUTSIDE_COALESCED], 46)
  assert.equal(b.pipeline.stats[Drop.BAD_VXLAN_RCO], 0)
})

test('a peer that did not ask for remote checksum offload gets whole checksums, checked on arrival', { skip: offloadSkip }, async (t) => {
  const off = { vnet: true, tso: true, gro: true, gso: true }
  const a = offloadNode('10.244.1.0/24', '02:00:00:00:00:0a', off, true)
  const b = offloadNode('10.244.2.0/24', '02:00:00:00:00:0b', off, false)
  t.after(() => { a.close(); b.close() })
  link(a, b)
  const sup = segment({ seq: 0x10, payload: 10 * MSS, flags: TCP_ACK })
  inject(a, [withVnet(sup, GSO_TCPV4, MSS)])
  const got = await collect(b, 1)
  assert.equal(got.length, 1)
  assertSentSuperPacket(parseWritten(got[0]), sup)
  assert.equal(a.pipeline.stats[Count.INSIDE_PARTIAL], 0)
  assert.equal(a.pipeline.snapshot().sock.txCsumPartial, 0)
  assert.equal(b.pipeline.snapshot().sock.rxCsumRemote, 0)
  assert.equal(b.pipeline.stats[Drop.BAD_INNER_CHECKSUM], 0, 'every segment checked, and good')
})

// flannel.1 on the same host sends its TSO super-packets through a veth
// unsegmented (Linux hands a UDP socket a tunnel GSO packet whole): one
// datagram carries a TCP packet far beyond the MTU.

test('a TCP packet beyond the MTU, as flannel.1 sends it over a veth, enters the TUN as TSO at 1280-byte segments; a UDP one, or a corrupt one, is dropped', { skip: offloadSkip }, async (t) => {
  const off = { vnet: true, tso: true, gro: true }
  const b = offloadNode('10.244.2.0/24', '02:00:00:00:00:0b', off)
  t.after(() => b.close())
  const a = vxlanSender(t, b, 65600)
  // five segments' worth, checksum left partial as the kernel leaves it
  const sup = segment({ seq: 9000, payload: 5 * MSS, flags: TCP_ACK })
  const partial = leftPartial(sup)
  const p = (partial[36] << 8) | partial[37]
  const corrupt = Buffer.from(sup)
  corrupt[3000] ^= 4
  const bigUdp = datagram({ payload: 5000, id: 7 })
  a.send([partial, corrupt, bigUdp])
  const got = await collect(b, 1)
  assert.equal(got.length, 1)
  const w = parseWritten(got[0])
  assert.deepEqual(w.vnet, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_TCPV4, hdrLen: 52, gsoSize: Math.min(MTU, SUPER_SEGMENT_MTU) - 52, csumStart: 20, csumOffset: 16 }, 'segments declared at 1280 bytes: the sender\'s size is not on the wire, and a pod may have a smaller MTU than ours')
  assert.ok(w.ip.subarray(0, 36).equals(sup.subarray(0, 36)) && w.ip.subarray(38).equals(sup.subarray(38)), 'the packet as sent')
  assert.equal((w.ip[36] << 8) | w.ip[37], p, 'its TCP checksum partial, for the kernel')
  await waitFor(() => {
    assert.equal(b.pipeline.stats[Count.OUTSIDE_UNSEGMENTED], 1)
    assert.equal(b.pipeline.stats[Drop.BAD_INNER_CHECKSUM], 1, 'checked as one packet on the way in')
    assert.equal(b.pipeline.stats[Drop.TOO_BIG], 1, 'UDP beyond the MTU: nothing to cut it')
    return true
  }, { what: 'the unsegmented packet and both drops counted', intervalMs: 5 })
})
