// Pacing UDP into the TUN (src/dataplane/pacer.ts): a backlog read from the
// underlay socket in one batch reaches the TUN in pieces at about twice the
// pace UDP came in, instead of all at once into a receiver's 208 KiB socket
// buffer; batches of a flow the daemon keeps up with go at once; TCP and
// everything else is never held, only kept in order. The arithmetic on a
// fake clock, TunWrites over an in-memory TUN on a fake clock and on the
// real timer, and two pipelines on loopback.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DATAGRAM_OVERHEAD, MAX_WAIT_US, MIN_WAIT_US, PACE_BURST, PACE_CHUNK, PACE_FACTOR, PACE_MIN_RATE, pacingFactor, RATE_WINDOW_US, UdpPacer } from '../../src/dataplane/pacer'
import { TunWrites } from '../../src/dataplane/tun-writes'
import { Count, Drop, newStats } from '../../src/dataplane/stats'
import { VNET_F_DATA_VALID } from '../../src/native/vnet'
import { packetPair, PacketBatch } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { IPPROTO_ICMP, IPPROTO_TCP, writeIpv4Header } from '../../src/packet/ipv4'
import { parseIp4 } from '../../src/packet/ip'
import { collect, inject, link, node, udpPacket } from './helpers'
import { waitFor } from '../../lab/wait'

/** a full-size datagram at weft's VXLAN MTU: what a receiving socket is charged for it */
const FULL = 1450
const FULL_COST = FULL + DATAGRAM_OVERHEAD

test('a quiet pacer lets PACE_BURST through at once and no more', () => {
  const p = new UdpPacer()
  assert.equal(p.tokens, PACE_BURST)
  const fit = Math.floor(PACE_BURST / FULL_COST)
  assert.ok(p.allows(0, FULL_COST))
  assert.ok(p.allows((fit - 1) * FULL_COST, FULL_COST), `${fit} full-size datagrams fit`)
  assert.ok(!p.allows(fit * FULL_COST, FULL_COST), `the ${fit + 1}th waits`)
  assert.ok(fit >= 32 && fit * FULL < 212992 / 2, 'a burst is well under half a default receive buffer')
})

test('the arrival rate is measured over windows of RATE_WINDOW_US and smoothed; the pace is PACE_FACTOR times it, at least PACE_MIN_RATE', () => {
  const p = new UdpPacer()
  assert.equal(p.pace(), PACE_MIN_RATE, 'nothing measured yet: the floor')
  // 1 Gbit/s of full-size datagrams (about 88 per ms) in batches every 200 µs
  const perBatch = 17.6 * FULL_COST
  for (let t = 0; t <= 2 * RATE_WINDOW_US; t += 200) p.arrived(perBatch, t)
  const want = perBatch / 200
  assert.ok(Math.abs(p.rate - want) / want < 0.15, `rate ${p.rate} ~ ${want} cost units per µs`)
  assert.equal(p.pace(), PACE_FACTOR * p.rate)
  // a backlog read late (the daemon was away for 5 ms) is still 5 ms of arrivals: the rate stays
  p.arrived(5000 * want, 2 * RATE_WINDOW_US + 5000)
  assert.ok(Math.abs(p.rate - want) / want < 0.15, `after a late read: ${p.rate}`)
  // the traffic stops: the rate halves window by window
  const before = p.rate
  p.arrived(0, 2 * RATE_WINDOW_US + 5000 + RATE_WINDOW_US)
  assert.ok(p.rate <= before / 2 + 1e-9)
})

