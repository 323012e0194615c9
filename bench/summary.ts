// Several `npm run bench` runs side by side, as issue 19 judges them: one
// run is one hour's weather on this VM (a path's rate moves by a third from
// one minute to the next), so what a figure is worth is its spread over runs
// taken at different hours, and whether a goal held in every one of them.
// 1. read each run's JSON (bench/results/<timestamp>.json, or the files
//    named); runs that measured none of the rounds below are left out, and
//    said so
// 2. per measure, each run's figure: the head-to-head ratios by condition
//    (pod, pod-4, node, other-cni, under the machine's default congestion
//    control and cubic), weft ipip's and udp's one-stream ratios, the UDP
//    search (highest rate within 1 % loss against kernel VXLAN's, and loss
//    at kernel VXLAN's rate), the ping rounds (weft's median over kernel
//    VXLAN's; the C forwarder's, the floor, and weft's over it; --busy-poll's
//    gap in µs), IPv6 beside IPv4
// 3. the least, median and greatest over the runs, the goal (issue 19's,
//    and issue 22's for IPv6), and whether every run that measured it met it
//
// usage: node dist/bench/summary.js [FILE.json ...] [--json]
//        (no files: every whole or partial run in bench/results)
import fs from 'node:fs'
import path from 'node:path'
import type { ConditionResult } from './conditions'
import type { HeadToHead, PingHeadToHead } from './rounds'
import { overFloor } from './ping-floor'
import type { UdpMaxRate } from './udp-search'
import type { Ipv6HeadToHead } from './ipv6'
import { max, median, min } from './stats'

/** What a run's JSON holds that the summary reads (bench/run.ts writes it). */
export interface RunJson {
  started: string
  options?: { congestion?: string }
  headToHead?: HeadToHead[]
  headToHeadByCondition?: ConditionResult[]
  pingRounds?: PingHeadToHead[]
  udpMaxRate?: UdpMaxRate
  ipv6HeadToHead?: Ipv6HeadToHead
  /** one per congestion control (runs since 2026-12-07); older runs have ipv6HeadToHead alone */
  ipv6HeadToHeadByCongestion?: Ipv6HeadToHead[]
}

/** A goal: the figure must be at least (`>=`) or at most (`<=`) this. */
export interface Goal { op: '>=' | '<=', value: number }

export interface Measure {
  key: string
  label: string
  unit: string
  goal?: Goal
  /** where it comes from in a run; undefined: not measured there */
  of: (r: RunJson) => number | undefined
}

export interface MeasureSummary {
  key: string
  label: string
  unit: string
  goal?: Goal
  /** one per run, in the runs' order; null: not measured in that run */
  values: Array<number | null>
  min: number | null
  median: number | null
  max: number | null
  /** every run that measured it met the goal (null: no goal, or no run measured it) */
  metInEvery: boolean | null
}

export interface Summary {
  runs: Array<{ file: string, started: string }>
  measures: MeasureSummary[]
}

const finite = (x: number | undefined): number | undefined => x !== undefined && Number.isFinite(x) ? x : undefined

/** A condition's median ratio ('pod:cubic' may be the per-path head to head of weft vxlan, which stands for it when run under cubic). */
function condition (r: RunJson, name: string, congestion: string): number | undefined {
  const c = r.headToHeadByCondition?.find((x) => x.name === `${name}:${congestion}` && x.error === undefined)
  if (c !== undefined) return finite(c.medianRatio)
  if (name === 'pod' && congestion === (r.options?.congestion ?? 'cubic')) return pathRatio(r, 'vxlan')
  return undefined
}

function pathRatio (r: RunJson, name: string): number | undefined {
  const h = r.headToHead?.find((x) => x.name === name && x.error === undefined)
  return h === undefined ? undefined : finite(h.medianRatio)
}

function udpMax (r: RunJson, name: string): number | undefined {
  const u = r.udpMaxRate
  const kernel = u?.paths.find((p) => p.name === 'kernel-vxlan')
  const weft = u?.paths.find((p) => p.name === name)
  if (kernel === undefined || weft === undefined) return undefined
  return finite(weft.maxMbps / kernel.maxMbps)
}

function udpLossAtKernelRate (r: RunJson, name: string): number | undefined {
  return finite(r.udpMaxRate?.atKernelRate?.paths.find((p) => p.name === name && p.error === undefined)?.medianLostPercent)
}

/** weft's ping median over kernel VXLAN's, the median over the rounds (each round's two medians side by side). */
function pingRatio (r: RunJson, name: string): number | undefined {
  const p = r.pingRounds?.find((x) => x.name === name && x.error === undefined)
  if (p === undefined || p.rounds.length === 0) return undefined
  return finite(median(p.rounds.map((x) => x.weftMs / x.kernelMs)))
}

