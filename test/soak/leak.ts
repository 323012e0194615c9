// The soak's leak verdict, judged past warm-up. A daemon's memory after a
// forced full GC rises for its first minutes (code compiled and optimized,
// the allocator's arenas and V8's pages sized to the traffic, peer tables
// and sockets filled) and then holds; a leak keeps rising. So the verdict
// judges only the probes from the end of a process's warm-up to its last,
// and shows the whole life beside them, unjudged.
//
// Warm-up: the first WARMUP_TICKS ticks of the soak's schedule that the
// process lives through (default 24, four of the schedule's minutes). Why
// that: every kind of traffic and churn the soak sends has come at least
// once by tick 17 (UDP and pings from tick 0, h3's restart at tick 2, the
// three TCP burst pairs by tick 7, h4's join, leave and rejoin by tick 15,
// h5's join, decommission and rejoin by tick 17), and four minutes is the
// churn's full cycle (h3 restarts every fourth minute), so by tick 24 the
// daemon has served the whole schedule and had a minute more to settle. It
// is also what was measured: in a 40-minute run RSS after GC rose only
// before the 4-minute probe (h1 67.4 -> 69.1 MB, h2 60.0 -> 65.4) and then
// held (+0.7 and +0.4 MB over the next 36 minutes). A fixed count, not a
// fraction of the run: a longer run then judges a longer window, which is
// what a slow leak needs. The heap probes are taken on the tick where
// warm-up ends, so the judged window starts right there.
//
// The rule, for RSS after GC (bar 2 MB) and the heap in use after GC
// (bar 1 MB), over the judged window (at least two probes, two minutes
// apart or more: LEAK_RULE.minWindowMs):
//   - the growth from its first probe to its last is under the bar, and
//   - the least-squares line through its probes, extrapolated to an hour,
//     rises less than the bar: a slow leak fails a short run too, and one
//     low last probe cannot hide a rising series. A window shorter than
//     30 minutes cannot resolve that rate from the steps memory moves in
//     (V8 grows its heap by 256 KB pages, malloc by chunks: a flat daemon's
//     RSS after GC moved +0.52 MB and its heap +0.22 MB between three
//     probes six minutes apart in a 10-minute soak here, 2026-12-07, and
//     +0.4 to +0.7 MB over 36 minutes of a 40-minute one), so there the
//     fitted rise across the window may instead stay under the floor, half
//     the bar (1 MB, 0.5 MB): a 10-minute run's six judged minutes still
//     fail a leak of 2 MB per 10 minutes (12 MB/h), and the 60-minute run
//     judges the rate itself.
// Not judged (null) when the process never got two probes that far apart
// past its warm-up: a run too short, or a daemon restarted since (it is
// judged on its last life only, as before warm-up was judged).

export const HOUR_MS = 3_600_000

export interface Bar {
  /** growth allowed across the judged window, and per hour of the fitted line */
  growthMB: number
  /** a fitted rise across the window under this passes whatever the rate (windows under 30 min) */
  floorMB: number
}

export interface LeakRule {
  rss: Bar
  heap: Bar
  /** the judged window spans at least this, else nothing is judged */
  minWindowMs: number
}

export const LEAK_RULE: LeakRule = {
  rss: { growthMB: 2, floorMB: 1 },
  heap: { growthMB: 1, floorMB: 0.5 },
  minWindowMs: 2 * 60_000
}

/** Under how long a window (minutes) the floor, not the hourly rate, judges the fitted line: 30 for both bars. */
export const floorWindowMinutes = (bar: Bar): number => (HOUR_MS / 60_000) * (bar.floorMB / bar.growthMB)

/** One heap probe of one process: memoryUsage() after a forced full GC, in MB. */
export interface MemoryProbe { t: number, pid: number, rssMB: number, heapMB: number }

/** Least-squares slope of mb over t, in MB per ms (0 with fewer than two distinct times). */
export function fitSlope (xs: ReadonlyArray<{ t: number, mb: number }>): number {
  if (xs.length < 2) return 0
  const n = xs.length
  const mt = xs.reduce((a, s) => a + s.t, 0) / n
  const mm = xs.reduce((a, s) => a + s.mb, 0) / n
  const num = xs.reduce((a, s) => a + (s.t - mt) * (s.mb - mm), 0)
  const den = xs.reduce((a, s) => a + (s.t - mt) ** 2, 0)
  return den === 0 ? 0 : num / den
}

