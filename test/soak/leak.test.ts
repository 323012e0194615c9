// The soak's leak verdict (leak.ts) on synthetic probe series laid out as
// the soak lays them: ticks every 10 s from 15 s in (the setup), heap
// probes on the ticks probeDue picks and one at the end. The shapes: the
// 40-minute run that failed the old verdict on warm-up alone, a steady
// leak, a rise in warm-up only, a run too short, a restarted daemon.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { floorWindowMinutes, judgeLeak, LEAK_RULE, lastLife, warmupEnd } from './leak'
import type { LeakJudgement, MemoryProbe } from './leak'
import { probeDue, WARMUP_TICKS } from './record'

const MIN = 60_000
const SETUP = 15_000
const TICK = 10_000

/** A run of `minutes`: its tick starts and the probe times (one second into a probe tick, and at the end). */
function plan (minutes: number, warmupTicks = WARMUP_TICKS): { ticks: number[], probeTimes: number[] } {
  const ticks: number[] = []
  for (let t = SETUP; t < minutes * MIN; t += TICK) ticks.push(t)
  const probeTimes = ticks.flatMap((t, i) => probeDue(i, warmupTicks) ? [t + 1000] : [])
  probeTimes.push(minutes * MIN + 2000)
  return { ticks, probeTimes }
}

const r2 = (x: number): number => Math.round(x * 100) / 100

/** One process probed through a run, its memory after GC (MB, kept to 0.01 as the probes keep it) given by time and probe number. */
function run (minutes: number, rss: (t: number, k: number) => number, heap: (t: number, k: number) => number): { j: LeakJudgement, ticks: number[], probes: MemoryProbe[] } {
  const { ticks, probeTimes } = plan(minutes)
  const probes = probeTimes.map((t, k) => ({ t, pid: 7, rssMB: r2(rss(t, k)), heapMB: r2(heap(t, k)) }))
  return { j: judgeLeak(probes, warmupEnd(0, ticks, WARMUP_TICKS)), ticks, probes }
}

/**
 * The 40-minute run's shape: `a` at the 1-minute probe, `b` at the 4-minute
 * one (the end of warm-up), then a straight line to `c` at the last probe,
 * 40 minutes in, the probes between 0.04 MB above or below it.
 */
function shape40 (a: number, b: number, c: number): (t: number, k: number) => number {
  const from = SETUP + WARMUP_TICKS * TICK + 1000
  const to = 40 * MIN + 2000
  return (t, k) => k === 0 ? a : b + ((c - b) * (t - from)) / (to - from) + (t > from && t < to ? (k % 2 === 0 ? 0.04 : -0.04) : 0)
}

const flat = (mb: number) => (_t: number, k: number): number => mb + (k % 2 === 0 ? 0.03 : -0.03)

test('the probe schedule: the first minute, the end of warm-up, every 18 ticks from it both ways', () => {
  const at = (w: number): number[] => Array.from({ length: 80 }, (_, i) => i).filter((i) => probeDue(i, w))
  assert.deepEqual(at(24), [6, 24, 42, 60, 78])
  assert.deepEqual(at(30), [6, 12, 30, 48, 66])
})

test('warm-up ends at the start of the 24th tick a process lives through whole; undefined when the run ends first', () => {
  const { ticks } = plan(10)
  assert.equal(warmupEnd(0, ticks, 24), ticks[24])
  // restarted during tick 26: its first whole tick is 27
  assert.equal(warmupEnd(ticks[26]! + 4000, ticks, 24), ticks[51])
  assert.equal(warmupEnd(ticks[40]!, ticks, 24), undefined)
  assert.equal(warmupEnd(11 * MIN, ticks, 24), undefined)
})

test('the 40-minute run that failed the old verdict on warm-up alone passes (h1 67.4 -> 69.1 -> 69.8, h2 60.0 -> 65.4 -> 65.8 MB, heap 7.9 -> 8.3)', () => {
  const h1 = run(40, shape40(67.4, 69.1, 69.8), shape40(7.6, 7.9, 8.3)).j
  const h2 = run(40, shape40(60.0, 65.4, 65.8), shape40(7.2, 7.9, 8.3)).j
  for (const j of [h1, h2]) {
    assert.equal(j.rssFlat, true, JSON.stringify(j))
    assert.equal(j.heapFlat, true, JSON.stringify(j))
    // judged from the 4-minute probe (the end of warm-up) to the last
    assert.equal(j.window!.from, SETUP + 24 * TICK + 1000)
    assert.equal(j.window!.probes, 13)
    assert.ok(j.rss!.fitPerHourMB > 0.5 && j.rss!.fitPerHourMB < 2, String(j.rss!.fitPerHourMB))
  }
  // the whole life is still reported, warm-up included: h2 grew 5.8 MB, which the old rule failed
  assert.deepEqual(h1.life!.rssMB, [67.4, 69.8])
  assert.deepEqual(h2.life!.rssMB, [60.0, 65.8])
})

test('the same shape cut at 10 minutes passes, judged over more than five minutes', () => {
  const { j } = run(10, shape40(60.0, 65.4, 65.8), shape40(7.2, 7.9, 8.3))
  assert.equal(j.rssFlat, true, JSON.stringify(j))
  assert.equal(j.heapFlat, true, JSON.stringify(j))
  assert.ok(j.window!.to - j.window!.from > 5 * MIN)
  assert.equal(j.window!.probes, 3)
})

