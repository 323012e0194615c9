// The churn test's instrument, on made-up samples: what it calls converged,
// late, missing and stale.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { convergence, leasesAt, percentile, violations } from './tables'
import type { Change, Sample } from './tables'

const A = '10.244.1.0/24'
const B = '10.244.2.0/24'
const R = '10.244.250.0/24'
const changes: Change[] = [
  { kind: 'join', host: 'h2', subnet: B, at: 1000 },
  { kind: 'leave', host: 'h2', subnet: B, at: 5000 }
]
const own = (host: string): string | undefined => (host === 'h1' ? A : host === 'h2' ? B : undefined)
const sample = (sentAt: number, peers: string[], host = 'h1', run = 1): Sample => ({ host, run, sentAt, at: sentAt + 5, peers: new Set(peers) })

test('the leases at a time follow the change log on top of what was there from the start', () => {
  assert.deepEqual([...leasesAt(changes, [R], 999)], [R])
  assert.deepEqual([...leasesAt(changes, [R], 1000)].sort(), [B, R])
  assert.deepEqual([...leasesAt(changes, [R], 5000)], [R])
})

test('a table may lag the store only in what changed within the bound', () => {
  const ok = [sample(900, [R]), sample(1100, [R]), sample(1900, [R, B]), sample(5500, [R, B]), sample(6100, [R])]
  assert.deepEqual(violations(ok, changes, [R], own, 1000), [])
  const late = violations([sample(2100, [R])], changes, [R], own, 1000)
  assert.deepEqual(late.map((v) => [v.missing, v.stale]), [[[B], []]])
  const stale = violations([sample(6100, [R, B])], changes, [R], own, 1000)
  assert.deepEqual(stale.map((v) => [v.missing, v.stale]), [[[], [B]]])
  // the node's own lease is never expected in its own table
  assert.deepEqual(violations([sample(3000, [R], 'h2', 2)], changes, [R], own, 1000), [])
})

test('convergence is the slowest observer\'s first sample showing the change; a run that never shows it is Infinity', () => {
  const samples = [
    sample(500, [R]), sample(1050, [R]), sample(1150, [R, B]), sample(2500, [R, B]), sample(5100, [R]), sample(6500, [R]),
    sample(500, [R], 'h3', 3), sample(1300, [R, B], 'h3', 3), sample(2500, [R, B], 'h3', 3), sample(5050, [R, B], 'h3', 3), sample(6500, [R, B], 'h3', 3)
  ]
  const logged = (): number | undefined => undefined
  const [join, leave] = convergence(samples, changes, 1000, logged)
  assert.deepEqual([join.ms, join.slowest, join.observers], [305, 'h3', 2])
  assert.deepEqual([leave.ms, leave.slowest], [Infinity, 'h3'])
  assert.equal(join.loggedMs, undefined)
  // a run that starts after the change is not an observer of it
  assert.equal(convergence([sample(1200, [R, B], 'h4', 4), sample(2500, [R, B], 'h4', 4)], changes.slice(0, 1), 1000, logged)[0].observers, 0)
})

test('percentile picks the nearest rank', () => {
  assert.equal(percentile([5, 1, 3, 2, 4], 0.5), 3)
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20], 0.95), 19)
  assert.ok(Number.isNaN(percentile([], 0.5)))
})
