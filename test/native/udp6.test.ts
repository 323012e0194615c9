// Batched UDP over IPv6 loopback (::1): the udp6 socket kind keeps the
// udp4 batch contract (one callback per batch, byte-exact and in order,
// refused packets counted), reports each sender in batch.addrs6, sends
// through a PeerTable6, and takes UDP_SEGMENT and UDP_GRO as IPv4 does.
// Needs no privileges, only IPv6 on loopback; the same across two network
// namespaces is in netns6.test.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { constants, openUdp4, openUdp6, PacketBatch, PeerTable, PeerTable6, probeOffloads, socketBuffers } from '../../src/native'
import { ip6Bytes, ip6FromWords, ip6Words } from '../../src/packet/net6'
import { fill, groRoundTrip, gsoRoundTrip, LOOP6, pair as pairOf, v6Skip } from './loopback'

const LOOP6_BYTES = ip6Bytes(LOOP6)
const skip = v6Skip()
const offloads = skip === undefined ? probeOffloads() : undefined
const gsoSkip = skip ?? (offloads?.udpGso === true ? undefined : 'the kernel refuses UDP_SEGMENT (no UDP GSO)')
const groSkip = gsoSkip ?? (offloads?.udpGro === true ? undefined : 'the kernel refuses UDP_GRO')

const pair = (batch: number, gro = false): ReturnType<typeof pairOf> => pairOf(6, batch, gro)

test('a udp6 batch sent through a PeerTable6 arrives byte-exact, in order, with each sender in addrs6 and ports (addrs 0)', { skip }, async () => {
  const { a, b, close } = pair(64)
  try {
    assert.ok(a.port > 0 && b.port > 0 && a.port !== b.port, 'sockLocalPort reads an IPv6 socket\'s port')
    assert.equal(a.io.kind, 'udp6')
    const tx = new PacketBatch({ size: 64, slotSize: 1500 })
    const rx = new PacketBatch({ size: 64, slotSize: 2048 })
    assert.equal(rx.addrs6.length, 64 * 4)
    const peers = new PeerTable6(2)
    peers.set(1, ip6Words(LOOP6), b.port)
    a.io.sendFrom(tx, peers)
    b.io.receiveInto(rx)
    const sizes = [1, 100, 1452, 0, 777, 64, 1232]
    sizes.forEach((len, i) => { fill(tx.slab, tx.offsets[i], len, i); tx.lengths[i] = len; tx.dests[i] = 1 })
    rx.addrs.fill(0xdeadbeef)
    assert.equal(a.io.send(sizes.length), sizes.length)
    let got = 0
    for (let tries = 0; tries < 100 && got < sizes.length; tries++) {
      const n = b.io.read()
      for (let i = 0; i < n; i++, got++) {
        assert.equal(rx.lengths[i], sizes[got], `datagram ${got} length`)
        assert.equal(ip6FromWords(rx.addrs6, 4 * i), LOOP6, `datagram ${got}: the sender's address in addrs6`)
        assert.deepEqual([...rx.addrs6.subarray(4 * i, 4 * i + 4)], [0, 0, 0, 1])
        assert.equal(rx.addrs[i], 0, 'addrs is 0 on udp6')
        assert.equal(rx.ports[i], a.port)
        const want = Buffer.alloc(sizes[got])
        fill(want, 0, sizes[got], got)
        assert.ok(rx.slab.subarray(rx.offsets[i], rx.offsets[i] + rx.lengths[i]).equals(want), `datagram ${got} bytes`)
      }
      if (got < sizes.length) await new Promise((resolve) => setTimeout(resolve, 5)) // a bounded poll for the rest
    }
    assert.equal(got, sizes.length)
    const s = a.io.stats()
    assert.equal(s.txPackets, sizes.length)
    assert.equal(s.txSyscalls, 1, 'one sendmmsg for the batch')
  } finally { close() }
})

test('a PeerTable on a udp6 socket and a PeerTable6 on a udp4 socket are refused when registered', { skip }, () => {
  const { a, close } = pair(4)
  const v4 = openUdp4({ addr: 0x7f000001, port: 0, batch: 4 })
  try {
    const tx = new PacketBatch({ size: 4, slotSize: 256 })
    assert.throws(() => a.io.sendFrom(tx, new PeerTable(1)), /udp6 socket sends through a PeerTable6/)
    assert.throws(() => v4.io.sendFrom(tx, new PeerTable6(1)), /udp4 socket sends through a PeerTable, not a PeerTable6/)
    assert.throws(() => new PeerTable6(1).set(0, [1, 2, 3], 1), /four words/)
    assert.throws(() => new PeerTable6(1).set(1, [0, 0, 0, 1], 1), RangeError)
  } finally { close(); v4.io.close() }
})

