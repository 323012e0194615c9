// Busy polling (`weft run --busy-poll`) on an in-memory packet pair, the
// reader and the writer on this test's own event loop: after a light batch
// the loop polls instead of sleeping, for the window and no longer; a light
// batch inside the window finds it awake; a heavy batch (bulk traffic) stops
// it for 100 ms; close() lets the loop sleep again. The margins are wide:
// what is checked is when polling starts and stops, not how fast anything is.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { BusyPoll, PacketBatch, packetPair } from '../../src/native'
import type { PacketIo } from '../../src/native'

const NS = 0
const CAUGHT = 1
const SUSPENDED = 2
const MS = 1e6

interface Rig {
  counters: Float64Array
  poller: BusyPoll
  reader: PacketIo
  writer: PacketIo
  /** write packets of these sizes, all before the reader's next turn: one batch */
  send: (sizes: number[]) => void
  batches: () => number
  close: () => void
}

function rig (windowUs: number): Rig {
  const [reader, writer] = packetPair(16)
  const counters = new Float64Array(3)
  const poller = new BusyPoll(counters, windowUs)
  reader.receiveInto(new PacketBatch({ size: 16, slotSize: 8192 }))
  reader.busyPoll(poller)
  let batches = 0
  reader.start(() => { batches++ })
  const tx = new PacketBatch({ size: 16, slotSize: 8192 })
  writer.sendFrom(tx)
  return {
    counters,
    poller,
    reader,
    writer,
    send: (sizes) => {
      sizes.forEach((n, i) => { tx.lengths[i] = n })
      assert.equal(writer.send(sizes.length), sizes.length)
    },
    batches: () => batches,
    close: () => { poller.close(); reader.close(); writer.close() }
  }
}

test('after a light batch the loop polls for the window (20 ms), then sleeps again', async (t) => {
  const r = rig(20_000)
  t.after(r.close)
  await sleep(30)
  assert.equal(r.counters[NS], 0, 'no polling before any packet')
  r.send([100])
  await sleep(150)
  assert.equal(r.batches(), 1)
  const polled = r.counters[NS]
  assert.ok(polled > 10 * MS && polled < 100 * MS, `polled about the window: ${(polled / MS).toFixed(1)} ms`)
  await sleep(100)
  assert.equal(r.counters[NS], polled, 'and not after it')
  assert.equal(r.counters[CAUGHT], 0)
})

test('a light batch inside the window finds the loop awake and restarts the window', async (t) => {
  const r = rig(60_000)
  t.after(r.close)
  r.send([100])
  await sleep(15)
  r.send([100, 200])
  await sleep(15)
  r.send([64])
  await sleep(250)
  assert.equal(r.batches(), 3)
  assert.equal(r.counters[CAUGHT], 2, 'the second and third batches were caught awake')
  assert.ok(r.counters[NS] > 60 * MS, `polling ran a window past the last batch: ${(r.counters[NS] / MS).toFixed(1)} ms in all`)
})

test('a heavy batch (more than 8 packets, or more than 4 KB) stops polling for 100 ms, renewed by each heavy batch; light batches in that time do not restart it', async (t) => {
  const r = rig(500_000)
  t.after(r.close)
  r.send([100])
  await sleep(20)
  assert.ok(r.counters[NS] > 0, 'polling after a light batch')
  r.send([100, 100, 100, 100, 100, 100, 100, 100, 100])
  await sleep(10)
  assert.equal(r.counters[SUSPENDED], 1, 'nine packets: heavy')
  const stopped = r.counters[NS]
  r.send([100])
  await sleep(30)
  assert.equal(r.counters[NS], stopped, 'a light batch 10 ms later does not poll')
  r.send([5000])
  await sleep(10)
  assert.equal(r.counters[SUSPENDED], 1, 'one packet of 5000 bytes: heavy too, a renewal of the same stop (counted once)')
  await sleep(60)
  r.send([100])
  await sleep(20)
  assert.equal(r.counters[NS], stopped, 'a light batch 110 ms after the first heavy batch, 70 ms after the second: still stopped')
  await sleep(100)
  r.send([100])
  await sleep(30)
  assert.ok(r.counters[NS] > stopped, 'polling again once 100 ms have passed without heavy traffic')
  r.send([5000])
  await sleep(10)
  assert.equal(r.counters[SUSPENDED], 2, 'and a heavy batch now stops it again')
})

test('close() stops polling at once; a window of 0 is off (nothing counted); a bad window is refused with ERR_BUSY_POLL, and anything but a BusyPoll with a TypeError', async (t) => {
  const r = rig(1_000_000)
  t.after(r.close)
  r.send([100])
  await sleep(20)
  r.poller.close()
  await sleep(5)
  const polled = r.counters[NS]
  await sleep(50)
  assert.equal(r.counters[NS], polled, 'closed: no more polling')
  r.poller.close() // idempotent

  const off = rig(0)
  t.after(off.close)
  off.send([100])
  await sleep(30)
  assert.equal(off.batches(), 1)
  assert.deepEqual([...off.counters], [0, 0, 0])

  for (const bad of [-1, 1.5, 1_000_001, NaN]) {
    assert.throws(() => new BusyPoll(new Float64Array(3), bad), (e: Error & { code?: string }) => e.code === 'ERR_BUSY_POLL', String(bad))
  }
  assert.throws(() => new BusyPoll(new Float64Array(2), 100), /3 slots/)
  // only a BusyPoll is taken as one: another wrapped object (an Io) or a plain one is refused
  const notAPoller = (handle: object): BusyPoll => ({ handle }) as unknown as BusyPoll
  assert.throws(() => { off.reader.busyPoll(notAPoller((off.writer as unknown as { io: object }).io)) }, TypeError)
  assert.throws(() => { off.reader.busyPoll(notAPoller({})) }, TypeError)
})
