// Busy polling (`weft run --busy-poll`) on an in-memory packet pair, the
// reader and the writer on this test's own event loop: after a light batch
// the loop polls instead of sleeping, for the window and no longer; a light
// batch inside the window finds it awake; a heavy batch (bulk traffic) stops
// it for 100 ms; close() lets the loop sleep again.
//
// The loop turns for real (the addon's uv_idle handle, its reads and kicks),
// but the poller takes its time from a fake clock the test moves: at(ms)
// sets the time, then lets the loop take one turn, in which the poller, if
// it is polling, ticks at that time, and anything sent is read (a kick) at
// that time. So nothing sleeps, and the polling time is exact: the turns
// are 1 ms apart, and the one after a read counts as reading, not polling.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { BusyCounter, BusyPoll, constants, PacketBatch, packetPair } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { waitFor } from '../../lab/wait'

const { NS, CAUGHT, SUSPENDED } = BusyCounter
const MS = 1e6
/** where the fake clock starts (ns): any time will do */
const T0 = 1e9

interface Rig {
  counters: Float64Array
  poller: BusyPoll
  reader: PacketIo
  writer: PacketIo
  /** write packets of these sizes, all before the reader's next turn: one batch */
  send: (sizes: number[]) => void
  /** set the clock to `ms` after T0 and let the loop turn once */
  at: (ms: number) => Promise<void>
  /** at(t) for every whole ms from `from` to `to` */
  run: (from: number, to: number) => Promise<void>
  batches: () => number
  close: () => void
}

const turn = async (): Promise<void> => { await new Promise((resolve) => setImmediate(resolve)) }

/** clock: false for the real one */
function rig (windowUs: number, clock: Float64Array | false = new Float64Array([T0])): Rig {
  const [reader, writer] = packetPair(16)
  const counters = new Float64Array(3)
  const poller = new BusyPoll(counters, windowUs, clock === false ? {} : { clock })
  reader.receiveInto(new PacketBatch({ size: 16, slotSize: 8192 }))
  reader.busyPoll(poller)
  let batches = 0
  reader.start(() => { batches++ })
  const tx = new PacketBatch({ size: 16, slotSize: 8192 })
  writer.sendFrom(tx)
  const at = async (ms: number): Promise<void> => {
    if (clock === false) throw new Error('a rig on the real clock')
    clock[0] = T0 + ms * MS
    await turn()
  }
  return {
    counters,
    poller,
    reader,
    writer,
    send: (sizes) => {
      sizes.forEach((n, i) => { tx.lengths[i] = n })
      assert.equal(writer.send(sizes.length), sizes.length)
    },
    at,
    run: async (from, to) => { for (let t = from; t <= to; t++) await at(t) },
    batches: () => batches,
    close: () => { poller.close(); reader.close(); writer.close() }
  }
}

test('after a light batch the loop polls for the window (20 ms), then sleeps again', async (t) => {
  const r = rig(20_000)
  t.after(r.close)
  await r.run(0, 29)
  assert.equal(r.counters[NS], 0, 'no polling before any packet')
  r.send([100])
  await r.at(30)
  assert.equal(r.batches(), 1)
  await r.run(31, 49)
  assert.equal(r.counters[NS], (49 - 31) * MS, 'polling inside the window')
  await r.at(50)
  const polled = r.counters[NS]
  assert.equal(polled, (50 - 31) * MS, 'polled to the end of the window: 30 + 20 ms')
  await r.run(51, 150)
  assert.equal(r.counters[NS], polled, 'and not after it')
  assert.equal(r.counters[CAUGHT], 0)
})

test('a light batch inside the window finds the loop awake and restarts the window', async (t) => {
  const r = rig(60_000)
  t.after(r.close)
  r.send([100])
  await r.run(0, 15)
  r.send([100, 200])
  await r.run(16, 30)
  r.send([64])
  await r.run(31, 90)
  assert.equal(r.batches(), 3)
  assert.equal(r.counters[CAUGHT], 2, 'the second and third batches were caught awake')
  // from the first read (0) on, less the three turns that followed a read
  const polled = r.counters[NS]
  assert.equal(polled, (90 - 3) * MS, 'still polling at 90 ms')
  await r.run(91, 250)
  assert.equal(r.counters[NS], polled + MS, 'polling ran a window past the last batch (31 + 60 ms), and stopped there')
})

