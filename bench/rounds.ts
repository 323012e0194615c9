// Head-to-head rounds: one TCP stream (or --streams) through a reference path
// (kernel VXLAN; or weft vxlan with one worker, against two) and through a
// weft path, alternating, with both topologies up at once. On a shared machine
// the rate of either path moves by a third between minutes; a ratio of two
// runs taken a minute apart carries that drift. Alternating short runs and
// taking the median of the per-round ratios leaves mostly the difference
// between the paths.
// 1. set up kernel VXLAN, once, and keep it up
// 2. for each weft path: set it up beside it, warm it (pings at 2 ms), then
//    --rounds rounds of "kernel, weft" in ABBA order (round 2 runs weft
//    first), --seconds each; the round's ratio is weft / kernel
// 3. per path: every round's pair, and the median of the ratios
// Ping rounds (pingRounds) are the same idea for round-trip time, with every
// path up at once: a ping's median moves by 2x between minutes on this VM.
import type { Pod } from '../lab/pods'
import type { Topology } from '../lab/netns'
import { iperf, ping } from '../lab/traffic'
import { proveReachable, withPath } from './paths'
import type { PathDef, PathSetup } from './paths'
import { median } from './stats'

export interface Round {
  /** the reference path's (kernel VXLAN, unless the rounds were run against another) */
  kernelGbps: number
  weftGbps: number
  /** weftGbps / kernelGbps */
  ratio: number
}

export interface HeadToHead {
  name: string
  label: string
  rounds: Round[]
  /** the median of the rounds' ratios (for an even count, the mean of the middle two) */
  medianRatio: number
  error?: string
}

export interface RoundsOptions {
  rounds: number
  seconds: number
  /** the TCP sender's congestion control; undefined: the machine's default */
  congestion: string | undefined
  /** parallel TCP streams per run (default 1) */
  streams?: number
  progress: (msg: string) => void
}

/** unmeasured pings at 2 ms before a path is measured: a fresh daemon's per-batch code gets optimised, as a long-running node's is */
export const WARM_UP_PINGS = 300

async function tcp (s: PathSetup, o: RoundsOptions): Promise<number> {
  const [client, server] = s.pods
  return (await iperf(s.topo, server, client, { serverIp: server.ip, seconds: o.seconds, parallel: o.streams ?? 1, congestion: o.congestion })).gbps
}

export interface PingRound {
  /** medians of the round's pings, ms */
  kernelMs: number
  weftMs: number
  /** weft's median minus kernel VXLAN's, µs */
  gapUs: number
  /** which round (from 0): a path's failed rounds are left out, so this pairs two paths' rounds (runs before 2026-12-07 13:00 lack it) */
  round?: number
}

export interface PingHeadToHead {
  name: string
  label: string
  rounds: PingRound[]
  /** the median of the rounds' gaps, µs */
  medianGapUs: number
  error?: string
}

/** Echo requests per path per ping round, at 10 ms (as the per-path ping). */
export const PING_ROUND_COUNT = 100

async function pingMedianMs (s: PathSetup): Promise<number> {
  const [client, server] = s.pods
  const p = await ping(s.topo, client, server.ip, { count: PING_ROUND_COUNT, intervalS: 0.01, waitS: 1, rtts: true })
  if (p.rtts === undefined || p.rtts.length === 0) throw new Error(`no ping replies through ${server.name}'s path`)
  return median(p.rtts)
}

/**
 * Kernel VXLAN and each weft path set up at once and warmed, then --rounds
 * rounds of PING_ROUND_COUNT pings through each in turn (the order reversed
 * every other round). A round's figure for a weft path is its median minus
 * kernel VXLAN's in the same round.
 */
export async function pingRounds (kernel: PathDef, wefts: PathDef[], o: { rounds: number, progress: (msg: string) => void }): Promise<PingHeadToHead[]> {
  const all = [kernel, ...wefts]
  const timeoutMs = (all.length * (o.rounds * 3 + 60) + 60) * 1000
  // per path: its set-up (undefined: it failed to come up) and the first error
  const setups: Array<PathSetup | undefined> = []
  const errors: Array<string | undefined> = all.map(() => undefined)
  const measure = async (): Promise<PingHeadToHead[]> => {
    const medians: number[][] = all.map(() => [])
    for (let r = 0; r < o.rounds; r++) {
      o.progress(`ping rounds: round ${r + 1} of ${o.rounds}, ${PING_ROUND_COUNT} pings at 10 ms through each of ${all.map((d) => d.label).join(', ')} ...`)
      const order = all.map((_, k) => r % 2 === 0 ? k : all.length - 1 - k)
      for (const k of order) {
        const s = setups[k]
        medians[k][r] = NaN
        if (s === undefined) continue
        try {
          medians[k][r] = await pingMedianMs(s)
        } catch (err) {
          // kernel VXLAN's failure leaves nothing to compare with: it ends the rounds
          if (k === 0) throw err
          errors[k] ??= (err as Error).message
        }
      }
      o.progress(`  medians ${all.map((d, k) => `${d.label} ${medians[k][r].toFixed(3)}`).join(', ')} ms`)
    }
    return wefts.map((d, j) => {
      const rounds = medians[0].map((kernelMs, r) => ({ kernelMs, weftMs: medians[j + 1][r], gapUs: (medians[j + 1][r] - kernelMs) * 1000, round: r }))
      const measured = rounds.filter((x) => Number.isFinite(x.gapUs))
      const error = errors[j + 1]
      return { name: d.name, label: d.label, rounds: measured, medianGapUs: median(measured.map((x) => x.gapUs)), ...(error !== undefined ? { error } : {}) }
    })
  }
  return await withPathsUp(all, { label: 'bench-ping', what: 'ping rounds', timeoutMs, progress: o.progress }, setups, errors, measure)
}