test('a steady leak of 2 MB per 10 minutes past warm-up fails a 10-minute run on its fitted line, and a 60-minute run on both counts', () => {
  const end = SETUP + WARMUP_TICKS * TICK
  const leak = (t: number): number => t < end ? 64 : 65.4 + (2 * (t - end)) / (10 * MIN)
  const ten = run(10, leak, flat(8)).j
  assert.equal(ten.rssFlat, false)
  assert.equal(ten.heapFlat, true)
  // under the 2 MB growth bar: only the fitted line catches it
  assert.ok(ten.rss!.growthMB < 2)
  assert.deepEqual(ten.rss!.failed.map((f) => f.split(' ')[0]), ['fitted'])
  assert.ok(Math.abs(ten.rss!.fitPerHourMB - 12) < 0.1, String(ten.rss!.fitPerHourMB))
  const hour = run(60, leak, flat(8)).j
  assert.equal(hour.rssFlat, false)
  assert.deepEqual(hour.rss!.failed.map((f) => f.split(' ')[0]), ['grew', 'fitted'])
  // the heap, the same way
  const heap = run(10, flat(65), (t) => t < end ? 7 : 7.9 + (t - end) / (10 * MIN)).j
  assert.equal(heap.rssFlat, true)
  assert.equal(heap.heapFlat, false)
})

test('a slow leak that one low last probe hides from the endpoints fails on the fitted line', () => {
  // 3 MB/h for an hour, the last probe (no traffic) 1.5 MB under the line
  const { probes, ticks } = run(60, (t) => 65 + (3 * t) / (60 * MIN), flat(8))
  const last = probes[probes.length - 1]!
  last.rssMB -= 1.5
  const j = judgeLeak(probes, warmupEnd(0, ticks, WARMUP_TICKS))
  assert.ok(j.rss!.growthMB < 2)
  assert.equal(j.rssFlat, false)
})

test('a rise during warm-up only passes, the whole life showing it', () => {
  const end = SETUP + WARMUP_TICKS * TICK
  const { j } = run(10, (t, k) => t < end ? 60 : 66 + (k % 2 === 0 ? 0.1 : -0.1), (t) => t < end ? 6 : 8)
  assert.equal(j.rssFlat, true)
  assert.equal(j.heapFlat, true)
  assert.deepEqual(j.life!.rssMB, [60, 65.9])
  assert.deepEqual(j.life!.heapMB, [6, 8])
})

test('the floor stands in for the hourly rate only under 30-minute windows, for RSS and heap alike', () => {
  assert.equal(floorWindowMinutes(LEAK_RULE.rss), 30)
  assert.equal(floorWindowMinutes(LEAK_RULE.heap), 30)
})

test('the noise a flat daemon showed in a 10-minute soak here (RSS +0.52 MB, heap +0.22 MB over six judged minutes) passes', () => {
  const end = SETUP + WARMUP_TICKS * TICK
  const { j } = run(10, (t) => t < end ? 60 : 65.29 + (t - end > 3 * MIN ? 0.52 : 0), (t) => t < end ? 8 : 8.59 + (t - end > 3 * MIN ? 0.22 : 0))
  assert.equal(j.rssFlat, true, JSON.stringify(j.rss))
  assert.equal(j.heapFlat, true, JSON.stringify(j.heap))
})

test('one allocator step past warm-up (a 256 KB page) passes a 10-minute run', () => {
  const end = SETUP + WARMUP_TICKS * TICK
  const { j } = run(10, (t) => t < end + 2 * MIN ? 65 : 65.25, flat(8))
  assert.equal(j.rssFlat, true, JSON.stringify(j.rss))
})

test('a run shorter than warm-up, or ending less than 2 minutes past it, is not judged (null), not passed', () => {
  const short = run(3.5, flat(65), flat(8)).j
  assert.equal(short.rssFlat, null)
  assert.equal(short.heapFlat, null)
  assert.equal(short.window, null)
  assert.match(short.unjudged!, /warm-up/)
  // the life is still shown: the 1-minute probe and the last
  assert.notEqual(short.life, null)
  const barely = run(6, flat(65), flat(8)).j
  assert.equal(barely.rssFlat, null)
  assert.match(barely.unjudged!, /span 1\.\d+ min, under 2/)
  // nothing probed at all
  assert.equal(judgeLeak([], 0).rssFlat, null)
  assert.equal(judgeLeak([], 0).unjudged, 'never probed')
})

test('a daemon restarted mid-run is judged on its last life only, from its own warm-up', () => {
  const { ticks, probeTimes } = plan(20)
  // h3's way: restarted every fourth minute, its last life never outlives its warm-up
  const restarts = [0, 26, 50, 74, 98].map((i) => i === 0 ? 0 : ticks[i]! + 3000)
  const pidAt = (t: number): number => restarts.filter((r) => r <= t).length
  const h3 = probeTimes.map((t) => ({ t, pid: pidAt(t), rssMB: 60 + pidAt(t), heapMB: 8 }))
  const mine = lastLife(h3)
  assert.ok(mine.every((p) => p.pid === 5))
  const j = judgeLeak(mine, warmupEnd(restarts[4]!, ticks, WARMUP_TICKS))
  assert.equal(j.rssFlat, null)
  // restarted once early (at tick 10), then up to the end: judged past its new life's warm-up, its first life ignored
  const again = probeTimes.map((t) => ({ t, pid: t < ticks[10]! ? 1 : 2, rssMB: t < ticks[10]! ? 90 : 64, heapMB: 8 }))
  const life2 = lastLife(again)
  const end = warmupEnd(ticks[10]! + 3000, ticks, WARMUP_TICKS)
  assert.equal(end, ticks[35])
  const k = judgeLeak(life2, end)
  assert.equal(k.rssFlat, true)
  assert.ok(k.window!.from >= end!)
  assert.deepEqual(k.life!.rssMB, [64, 64])
  assert.throws(() => judgeLeak(again, end), /one process/)
})
