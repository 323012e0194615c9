// Batched UDP over loopback: needs no privileges, so it runs everywhere and
// pins down the batch contract itself (one callback per batch, byte-exact and
// in order, every refused packet counted against a reason, never a throw).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { openUdp4, PacketBatch, PeerTable } from '../../src/native'
import { fill, groRoundTrip, gsoRoundTrip, LOOPBACK, pair as pairOf } from './loopback'

const pair = (batch: number): ReturnType<typeof pairOf> => pairOf(4, batch)

test('random batches of 1..64 datagrams of random sizes arrive byte-exact and in order, one callback per batch', async () => {
  const { a, b, close } = pair(64)
  try {
    const tx = new PacketBatch({ size: 64, slotSize: 1500 })
    const rx = new PacketBatch({ size: 64, slotSize: 2048 })
    const peers = new PeerTable(1)
    peers.set(0, LOOPBACK, b.port)
    a.io.sendFrom(tx, peers)
    b.io.receiveInto(rx)

    const plan = fc.sample(fc.array(fc.integer({ min: 1, max: 1500 }), { minLength: 1, maxLength: 64 }), { numRuns: 40, seed: 7 })
    const expected: number[] = plan.flat()
    let got = 0
    let callbacks = 0
    const done = new Promise<void>((resolve, reject) => {
      b.io.start((n) => {
        callbacks++
        try {
          for (let i = 0; i < n; i++) {
            const len = rx.lengths[i]
            assert.equal(len, expected[got], `datagram ${got} length`)
            assert.equal(rx.addrs[i], LOOPBACK)
            assert.equal(rx.ports[i], a.port)
            const want = Buffer.alloc(len)
            fill(want, 0, len, got)
            assert.ok(rx.slab.subarray(rx.offsets[i], rx.offsets[i] + len).equals(want), `datagram ${got} bytes`)
            got++
          }
        } catch (err) { reject(err) }
        if (got === expected.length) resolve()
      })
    })
    let seq = 0
    for (const sizes of plan) {
      sizes.forEach((len, i) => { fill(tx.slab, tx.offsets[i], len, seq++); tx.lengths[i] = len })
      assert.equal(a.io.send(sizes.length), sizes.length)
      await new Promise((resolve) => setImmediate(resolve))
    }
    await done
    assert.equal(got, expected.length)
    assert.ok(callbacks < expected.length, `${callbacks} callbacks for ${expected.length} datagrams`)
    assert.equal(b.io.stats().rxBatches, callbacks)
    assert.equal(a.io.stats().txPackets, expected.length)
    assert.equal(a.io.stats().txBatches, plan.length)
  } finally { close() }
})

test('a datagram larger than its slot is dropped as truncated and its slot reads as empty', () => {
  const { a, b, close } = pair(4)
  try {
    const tx = new PacketBatch({ size: 4, slotSize: 1000 })
    const rx = new PacketBatch({ size: 4, slotSize: 100 })
    const peers = new PeerTable(1)
    peers.set(0, LOOPBACK, b.port)
    a.io.sendFrom(tx, peers)
    b.io.receiveInto(rx)
    tx.lengths[0] = 50
    tx.lengths[1] = 500
    tx.lengths[2] = 60
    assert.equal(a.io.send(3), 3)
    const n = b.io.read()
    assert.equal(n, 3)
    assert.deepEqual([...rx.lengths.subarray(0, 3)], [50, 0, 60])
    assert.equal(b.io.stats().rxDropTruncated, 1)
    assert.equal(b.io.stats().rxPackets, 2)
  } finally { close() }
})

test('a send with a bad slot or an unknown destination drops just that packet, counted, and sends the rest', () => {
  const { a, b, close } = pair(8)
  try {
    const tx = new PacketBatch({ size: 8, slotSize: 256 })
    const rx = new PacketBatch({ size: 8, slotSize: 256 })
    const peers = new PeerTable(2)
    peers.set(0, LOOPBACK, b.port)
    a.io.sendFrom(tx, peers)
    b.io.receiveInto(rx)
    for (let i = 0; i < 4; i++) tx.lengths[i] = 10 + i
    tx.offsets[1] = tx.slab.length - 2 // runs past the slab
    tx.dests[2] = 5 // outside the 2-entry table
    assert.equal(a.io.send(4), 4)
    const s = a.io.stats()
    assert.equal(s.txPackets, 2)
    assert.equal(s.txDropBadSlot, 1)
    assert.equal(s.txDropBadDest, 1)
    assert.equal(b.io.read(), 2)
    assert.deepEqual([...rx.lengths.subarray(0, 2)], [10, 13])
  } finally { close() }
})

test('an empty receive queue shows up as an EAGAIN count, not an error', () => {
  const { b, close } = pair(8)
  try {
    const rx = new PacketBatch({ size: 8, slotSize: 256 })
    b.io.receiveInto(rx)
    assert.equal(b.io.read(), 0)
    assert.equal(b.io.stats().rxEagain, 1)
    assert.equal(b.io.stats().rxDropError, 0)
  } finally { close() }
})

test('UDP GSO: one send of a 4-segment message arrives as 4 datagrams (or one GRO read of 4 segments)', () => {
  const { a, b, close } = pair(8)
  try {
    gsoRoundTrip(a, b)
  } finally { close() }
})

test('UDP GRO: a socket with GRO on reads a GSO send as one coalesced message and reports the segment size', () => {
  const a = openUdp4({ addr: LOOPBACK, port: 0, batch: 4 })
  const b = openUdp4({ addr: LOOPBACK, port: 0, batch: 4, gro: true })
  try {
    groRoundTrip(a, b)
  } finally { a.io.close(); b.io.close() }
})