test('a heavy batch (more than 8 packets, or more than 4 KB) stops polling for 100 ms, renewed by each heavy batch; light batches in that time do not restart it', async (t) => {
  assert.deepEqual([constants.BUSY_LIGHT_PACKETS, constants.BUSY_LIGHT_BYTES, constants.BUSY_SUSPEND_NS], [8, 4096, 100 * MS])
  const r = rig(500_000)
  t.after(r.close)
  r.send([100])
  await r.run(0, 20)
  assert.ok(r.counters[NS] > 0, 'polling after a light batch')
  r.send([100, 100, 100, 100, 100, 100, 100, 100, 100])
  await r.run(21, 30)
  assert.equal(r.counters[SUSPENDED], 1, 'nine packets: heavy')
  const stopped = r.counters[NS]
  r.send([100])
  await r.run(31, 60)
  assert.equal(r.counters[NS], stopped, 'a light batch 10 ms later does not poll')
  r.send([5000])
  await r.run(61, 70)
  assert.equal(r.counters[SUSPENDED], 1, 'one packet of 5000 bytes: heavy too, a renewal of the same stop (counted once)')
  await r.run(71, 130)
  r.send([100])
  await r.run(131, 159)
  assert.equal(r.counters[NS], stopped, 'a light batch 110 ms after the first heavy batch, 70 ms after the second: still stopped')
  r.send([100])
  await r.at(160)
  assert.equal(r.counters[NS], stopped, 'a light batch 99 ms after the last heavy batch: still stopped')
  r.send([100])
  await r.run(161, 180)
  assert.ok(r.counters[NS] > stopped, 'polling again once 100 ms have passed without heavy traffic')
  r.send([5000])
  await r.run(181, 190)
  assert.equal(r.counters[SUSPENDED], 2, 'and a heavy batch now stops it again')
  const again = r.counters[NS]
  await r.run(191, 300)
  assert.equal(r.counters[NS], again)
})

test('the line between light and heavy: 8 packets and 4096 bytes are light, one more packet or byte is heavy', async (t) => {
  const r = rig(500_000)
  t.after(r.close)
  r.send(Array(8).fill(512))
  await r.run(0, 10)
  assert.equal(r.counters[SUSPENDED], 0, '8 packets, 4096 bytes: light')
  assert.ok(r.counters[NS] > 0, 'and polling')
  r.send([...Array(7).fill(512), 513])
  await r.run(11, 20)
  assert.equal(r.counters[SUSPENDED], 1, '4097 bytes: heavy')
  const s = rig(500_000)
  t.after(s.close)
  s.send(Array(9).fill(1))
  await s.run(0, 10)
  assert.equal(s.counters[SUSPENDED], 1, '9 packets of 1 byte: heavy')
  assert.equal(s.counters[NS], 0, 'and never polling')
})

test('close() stops polling at once; a window of 0 is off (nothing counted); a bad window is refused with ERR_BUSY_POLL, and anything but a BusyPoll with a TypeError', async (t) => {
  const r = rig(1_000_000)
  t.after(r.close)
  r.send([100])
  await r.run(0, 20)
  r.poller.close()
  const polled = r.counters[NS]
  assert.equal(polled, 19 * MS)
  await r.run(21, 70)
  assert.equal(r.counters[NS], polled, 'closed: no more polling')
  r.poller.close() // idempotent

  const off = rig(0)
  t.after(off.close)
  off.send([100])
  await off.run(0, 30)
  assert.equal(off.batches(), 1)
  assert.deepEqual([...off.counters], [0, 0, 0])

  for (const bad of [-1, 1.5, 1_000_001, NaN]) {
    assert.throws(() => new BusyPoll(new Float64Array(3), bad), (e: Error & { code?: string }) => e.code === 'ERR_BUSY_POLL', String(bad))
  }
  assert.throws(() => new BusyPoll(new Float64Array(2), 100), /3 slots/)
  assert.throws(() => new BusyPoll(new Float64Array(3), 100, { clock: new Float64Array(0) }), TypeError)
  // only a BusyPoll is taken as one: another wrapped object (an Io) or a plain one is refused
  const notAPoller = (handle: object): BusyPoll => ({ handle }) as unknown as BusyPoll
  assert.throws(() => { off.reader.busyPoll(notAPoller((off.writer as unknown as { io: object }).io)) }, TypeError)
  assert.throws(() => { off.reader.busyPoll(notAPoller({})) }, TypeError)
})

// The one test on the real clock, because everything above replaces it:
// this shows that without a fake clock the poller reads the real one, in
// ns: a unit off by 1000 would poll for ~10 µs or for 10 s. What is
// checked is that polling runs for milliseconds and then stops, not how
// long exactly (a loaded machine stretches it).
test('on the real clock, a light batch polls for milliseconds (the window is 10 ms), then stops', async (t) => {
  const r = rig(10_000, false)
  t.after(r.close)
  r.send([100])
  await waitFor(() => r.batches() === 1 && r.counters[NS] > 2 * MS, { what: 'polling for more than 2 ms', timeoutMs: 5000 })
  // stopped: the count no longer moves between two looks 30 ms apart (the sampling interval, not a wait for an event)
  const settled = await waitFor(async () => { const a = r.counters[NS]; await sleep(30); return r.counters[NS] === a ? a : undefined }, { what: 'polling to stop', timeoutMs: 5000 })
  assert.ok(settled < 1000 * MS, `polled ${(settled / MS).toFixed(1)} ms`)
})
