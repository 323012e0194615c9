// Segmentation offload in the addon, over loopback UDP sockets (no
// privileges): a TCP/UDP super-packet behind an encapsulation prefix is cut
// into segments whose headers a kernel would accept (lengths, IDs, sequence
// numbers, flags, checksums), sent with UDP_SEGMENT; same-size datagrams are
// gathered into UDP_SEGMENT sends; what cannot be segmented is dropped and
// counted without losing the rest of the batch; and a receiver with inner
// checks flags every segment whose TCP/UDP checksum is wrong.
// Every checksum here is verified with the TypeScript codecs, not the addon.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { openUdp4, PacketBatch, PeerTable, probeOffloads, steerInnerFlow } from '../../src/native'
import { SEGS_PARTIAL } from '../../src/native/batch'
import { GSO_TCPV4, GSO_UDP_L4 } from '../../src/native/vnet'
import { fold, pseudoHeaderSum4At } from '../../src/packet/checksum'
import { finishPartialChecksum } from '../../src/packet/partial-checksum'
import { IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_DF, IPV4_FLAG_MF, verifyIpv4Checksum, writeIpv4Header } from '../../src/packet/ipv4'
import { parseIp4 } from '../../src/packet/ip'
import { readTcpSeq, setTcp4Checksum, TCP_ACK, TCP_CWR, TCP_FIN, TCP_PSH, verifyTcp4Checksum, writeTcpHeader } from '../../src/packet/tcp'
import { setUdp4Checksum, verifyUdp4Checksum, writeUdpHeader } from '../../src/packet/udp'
import { ends as endsOf, LOOPBACK, pattern, put, receive } from './loopback'
import type { Ends } from './loopback'

/** encapsulation in front of the inner packet, as VXLAN's (8 + 14) */
const PREFIX = 22
/** the inner MSS of a 1450-byte VXLAN MTU with TCP timestamps: 1450 - 20 - 32 */
const MSS = 1398
/** largest UDP payload of one IPv4 datagram, so of one UDP_SEGMENT send */
const UDP_MAX_PAYLOAD = 65507

const offloads = probeOffloads()
const gsoSkip = offloads.udpGso ? undefined : 'the kernel refuses UDP_SEGMENT (no UDP GSO)'
const groSkip = gsoSkip ?? (offloads.udpGro ? undefined : 'the kernel refuses UDP_GRO')

function prefixBytes (tag: number): Buffer {
  return pattern(PREFIX, 100 + tag)
}

interface TcpOptions {
  payload: Buffer
  seq?: number
  ack?: number
  flags?: number
  id?: number
  /** TCP timestamps option (12 bytes with two NOPs); default on */
  timestamps?: boolean
  fragField?: number
  /** the TCP source port; default 40000 */
  sport?: number
}

/** An IPv4 + TCP packet 10.244.1.2:40000 -> 10.244.2.3:5201, checksums valid. */
function tcpPacket (o: TcpOptions): Buffer {
  const thl = o.timestamps === false ? 20 : 32
  const total = 20 + thl + o.payload.length
  const b = Buffer.alloc(total)
  writeIpv4Header(b, 0, 0, Math.min(total, 0xffff), o.id ?? 0x1234, o.fragField ?? IPV4_FLAG_DF, 64, IPPROTO_TCP, parseIp4('10.244.1.2'), parseIp4('10.244.2.3'))
  writeTcpHeader(b, 20, o.sport ?? 40000, 5201, o.seq ?? 1000, o.ack ?? 777, o.flags ?? TCP_ACK, 501)
  if (thl === 32) {
    b[20 + 12] = 8 << 4
    Buffer.from([1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78]).copy(b, 40)
  }
  o.payload.copy(b, 20 + thl)
  setTcp4Checksum(b, 20, thl + o.payload.length, 0)
  return b
}

/** An IPv4 + UDP packet 10.244.1.2:40000 -> 10.244.2.3:7000, checksum valid. */
function udpPacket (payload: Buffer, id = 0x4321): Buffer {
  const total = 28 + payload.length
  const b = Buffer.alloc(total)
  writeIpv4Header(b, 0, 0, total, id, IPV4_FLAG_DF, 64, IPPROTO_UDP, parseIp4('10.244.1.2'), parseIp4('10.244.2.3'))
  writeUdpHeader(b, 20, 40000, 7000, 8 + payload.length)
  payload.copy(b, 28)
  setUdp4Checksum(b, 20, 8 + payload.length, 0)
  return b
}

/**
 * Give a datagram the bytes a receiver's steering reads as its inner flow
 * (an IPv4 header's first 24 bytes: version/IHL, addresses, ports): the
 * sender gathers only datagrams of one flow into a UDP_SEGMENT message.
 */
function ofFlow (b: Buffer, flow: number): Buffer {
  b[0] = 0x45
  b.fill(flow, 1, 24)
  return b
}