test('tokens refill at the pace up to PACE_BURST; a first write larger than what is left goes once a chunk is allowed; waits are clamped', () => {
  const p = new UdpPacer(2)
  p.arrived(0, 0)
  p.rate = 200 // cost units per µs: the pace is 400
  p.refill(0)
  p.spend(PACE_BURST)
  assert.equal(p.tokens, 0)
  p.refill(10)
  assert.equal(p.tokens, 4000)
  p.refill(1e6)
  assert.equal(p.tokens, PACE_BURST, 'never more than a burst')
  p.spend(PACE_BURST + 10_000)
  assert.ok(!p.allows(0, FULL_COST))
  assert.equal(p.waitFor(FULL_COST), Math.ceil((FULL_COST + 10_000) / 400))
  // a super-packet costing more than a chunk: waits for a chunk, not for itself
  assert.equal(p.waitFor(3 * PACE_CHUNK), Math.ceil((PACE_CHUNK + 10_000) / 400))
  p.refill(3e6) // long after: full again
  p.spend(PACE_BURST - PACE_CHUNK)
  assert.ok(p.allows(0, 3 * PACE_CHUNK), 'the round\'s first write goes once a chunk is allowed')
  assert.ok(!p.allows(1, 3 * PACE_CHUNK), 'but not behind another')
  const slow = new UdpPacer()
  slow.spend(PACE_BURST * 10)
  assert.equal(slow.waitFor(FULL_COST), MAX_WAIT_US)
  const fast = new UdpPacer()
  fast.rate = 1e6
  fast.spend(1)
  assert.equal(fast.waitFor(FULL_COST), MIN_WAIT_US)
})

test('WEFT_UDP_PACING: unset the default factor, off none, a number that factor, anything else refused', () => {
  assert.equal(pacingFactor(undefined), PACE_FACTOR)
  assert.equal(pacingFactor(''), PACE_FACTOR)
  assert.equal(pacingFactor('off'), 0)
  assert.equal(pacingFactor('0'), 0)
  assert.equal(pacingFactor('1.5'), 1.5)
  assert.throws(() => pacingFactor('fast'), RangeError)
  assert.throws(() => pacingFactor('-1'), RangeError)
})

// --- TunWrites with a pacer, over an in-memory TUN --------------------------

function icmp (id: number): Buffer {
  const b = Buffer.alloc(60)
  writeIpv4Header(b, 0, 0, b.length, id, 0, 64, IPPROTO_ICMP, parseIp4('10.244.1.2'), parseIp4('10.244.2.3'))
  return b
}

function tcpSegment (id: number, payload: number): Buffer {
  const b = Buffer.alloc(40 + payload)
  writeIpv4Header(b, 0, 0, b.length, id, 0x4000, 64, IPPROTO_TCP, parseIp4('10.244.1.2'), parseIp4('10.244.2.3'))
  b[32] = 5 << 4
  b[33] = 0x10
  return b
}

interface Harness {
  writes: TunWrites
  stats: Float64Array
  tun: PacketIo
  clock: { now: number }
  /** places p in the slab and queues it by its protocol */
  put: (p: Buffer) => void
  /** everything written to the TUN so far, each write as read back */
  drain: () => Buffer[]
  drained: () => number
  close: () => void
}

/** TunWrites without a vnet header (every packet its own write) and with a pacer on a fake clock. */
function harness (factor = PACE_FACTOR): Harness {
  const [tun, wire] = packetPair(64)
  const maxWrites = 1024
  const area = 2 << 20
  const slab = Buffer.allocUnsafeSlow(area + TunWrites.headerArea(maxWrites))
  const pieces = new PacketBatch({ size: 2048, slotSize: 1, slab })
  const stats = newStats()
  const clock = { now: 0 }
  const writes = new TunWrites(tun, pieces, false, area, maxWrites, stats, VNET_F_DATA_VALID, false, factor > 0 ? new UdpPacer(factor) : undefined, () => clock.now)
  let drained = 0
  writes.onDrained = () => { drained++ }
  const rx = new PacketBatch({ size: 64, slotSize: 2048 })
  wire.receiveInto(rx)
  let at = 0
  return {
    writes,
    stats,
    tun,
    clock,
    put: (p) => {
      const off = at
      p.copy(slab, off)
      at += Math.ceil(p.length / 64) * 64
      if (p[9] === 17) writes.udp(off, p.length)
      else if (p[9] === 6) writes.tcp(off, p.length)
      else writes.single(off, p.length)
    },
    drain: () => {
      const out: Buffer[] = []
      for (let n = wire.read(); n > 0; n = wire.read()) {
        for (let i = 0; i < n; i++) out.push(Buffer.from(rx.slab.subarray(rx.offsets[i], rx.offsets[i] + rx.lengths[i])))
      }
      if (writesIdle()) at = 0
      return out
    },
    drained: () => drained,
    close: () => { tun.close(); wire.close() }
  }
  function writesIdle (): boolean { return writes.pending === 0 }
}

