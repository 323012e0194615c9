// Segmentation offload and inner checks for inner IPv6 packets, over
// loopback (no privileges): a TCPv6 (GSO_TCPV6) or UDP-over-IPv6
// (GSO_UDP_L4) super-packet behind an encapsulation prefix is cut into
// segments with the headers the kernel's GSO writes (payload length,
// sequence numbers, flags, checksums over the IPv6 pseudo-header), over a
// udp6 socket and over a udp4 one alike (the encapsulation is opaque); a
// receiver with inner checks flags bad IPv6 segments, finishes partial
// ones and leaves a packet with extension headers unchecked. Every
// checksum is verified with the pure-JS reference in ip6-ref.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import vm from 'node:vm'
import { openUdp6, PacketBatch, PeerTable6, probeOffloads, steerInnerFlow } from '../../src/native'
import { SEGS_PARTIAL } from '../../src/native/batch'
import { GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4 } from '../../src/native/vnet'
import { ip6Bytes, ip6Words } from '../../src/packet/net6'
import {
  makePartial6, partialChecksum6, setL4Checksum6, tcp6Packet, tcp6WithHopByHop, udp6Packet,
  verifyL4Checksum6, TCP_ACK, TCP_CWR, TCP_FIN, TCP_PSH
} from './ip6-ref'
import { gcCounter, tick } from '../dataplane/gc'
import { ends, LOOP6, pattern, put, receive, v6Skip } from './loopback'

/** encapsulation in front of the inner packet, as VXLAN's (8 + 14) */
const PREFIX = 22
/** the inner MSS of a 1450-byte VXLAN MTU over IPv6 with TCP timestamps: 1450 - 40 - 32 */
const MSS = 1378

const offloads = probeOffloads()
const gsoSkip = v6Skip() ?? (offloads.udpGso ? undefined : 'the kernel refuses UDP_SEGMENT (no UDP GSO)')
const groSkip = gsoSkip ?? (offloads.udpGro ? undefined : 'the kernel refuses UDP_GRO')

/**
 * `got` are the segments the kernel's TSO would cut from the TCPv6
 * super-packet `sup` at `mss`, each behind `prefix`; with `partial`, each
 * checksum field holds the pseudo-header sum instead, and is finished here.
 */
function assertTcp6Segments (got: Buffer[], prefix: Buffer, sup: Buffer, mss: number, partial = false): void {
  const thl = (sup[52] >> 4) * 4
  const hdr = 40 + thl
  const payload = sup.length - hdr
  const n = Math.ceil(payload / mss)
  assert.equal(got.length, n, `${n} segments of ${mss} from ${payload} bytes`)
  const seq0 = sup.readUInt32BE(44)
  for (let j = 0; j < n; j++) {
    const d = got[j]
    const last = j === n - 1
    const chunk = last ? payload - j * mss : mss
    assert.ok(d.subarray(0, prefix.length).equals(prefix), `segment ${j}: the prefix`)
    const ip = Buffer.from(d.subarray(prefix.length))
    assert.equal(ip.length, hdr + chunk, `segment ${j}: datagram length`)
    assert.equal(ip.readUInt16BE(4), thl + chunk, `segment ${j}: IPv6 payload length`)
    assert.ok(ip.subarray(0, 4).equals(sup.subarray(0, 4)) && ip.subarray(6, 40).equals(sup.subarray(6, 40)), `segment ${j}: the rest of the IPv6 header`)
    assert.equal(ip.readUInt32BE(44), (seq0 + j * mss) >>> 0, `segment ${j}: sequence number`)
    let flags = sup[53]
    if (j > 0) flags &= ~TCP_CWR
    if (!last) flags &= ~(TCP_PSH | TCP_FIN)
    assert.equal(ip[53], flags, `segment ${j}: flags`)
    assert.ok(ip.subarray(40, 44).equals(sup.subarray(40, 44)) && ip.subarray(48, 53).equals(sup.subarray(48, 53)) &&
      ip.subarray(54, 56).equals(sup.subarray(54, 56)) && ip.subarray(58, hdr).equals(sup.subarray(58, hdr)), `segment ${j}: TCP fields and options`)
    assert.ok(ip.subarray(hdr).equals(sup.subarray(hdr + j * mss, hdr + j * mss + chunk)), `segment ${j}: payload slice`)
    if (partial) {
      assert.equal(ip.readUInt16BE(56), partialChecksum6(ip), `segment ${j}: the field holds the pseudo-header sum`)
      setL4Checksum6(ip)
    }
    assert.ok(verifyL4Checksum6(ip), `segment ${j}: TCP checksum over the IPv6 pseudo-header`)
  }
}

