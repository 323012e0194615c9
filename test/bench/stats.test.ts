// bench/stats.ts: the one definition of each figure the bench tables print.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { max, mean, median, min, percentile } from '../../bench/stats'

test('a percentile is nearest-rank: always a sample that was seen', () => {
  const xs = Array.from({ length: 100 }, (_, i) => 100 - i) // 100..1, out of order
  assert.equal(percentile(xs, 90), 90)
  assert.equal(percentile(xs, 99), 99)
  assert.equal(percentile(xs, 100), 100)
  assert.equal(percentile(xs, 0), 1)
  assert.equal(percentile([3, 1, 2], 50), 2)
})

test('the samples are left in their order', () => {
  const xs = [3, 1, 2]
  median(xs)
  percentile(xs, 90)
  assert.deepEqual(xs, [3, 1, 2])
})

test('min, max and mean, also of a list too long to spread into Math.min', () => {
  const xs = Array.from({ length: 300_000 }, (_, i) => i % 1000)
  assert.equal(min(xs), 0)
  assert.equal(max(xs), 999)
  assert.equal(mean([1, 2, 3, 6]), 3)
})

test('no samples: every figure is NaN, none looks measured', () => {
  for (const f of [median, min, max, mean, (xs: number[]) => percentile(xs, 90)]) assert.ok(Number.isNaN(f([])))
})