/** n full-size datagrams of one flow, each tagged with its number (IP ID) */
function datagrams (n: number, from = 0): Buffer[] {
  return Array.from({ length: n }, (_, i) => udpPacket('10.244.1.2', '10.244.2.3', FULL - 28, from + i))
}

const ids = (ps: Buffer[]): number[] => ps.map((p) => (p[4] << 8) | p[5])

test('a backlog of 200 datagrams goes as a burst, then in chunks each after a wait, in order, and onDrained once', () => {
  const h = harness()
  try {
    const all = datagrams(200)
    all.forEach(h.put)
    assert.equal(h.writes.send(), 0)
    const burst = h.drain()
    assert.equal(burst.length, Math.floor(PACE_BURST / FULL_COST), 'a burst\'s worth at once')
    assert.equal(h.writes.pending, 200 - burst.length)
    assert.equal(h.stats[Count.OUTSIDE_PACED], 1)
    assert.equal(h.drained(), 0)
    // the wait not yet over: nothing more
    h.writes.resume()
    assert.equal(h.drain().length, 0)
    const got = [...burst]
    let rounds = 0
    while (h.writes.pending > 0 && rounds++ < 100) {
      h.clock.now += 100 // µs; the floor pace refills 12,500 units per 100 µs
      h.writes.resume()
      const piece = h.drain()
      assert.ok(piece.length <= Math.ceil(PACE_CHUNK / FULL_COST) + 1, `a piece of ${piece.length}`)
      got.push(...piece)
    }
    assert.deepEqual(ids(got), ids(all), 'every datagram, in order')
    assert.equal(h.drained(), 1)
    assert.equal(h.stats[Drop.TUN_WRITE], 0)
    assert.ok(h.stats[Count.OUTSIDE_PACED] > 5)
    // at the floor pace 125 units/µs: the backlog after the burst took about its cost / 125 µs
    const took = h.clock.now
    const expect = ((200 - burst.length) * FULL_COST - PACE_BURST / 2) / PACE_MIN_RATE
    assert.ok(took >= expect * 0.8 && took <= expect * 1.5 + 200, `took ${took} µs, about ${Math.round(expect)}`)
  } finally { h.close() }
})

test('TCP and ICMP are never held, only kept in their place: a batch of 100 goes at once, and one between paced datagrams waits for those before it', () => {
  const h = harness()
  try {
    const others = Array.from({ length: 100 }, (_, i) => i % 2 === 0 ? icmp(i) : tcpSegment(i, 200))
    others.forEach(h.put)
    h.writes.send()
    assert.equal(h.drain().length, 100)
    assert.equal(h.stats[Count.OUTSIDE_PACED], 0)
    const first = datagrams(60)
    const between = icmp(5000)
    const after = datagrams(60, 100)
    ;[...first, between, ...after].forEach(h.put)
    h.writes.send()
    const got = h.drain()
    while (h.writes.pending > 0) {
      h.clock.now += 100
      h.writes.resume()
      got.push(...h.drain())
    }
    assert.deepEqual(ids(got), ids([...first, between, ...after]), 'in the order queued')
  } finally { h.close() }
})

test('while a wait is due, send() writes nothing: what it queued (the inside loop\'s ICMP answers) goes after the rest', () => {
  const h = harness()
  try {
    const all = datagrams(100)
    all.forEach(h.put)
    h.writes.send()
    const got = h.drain()
    assert.ok(h.writes.pending > 0)
    const answer = icmp(7777)
    h.put(answer)
    assert.equal(h.writes.send(), 0)
    assert.equal(h.drain().length, 0, 'nothing jumps the queue, nothing is written out of turn')
    while (h.writes.pending > 0) {
      h.clock.now += 100
      h.writes.resume()
      got.push(...h.drain())
    }
    assert.deepEqual(ids(got), [...ids(all), 7777])
    assert.equal(h.drained(), 1)
  } finally { h.close() }
})

