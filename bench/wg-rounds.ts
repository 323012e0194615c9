// The WireGuard head to head (issue 20): weft's wireguard backend against
// Debian's wireguard-go, set up as flanneld sets up flannel-wg, and against
// weft's own vxlan (the same dataplane without the cipher), all three up at
// once, so a round's figures share the machine's moment and divide cleanly.
// 1. set up wireguard-go, weft wireguard and (if it is in the run) weft
//    vxlan, each in its own two-host topology with a pod on each host, each
//    proven (pinged) and warmed (pings at 2 ms: weft's per-batch code gets
//    optimised, as a long-running node's is)
// 2. --rounds rounds; in each, under every congestion control asked for
//    (the machine's default and cubic), one TCP stream pod on h1 -> pod on
//    h2 through each path in turn, --seconds each; the order rotates every
//    round and every congestion control, so each path runs first, second
//    and third equally often
// 3. per run: Gbit/s, retransmits, and the CPU seconds of the processes that
//    carry the packets (both weft daemons; both wireguard-go), read from
//    /proc around the run; divided by the bytes moved (Gbit/s x seconds / 8,
//    GB = 10^9 bytes), CPU seconds per GB. Their syscalls' kernel time is in
//    it (sys), and so is whatever softirq work the kernel did on their
//    behalf in their context (the TUN write delivering to the pod's TCP,
//    the UDP send crossing the veths): the same accounting for both sides
// 4. per congestion control: each path's median Gbit/s (least, greatest),
//    median CPU s/GB; the median of the rounds' ratios weft wireguard /
//    wireguard-go and weft wireguard / weft vxlan (least, greatest)
// The pods of the WireGuard paths have MTU 1420 (the device's, underlay less
// 80, as flannel), weft vxlan's 1450 (flannel's VXLAN MTU): each path as a
// flannel user runs it.
import os from 'node:os'
import { execFileSync } from 'node:child_process'
import { iperf, ping } from '../lab/traffic'
import { backgroundLoad, coresBetween, cpuOf, machineTicks } from '../lab/cpu'
import { proveReachable, withPath } from './paths'
import type { PathDef, PathSetup } from './paths'
import { WARM_UP_PINGS } from './rounds'
import { max, median, min } from './stats'

/** The issue's floor: weft wireguard at least this many times wireguard-go's single-stream TCP in the same run. */
export const WG_TARGET_RATIO = 4

export interface WgRun {
  gbps: number
  retransmits: number
  /** seconds the window lasted (iperf3's server start-up included) */
  wall: number
  /** CPU seconds (user + sys) of each process over the window, h1's (the sender's) first */
  cpuS: number[]
  /** all of cpuS per GB (10^9 bytes) moved */
  cpuPerGB: number
  /** cores the whole machine had busy over the window (this run's traffic included) */
  machineBusy: number
  error?: string
}

export interface WgPathResult {
  name: string
  label: string
  podMtu: number
  /** one per round, in round order (a failed run: gbps NaN and its error) */
  runs: WgRun[]
  medianGbps: number
  minGbps: number
  maxGbps: number
  /** the median of the runs' CPU s/GB */
  cpuPerGB: number
  /** the medians of the sender's and the receiver's cores (CPU s / wall) */
  senderCores: number
  receiverCores: number
}

export interface WgRatio {
  /** per round, where both runs of the round measured */
  rounds: number[]
  median: number
  min: number
  max: number
}

export interface WgCongestionResult {
  /** as asked: 'default' or an algorithm's name */
  congestion: string
  /** what the senders ran ('bbr' for the machine's default here) */
  algorithm: string
  /** 'default (bbr)', 'cubic' */
  label: string
  /** wireguard-go, weft wireguard, weft vxlan (those that came up) */
  paths: WgPathResult[]
  /** weft wireguard / wireguard-go, Gbit/s, round by round */
  weftVsGo: WgRatio
  /** weft wireguard / weft vxlan, Gbit/s, round by round (no rounds without vxlan) */
  weftVsVxlan: WgRatio
  /** CPU s/GB: wireguard-go's / weft wireguard's, round by round (how many times the CPU wireguard-go spends on a GB) */
  cpuGoVsWeft: WgRatio
}