/**
 * Check that `got` are the segments the kernel's TSO would have cut from the
 * TCP super-packet `sup` at `mss`, each behind `prefix`.
 */
function assertTcpSegments (got: Buffer[], prefix: Buffer, sup: Buffer, mss: number): void {
  const thl = (sup[32] >> 4) * 4
  const hdr = 20 + thl
  const payload = sup.length - hdr
  const n = Math.ceil(payload / mss)
  assert.equal(got.length, n, `${n} segments of ${mss} from ${payload} bytes`)
  const id0 = (sup[4] << 8) | sup[5]
  const seq0 = readTcpSeq(sup, 20)
  for (let j = 0; j < n; j++) {
    const d = got[j]
    const last = j === n - 1
    const chunk = last ? payload - j * mss : mss
    assert.ok(d.subarray(0, prefix.length).equals(prefix), `segment ${j}: the prefix`)
    const ip = d.subarray(prefix.length)
    assert.equal(ip.length, hdr + chunk, `segment ${j}: datagram length`)
    assert.equal((ip[2] << 8) | ip[3], hdr + chunk, `segment ${j}: IP total length`)
    assert.equal((ip[4] << 8) | ip[5], (id0 + j) & 0xffff, `segment ${j}: IP ID counts up`)
    assert.ok(verifyIpv4Checksum(ip, 0), `segment ${j}: IP header checksum`)
    // everything else in the IP header is the super-packet's
    assert.ok(ip.subarray(0, 2).equals(sup.subarray(0, 2)) && ip.subarray(6, 10).equals(sup.subarray(6, 10)) && ip.subarray(12, 20).equals(sup.subarray(12, 20)), `segment ${j}: IP fields`)
    assert.equal(readTcpSeq(ip, 20), (seq0 + j * mss) >>> 0, `segment ${j}: sequence number`)
    let flags = sup[33]
    if (j > 0) flags &= ~TCP_CWR
    if (!last) flags &= ~(TCP_PSH | TCP_FIN)
    assert.equal(ip[33], flags, `segment ${j}: flags`)
    // ports, ACK, data offset, window, urgent pointer and options are copied as they are
    assert.ok(ip.subarray(20, 24).equals(sup.subarray(20, 24)) && ip.subarray(28, 33).equals(sup.subarray(28, 33)) &&
      ip.subarray(34, 36).equals(sup.subarray(34, 36)) && ip.subarray(38, hdr).equals(sup.subarray(38, hdr)), `segment ${j}: TCP fields and options`)
    assert.ok(verifyTcp4Checksum(ip, 20, thl + chunk, 0), `segment ${j}: TCP checksum`)
    assert.ok(ip.subarray(hdr).equals(sup.subarray(hdr + j * mss, hdr + j * mss + chunk)), `segment ${j}: payload slice`)
  }
}

/** a sends, b receives (b with UDP_GRO if gro), both on 127.0.0.1. */
const ends = (gro: boolean, txSlots?: number, txSlot?: number): Ends => endsOf(4, gro, txSlots, txSlot)

function sendAll (e: Ends, count: number): void {
  assert.equal(e.a.io.send(count), count, 'every entry consumed')
}

test('a 20 KB TCP super-packet behind a 22-byte prefix arrives as ceil(20000/mss) datagrams with the headers TSO would write', { skip: gsoSkip }, async () => {
  const e = ends(false)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const prefix = prefixBytes(1)
    const sup = tcpPacket({ payload: pattern(20000, 1), seq: 5000, flags: TCP_ACK | TCP_PSH | TCP_CWR })
    put(e.tx, 0, prefix, sup, (GSO_TCPV4 << 16) | MSS)
    sendAll(e, 1)
    const r = await receive(e.b.io, e.rx, 15)
    assert.equal(r.messages.length, 15, 'one datagram per read without GRO')
    assertTcpSegments(r.datagrams, prefix, sup, MSS)
    const s = e.a.io.stats()
    assert.equal(s.txSegmented, 15)
    assert.equal(s.txPackets, 15)
    assert.equal(s.txGsoSegments, 15, 'all 15 in one UDP_SEGMENT send')
    assert.equal(s.txDropBadGso, 0)
  } finally { e.close() }
})

test('a 64 KB TCP super-packet with FIN, its sequence number and IP ID wrapping, arrives as 46 correct segments', { skip: gsoSkip }, async () => {
  const e = ends(false)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const prefix = prefixBytes(2)
    const sup = tcpPacket({ payload: pattern(64000, 2), seq: 0xffffa000, id: 0xfff0, flags: TCP_ACK | TCP_PSH | TCP_FIN })
    put(e.tx, 0, prefix, sup, (GSO_TCPV4 << 16) | MSS)
    sendAll(e, 1)
    const r = await receive(e.b.io, e.rx, 46)
    assertTcpSegments(r.datagrams, prefix, sup, MSS)
    assert.equal(e.a.io.stats().txSegmented, 46)
  } finally { e.close() }
})