for (const family of [6, 4] as const) {
  test(`a 20 KB TCPv6 super-packet behind a 22-byte prefix, sent on a udp${family} socket, arrives as the segments TSO would cut`, { skip: gsoSkip }, async () => {
    const e = ends(family, false)
    try {
      e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
      const prefix = pattern(PREFIX, 100 + family)
      const sup = tcp6Packet({ payload: pattern(20000, family), seq: 0xffffd000, flags: TCP_ACK | TCP_PSH | TCP_CWR | TCP_FIN })
      put(e.tx, 0, prefix, sup, (GSO_TCPV6 << 16) | MSS)
      assert.equal(e.a.io.send(1), 1)
      const r = await receive(e.b.io, e.rx, 15)
      assertTcp6Segments(r.datagrams, prefix, sup, MSS)
      const s = e.a.io.stats()
      assert.equal(s.txSegmented, 15)
      assert.equal(s.txGsoSegments, 15, 'all 15 in one UDP_SEGMENT send')
      assert.equal(s.txDropBadGso, 0)
    } finally { e.close() }
  })
}

test('a 64 KB TCPv6 super-packet over udp6 with UDP_GRO on the receiver: 2 messages of whole segments, all correct', { skip: groSkip }, async () => {
  const e = ends(6, true)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const prefix = pattern(PREFIX, 7)
    const sup = tcp6Packet({ payload: pattern(64000, 7), flags: TCP_ACK | TCP_PSH })
    put(e.tx, 0, prefix, sup, (GSO_TCPV6 << 16) | MSS)
    assert.equal(e.a.io.send(1), 1)
    const n = Math.ceil(64000 / MSS)
    const r = await receive(e.b.io, e.rx, n)
    assert.equal(r.messages.length, 2)
    assert.equal(r.messages[0].seg, PREFIX + 72 + MSS)
    assertTcp6Segments(r.datagrams, prefix, sup, MSS)
  } finally { e.close() }
})

test('with SEGS_PARTIAL, TCPv6 segments carry only the IPv6 pseudo-header sum; finished, they are what TSO writes', { skip: gsoSkip }, async () => {
  const e = ends(6, false)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const prefix = pattern(PREFIX, 30)
    const sup = tcp6Packet({ payload: pattern(10000, 30), flags: TCP_ACK | TCP_PSH })
    put(e.tx, 0, prefix, sup, (GSO_TCPV6 << 16) | MSS | SEGS_PARTIAL)
    assert.equal(e.a.io.send(1), 1)
    const r = await receive(e.b.io, e.rx, 8)
    assertTcp6Segments(r.datagrams, prefix, sup, MSS, true)
    assert.equal(e.a.io.stats().txCsumPartial, 8)
  } finally { e.close() }
})

test('a UDP-over-IPv6 super-packet (GSO_UDP_L4) is cut into datagrams with their own length and checksum, whole or partial', { skip: gsoSkip }, async () => {
  const e = ends(6, false)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const prefix = pattern(PREFIX, 31)
    const payload = pattern(6000, 31)
    const sup = udp6Packet(payload)
    put(e.tx, 0, prefix, sup, (GSO_UDP_L4 << 16) | 1200)
    put(e.tx, 1, prefix, sup, (GSO_UDP_L4 << 16) | 1200 | SEGS_PARTIAL)
    assert.equal(e.a.io.send(2), 2)
    const r = await receive(e.b.io, e.rx, 10)
    assert.equal(r.datagrams.length, 10)
    r.datagrams.forEach((d, k) => {
      const j = k % 5
      const ip = Buffer.from(d.subarray(PREFIX))
      assert.ok(d.subarray(0, PREFIX).equals(prefix))
      assert.equal(ip.length, 48 + 1200, `datagram ${k} length`)
      assert.equal(ip.readUInt16BE(4), 8 + 1200, `datagram ${k}: IPv6 payload length`)
      assert.equal(ip.readUInt16BE(44), 8 + 1200, `datagram ${k}: UDP length`)
      assert.ok(ip.subarray(40, 44).equals(sup.subarray(40, 44)), `datagram ${k}: ports`)
      assert.ok(ip.subarray(48).equals(payload.subarray(j * 1200, (j + 1) * 1200)), `datagram ${k}: payload`)
      if (k >= 5) {
        assert.equal(ip.readUInt16BE(46), partialChecksum6(ip), `datagram ${k}: the pseudo-header sum`)
        setL4Checksum6(ip)
      }
      assert.ok(verifyL4Checksum6(ip), `datagram ${k}: UDP checksum over the IPv6 pseudo-header`)
    })
    assert.equal(e.a.io.stats().txCsumPartial, 5)
  } finally { e.close() }
})