export interface WireguardHeadToHead {
  rounds: number
  seconds: number
  /** wireguard-go --version's first line */
  wireguardGo: string
  /** cores busy before the set-up, with nothing of ours running */
  background: number
  /** os.loadavg() before and after */
  loadavg: { before: number[], after: number[] }
  congestions: WgCongestionResult[]
  /** seconds the whole thing took */
  took: number
  error?: string
}

export interface WgRoundsOptions {
  rounds: number
  seconds: number
  /** 'default' or algorithm names */
  congestions: readonly string[]
  progress: (msg: string) => void
}

export interface WgPaths {
  /** wireguard-go */
  reference: PathDef
  /** weft wireguard */
  weft: PathDef
  /** weft vxlan, if it is to run beside them */
  vxlan?: PathDef
}

/** The order of the paths in round r under congestion control c: rotated, so each path takes each place as often. */
export function roundOrder (count: number, r: number, c: number): number[] {
  const shift = (r + c) % count
  return Array.from({ length: count }, (_, k) => (k + shift) % count)
}

/** A ratio's rounds summarised; NaN where no round measured both. */
export function ratioOf (rounds: number[]): WgRatio {
  const ok = rounds.filter((x) => Number.isFinite(x))
  return { rounds: ok, median: median(ok), min: min(ok), max: max(ok) }
}

/** A path's runs summarised (failed runs left out of the figures, kept in runs). */
export function pathResult (def: { name: string, label: string }, podMtu: number, runs: WgRun[]): WgPathResult {
  const ok = runs.filter((x) => x.error === undefined && Number.isFinite(x.gbps))
  const g = ok.map((x) => x.gbps)
  const cores = (j: number): number => median(ok.map((x) => (x.cpuS[j] ?? NaN) / x.wall))
  return {
    name: def.name,
    label: def.label,
    podMtu,
    runs,
    medianGbps: median(g),
    minGbps: min(g),
    maxGbps: max(g),
    cpuPerGB: median(ok.map((x) => x.cpuPerGB)),
    senderCores: cores(0),
    receiverCores: cores(1)
  }
}

/** Per congestion control: each path's figures and the rounds' ratios. */
export function summariseWg (c: { congestion: string, algorithm: string }, defs: Array<{ name: string, label: string, podMtu: number }>, runs: WgRun[][]): WgCongestionResult {
  const paths = defs.map((d, k) => pathResult(d, d.podMtu, runs[k]))
  const at = (name: string): WgRun[] | undefined => runs[defs.findIndex((d) => d.name === name)]
  const go = at('wireguard-go') ?? []
  const wg = at('wireguard') ?? []
  const vx = at('vxlan') ?? []
  const per = (a: WgRun[], b: WgRun[], f: (x: WgRun) => number): number[] => a.map((x, r) => b[r] !== undefined && x.error === undefined && b[r].error === undefined ? f(x) / f(b[r]) : NaN)
  return {
    congestion: c.congestion,
    algorithm: c.algorithm,
    label: c.congestion === 'default' ? `default (${c.algorithm})` : c.congestion,
    paths,
    weftVsGo: ratioOf(per(wg, go, (x) => x.gbps)),
    weftVsVxlan: ratioOf(per(wg, vx, (x) => x.gbps)),
    cpuGoVsWeft: ratioOf(per(go, wg, (x) => x.cpuPerGB))
  }
}

function wireguardGoVersion (): string {
  try { return execFileSync('wireguard-go', ['--version'], { encoding: 'utf8' }).split('\n')[0].trim() } catch { return 'wireguard-go (version unknown)' }
}

/** One TCP stream through s, the carrying processes' CPU read around it. */
async function measure (s: PathSetup, congestion: string, seconds: number): Promise<WgRun> {
  const [client, server] = s.pods
  const cpu0 = s.procs.map(cpuOf)
  const m0 = machineTicks()
  const t0 = performance.now()
  const t = await iperf(s.topo, server, client, { serverIp: server.ip, seconds, congestion: congestion === 'default' ? undefined : congestion })
  const wall = (performance.now() - t0) / 1000
  const m1 = machineTicks()
  const cpu1 = s.procs.map(cpuOf)
  const cpuS = s.procs.map((_, j) => cpu1[j].user + cpu1[j].sys - cpu0[j].user - cpu0[j].sys)
  const gb = t.gbps * seconds / 8
  return { gbps: t.gbps, retransmits: t.retransmits, wall, cpuS, cpuPerGB: cpuS.reduce((a, x) => a + x, 0) / gb, machineBusy: coresBetween(m0, m1).busy }
}