/**
 * When a process' warm-up ends: the start of the WARMUP_TICKS-th tick it
 * lived through whole (the first is the first tick starting at or after its
 * start). undefined when the run ended first.
 */
export function warmupEnd (started: number, tickStarts: readonly number[], warmupTicks: number): number | undefined {
  const first = tickStarts.findIndex((t) => t >= started)
  return first < 0 ? undefined : tickStarts[first + warmupTicks]
}

/** The probes of the process probed last (a daemon restarted mid-run is judged on its last life). */
export function lastLife<P extends { pid: number }> (probes: readonly P[]): P[] {
  const last = probes[probes.length - 1]
  return last === undefined ? [] : probes.filter((p) => p.pid === last.pid)
}

export interface MetricJudgement {
  fromMB: number
  toMB: number
  /** last probe minus first */
  growthMB: number
  /** the fitted line's rise across the window */
  fitRiseMB: number
  /** the fitted line's rise in an hour */
  fitPerHourMB: number
  ok: boolean
  /** what failed, in words (empty when ok) */
  failed: string[]
}

export interface LeakJudgement {
  pid: number | undefined
  /** the process' first and last probes, warm-up included: shown, never judged */
  life: { from: number, to: number, rssMB: [number, number], heapMB: [number, number] } | null
  warmupEnd: number | undefined
  /** the probes judged: from the first at or after the end of warm-up to the last */
  window: { from: number, to: number, probes: number } | null
  rss: MetricJudgement | null
  heap: MetricJudgement | null
  /** null: not judged (see `unjudged`) */
  rssFlat: boolean | null
  heapFlat: boolean | null
  /** why nothing was judged */
  unjudged?: string
}

const r2 = (x: number): number => Math.round(x * 100) / 100

function judgeMetric (xs: ReadonlyArray<{ t: number, mb: number }>, bar: Bar): MetricJudgement {
  const first = xs[0]!
  const last = xs[xs.length - 1]!
  const perMs = fitSlope(xs)
  const growth = last.mb - first.mb
  const rise = perMs * (last.t - first.t)
  const perHour = perMs * HOUR_MS
  const failed: string[] = []
  if (!(growth < bar.growthMB)) failed.push(`grew ${r2(growth)} MB >= ${bar.growthMB} MB`)
  if (!(perHour < bar.growthMB || rise < bar.floorMB)) failed.push(`fitted ${r2(perHour)} MB/h >= ${bar.growthMB} MB/h, and ${r2(rise)} MB across the window >= ${bar.floorMB} MB`)
  return { fromMB: first.mb, toMB: last.mb, growthMB: r2(growth), fitRiseMB: r2(rise), fitPerHourMB: r2(perHour), ok: failed.length === 0, failed }
}

/**
 * The leak verdict of one process from its own probes (one pid, in time
 * order) and the end of its warm-up (undefined: the run ended first).
 */
export function judgeLeak (probes: readonly MemoryProbe[], end: number | undefined, rule: LeakRule = LEAK_RULE): LeakJudgement {
  const first = probes[0]
  const last = probes[probes.length - 1]
  const base = {
    pid: last?.pid,
    life: first !== undefined && last !== undefined && first !== last
      ? { from: first.t, to: last.t, rssMB: [first.rssMB, last.rssMB] as [number, number], heapMB: [first.heapMB, last.heapMB] as [number, number] }
      : null,
    warmupEnd: end
  }
  const none = (why: string): LeakJudgement => ({ ...base, window: null, rss: null, heap: null, rssFlat: null, heapFlat: null, unjudged: why })
  if (probes.some((p) => p.pid !== last?.pid)) throw new Error('judgeLeak takes the probes of one process')
  if (last === undefined) return none('never probed')
  if (end === undefined) return none('the run ended before its warm-up did')
  const past = probes.filter((p) => p.t >= end)
  if (past.length < 2) return none(`probed ${past.length === 0 ? 'never' : 'once'} past warm-up`)
  const span = past[past.length - 1]!.t - past[0]!.t
  if (span < rule.minWindowMs) return none(`its probes past warm-up span ${r2(span / 60_000)} min, under ${rule.minWindowMs / 60_000}`)
  const rss = judgeMetric(past.map((p) => ({ t: p.t, mb: p.rssMB })), rule.rss)
  const heap = judgeMetric(past.map((p) => ({ t: p.t, mb: p.heapMB })), rule.heap)
  return { ...base, window: { from: past[0]!.t, to: past[past.length - 1]!.t, probes: past.length }, rss, heap, rssFlat: rss.ok, heapFlat: heap.ok }
}