test('IPV6_V6ONLY: an IPv4 socket binds the port a udp6 socket on :: holds, and each hears only its family', { skip }, () => {
  const six = openUdp6({ addr: Buffer.alloc(16), port: 0, batch: 4 })
  let four: ReturnType<typeof openUdp4> | undefined
  try {
    four = openUdp4({ addr: 0, port: six.port, batch: 4 })
    assert.equal(four.port, six.port)
    const rx6 = new PacketBatch({ size: 4, slotSize: 256 })
    const rx4 = new PacketBatch({ size: 4, slotSize: 256 })
    six.io.receiveInto(rx6)
    four.io.receiveInto(rx4)
    const s6 = openUdp6({ addr: LOOP6_BYTES, port: 0, batch: 4 })
    const s4 = openUdp4({ addr: 0x7f000001, port: 0, batch: 4 })
    try {
      const tx = new PacketBatch({ size: 1, slotSize: 256 })
      tx.lengths[0] = 6
      const p6 = new PeerTable6(1)
      p6.set(0, ip6Words(LOOP6), six.port)
      s6.io.sendFrom(tx, p6)
      assert.equal(s6.io.send(1), 1)
      const p4 = new PeerTable(1)
      p4.set(0, 0x7f000001, four.port)
      tx.lengths[0] = 4
      s4.io.sendFrom(tx, p4)
      assert.equal(s4.io.send(1), 1)
      assert.equal(six.io.read(), 1)
      assert.equal(rx6.lengths[0], 6)
      assert.equal(rx6.ports[0], s6.port)
      assert.equal(four.io.read(), 1)
      assert.equal(rx4.lengths[0], 4)
      assert.equal(rx4.addrs[0], 0x7f000001)
    } finally { s6.io.close(); s4.io.close() }
  } finally { six.io.close(); four?.io.close() }
})

test('a udp6 datagram larger than its slot is dropped as truncated: length 0 and sender ::', { skip }, () => {
  const { a, b, close } = pair(4)
  try {
    const tx = new PacketBatch({ size: 4, slotSize: 1000 })
    const rx = new PacketBatch({ size: 4, slotSize: 100 })
    const peers = new PeerTable6(1)
    peers.set(0, ip6Words(LOOP6), b.port)
    a.io.sendFrom(tx, peers)
    b.io.receiveInto(rx)
    rx.addrs6.fill(7)
    tx.lengths[0] = 50
    tx.lengths[1] = 500
    assert.equal(a.io.send(2), 2)
    assert.equal(b.io.read(), 2)
    assert.deepEqual([...rx.lengths.subarray(0, 2)], [50, 0])
    assert.deepEqual([...rx.addrs6.subarray(0, 8)], [0, 0, 0, 1, 0, 0, 0, 0])
    assert.equal(b.io.stats().rxDropTruncated, 1)
  } finally { close() }
})

test('a udp6 send to an unknown destination index drops that datagram, counted, and sends the rest', { skip }, () => {
  const { a, b, close } = pair(8)
  try {
    const tx = new PacketBatch({ size: 8, slotSize: 256 })
    const rx = new PacketBatch({ size: 8, slotSize: 256 })
    const peers = new PeerTable6(2)
    peers.set(0, ip6Words(LOOP6), b.port)
    a.io.sendFrom(tx, peers)
    b.io.receiveInto(rx)
    for (let i = 0; i < 3; i++) tx.lengths[i] = 10 + i
    tx.dests[1] = 2 // outside the 2-entry table
    assert.equal(a.io.send(3), 3)
    assert.equal(a.io.stats().txDropBadDest, 1)
    assert.equal(b.io.read(), 2)
    assert.deepEqual([...rx.lengths.subarray(0, 2)], [10, 12])
  } finally { close() }
})

test('UDP GSO over IPv6: one send of a 4-segment message arrives as 4 datagrams', { skip: gsoSkip }, () => {
  const { a, b, close } = pair(8)
  try {
    const rx = gsoRoundTrip(a, b)
    for (let i = 0; i < 4; i++) assert.equal(ip6FromWords(rx.addrs6, 4 * i), LOOP6)
  } finally { close() }
})

test('UDP GRO over IPv6: a socket with GRO on reads a GSO send as one coalesced message with its segment size', { skip: groSkip }, () => {
  const { a, b, close } = pair(4, true)
  try {
    const rx = groRoundTrip(a, b)
    assert.equal(ip6FromWords(rx.addrs6, 0), LOOP6)
  } finally { close() }
})

test('plain udp6 datagrams of one size to one peer are coalesced into one UDP_SEGMENT send', { skip: groSkip }, () => {
  const { a, b, close } = pair(16, true)
  try {
    const tx = new PacketBatch({ size: 16, slotSize: 2048 })
    const rx = new PacketBatch({ size: 16, slotSize: 65536 })
    const peers = new PeerTable6(1)
    peers.set(0, ip6Words(LOOP6), b.port)
    a.io.sendFrom(tx, peers, { gso: true, coalesce: true })
    b.io.receiveInto(rx)
    for (let i = 0; i < 10; i++) {
      tx.slab.fill(0x45, tx.offsets[i], tx.offsets[i] + 1)
      tx.slab.fill(1, tx.offsets[i] + 1, tx.offsets[i] + 1000) // one inner flow
      tx.lengths[i] = 1000
    }
    assert.equal(a.io.send(10), 10)
    assert.equal(a.io.stats().txCoalesced, 10)
    assert.equal(b.io.read(), 1)
    assert.equal(rx.lengths[0], 10000)
    assert.equal(rx.segs[0], 1000)
  } finally { close() }
})

test('udp6 takes the udp4 socket options: buffers, SO_REUSEPORT (two sockets on one port), pmtudisc (IPV6_MTU_DISCOVER), GRO', { skip }, () => {
  const o = { addr: LOOP6_BYTES, port: 0, batch: 4, rcvbuf: 1 << 20, sndbuf: 1 << 20, reusePort: true, pmtudisc: constants.IP_PMTUDISC_DO, gro: offloads?.udpGro === true }
  const a = openUdp6(o)
  const b = openUdp6({ ...o, port: a.port })
  try {
    assert.equal(b.port, a.port, 'SO_REUSEPORT')
    const bufs = socketBuffers(a.io)
    assert.ok(bufs.rcvbuf >= 1 << 20 && bufs.sndbuf >= 1 << 20, JSON.stringify(bufs))
  } finally { a.io.close(); b.io.close() }
})
