// What the soak does each tick and what it keeps of it: the plan's numbers,
// the clock every sample is stamped with, and one record (`rec`) that the
// traffic, sampling and churn modules append to and the verdict reads. One
// soak per process, so the record is this module's state rather than an
// object passed through every call.

export const TICK_MS = 10_000
export const PINGS = { count: 40, intervalS: 0.25, waitS: 1 }
export const UDP = { seconds: 8, mbps: 20, port: 5202, len: 1200 }
export const TCP_SECONDS = 4
/** ticks in one of the schedule's minutes (churn runs on a cycle of six) */
export const TICKS_PER_MINUTE = 6
/** the first heap probe, once the first minute is over (it shows the warm-up's rise) */
export const FIRST_PROBE_TICK = 6
/** heap probes every three of the schedule's minutes, counted from the end of warm-up */
export const PROBE_EVERY_TICKS = 18
/** the leak verdict judges what comes after: why 24, in leak.ts (--warmup changes it) */
export const WARMUP_TICKS = 24

/** Whether tick i starts with heap probes: at FIRST_PROBE_TICK, at the end of warm-up, and every PROBE_EVERY_TICKS before and after it. */
export function probeDue (i: number, warmupTicks: number): boolean {
  return i === FIRST_PROBE_TICK || (i > FIRST_PROBE_TICK && (i - warmupTicks) % PROBE_EVERY_TICKS === 0)
}

export const progress = (msg: string): void => { process.stderr.write(`soak: ${msg}\n`) }
const t0 = Date.now()
export const startedAt = t0
export const now = (): number => Date.now() - t0
export const clock = (ms: number): string => `${String(Math.floor(ms / 60_000)).padStart(2, '0')}:${String(Math.floor(ms / 1000) % 60).padStart(2, '0')}`
export const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d

// --- what is recorded ------------------------------------------------------

export type Class = 'quiet' | 'loaded' | 'churn'
export interface Window { node: string, kind: string, from: number, to: number }
export interface PingChunk { from: string, to: string, t0: number, t1: number, sent: number, received: number, cls: Class }
export interface UdpChunk { t0: number, t1: number, packets: number, lost: number, cls: Class }
export interface Burst { t0: number, t1: number, from: string, to: string, gbps: number, retransmits: number }
export interface RssSample { t: number, mb: number }
export interface Incarnation { node: string, pid: number, started: number, stopped?: number, exit?: number | null, rss: RssSample[], errors: string[], warnings: string[], otherStderr: string[], drops?: Record<string, number> }
/** process.memoryUsage() of a daemon just before and just after a forced full GC, in MB. */
export interface Probe { t: number, node: string, pid: number, before: { rss: number, heapUsed: number }, after: { rss: number, heapUsed: number, heapTotal: number, external: number } }
/** Drop counters of one namespace at one moment (cumulative; a restart resets weft's and the TUN's). */
export interface Drops { tunTxDropped: number, udpRcvbufErrors: number, udpInErrors: number, weft: number }
export interface DropSnapshot { t: number, at: Record<string, Drops> }
export interface ChurnOp { t: number, node: string, kind: 'restart' | 'leave' | 'join' | 'decommission' | 'rejoin', ms: number, ok: boolean, note?: string }

export const rec = {
  windows: [] as Window[],
  bursts: [] as Burst[],
  pings: [] as PingChunk[],
  udp: [] as UdpChunk[],
  incarnations: [] as Incarnation[],
  churn: [] as ChurnOp[],
  load: [] as Array<{ t: number, loadavg1: number }>,
  drops: [] as DropSnapshot[],
  probes: [] as Probe[],
  /** when each tick started (a process' warm-up is counted in ticks) */
  ticks: [] as number[],
  failures: [] as string[]
}

export function classify (nodes: readonly string[], a: number, b: number): Class {
  if (rec.windows.some((w) => nodes.includes(w.node) && w.from <= b && w.to >= a)) return 'churn'
  if (rec.bursts.some((x) => x.t0 <= b && x.t1 >= a)) return 'loaded'
  return 'quiet'
}