test('several super-packets and plain datagrams in one batch arrive in order, each cut at its own mss', { skip: gsoSkip }, async () => {
  const e = ends(false, 4)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const p = [prefixBytes(3), prefixBytes(4), prefixBytes(5), prefixBytes(6)]
    const s1 = tcpPacket({ payload: pattern(5000, 3), timestamps: false })
    const plain = tcpPacket({ payload: pattern(300, 4) })
    const s2 = tcpPacket({ payload: pattern(3001, 5), seq: 99 })
    put(e.tx, 0, p[0], s1, (GSO_TCPV4 << 16) | 1000)
    put(e.tx, 1, p[1], plain, 0)
    put(e.tx, 2, p[2], s2, (GSO_TCPV4 << 16) | 1500)
    sendAll(e, 3)
    const r = await receive(e.b.io, e.rx, 5 + 1 + 3)
    assertTcpSegments(r.datagrams.slice(0, 5), p[0], s1, 1000)
    assert.ok(r.datagrams[5].equals(Buffer.concat([p[1], plain])), 'the plain datagram as it was')
    assertTcpSegments(r.datagrams.slice(6), p[2], s2, 1500)
  } finally { e.close() }
})

test('with UDP_GRO on the receiver, a 20 KB super-packet is one read of 15 segments of prefix + headers + mss', { skip: groSkip }, async () => {
  const e = ends(true)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const prefix = prefixBytes(7)
    const sup = tcpPacket({ payload: pattern(20000, 7), flags: TCP_ACK | TCP_PSH })
    put(e.tx, 0, prefix, sup, (GSO_TCPV4 << 16) | MSS)
    sendAll(e, 1)
    const r = await receive(e.b.io, e.rx, 15)
    assert.equal(r.messages.length, 1)
    assert.equal(r.messages[0].seg, PREFIX + 52 + MSS)
    assert.equal(r.messages[0].len, 15 * (PREFIX + 52) + 20000)
    assertTcpSegments(r.datagrams, prefix, sup, MSS)
    assert.equal(e.b.io.stats().rxGroSegments, 15)
  } finally { e.close() }
})

test('a super-packet whose segments exceed 65507 bytes goes as two UDP_SEGMENT messages: 44 segments, then 2', { skip: groSkip }, async () => {
  const e = ends(true)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const prefix = prefixBytes(8)
    const sup = tcpPacket({ payload: pattern(64000, 8), flags: TCP_ACK | TCP_PSH })
    put(e.tx, 0, prefix, sup, (GSO_TCPV4 << 16) | MSS)
    sendAll(e, 1)
    const seg = PREFIX + 52 + MSS
    const first = Math.floor(UDP_MAX_PAYLOAD / seg)
    assert.equal(first, 44)
    const r = await receive(e.b.io, e.rx, 46)
    assert.deepEqual(r.messages.map((m) => [m.len, m.seg]), [[first * seg, seg], [seg + (64000 - 45 * MSS) + PREFIX + 52, seg]])
    assertTcpSegments(r.datagrams, prefix, sup, MSS)
    const s = e.a.io.stats()
    assert.equal(s.txSegmented, 46)
    assert.equal(s.txGsoSegments, 46)
    assert.equal(s.txPackets, 46)
    assert.equal(s.txSyscalls, 1, 'both messages in one sendmmsg')
  } finally { e.close() }
})

