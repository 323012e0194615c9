// Watching peer tables converge, for the churn test: each live daemon's
// /status polled every 50 ms (the answers kept as samples), a log of every
// lease change with when it reached the store, and the analysis that holds
// the samples against the log.
import type { Daemon } from '../../lab/daemons'
import { sleep } from '../../lab/proc'

export interface Sample {
  host: string
  /** one daemon's run: a host that leaves and joins again polls under a new one */
  run: number
  /** when the request went out and the answer came back (ms since the epoch) */
  sentAt: number
  at: number
  /** the subnets in the daemon's table */
  peers: ReadonlySet<string>
}

/** A lease written (a node joined) or deleted (a node left), at `at` ms since the epoch. */
export interface Change {
  kind: 'join' | 'leave'
  host: string
  subnet: string
  at: number
}

export interface Poller {
  /** the run its samples carry */
  run: number
  stop: () => Promise<void>
}

let runs = 0

/** GET /status from `d` every `intervalMs` (start to start) until stopped. */
export function pollTable (d: Daemon, intervalMs: number, out: Sample[]): Poller {
  let stopped = false
  const run = ++runs
  const loop = (async () => {
    while (!stopped) {
      const sentAt = Date.now()
      try {
        const s = await d.status()
        out.push({ host: d.host.name, run, sentAt, at: Date.now(), peers: new Set(s.peers.map((p) => p.subnet as string)) })
      } catch {
        // a daemon being stopped; the caller stops polling it first, so this is rare and harmless
      }
      // the sampling rate, part of the measurement: a table is looked at every intervalMs
      await sleep(Math.max(0, intervalMs - (Date.now() - sentAt)))
    }
  })()
  return { run, stop: async () => { stopped = true; await loop } }
}

/** The leases in the store at time t, by the change log (plus what was there from the start). */
export function leasesAt (changes: readonly Change[], fixed: readonly string[], t: number): Set<string> {
  const s = new Set(fixed)
  for (const c of changes) {
    if (c.at > t) continue
    if (c.kind === 'join') s.add(c.subnet)
    else s.delete(c.subnet)
  }
  return s
}

export interface Violation {
  sample: Sample
  /** subnets the table should have had, and had not */
  missing: string[]
  /** subnets the table had, and should not have had */
  stale: string[]
}

/**
 * Every sample against the store: a table may differ from the leases (less
 * the node's own) only in subnets that changed within `boundMs` before the
 * sample. `slackMs` covers a join's timestamp, which is logged just after the
 * write that peers may already have seen.
 */
export function violations (samples: readonly Sample[], changes: readonly Change[], fixed: readonly string[], own: (host: string, t: number) => string | undefined, boundMs: number, slackMs = 10): Violation[] {
  const sorted = [...changes].sort((a, b) => a.at - b.at)
  const out: Violation[] = []
  for (const s of samples) {
    const recent = new Set(sorted.filter((c) => c.at > s.sentAt - boundMs && c.at <= s.at + slackMs).map((c) => c.subnet))
    const want = leasesAt(sorted, fixed, s.sentAt)
    const mine = own(s.host, s.sentAt)
    if (mine !== undefined) want.delete(mine)
    const missing = [...want].filter((x) => !s.peers.has(x) && !recent.has(x))
    const stale = [...s.peers].filter((x) => !want.has(x) && !recent.has(x))
    if (missing.length > 0 || stale.length > 0) out.push({ sample: s, missing, stale })
  }
  return out
}

export interface Convergence {
  change: Change
  /** from the change to the last observer's first sample that shows it (an upper bound) */
  ms: number
  slowest: string
  observers: number
  /** the same, by the time each observer logged the change (undefined if one did not) */
  loggedMs: number | undefined
}

/**
 * For each change: every other daemon that was polled (the same run) from
 * before it to `boundMs` after it must show it; how long the slowest took,
 * by the samples and by `logged` (when that run logged the change, if it did).
 */
export function convergence (samples: readonly Sample[], changes: readonly Change[], boundMs: number, logged: (run: number, c: Change) => number | undefined): Convergence[] {
  const byRun = new Map<number, Sample[]>()
  for (const s of samples) {
    const l = byRun.get(s.run) ?? []
    l.push(s)
    byRun.set(s.run, l)
  }
  for (const l of byRun.values()) l.sort((a, b) => a.sentAt - b.sentAt)
  const out: Convergence[] = []
  for (const c of changes) {
    let worst = { ms: 0, host: '-' }
    let loggedMs: number | undefined = 0
    let observers = 0
    for (const [run, l] of byRun) {
      if (l[0].host === c.host) continue
      if (!(l[0].sentAt < c.at && l[l.length - 1].sentAt > c.at + boundMs)) continue
      observers++
      const shows = l.find((s) => s.at >= c.at && s.peers.has(c.subnet) === (c.kind === 'join'))
      const ms = shows === undefined ? Infinity : Math.max(0, shows.at - c.at)
      if (ms > worst.ms) worst = { ms, host: l[0].host }
      const at = logged(run, c)
      loggedMs = at === undefined || loggedMs === undefined ? undefined : Math.max(loggedMs, at - c.at)
    }
    out.push({ change: c, ms: worst.ms, slowest: worst.host, observers, loggedMs })
  }
  return out
}

export function percentile (xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]
}