test('IPv6 super-packets that cannot be segmented are dropped, each counted once, and the rest of the batch goes', { skip: gsoSkip }, async () => {
  const e = ends(6, false, 8, 8192)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    const prefix = pattern(PREFIX, 10)
    const good = tcp6Packet({ payload: pattern(2500, 10) })
    const entries: Array<[string, Buffer, number]> = [
      ['an extension header before TCP', tcp6WithHopByHop(pattern(2500, 11)), (GSO_TCPV6 << 16) | 1000],
      ['IPv6 sent as TCPV4', good, (GSO_TCPV4 << 16) | 1000],
      ['UDP sent as TCPV6', udp6Packet(pattern(2500, 12)), (GSO_TCPV6 << 16) | 1000],
      ['TCP sent as UDP_L4', good, (GSO_UDP_L4 << 16) | 1000],
      ['shorter than an IPv6 header', good.subarray(0, 30), (GSO_TCPV6 << 16) | 1000],
      ['good', good, (GSO_TCPV6 << 16) | 1000]
    ]
    entries.forEach(([, pkt, segs], i) => put(e.tx, i, prefix, pkt, segs))
    assert.equal(e.a.io.send(entries.length), entries.length)
    const r = await receive(e.b.io, e.rx, 3)
    assertTcp6Segments(r.datagrams, prefix, good, 1000)
    assert.equal(e.a.io.stats().txDropBadGso, entries.length - 1)
  } finally { e.close() }
})

test('checkInner on IPv6: a corrupt TCP or UDP segment is flagged, a partial one finished, one with an extension header left unchecked', { skip: gsoSkip }, async () => {
  const e = ends(6, false, 8, 2048)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true })
    e.b.io.receiveInto(e.rx, { checkInner: PREFIX })
    const prefix = pattern(PREFIX, 20)
    const good = tcp6Packet({ payload: pattern(500, 20) })
    const corrupt = tcp6Packet({ payload: pattern(500, 21) })
    corrupt[300] ^= 0x40
    const partial = tcp6Packet({ payload: pattern(500, 22) })
    const finished = Buffer.from(partial)
    makePartial6(partial)
    const badUdp = udp6Packet(pattern(300, 23))
    badUdp[100] ^= 1
    const extCorrupt = tcp6WithHopByHop(pattern(300, 24))
    extCorrupt[200] ^= 1
    const goodUdp = udp6Packet(pattern(301, 25))
    const sent = [good, corrupt, partial, badUdp, extCorrupt, goodUdp]
    sent.forEach((p, i) => put(e.tx, i, prefix, p, 0))
    assert.equal(e.a.io.send(sent.length), sent.length)
    const r = await receive(e.b.io, e.rx, sent.length)
    assert.deepEqual(r.messages.map((m) => m.bad), [[0, 0], [1, 0], [0, 0], [1, 0], [0, 0], [0, 0]])
    assert.equal(e.b.io.stats().rxCsumFinished, 1)
    assert.ok(r.datagrams[2].subarray(PREFIX).equals(finished), 'the finished checksum is the one the sender would have computed')
    assert.ok(r.datagrams[4].subarray(PREFIX).equals(extCorrupt), 'the packet with an extension header is left as it came')
  } finally { e.close() }
})

test('checkInner on a UDP_GRO read of inner IPv6 segments over udp6 sets one bad bit per segment, above the 32nd too', { skip: groSkip }, async () => {
  const e = ends(6, true, 40, 2048)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, coalesce: true })
    e.b.io.receiveInto(e.rx, { checkInner: PREFIX })
    const prefix = pattern(PREFIX, 30)
    const packets = Array.from({ length: 40 }, (_, i) => tcp6Packet({ payload: pattern(1000, 30 + i), seq: 1 + i * 1000 }))
    packets[3][700] ^= 0x10
    packets[35][60] ^= 0x01
    const want10 = Buffer.from(packets[10])
    makePartial6(packets[10])
    packets.forEach((p, i) => put(e.tx, i, prefix, p, 0))
    assert.equal(e.a.io.send(40), 40)
    const r = await receive(e.b.io, e.rx, 40)
    assert.equal(r.messages.length, 1, 'one coalesced read')
    assert.deepEqual(r.messages[0].bad, [1 << 3, 1 << (35 - 32)])
    assert.equal(e.b.io.stats().rxCsumFinished, 1)
    assert.ok(r.datagrams[10].subarray(PREFIX).equals(want10), 'segment 10 finished in place')
  } finally { e.close() }
})