test('super-packets of whole MSS segments to one peer share messages, 44 segments to each, and a short last segment or another peer ends one', { skip: groSkip }, async () => {
  // A TCP stream's super-packets are 46 segments of the MSS, and a message
  // holds 44: packed, three of them take 4 messages, not 6.
  const a = openUdp4({ addr: LOOPBACK, port: 0, batch: 64 })
  const b = openUdp4({ addr: LOOPBACK, port: 0, batch: 64, gro: true, rcvbuf: 8 << 20 })
  const c = openUdp4({ addr: LOOPBACK, port: 0, batch: 64, gro: true, rcvbuf: 8 << 20 })
  try {
    const tx = new PacketBatch({ size: 6, slotSize: 65600 })
    const rxB = new PacketBatch({ size: 64, slotSize: 65600 })
    const rxC = new PacketBatch({ size: 64, slotSize: 65600 })
    const peers = new PeerTable(2)
    peers.set(0, LOOPBACK, b.port)
    peers.set(1, LOOPBACK, c.port)
    a.io.sendFrom(tx, peers, { gso: true, inner: PREFIX })
    b.io.receiveInto(rxB)
    c.io.receiveInto(rxC)
    const seg = PREFIX + 52 + MSS
    const whole = 46 * MSS
    // [payload bytes, peer]: three whole, one whose last segment is short, one whole, one to the other peer
    const plan: Array<[number, number]> = [[whole, 0], [whole, 0], [whole, 0], [whole - 100, 0], [whole, 0], [whole, 1]]
    const prefixes = plan.map((_, i) => prefixBytes(20 + i))
    const sups = plan.map(([len], i) => tcpPacket({ payload: pattern(len, 20 + i), seq: 1000 + i * whole }))
    plan.forEach(([, peer], i) => put(tx, i, prefixes[i], sups[i], (GSO_TCPV4 << 16) | MSS, peer))
    assert.equal(a.io.send(plan.length), plan.length)
    const toB = await receive(b.io, rxB, 5 * 46)
    const toC = await receive(c.io, rxC, 46)
    // 138 whole segments of the first three and 45 of the fourth: four full
    // messages, then 7 whole and the short one end the fifth; the fifth
    // super-packet starts afresh
    const short = seg - 100
    assert.deepEqual(toB.messages.map((m) => [m.len, m.seg]), [
      [44 * seg, seg], [44 * seg, seg], [44 * seg, seg], [44 * seg, seg], [7 * seg + short, seg], [44 * seg, seg], [2 * seg, seg]
    ])
    assert.deepEqual(toC.messages.map((m) => [m.len, m.seg]), [[44 * seg, seg], [2 * seg, seg]], 'another peer: messages of its own')
    for (let i = 0; i < 5; i++) assertTcpSegments(toB.datagrams.slice(46 * i, 46 * (i + 1)), prefixes[i], sups[i], MSS)
    assertTcpSegments(toC.datagrams, prefixes[5], sups[5], MSS)
    const st = a.io.stats()
    assert.equal(st.txSegmented, 6 * 46)
    assert.equal(st.txGsoSegments, 6 * 46)
  } finally { a.io.close(); b.io.close(); c.io.close() }
})

test('super-packets of eight flows in one batch, to a peer whose two sockets steer by inner flow (--workers 2): no message mixes flows, and each flow reaches one socket whole', { skip: groSkip }, async () => {
  const a = openUdp4({ addr: LOOPBACK, port: 0, batch: 64 })
  const first = openUdp4({ addr: LOOPBACK, port: 0, batch: 64, gro: true, rcvbuf: 8 << 20, reusePort: true })
  const socks = [first, openUdp4({ addr: LOOPBACK, port: first.port, batch: 64, gro: true, rcvbuf: 8 << 20, reusePort: true })]
  try {
    steerInnerFlow(first.io.fd, socks.length)
    const flows = 8
    const tx = new PacketBatch({ size: flows, slotSize: 65600 })
    const rx = socks.map(() => new PacketBatch({ size: 64, slotSize: 65600 }))
    const peers = new PeerTable(1)
    peers.set(0, LOOPBACK, first.port)
    a.io.sendFrom(tx, peers, { gso: true, inner: PREFIX })
    socks.forEach((s, k) => s.io.receiveInto(rx[k]))
    // whole-MSS super-packets, which would otherwise share messages across flows
    const sups = Array.from({ length: flows }, (_, f) => tcpPacket({ payload: pattern(46 * MSS, f), sport: 40000 + 2 * f }))
    sups.forEach((sup, f) => put(tx, f, prefixBytes(f), sup, (GSO_TCPV4 << 16) | MSS))
    assert.equal(a.io.send(flows), flows)
    const sportOf = (d: Buffer): number => d.readUInt16BE(PREFIX + 20)
    const where = new Map<number, number>()
    let total = 0
    for (const [k, s] of socks.entries()) {
      const got = await receive(s.io, rx[k], 46 * flows, 500)
      total += got.datagrams.length
      let at = 0
      for (const m of got.messages) {
        const n = m.seg === 0 ? 1 : Math.ceil(m.len / m.seg)
        const ports = new Set(got.datagrams.slice(at, at + n).map(sportOf))
        assert.equal(ports.size, 1, `a message of ${n} datagrams holds flows ${[...ports].join(', ')}`)
        at += n
      }
      for (const d of got.datagrams) {
        const p = sportOf(d)
        assert.ok(!where.has(p) || where.get(p) === k, `flow ${p} reached both sockets`)
        where.set(p, k)
      }
    }
    assert.equal(total, 46 * flows, 'every segment arrived')
    assert.equal(new Set(where.values()).size, 2, `both sockets took flows: ${JSON.stringify([...where])}`)
  } finally { a.io.close(); for (const s of socks) s.io.close() }
})

