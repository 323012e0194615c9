// The two calls paced writes use (dataplane/pacer.ts): wakeAfter(us) calls
// start's onTimer once after that many µs, on the same loop (a timerfd),
// and a TUN registered with pieces writes a range of its queued writes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { packetPair, PacketBatch } from '../../src/native'
import { waitFor } from '../../lab/wait'

/** Resolves once `fired` holds `n` wakes (waiting for the condition, not a fixed time). */
async function wakes (fired: number[], n: number): Promise<void> {
  await waitFor(() => fired.length >= n, { what: `${n} wake(s)`, timeoutMs: 2000, intervalMs: 1 })
}

test('wakeAfter calls onTimer once, no sooner than asked; a second call before then moves it; the range is checked', async (t) => {
  const [a, b] = packetPair(4)
  t.after(() => { a.close(); b.close() })
  const fired: number[] = []
  a.start(() => {}, undefined, () => { fired.push(performance.now()) })
  const start = performance.now()
  a.wakeAfter(2000)
  await wakes(fired, 1)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(fired.length, 1, 'once')
  assert.ok(fired[0] - start >= 1.9, `after ${(fired[0] - start).toFixed(2)} ms`)
  const again = performance.now()
  a.wakeAfter(200_000)
  a.wakeAfter(3000) // moved nearer
  await wakes(fired, 2)
  assert.equal(fired.length, 2)
  assert.ok(fired[1] - again >= 2.9 && fired[1] - again < 150, `moved: after ${(fired[1] - again).toFixed(2)} ms`)
  assert.throws(() => { a.wakeAfter(0) }, RangeError)
  assert.throws(() => { a.wakeAfter(2e6) }, RangeError)
})

test('a wake due when the handle closes never comes', async (t) => {
  const [a, b] = packetPair(4)
  t.after(() => { b.close() })
  let fired = 0
  a.start(() => {}, undefined, () => { fired++ })
  a.wakeAfter(1000)
  a.close()
  await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(fired, 0)
  assert.throws(() => { a.wakeAfter(1000) }, /EBADF|closed/)
})

test('sendRange writes `count` writes from write `first`, whose pieces start at `firstPiece`; an impossible range is refused', (t) => {
  const [tun, wire] = packetPair(8)
  t.after(() => { tun.close(); wire.close() })
  const slab = Buffer.alloc(4096)
  const q = new PacketBatch({ size: 8, slotSize: 1, slab })
  // four writes: "A" | "B" "b" (two pieces) | "C" | "D"
  const pieces = ['A', 'B', 'b', 'C', 'D']
  pieces.forEach((s, i) => {
    slab.write(s, 100 * i)
    q.offsets[i] = 100 * i
    q.lengths[i] = 1
  })
  q.segs.set([1, 2, 1, 1])
  tun.sendFrom(q, undefined, { pieces: true })
  const rx = new PacketBatch({ size: 8, slotSize: 64 })
  wire.receiveInto(rx)
  const read = (): string[] => {
    const out: string[] = []
    for (let n = wire.read(); n > 0; n = wire.read()) for (let i = 0; i < n; i++) out.push(rx.slab.toString('latin1', rx.offsets[i], rx.offsets[i] + rx.lengths[i]))
    return out
  }
  assert.equal(tun.sendRange(2, 1, 1), 2)
  assert.deepEqual(read(), ['Bb', 'C'])
  assert.equal(tun.sendRange(1, 3, 4), 1)
  assert.deepEqual(read(), ['D'])
  assert.equal(tun.sendRange(2, 0, 0), 2)
  assert.deepEqual(read(), ['A', 'Bb'])
  assert.throws(() => tun.sendRange(1, 2, 1), /first <= firstPiece/)
  assert.throws(() => tun.sendRange(1, 0, 9), /first <= firstPiece/)
})