function pingGap (r: RunJson, name: string): number | undefined {
  const p = r.pingRounds?.find((x) => x.name === name && x.error === undefined)
  return p === undefined ? undefined : finite(p.medianGapUs)
}

const ONE_STREAM: Goal = { op: '>=', value: 0.7 }
const FOUR_STREAMS: Goal = { op: '>=', value: 0.6 }

/** Every measure, in the order printed, with issue 19's goals (issue 22's for IPv6). */
export const MEASURES: readonly Measure[] = [
  ...(['default', 'cubic'] as const).flatMap((cc) => [
    { key: `pod:${cc}`, label: `TCP pod -> pod, 1 stream, ${cc}, weft vxlan / kernel VXLAN`, unit: 'x', goal: ONE_STREAM, of: (r: RunJson) => condition(r, 'pod', cc) },
    { key: `node:${cc}`, label: `TCP node -> pod, 1 stream, ${cc}`, unit: 'x', goal: ONE_STREAM, of: (r: RunJson) => condition(r, 'node', cc) },
    { key: `other-cni:${cc}`, label: `TCP other-CNI pod -> pod, 1 stream, ${cc}`, unit: 'x', goal: ONE_STREAM, of: (r: RunJson) => condition(r, 'other-cni', cc) },
    { key: `pod-4:${cc}`, label: `TCP pod -> pod, 4 streams, ${cc}`, unit: 'x', goal: FOUR_STREAMS, of: (r: RunJson) => condition(r, 'pod-4', cc) }
  ]),
  { key: 'ipip', label: 'TCP 1 stream, weft ipip / kernel VXLAN', unit: 'x', goal: { op: '>=', value: 0.5 }, of: (r) => pathRatio(r, 'ipip') },
  { key: 'udp-backend', label: 'TCP 1 stream, weft udp / kernel VXLAN', unit: 'x', of: (r) => pathRatio(r, 'udp') },
  { key: 'udp-max:vxlan', label: 'UDP highest rate within 1 % loss, weft vxlan / kernel VXLAN', unit: 'x', goal: { op: '>=', value: 1 }, of: (r) => udpMax(r, 'vxlan') },
  { key: 'udp-max:udp', label: 'UDP highest rate within 1 % loss, weft udp / kernel VXLAN', unit: 'x', goal: { op: '>=', value: 1 }, of: (r) => udpMax(r, 'udp') },
  { key: 'udp-loss:vxlan', label: 'UDP loss at kernel VXLAN\'s rate, weft vxlan', unit: '%', goal: { op: '<=', value: 1 }, of: (r) => udpLossAtKernelRate(r, 'vxlan') },
  { key: 'udp-loss:udp', label: 'UDP loss at kernel VXLAN\'s rate, weft udp', unit: '%', goal: { op: '<=', value: 1 }, of: (r) => udpLossAtKernelRate(r, 'udp') },
  { key: 'ping:vxlan', label: 'ping median, weft vxlan / kernel VXLAN', unit: 'x', goal: { op: '<=', value: 2 }, of: (r) => pingRatio(r, 'vxlan') },
  { key: 'ping-gap:vxlan', label: 'ping median, weft vxlan behind kernel VXLAN', unit: 'µs', of: (r) => pingGap(r, 'vxlan') },
  { key: 'ping:forwarder', label: 'ping median, C forwarder (the floor) / kernel VXLAN', unit: 'x', of: (r) => pingRatio(r, 'forwarder') },
  { key: 'ping:vxlan/forwarder', label: 'ping median, weft vxlan / C forwarder, same rounds', unit: 'x', of: (r) => finite(overFloor(r.pingRounds ?? [])?.ratio) },
  { key: 'ping-gap:vxlan-bp', label: 'ping median, weft vxlan --busy-poll behind kernel VXLAN', unit: 'µs', goal: { op: '<=', value: 50 }, of: (r) => pingGap(r, 'vxlan-bp') },
  ...(['default', 'cubic'] as const).flatMap((cc) => [
    { key: `ipv6:ratio4:${cc}`, label: `IPv6 run, ${cc}: weft / kernel over IPv4 (flannel.1)`, unit: 'x', of: (r: RunJson) => finite(ipv6(r, cc)?.ratio4) },
    { key: `ipv6:ratio6:${cc}`, label: `IPv6 run, ${cc}: weft / kernel over IPv6 (flannel-v6.1)`, unit: 'x', of: (r: RunJson) => finite(ipv6(r, cc)?.ratio6) },
    { key: `ipv6:difference:${cc}`, label: `IPv6 run, ${cc}: |ratio6 - ratio4|`, unit: '', goal: { op: '<=', value: 0.1 } as Goal, of: (r: RunJson) => { const d = finite(ipv6(r, cc)?.difference); return d === undefined ? undefined : Math.abs(d) } }
  ])
]