test('a UDP super-packet (USO, type 5) arrives as datagrams each with its own UDP length and checksum and the ID counting up', { skip: gsoSkip }, async () => {
  const e = ends(false)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const prefix = prefixBytes(9)
    const payload = pattern(10000, 9)
    const sup = udpPacket(payload, 0x0100)
    put(e.tx, 0, prefix, sup, (GSO_UDP_L4 << 16) | 1200)
    sendAll(e, 1)
    const r = await receive(e.b.io, e.rx, 9)
    assert.equal(r.datagrams.length, 9)
    r.datagrams.forEach((d, j) => {
      const chunk = j === 8 ? 10000 - 8 * 1200 : 1200
      assert.ok(d.subarray(0, PREFIX).equals(prefix))
      const ip = d.subarray(PREFIX)
      assert.equal(ip.length, 28 + chunk)
      assert.equal((ip[2] << 8) | ip[3], 28 + chunk, `datagram ${j}: IP total length`)
      assert.equal((ip[4] << 8) | ip[5], 0x0100 + j, `datagram ${j}: IP ID`)
      assert.ok(verifyIpv4Checksum(ip, 0), `datagram ${j}: IP checksum`)
      assert.equal((ip[24] << 8) | ip[25], 8 + chunk, `datagram ${j}: UDP length`)
      assert.ok(ip.subarray(20, 24).equals(sup.subarray(20, 24)), `datagram ${j}: ports`)
      assert.ok(((ip[26] << 8) | ip[27]) !== 0 && verifyUdp4Checksum(ip, 20, 8 + chunk, 0), `datagram ${j}: UDP checksum`)
      assert.ok(ip.subarray(28).equals(payload.subarray(j * 1200, j * 1200 + chunk)), `datagram ${j}: payload`)
    })
    assert.equal(e.a.io.stats().txSegmented, 9)
  } finally { e.close() }
})

/** The checksum field of the TCP (16) or UDP (6) header at ip[20] must hold the folded pseudo-header sum; then it is finished in place. */
function assertPartialAndFinish (ip: Buffer, proto: number, what: string): void {
  const l4len = ip.length - 20
  const at = 20 + (proto === IPPROTO_TCP ? 16 : 6)
  const pseudo = fold(pseudoHeaderSum4At(ip, 0, proto, l4len))
  assert.equal((ip[at] << 8) | ip[at + 1], pseudo, `${what}: the field holds the pseudo-header sum`)
  assert.ok(finishPartialChecksum(ip, 0, ip.length), `${what}: finished`)
}

test('with SEGS_PARTIAL, segments carry only the pseudo-header sum; finished, they are what TSO writes', { skip: gsoSkip }, async () => {
  const e = ends(false)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const prefix = prefixBytes(30)
    const sup = tcpPacket({ payload: pattern(20000, 30), seq: 0xfffff000, flags: TCP_ACK | TCP_PSH })
    put(e.tx, 0, prefix, sup, (GSO_TCPV4 << 16) | MSS | SEGS_PARTIAL)
    sendAll(e, 1)
    const r = await receive(e.b.io, e.rx, 15)
    r.datagrams.forEach((d, j) => assertPartialAndFinish(d.subarray(PREFIX), IPPROTO_TCP, `segment ${j}`))
    assertTcpSegments(r.datagrams, prefix, sup, MSS)
    const s = e.a.io.stats()
    assert.equal(s.txCsumPartial, 15)
    assert.equal(s.txSegmented, 15)
  } finally { e.close() }
})

test('with SEGS_PARTIAL, a UDP super-packet\'s datagrams carry only the pseudo-header sum, and a partial and a whole super-packet never share a message', { skip: groSkip }, async () => {
  const e = ends(true)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const prefix = prefixBytes(31)
    const payload = pattern(6000, 31)
    const sup = udpPacket(payload, 0x0200)
    put(e.tx, 0, prefix, sup, (GSO_UDP_L4 << 16) | 1200 | SEGS_PARTIAL)
    put(e.tx, 1, prefix, sup, (GSO_UDP_L4 << 16) | 1200)
    sendAll(e, 2)
    const r = await receive(e.b.io, e.rx, 10)
    assert.equal(r.datagrams.length, 10)
    assert.equal(r.messages.length, 2, 'two UDP_SEGMENT messages: partial, then whole')
    r.datagrams.slice(0, 5).forEach((d, j) => {
      const ip = d.subarray(PREFIX)
      assertPartialAndFinish(ip, IPPROTO_UDP, `datagram ${j}`)
      assert.ok(verifyUdp4Checksum(ip, 20, ip.length - 20, 0), `datagram ${j}: finished, the checksum verifies`)
      assert.ok(ip.subarray(28).equals(payload.subarray(j * 1200, (j + 1) * 1200)), `datagram ${j}: payload`)
    })
    r.datagrams.slice(5).forEach((d, j) => assert.ok(verifyUdp4Checksum(d.subarray(PREFIX), 20, d.length - PREFIX - 20, 0), `whole datagram ${j}`))
    assert.equal(e.a.io.stats().txCsumPartial, 5)
  } finally { e.close() }
})