/**
 * wireguard-go, weft wireguard and weft vxlan (if given) set up at once,
 * then --rounds rounds of one TCP stream through each in turn under every
 * congestion control. wireguard-go or weft wireguard failing to come up
 * fails the whole; weft vxlan failing to come up is left out.
 */
export async function wireguardRounds (paths: WgPaths, o: WgRoundsOptions): Promise<WireguardHeadToHead> {
  const t0 = performance.now()
  const all = [paths.reference, paths.weft, ...(paths.vxlan !== undefined ? [paths.vxlan] : [])]
  const before = os.loadavg()
  const background = await backgroundLoad()
  const version = wireguardGoVersion()
  o.progress(`WireGuard head to head: setting up ${all.map((d) => d.label).join(', ')} (background load ${background.toFixed(2)} cores) ...`)
  const timeoutMs = (all.length * o.congestions.length * o.rounds * (o.seconds + 8) + all.length * 60 + 60) * 1000
  const setups: Array<PathSetup | undefined> = all.map(() => undefined)
  let algorithm = '?'

  const measureAll = async (): Promise<WgCongestionResult[]> => {
    const up = all.map((d, k) => ({ def: d, k })).filter((x) => setups[x.k] !== undefined)
    // runs[c][k][r]
    const runs: WgRun[][][] = o.congestions.map(() => all.map(() => []))
    for (let r = 0; r < o.rounds; r++) {
      o.progress(`WireGuard head to head: round ${r + 1} of ${o.rounds}, one TCP stream, ${o.seconds} s through each of ${up.map((x) => x.def.label).join(', ')}, under ${o.congestions.join(' and ')} ...`)
      for (const [c, congestion] of o.congestions.entries()) {
        const line: string[] = []
        for (const i of roundOrder(up.length, r, c)) {
          const { def, k } = up[i]
          const s = setups[k] as PathSetup
          try {
            const run = await measure(s, congestion, o.seconds)
            runs[c][k][r] = run
            line.push(`${def.label} ${run.gbps.toFixed(2)} Gbit/s ${run.cpuPerGB.toFixed(1)} s/GB`)
          } catch (err) {
            // one failed run loses that run, not the round's others
            runs[c][k][r] = { gbps: NaN, retransmits: NaN, wall: NaN, cpuS: [], cpuPerGB: NaN, machineBusy: NaN, error: (err as Error).message }
            line.push(`${def.label} failed: ${(err as Error).message.split('\n')[0]}`)
          }
        }
        o.progress(`  ${congestion === 'default' ? `default (${algorithm})` : congestion}: ${line.join(', ')}`)
      }
    }
    return o.congestions.map((congestion, c) => summariseWg(
      { congestion, algorithm: congestion === 'default' ? algorithm : congestion },
      up.map((x) => ({ name: x.def.name, label: x.def.label, podMtu: (setups[x.k] as PathSetup).podMtu })),
      up.map((x) => runs[c][x.k])
    ))
  }

  // nested: each path stays up (and is torn down) around the ones after it
  const upFrom = async (i: number): Promise<WgCongestionResult[]> => {
    if (i === all.length) return await measureAll()
    let came = false
    try {
      return await withPath(all[i], { label: 'bench-wg', timeoutMs, progress: o.progress }, async (s) => {
        await proveReachable(s.topo, s.pods[0], s.pods[1], all[i].label)
        await ping(s.topo, s.pods[0], s.pods[1].ip, { count: WARM_UP_PINGS, intervalS: 0.002, waitS: 1 })
        if (i === 0) algorithm = (await s.topo.exec(s.pods[0].ns, ['cat', '/proc/sys/net/ipv4/tcp_congestion_control'])).stdout.trim()
        setups[i] = s
        came = true
        return await upFrom(i + 1)
      })
    } catch (err) {
      // only weft vxlan may be left out
      if (came || all[i] !== paths.vxlan) throw err
      o.progress(`WireGuard head to head: ${all[i].label} did not come up, going on without it: ${(err as Error).message}`)
      return await upFrom(i + 1)
    }
  }

  const base = { rounds: o.rounds, seconds: o.seconds, wireguardGo: version, background }
  try {
    const congestions = await upFrom(0)
    return { ...base, loadavg: { before, after: os.loadavg() }, congestions, took: (performance.now() - t0) / 1000 }
  } catch (err) {
    o.progress(`WireGuard head to head failed: ${(err as Error).stack ?? String(err)}`)
    return { ...base, loadavg: { before, after: os.loadavg() }, congestions: [], took: (performance.now() - t0) / 1000, error: (err as Error).message }
  }
}