test('steering by inner flow reads inner IPv6: every datagram of one flow reaches one socket of the group, and the flows spread', { skip: v6Skip() }, async () => {
  const n = 2
  const first = openUdp6({ addr: ip6Bytes(LOOP6), port: 0, batch: 64, reusePort: true })
  const group = [first, openUdp6({ addr: ip6Bytes(LOOP6), port: first.port, batch: 64, reusePort: true })]
  const sender = openUdp6({ addr: ip6Bytes(LOOP6), port: 0, batch: 64 })
  try {
    steerInnerFlow(first.io.fd, n)
    const rxs = group.map((s) => { const rx = new PacketBatch({ size: 64, slotSize: 2048 }); s.io.receiveInto(rx); return rx })
    const tx = new PacketBatch({ size: 64, slotSize: 2048 })
    const peers = new PeerTable6(1)
    peers.set(0, ip6Words(LOOP6), first.port)
    sender.io.sendFrom(tx, peers)
    const flows = 16
    const vxlan = Buffer.alloc(PREFIX)
    vxlan[0] = 0x08
    for (let i = 0; i < 64; i++) {
      const f = i % flows
      // flows differ in their source address and port, not their flow label
      const pkt = tcp6Packet({ payload: Buffer.from([i]), sport: 40000 + f, src: `fd00:244:1::${f + 2}` })
      put(tx, i, vxlan, pkt, 0)
    }
    assert.equal(sender.io.send(64), 64)
    await new Promise((resolve) => setTimeout(resolve, 20)) // the kernel delivered the 64 over loopback by now
    const where = new Map<number, Set<number>>()
    let total = 0
    group.forEach((s, k) => {
      const got = s.io.read()
      total += got
      for (let i = 0; i < got; i++) {
        const at = rxs[k].offsets[i] + PREFIX
        const f = rxs[k].slab.readUInt16BE(at + 40) - 40000
        const set = where.get(f) ?? new Set<number>()
        set.add(k)
        where.set(f, set)
      }
    })
    assert.equal(total, 64)
    for (const [f, set] of where) assert.equal(set.size, 1, `flow ${f} went to one socket`)
    const used = new Set([...where.values()].map((s) => [...s][0]))
    assert.equal(used.size, n, 'the 16 flows spread over both sockets')
  } finally { group.forEach((s) => s.io.close()); sender.io.close() }
})

test('udp6 batches of TCPv6 super-packets cut into segments, read back with GRO and inner checks, cause no more GCs than one small datagram per batch', { skip: groSkip, timeout: 60_000 }, async (t) => {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  const e = ends(6, true, 2, 65600)
  try {
    e.a.io.sendFrom(e.tx, e.peers, { gso: true, inner: PREFIX })
    e.b.io.receiveInto(e.rx, { checkInner: PREFIX })
    const sup = tcp6Packet({ payload: pattern(20 * MSS, 40) })
    put(e.tx, 0, pattern(PREFIX, 40), sup, (GSO_TCPV6 << 16) | MSS)
    put(e.tx, 1, pattern(PREFIX, 41), tcp6Packet({ payload: pattern(10, 41) }), 0)
    let segments = 0
    const rounds = (n: number, entry: number): void => {
      for (let k = 0; k < n; k++) {
        if (entry === 1) e.tx.moveToFront(1, 1)
        e.a.io.send(1)
        if (entry === 1) { e.tx.offsets[0] = 0; e.tx.lengths[0] = PREFIX + sup.length; e.tx.segs[0] = (GSO_TCPV6 << 16) | MSS }
        for (let r = e.b.io.read(); r > 0; r = e.b.io.read()) for (let i = 0; i < r; i++) segments += e.rx.segs[i] === 0 ? 1 : Math.ceil(e.rx.lengths[i] / e.rx.segs[i])
      }
    }
    const gcs = gcCounter(t)
    const counted = async (n: number, entry: number): Promise<number> => {
      gc()
      await tick()
      gcs.reset()
      rounds(n, entry)
      return gcs.count
    }
    rounds(200, 0) // warm up
    // 300,000 segments: 8 bytes of garbage each would fill a 2 MB semispace
    const N = 15_000
    const without = await counted(N, 1)
    segments = 0
    const withSegments = await counted(N, 0)
    t.diagnostic(`${segments} segments read; GCs over ${N} batches: ${without} with one small datagram each, ${withSegments} with 20 segments`)
    assert.ok(segments > N * 10, 'most segments came back')
    assert.ok(withSegments <= without + 1, `segments added ${withSegments - without} GCs`)
  } finally { e.close() }
})