test('a flow the daemon keeps up with is never paced: 1 Gbit/s in batches of 18 every 200 µs for a second', () => {
  const h = harness()
  try {
    let n = 0
    for (let t = 0; t < 1_000_000; t += 200) {
      h.clock.now = t
      datagrams(18, n).forEach(h.put)
      n += 18
      h.writes.send()
      assert.equal(h.drain().length, 18)
    }
    assert.equal(h.stats[Count.OUTSIDE_PACED], 0)
    assert.equal(h.writes.pending, 0)
  } finally { h.close() }
})

test('without a pacer every batch is written at once, as before', () => {
  const h = harness(0)
  try {
    // 100 x (528 + 1024) units: well past a burst (the in-memory TUN holds about 200 KB)
    const small = Array.from({ length: 100 }, (_, i) => udpPacket('10.244.1.2', '10.244.2.3', 500, i))
    small.forEach(h.put)
    h.writes.send()
    assert.equal(h.drain().length, 100)
    assert.equal(h.writes.pending, 0)
    assert.equal(h.stats[Count.OUTSIDE_PACED], 0)
  } finally { h.close() }
})

test('on the real timer: the TUN\'s onTimer resumes the writes until the backlog is gone', async (t) => {
  const [tun, wire] = packetPair(64)
  t.after(() => { tun.close(); wire.close() })
  const maxWrites = 1024
  const area = 1 << 20
  const slab = Buffer.allocUnsafeSlow(area + TunWrites.headerArea(maxWrites))
  const pieces = new PacketBatch({ size: 2048, slotSize: 1, slab })
  const stats = newStats()
  const writes = new TunWrites(tun, pieces, false, area, maxWrites, stats, VNET_F_DATA_VALID, false, new UdpPacer())
  let drained = 0
  writes.onDrained = () => { drained++ }
  tun.start(() => {}, undefined, writes.resume)
  const all = datagrams(300)
  let at = 0
  for (const p of all) {
    p.copy(slab, at)
    writes.udp(at, p.length)
    at += 1536
  }
  const started = performance.now()
  writes.send()
  assert.ok(writes.pending > 0)
  const rx = new PacketBatch({ size: 64, slotSize: 2048 })
  wire.receiveInto(rx)
  const got: number[] = []
  await waitFor(async () => {
    for (let n = wire.read(); n > 0; n = wire.read()) for (let i = 0; i < n; i++) got.push((rx.slab[rx.offsets[i] + 4] << 8) | rx.slab[rx.offsets[i] + 5])
    return drained === 1 && got.length === 300
  }, { timeoutMs: 5000, intervalMs: 1, what: 'the paced backlog to be written' })
  const ms = performance.now() - started
  assert.deepEqual(got, ids(all))
  // 300 x 2474 units, a burst at once, the rest at the floor pace (125 units/µs): about 5 ms
  assert.ok(ms >= 3, `took ${ms.toFixed(1)} ms`)
  assert.ok(stats[Count.OUTSIDE_PACED] >= 5)
})

test('two pipelines: bursts of 64 datagrams (read by the receiver in one batch, past a burst) reach its TUN whole and in order, paced (at once with pacing off)', async (t) => {
  for (const factor of [PACE_FACTOR, 0]) {
    const a = node('10.244.1.0/24', '02:00:00:00:00:0a', { udpPacing: factor, sndbuf: 4 << 20 })
    const b = node('10.244.2.0/24', '02:00:00:00:00:0b', { udpPacing: factor, rcvbuf: 4 << 20 })
    t.after(() => { a.close(); b.close() })
    link(a, b)
    const all = Array.from({ length: 6 * 64 }, (_, i) => udpPacket('10.244.1.2', '10.244.2.3', 1000, i))
    const got: Buffer[] = []
    for (let i = 0; i < all.length; i += 64) {
      inject(a, all.slice(i, i + 64))
      got.push(...await collect(b, 64, 5000))
    }
    assert.equal(got.length, all.length, `factor ${factor}: all arrived`)
    assert.deepEqual(ids(got), ids(all), 'in order')
    const paced = b.pipeline.stats[Count.OUTSIDE_PACED]
    if (factor > 0) assert.ok(paced > 0, 'the receiver paced them')
    else assert.equal(paced, 0)
    assert.equal(b.pipeline.snapshot().sock.rxDropTruncated, 0)
    a.close()
    b.close()
  }
})
