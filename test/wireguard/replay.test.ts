// The replay window: 8128 counters behind the newest, each accepted once;
// checked against a plain model over random walks, and for allocation.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import vm from 'node:vm'
import { MAX_COUNTER } from '../../src/wireguard/constants'
import { transportCounter, writeCounter } from '../../src/wireguard/messages'
import { REPLAY_WINDOW, ReplayWindow } from '../../src/wireguard/replay'
import { gcCounter } from '../dataplane/gc'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

test('the window is 127 blocks of 64 counters: 8128', () => {
  assert.equal(REPLAY_WINDOW, 8128)
})

test('in order, every counter is accepted once; a duplicate is refused', () => {
  const w = new ReplayWindow()
  for (let c = 0; c < 20_000; c++) assert.equal(w.check(c), true, `counter ${c}`)
  assert.equal(w.check(19_999), false)
  assert.equal(w.check(12_000), false)
  assert.equal(w.check(0), false, 'far behind')
})

test('out of order within the window is accepted once; 8128 behind the newest is the last accepted, 8129 is too old', () => {
  const w = new ReplayWindow()
  assert.equal(w.check(10_000), true)
  assert.equal(w.check(9_000), true)
  assert.equal(w.check(9_000), false)
  assert.equal(w.check(10_000 - 8128), true)
  assert.equal(w.check(10_000 - 8129), false)
  assert.equal(w.check(10_001), true)
  assert.equal(w.check(10_000 - 8128), false, 'seen, and now out of the window anyway')
})

test('a huge jump forward clears the window; what was behind is too old, what is just behind the jump is new', () => {
  const w = new ReplayWindow()
  for (let c = 0; c < 100; c++) w.check(c)
  const far = 2 ** 40 + 12_345
  assert.equal(w.check(far), true)
  assert.equal(w.check(50), false)
  assert.equal(w.check(far - 1), true)
  assert.equal(w.check(far - 64 * 64), true, 'the ring was cleared: no stale bits from before the jump')
  assert.equal(w.check(far), false)
})

test('counters up to 2^53 - 1 work; anything past, negative or not a number is refused; the wire reader flags >= 2^53 as -1', () => {
  const w = new ReplayWindow()
  assert.equal(w.check(MAX_COUNTER - 1), true)
  assert.equal(w.check(MAX_COUNTER), true)
  assert.equal(w.check(MAX_COUNTER), false)
  assert.equal(w.check(MAX_COUNTER - 1), false)
  assert.equal(w.check(MAX_COUNTER - 8128), true)
  assert.equal(w.check(MAX_COUNTER + 1), false)
  assert.equal(w.check(-1), false)
  assert.equal(w.check(Number.NaN), false)
  const b = Buffer.alloc(16)
  writeCounter(b, 8, MAX_COUNTER)
  assert.equal(transportCounter(b), MAX_COUNTER)
  assert.equal(b.readBigUInt64LE(8), BigInt(MAX_COUNTER))
  b.writeBigUInt64LE(2n ** 53n, 8)
  assert.equal(transportCounter(b), -1)
  b.writeBigUInt64LE(2n ** 64n - 1n, 8)
  assert.equal(transportCounter(b), -1)
  b.writeBigUInt64LE(0x1_2345_6789n, 8)
  assert.equal(transportCounter(b), 0x1_2345_6789)
})

test('random walks agree with a model: accept iff new and no more than 8128 behind the newest accepted', () => {
  let seed = 12345
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed % n
  }
  for (let run = 0; run < 20; run++) {
    const w = new ReplayWindow()
    const seen = new Set<number>()
    let last = 0
    let base = run * 1_000_000_007
    for (let i = 0; i < 5000; i++) {
      const r = rand(100)
      if (r < 3) base += rand(20_000) // jumps
      const c = Math.max(0, base + rand(9000) - 8500)
      base += rand(3)
      const expect = !seen.has(c) && (c > last || last - c <= REPLAY_WINDOW)
      assert.equal(w.check(c), expect, `run ${run} step ${i} counter ${c} last ${last}`)
      if (expect) {
        seen.add(c)
        if (c > last) last = c
      }
    }
  }
})

test('check() allocates nothing: 5 million checks cause no garbage collection', (t) => {
  const w = new ReplayWindow()
  const gcs = gcCounter(t)
  gc()
  gcs.reset()
  let ok = 0
  for (let c = 0; c < 5_000_000; c++) if (w.check(c * 3 - (c & 7))) ok++
  assert.ok(ok > 4_000_000)
  assert.ok(gcs.count <= 1, `${gcs.count} GCs`)
})