test('checkInner with rco leaves a datagram carrying the VXLAN R flag unchecked (counted), and still checks one without it', { skip: gsoSkip }, async () => {
  const e = ends(false, 8, 2048)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true })
    e.b.io.receiveInto(e.rx, { checkInner: PREFIX, rco: true })
    const vxlan = Buffer.alloc(PREFIX)
    vxlan[0] = 0x08
    const rco = Buffer.from(vxlan)
    rco[1] = 0x20
    const partial = tcpPacket({ payload: pattern(500, 32) })
    makePartial(partial)
    const corrupt = tcpPacket({ payload: pattern(500, 33) })
    corrupt[300] ^= 0x40
    put(e.tx, 0, rco, partial, 0)
    put(e.tx, 1, vxlan, corrupt, 0)
    put(e.tx, 2, rco, corrupt, 0) // the R flag vouches for it: the outer checksum is what guards it
    sendAll(e, 3)
    const r = await receive(e.b.io, e.rx, 3)
    assert.deepEqual(r.messages.map((m) => m.bad), [[0, 0], [1, 0], [0, 0]])
    assert.ok(r.datagrams[0].subarray(PREFIX).equals(partial), 'left partial, not finished')
    const s = e.b.io.stats()
    assert.equal(s.rxCsumRemote, 2)
    assert.equal(s.rxCsumFinished, 0)
  } finally { e.close() }
})

test('super-packets that cannot be segmented are dropped, each counted once, and the rest of the batch still goes in order', { skip: gsoSkip }, async () => {
  const e = ends(false, 16, 4096)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const prefix = prefixBytes(10)
    const tso = (mss: number): number => (GSO_TCPV4 << 16) | mss
    const good = tcpPacket({ payload: pattern(2500, 10) })
    const v6 = tcpPacket({ payload: pattern(2500, 11) })
    v6[0] = 0x60
    const fragMf = tcpPacket({ payload: pattern(2500, 12), fragField: IPV4_FLAG_MF })
    const fragOffset = tcpPacket({ payload: pattern(2500, 13), fragField: 185 })
    const longTcpHeader = tcpPacket({ payload: Buffer.alloc(20), timestamps: false })
    longTcpHeader[32] = 15 << 4 // 60 bytes of TCP header in a 40-byte segment
    const longIpHeader = tcpPacket({ payload: Buffer.alloc(0), timestamps: false }).subarray(0, 30)
    longIpHeader[0] = 0x4f // 60 bytes of IP header in a 30-byte packet
    const noPayload = tcpPacket({ payload: Buffer.alloc(0) })
    const before = tcpPacket({ payload: pattern(100, 14) })
    const after = udpPacket(pattern(200, 15))
    const entries: Array<[string, Buffer, Buffer, number]> = [
      ['plain, before', prefix, before, 0],
      ['not IPv4', prefix, v6, tso(1000)],
      ['UDP sent as TCP', prefix, udpPacket(pattern(2500, 16)), tso(1000)],
      ['TCP sent as UDP', prefix, tcpPacket({ payload: pattern(2500, 17) }), (GSO_UDP_L4 << 16) | 1000],
      ['a fragment (MF)', prefix, fragMf, tso(1000)],
      ['a fragment (offset)', prefix, fragOffset, tso(1000)],
      ['mss 0', prefix, good, tso(0)],
      ['TCP header longer than the packet', prefix, longTcpHeader, tso(1000)],
      ['IP header longer than the packet', prefix, longIpHeader, tso(1000)],
      ['unknown GSO type', prefix, good, (3 << 16) | 1000],
      ['no payload to segment', prefix, noPayload, tso(1000)],
      ['segment larger than a datagram', prefix, good, tso(65500)],
      ['shorter than its prefix', Buffer.alloc(0), Buffer.alloc(10), tso(1000)],
      ['good super-packet', prefix, good, tso(1000)],
      ['plain, after', prefix, after, 0]
    ]
    entries.forEach(([, p, pkt, segs], i) => put(e.tx, i, p, pkt, segs))
    assert.equal(e.a.io.send(entries.length), entries.length, 'every entry consumed')
    const r = await receive(e.b.io, e.rx, 5)
    assert.equal(r.datagrams.length, 5)
    assert.ok(r.datagrams[0].equals(Buffer.concat([prefix, before])), 'the datagram before')
    assertTcpSegments(r.datagrams.slice(1, 4), prefix, good, 1000)
    assert.ok(r.datagrams[4].equals(Buffer.concat([prefix, after])), 'the datagram after')
    const s = e.a.io.stats()
    assert.equal(s.txDropBadGso, entries.length - 3, 'one count per bad super-packet')
    assert.equal(s.txPackets, 5)
    assert.equal(s.txDropBadSlot + s.txDropBadDest + s.txDropError + s.txDropTooBig, 0)
    // nothing more trickles in (a quiet period: what is tested)
    await new Promise((resolve) => setTimeout(resolve, 20))
    assert.equal(e.b.io.read(), 0)
  } finally { e.close() }
})