// --- the table ---------------------------------------------------------------

const f2 = (x: number | undefined): string => x !== undefined && Number.isFinite(x) ? x.toFixed(2) : '-'
const f1 = (x: number | undefined): string => x !== undefined && Number.isFinite(x) ? x.toFixed(1) : '-'

function ratioText (r: WgRatio): string {
  return r.rounds.length === 0 ? '-' : `${f2(r.median)}x (${f2(r.min)} to ${f2(r.max)})`
}

/** The head to head's table: per congestion control, each path's rounds, median and CPU per GB, then the ratios. */
export function printWireguardRounds (h: WireguardHeadToHead, print: (l: string) => void): void {
  const labels = [...new Set(h.congestions.flatMap((c) => c.paths.map((p) => p.label)))]
  print(`\nWireGuard head to head: ${labels.length > 0 ? labels.join(', ') : 'weft wireguard and wireguard-go'} set up at once, one TCP stream pod -> pod through each in turn, ${h.rounds} rounds of ${h.seconds} s (the order rotating); ${h.wireguardGo}`)
  if (h.error !== undefined && h.congestions.length === 0) { print(`failed: ${h.error.split('\n')[0]}`); return }
  const n = Math.max(0, ...h.congestions.flatMap((c) => c.paths.map((p) => p.runs.length)))
  const cw = Math.max(10, ...h.congestions.map((c) => c.label.length)) + 2
  const pw = Math.max(14, ...labels.map((l) => l.length)) + 2
  print(`${'congestion'.padEnd(cw)}${'path'.padEnd(pw)}MTU   ${Array.from({ length: n }, (_, i) => `round ${i + 1}`.padStart(8)).join('')}   median Gbit/s (min to max)   CPU s/GB   cores snd/rcv`)
  for (const c of h.congestions) {
    for (const [j, p] of c.paths.entries()) {
      const cells = Array.from({ length: n }, (_, r) => f2(p.runs[r]?.gbps).padStart(8)).join('')
      const range = `${f2(p.medianGbps)} (${f2(p.minGbps)} to ${f2(p.maxGbps)})`
      print(`${(j === 0 ? c.label : '').padEnd(cw)}${p.label.padEnd(pw)}${String(p.podMtu).padEnd(6)}${cells}   ${range.padEnd(27)}  ${f1(p.cpuPerGB).padStart(8)}   ${f2(p.senderCores)}/${f2(p.receiverCores)}`)
    }
    print(`${''.padEnd(cw)}weft wireguard / wireguard-go, Gbit/s: ${ratioText(c.weftVsGo)}${c.weftVsGo.rounds.length > 0 ? (c.weftVsGo.min >= WG_TARGET_RATIO ? `, every round >= ${WG_TARGET_RATIO}x` : `, not every round >= ${WG_TARGET_RATIO}x`) : ''}`)
    print(`${''.padEnd(cw)}CPU per GB, wireguard-go / weft wireguard: ${ratioText(c.cpuGoVsWeft)}`)
    if (c.weftVsVxlan.rounds.length > 0) print(`${''.padEnd(cw)}weft wireguard / weft vxlan, Gbit/s: ${ratioText(c.weftVsVxlan)}`)
  }
  const errors = h.congestions.flatMap((c) => c.paths.flatMap((p) => p.runs.filter((x) => x.error !== undefined).map((x) => `${c.label}, ${p.label}: ${(x.error ?? '').split('\n')[0]}`)))
  for (const e of errors) print(`failed run: ${e}`)
  print(`CPU s/GB: CPU seconds (user + sys) of both processes that carry the packets (weft: the two daemons; wireguard-go: the two wireguard-go) per 10^9 bytes the receiving pod got; cores snd/rcv: the sending and receiving node's process, medians. Background load ${f2(h.background)} cores before the set-up; load average ${h.loadavg.before.map(f2).join(' ')} before, ${h.loadavg.after.map(f2).join(' ')} after, on ${os.cpus().length} CPUs`)
}