/**
 * Every path of `all` set up at once, then `measure()`: nested, so that each
 * path stays up (and is torn down) around the ones after it; each is proven
 * reachable and warmed, and put in setups[i]. A path after the first that
 * fails to come up is left out (its error in errors[i]) and the others go on.
 */
export async function withPathsUp<T> (all: readonly PathDef[], o: { label: string, what: string, timeoutMs: number, progress: (msg: string) => void }, setups: Array<PathSetup | undefined>, errors: Array<string | undefined>, measure: () => Promise<T>): Promise<T> {
  const upFrom = async (i: number): Promise<T> => {
    if (i === all.length) return await measure()
    let up = false
    try {
      return await withPath(all[i], { label: o.label, timeoutMs: o.timeoutMs, progress: o.progress }, async (s) => {
        await proveReachable(s.topo, s.pods[0], s.pods[1], all[i].label)
        await warm(s.topo, s.pods[0], s.pods[1])
        setups[i] = s
        up = true
        return await upFrom(i + 1)
      })
    } catch (err) {
      if (up || i === 0) throw err
      o.progress(`${o.what}: ${all[i].label} did not come up, going on without it: ${(err as Error).message}`)
      errors[i] = (err as Error).message
      return await upFrom(i + 1)
    }
  }
  return await upFrom(0)
}

async function warm (topo: Topology, client: Pod, server: Pod): Promise<void> {
  await ping(topo, client, server.ip, { count: WARM_UP_PINGS, intervalS: 0.002, waitS: 1 })
}

export async function headToHead (kernel: PathDef, wefts: PathDef[], o: RoundsOptions): Promise<HeadToHead[]> {
  const timeoutMs = (wefts.length * (2 * o.rounds * (o.seconds + 5) + 60) + 60) * 1000
  return await withPath(kernel, { label: 'bench-h2h', timeoutMs, progress: o.progress }, async (k) => {
    await proveReachable(k.topo, k.pods[0], k.pods[1], kernel.label)
    await warm(k.topo, k.pods[0], k.pods[1])
    const out: HeadToHead[] = []
    for (const def of wefts) {
      const rounds: Round[] = []
      try {
        await withPath(def, { label: 'bench-h2h', timeoutMs, progress: o.progress }, async (w) => {
          await proveReachable(w.topo, w.pods[0], w.pods[1], def.label)
          await warm(w.topo, w.pods[0], w.pods[1])
          for (let r = 0; r < o.rounds; r++) {
            o.progress(`head to head, ${def.label} against ${kernel.label}: round ${r + 1} of ${o.rounds}, TCP ${o.streams ?? 1} stream(s), ${o.seconds} s each ...`)
            let kernelGbps: number
            let weftGbps: number
            if (r % 2 === 0) {
              kernelGbps = await tcp(k, o)
              weftGbps = await tcp(w, o)
            } else {
              weftGbps = await tcp(w, o)
              kernelGbps = await tcp(k, o)
            }
            rounds.push({ kernelGbps, weftGbps, ratio: weftGbps / kernelGbps })
            o.progress(`  ${kernel.label} ${kernelGbps.toFixed(2)}, ${def.label} ${weftGbps.toFixed(2)} Gbit/s: ${(weftGbps / kernelGbps).toFixed(2)}x`)
          }
        })
        out.push({ name: def.name, label: def.label, rounds, medianRatio: median(rounds.map((x) => x.ratio)) })
      } catch (err) {
        // one broken path must not lose the others' rounds
        o.progress(`head to head, ${def.label} failed: ${(err as Error).stack ?? String(err)}`)
        out.push({ name: def.name, label: def.label, rounds, medianRatio: median(rounds.map((x) => x.ratio)), error: (err as Error).message })
      }
    }
    return out
  })
}