test('plain datagrams of one size and one flow to one peer go as one UDP_SEGMENT message: a shorter one ends it, a larger one, another peer or another flow starts a new one', { skip: groSkip }, async () => {
  const a = openUdp4({ addr: LOOPBACK, port: 0, batch: 64 })
  const b = openUdp4({ addr: LOOPBACK, port: 0, batch: 64, gro: true, rcvbuf: 8 << 20 })
  const c = openUdp4({ addr: LOOPBACK, port: 0, batch: 64, gro: true, rcvbuf: 8 << 20 })
  try {
    const tx = new PacketBatch({ size: 32, slotSize: 2048 })
    const rxB = new PacketBatch({ size: 64, slotSize: 65600 })
    const rxC = new PacketBatch({ size: 64, slotSize: 65600 })
    const peers = new PeerTable(2)
    peers.set(0, LOOPBACK, b.port)
    peers.set(1, LOOPBACK, c.port)
    a.io.sendFrom(tx, peers, { gso: true, coalesce: true })
    b.io.receiveInto(rxB)
    c.io.receiveInto(rxC)
    // [size, peer] per datagram
    const plan: Array<[number, number]> = [
      ...Array<[number, number]>(8).fill([1000, 0]), [600, 0], // one message: 8 x 1000 + 600
      ...Array<[number, number]>(4).fill([1000, 0]), // a new one after the short datagram
      [1200, 0], [1200, 0], // larger: a new one
      ...Array<[number, number]>(3).fill([1000, 1]), // another peer
      [1000, 0], [1000, 0], // back to the first peer: a new one
      [1000, 0] // another flow: a new one
    ]
    const sent = plan.map(([size], i) => ofFlow(pattern(size, i), i === plan.length - 1 ? 2 : 1))
    plan.forEach(([, peer], i) => {
      sent[i].copy(tx.slab, tx.offsets[i])
      tx.lengths[i] = sent[i].length
      tx.segs[i] = 0
      tx.dests[i] = peer
    })
    assert.equal(a.io.send(plan.length), plan.length)
    const toB = await receive(b.io, rxB, 18)
    const toC = await receive(c.io, rxC, 3)
    assert.deepEqual(toB.messages.map((m) => [m.len, m.seg]), [[8600, 1000], [4000, 1000], [2400, 1200], [2000, 1000], [1000, 0]])
    assert.deepEqual(toC.messages.map((m) => [m.len, m.seg]), [[3000, 1000]])
    const wantB = sent.filter((_, i) => plan[i][1] === 0)
    const wantC = sent.filter((_, i) => plan[i][1] === 1)
    assert.equal(toB.datagrams.length, wantB.length)
    toB.datagrams.forEach((d, i) => assert.ok(d.equals(wantB[i]), `datagram ${i} to the first peer, intact and in order`))
    toC.datagrams.forEach((d, i) => assert.ok(d.equals(wantC[i]), `datagram ${i} to the second peer`))
    const s = a.io.stats()
    assert.equal(s.txCoalesced, plan.length - 1, 'the last went alone')
    assert.equal(s.txPackets, plan.length)
    assert.equal(s.txGsoSegments, plan.length - 1)
    assert.equal(s.txSyscalls, 1)
  } finally { a.io.close(); b.io.close(); c.io.close() }
})

test('coalesced datagrams arrive intact and in order at a receiver without GRO; without coalesce each is its own message', { skip: gsoSkip }, async () => {
  for (const coalesce of [true, false]) {
    const e = ends(false, 40, 2048)
    try {
      e.a.io.sendFrom(e.tx, e.peers, { gso: true, coalesce })
      const sent = Array.from({ length: 40 }, (_, i) => ofFlow(pattern(i === 39 ? 77 : 1400, i), 1))
      sent.forEach((d, i) => { d.copy(e.tx.slab, e.tx.offsets[i]); e.tx.lengths[i] = d.length; e.tx.segs[i] = 0; e.tx.dests[i] = 0 })
      sendAll(e, 40)
      const r = await receive(e.b.io, e.rx, 40)
      assert.equal(r.datagrams.length, 40)
      r.datagrams.forEach((d, i) => assert.ok(d.equals(sent[i]), `datagram ${i} (coalesce ${coalesce})`))
      assert.equal(e.a.io.stats().txCoalesced, coalesce ? 40 : 0)
      assert.equal(e.a.io.stats().txGsoSegments, coalesce ? 40 : 0)
    } finally { e.close() }
  }
})

/** The partial checksum a sender that offloads it leaves in the TCP field: the folded pseudo-header sum. */
function makePartial (pkt: Buffer): void {
  const p = fold(pseudoHeaderSum4At(pkt, 0, IPPROTO_TCP, pkt.length - 20))
  pkt[36] = p >> 8
  pkt[37] = p & 255
}