/** A run's IPv6 rounds under `congestion` ('default': the machine's, which the JSON names 'default'; older runs: the one they have, if it was that). */
function ipv6 (r: RunJson, congestion: string): Ipv6HeadToHead | undefined {
  const all = r.ipv6HeadToHeadByCongestion ?? (r.ipv6HeadToHead !== undefined ? [r.ipv6HeadToHead] : [])
  return all.find((h) => h.error === undefined && h.congestion === congestion)
}

const met = (g: Goal, x: number): boolean => g.op === '>=' ? x >= g.value : x <= g.value

/** The runs' figures per measure; measures no run has are left out. */
export function summarise (runs: ReadonlyArray<{ file: string, run: RunJson }>): Summary {
  const measures: MeasureSummary[] = []
  for (const m of MEASURES) {
    const values = runs.map(({ run }) => m.of(run) ?? null)
    const got = values.filter((x): x is number => x !== null)
    if (got.length === 0) continue
    measures.push({
      key: m.key,
      label: m.label,
      unit: m.unit,
      ...(m.goal !== undefined ? { goal: m.goal } : {}),
      values,
      min: min(got),
      median: median(got),
      max: max(got),
      metInEvery: m.goal === undefined ? null : got.every((x) => met(m.goal!, x))
    })
  }
  return { runs: runs.map(({ file, run }) => ({ file, started: run.started })), measures }
}

function fmt (x: number | null, unit: string): string {
  if (x === null) return '-'
  if (unit === 'µs') return `${Math.round(x)}`
  if (unit === '%') return x.toFixed(2)
  return x.toFixed(2)
}

/** The table: a row per measure, a column per run, then least / median / greatest, the goal and whether every run met it. */
export function formatSummary (s: Summary): string[] {
  const out: string[] = []
  out.push(`${s.runs.length} run${s.runs.length === 1 ? '' : 's'}:`)
  s.runs.forEach((r, i) => out.push(`  run ${i + 1}: ${r.started} (${r.file})`))
  out.push('')
  const head = ['measure', ...s.runs.map((_, i) => `run ${i + 1}`), 'min / median / max', 'goal', 'every run']
  const rows = s.measures.map((m) => [
    `${m.label}${m.unit !== '' && m.unit !== 'x' ? ` (${m.unit})` : ''}`,
    ...m.values.map((v) => fmt(v, m.unit)),
    `${fmt(m.min, m.unit)} / ${fmt(m.median, m.unit)} / ${fmt(m.max, m.unit)}`,
    m.goal === undefined ? '' : `${m.goal.op} ${m.goal.value}`,
    m.metInEvery === null ? '' : m.metInEvery ? 'yes' : 'NO'
  ])
  const widths = head.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)))
  const line = (cells: string[]): string => cells.map((c, k) => k === 0 ? c.padEnd(widths[k]) : c.padStart(widths[k])).join('  ').trimEnd()
  out.push(line(head))
  for (const r of rows) out.push(line(r))
  return out
}

/** The run files in a results directory, oldest first (their names are timestamps). */
export function runFiles (dir: string): string[] {
  let names: string[]
  try { names = fs.readdirSync(dir) } catch { return [] }
  return names.filter((n) => n.endsWith('.json')).sort().map((n) => path.join(dir, n))
}

function main (): number {
  const args = process.argv.slice(2)
  const json = args.includes('--json')
  const named = args.filter((a) => a !== '--json')
  if (named.some((a) => a.startsWith('-'))) {
    process.stderr.write('usage: node dist/bench/summary.js [FILE.json ...] [--json]\n')
    return 2
  }
  const files = named.length > 0 ? named : runFiles(path.join(__dirname, '..', '..', 'bench', 'results'))
  const runs: Array<{ file: string, run: RunJson }> = []
  for (const file of files) {
    let run: RunJson
    try {
      run = JSON.parse(fs.readFileSync(file, 'utf8')) as RunJson
    } catch (err) {
      process.stderr.write(`${file}: not a bench run (${(err as Error).message}); left out\n`)
      continue
    }
    if (typeof run.started !== 'string') {
      process.stderr.write(`${file}: not a bench run (no "started"); left out\n`)
      continue
    }
    if (MEASURES.every((m) => m.of(run) === undefined)) {
      process.stderr.write(`${file}: measured none of the rounds summarised here; left out\n`)
      continue
    }
    runs.push({ file, run })
  }
  if (runs.length === 0) {
    process.stderr.write('no bench runs to summarise (npm run bench writes them to bench/results)\n')
    return 1
  }
  const s = summarise(runs)
  process.stdout.write(json ? JSON.stringify(s, null, 2) + '\n' : formatSummary(s).join('\n') + '\n')
  return 0
}

if (require.main === module) process.exitCode = main()