test('checkInner flags a datagram whose inner payload was corrupted and finishes one whose checksum was left partial', { skip: gsoSkip }, async () => {
  const e = ends(false, 8, 2048)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true })
    e.b.io.receiveInto(e.rx, { checkInner: PREFIX })
    const prefix = prefixBytes(20)
    const good = tcpPacket({ payload: pattern(500, 20) })
    const corrupt = tcpPacket({ payload: pattern(500, 21) })
    corrupt[300] ^= 0x40
    const partial = tcpPacket({ payload: pattern(500, 22) })
    const finished = Buffer.from(partial)
    makePartial(partial)
    const badUdp = udpPacket(pattern(300, 23))
    badUdp[100] ^= 1
    const noUdpChecksum = udpPacket(pattern(300, 24))
    noUdpChecksum[26] = 0
    noUdpChecksum[27] = 0
    const icmpLike = Buffer.from(good)
    icmpLike[9] = 1 // not TCP/UDP: nothing to check
    const sent = [good, corrupt, partial, badUdp, noUdpChecksum, icmpLike]
    sent.forEach((p, i) => put(e.tx, i, prefix, p, 0))
    sendAll(e, sent.length)
    const r = await receive(e.b.io, e.rx, sent.length)
    assert.deepEqual(r.messages.map((m) => m.bad), [[0, 0], [1, 0], [0, 0], [1, 0], [0, 0], [0, 0]])
    assert.equal(e.b.io.stats().rxCsumFinished, 1)
    const fin = r.datagrams[2].subarray(PREFIX)
    assert.ok(verifyTcp4Checksum(fin, 20, fin.length - 20, 0), 'the finished checksum verifies')
    assert.ok(fin.equals(finished), 'and is the one the sender would have computed')
    assert.ok(r.datagrams[0].subarray(PREFIX).equals(good), 'a good packet is left alone')
  } finally { e.close() }
})

test('checkInner on a UDP_GRO read sets one bad bit per segment, above the 32nd too, and finishes partial checksums inside it', { skip: groSkip }, async () => {
  const e = ends(true, 40, 2048)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, coalesce: true })
    e.b.io.receiveInto(e.rx, { checkInner: PREFIX })
    const prefix = prefixBytes(30)
    const packets = Array.from({ length: 40 }, (_, i) => tcpPacket({ payload: pattern(1000, 30 + i), seq: 1 + i * 1000 }))
    packets[3][700] ^= 0x10
    packets[35][60] ^= 0x01
    const want10 = Buffer.from(packets[10])
    makePartial(packets[10])
    packets.forEach((p, i) => put(e.tx, i, prefix, p, 0))
    sendAll(e, 40)
    const r = await receive(e.b.io, e.rx, 40)
    assert.equal(r.messages.length, 1, 'one coalesced read')
    assert.equal(r.messages[0].seg, PREFIX + 1052)
    assert.deepEqual(r.messages[0].bad, [1 << 3, 1 << (35 - 32)])
    assert.equal(e.b.io.stats().rxCsumFinished, 1)
    assert.ok(r.datagrams[10].subarray(PREFIX).equals(want10), 'segment 10 finished in place')
  } finally { e.close() }
})

test('a super-packet of 2,500 tiny segments (more than one call builds) crosses several sendmmsg calls whole and in order', { skip: groSkip }, async () => {
  const e = ends(true)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const prefix = prefixBytes(40)
    const sup = tcpPacket({ payload: pattern(20000, 40), flags: TCP_ACK | TCP_PSH })
    put(e.tx, 0, prefix, sup, (GSO_TCPV4 << 16) | 8)
    sendAll(e, 1)
    const r = await receive(e.b.io, e.rx, 2500)
    assertTcpSegments(r.datagrams, prefix, sup, 8)
    const s = e.a.io.stats()
    assert.equal(s.txSegmented, 2500)
    assert.ok(s.txSyscalls > 1, `${s.txSyscalls} sendmmsg calls`)
    assert.ok(r.messages.every((m) => m.len <= 64 * m.seg), 'at most 64 segments per message')
  } finally { e.close() }
})

// An empty datagram is a datagram (UDP allows it, and it arrives when sent on
// its own), but inside a UDP_SEGMENT message it adds no bytes, so the kernel
// has nothing to cut it from: gathered into a run it vanishes, counted as sent.
test('empty datagrams arrive with coalesce as without: after a same-size run, and two in a row', { skip: gsoSkip }, async () => {
  for (const sizes of [[1000, 1000, 0], [0, 0]]) {
    for (const coalesce of [false, true]) {
      const e = ends(false, 4, 2048)
      try {
        e.a.io.sendFrom(e.tx, e.peers, { gso: true, coalesce })
        sizes.forEach((n, i) => { pattern(n, i).copy(e.tx.slab, e.tx.offsets[i]); e.tx.lengths[i] = n; e.tx.segs[i] = 0; e.tx.dests[i] = 0 })
        sendAll(e, sizes.length)
        const r = await receive(e.b.io, e.rx, sizes.length, 300)
        assert.deepEqual(r.messages.map((m) => m.len), sizes, `${JSON.stringify(sizes)}, coalesce ${coalesce}: every datagram arrives`)
        assert.equal(e.a.io.stats().txPackets, sizes.length)
      } finally { e.close() }
    }
  }
})
