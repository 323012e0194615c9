// Head to head by condition: weft vxlan against kernel VXLAN for the traffic
// users have, not only the one case the per-path rounds measure. Each
// condition is a source of TCP, a number of streams and a congestion
// control; the receiver is always the pod on h2:
//   pod        the pod on h1, attached as weft's CNI plugin attaches it
//              (gso_max_size fitted to one UDP_SEGMENT message: src/cni/gso.ts)
//   pod-4      the same pod, 4 streams
//   node       h1's own namespace, no pod: its TCP leaves by the tunnel
//              device (weft.1 / flannel.1) and takes that device's
//              gso_max_size
//   other-cni  a second pod on h1 attached without weft's tweak (the kernel's
//              64 KB gso_max_size), as a pod attached by another CNI plugin,
//              or by the bridge plugin directly, is
// each under the machine's default congestion control (`default`; this VM's
// is BBR) and under cubic. On kernel VXLAN every pod is attached the kernel's
// way, so its `other-cni` pod is its `pod`.
// 1. set up kernel VXLAN and weft vxlan, each in its own two-host topology,
//    both up at once, the extra pod added on each h1, every source proven
//    (pinged) and each path warmed
// 2. --rounds rounds; in each, every condition in turn, kernel VXLAN and
//    weft one after the other (which first alternates between rounds and
//    between conditions), --seconds each
// 3. per condition: every round's pair, the median of the rounds' ratios and
//    their least and greatest, and the median Gbit/s of each path
import { formatCidr } from '../src/packet/net'
import type { Host, Topology } from '../lab/netns'
import { addPods } from '../lab/pods'
import type { Pod } from '../lab/pods'
import { iperf, ping } from '../lab/traffic'
import type { Endpoint } from '../lab/traffic'
import { PATHS, proveReachable, withPath } from './paths'
import type { PathDef, PathSetup } from './paths'
import { WARM_UP_PINGS } from './rounds'
import type { Round } from './rounds'
import { max, median, min } from './stats'

/** Where a condition's TCP comes from. */
export type Source = 'pod' | 'node' | 'other-cni'

export interface Condition {
  /** what --conditions takes: pod, pod-4, node, other-cni */
  name: string
  source: Source
  streams: number
}

/** Every condition, in the order they run and are printed. */
export const CONDITIONS: readonly Condition[] = [
  { name: 'pod', source: 'pod', streams: 1 },
  { name: 'pod-4', source: 'pod', streams: 4 },
  { name: 'node', source: 'node', streams: 1 },
  { name: 'other-cni', source: 'other-cni', streams: 1 }
]

/** What each source is, in a table's words. */
export const SOURCE_LABEL: Record<Source, string> = {
  pod: 'pod -> pod',
  node: 'node -> pod',
  'other-cni': 'other-CNI pod -> pod'
}

/** The congestion controls the conditions run under: `default` is the machine's own (no iperf3 -C). */
export const CONGESTIONS = ['default', 'cubic'] as const

/** The conditions a `--conditions a,b` list names, in the canonical order; throws on an unknown name. */
export function selectConditions (list: string): Condition[] {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean)
  const unknown = names.filter((n) => !CONDITIONS.some((c) => c.name === n))
  if (unknown.length > 0 || names.length === 0) throw new RangeError(`--conditions takes a comma list of ${CONDITIONS.map((c) => c.name).join(', ')}; got ${JSON.stringify(list)}`)
  return CONDITIONS.filter((c) => names.includes(c.name))
}

/** A `--h2h-congestion default,cubic` list: algorithm names or `default`, each once. */
export function selectCongestions (list: string, check: (name: string) => unknown): string[] {
  const names = [...new Set(list.split(',').map((s) => s.trim()).filter(Boolean))]
  if (names.length === 0) throw new RangeError(`--h2h-congestion takes a comma list such as default,cubic; got ${JSON.stringify(list)}`)
  for (const n of names) check(n)
  return names
}

export interface ConditionResult {
  /** e.g. 'node-1:default' */
  name: string
  /** e.g. 'node -> pod, 1 stream, default (bbr)' */
  label: string
  source: Source
  streams: number
  /** as asked: 'default' or an algorithm's name */
  congestion: string
  /** the algorithm the senders ran: the machine's default resolved ('bbr'), or the one asked for */
  algorithm: string
  /** kernelGbps is kernel VXLAN's, weftGbps weft vxlan's */
  rounds: Round[]
  /** the median of the rounds' ratios (for an even count, the mean of the middle two) */
  medianRatio: number
  minRatio: number
  maxRatio: number
  /** the median of each path's rounds, Gbit/s */
  kernelGbps: number
  weftGbps: number
  error?: string
}

export interface ConditionOptions {
  rounds: number
  seconds: number
  conditions: readonly Condition[]
  /** 'default' or algorithm names */
  congestions: readonly string[]
  progress: (msg: string) => void
}

/** e.g. 'node -> pod, 1 stream, default (bbr)' */
export function conditionLabel (c: { source: Source, streams: number, congestion: string, algorithm: string }): string {
  const cc = c.congestion === 'default' ? `default (${c.algorithm})` : c.congestion
  return `${SOURCE_LABEL[c.source]}, ${c.streams} stream${c.streams > 1 ? 's' : ''}, ${cc}`
}

/** A condition's figures from its rounds. */
export function summarise (c: Omit<ConditionResult, 'medianRatio' | 'minRatio' | 'maxRatio' | 'kernelGbps' | 'weftGbps' | 'label'>): ConditionResult {
  const ratios = c.rounds.map((r) => r.ratio)
  return {
    ...c,
    label: conditionLabel(c),
    medianRatio: median(ratios),
    minRatio: min(ratios),
    maxRatio: max(ratios),
    kernelGbps: median(c.rounds.map((r) => r.kernelGbps)),
    weftGbps: median(c.rounds.map((r) => r.weftGbps))
  }
}

/** The TCP senders' default congestion control in a namespace (each namespace takes the host's when it is made). */
async function defaultCongestion (topo: Topology, h: Host): Promise<string> {
  return (await topo.exec(h.ns, ['cat', '/proc/sys/net/ipv4/tcp_congestion_control'])).stdout.trim()
}

/** One path's senders by source, and its receiver. */
interface Ends {
  setup: PathSetup
  from: Record<Source, Endpoint>
  to: Pod
}

/** The pod on h1 without weft's gso_max_size: another CNI's pod. On a path without weft, its pod already is one. */
async function otherCniPod (s: PathSetup): Promise<Pod> {
  if (s.weft === undefined) return s.pods[0]
  const subnet = formatCidr(s.weft.daemons[0].env().subnet)
  const [p] = await addPods(s.topo, s.hosts[0], { subnet, count: 1, mtu: s.podMtu })
  return p
}

async function ends (s: PathSetup, sources: ReadonlySet<Source>, label: string): Promise<Ends> {
  const [pod, to] = s.pods
  const other = sources.has('other-cni') ? await otherCniPod(s) : pod
  const from: Record<Source, Endpoint> = { pod, node: s.hosts[0], 'other-cni': other }
  for (const src of sources) {
    const p = await ping(s.topo, from[src], to.ip, { count: 3, intervalS: 0.2, waitS: 2 })
    if (p.received === 0) throw new Error(`${label}: ${SOURCE_LABEL[src]}: ${from[src].ns} cannot reach ${to.ip}:\n${p.output}`)
  }
  await ping(s.topo, pod, to.ip, { count: WARM_UP_PINGS, intervalS: 0.002, waitS: 1 })
  return { setup: s, from, to }
}

async function tcp (e: Ends, source: Source, streams: number, congestion: string, seconds: number): Promise<number> {
  return (await iperf(e.setup.topo, e.to, e.from[source], { serverIp: e.to.ip, seconds, parallel: streams, congestion: congestion === 'default' ? undefined : congestion })).gbps
}

/**
 * Kernel VXLAN and weft vxlan (or the paths given) set up at once, then
 * --rounds rounds of every condition under every congestion control.
 */
export async function conditionRounds (o: ConditionOptions, paths: { kernel: PathDef, weft: PathDef } = defaultPaths()): Promise<ConditionResult[]> {
  const cases = o.congestions.flatMap((congestion) => o.conditions.map((c) => ({ ...c, congestion })))
  const sources = new Set(o.conditions.map((c) => c.source))
  const timeoutMs = (2 * cases.length * o.rounds * (o.seconds + 6) + 180) * 1000
  const opts = { label: 'bench-cond', timeoutMs, progress: o.progress }
  return await withPath(paths.kernel, opts, async (ks) => {
    await proveReachable(ks.topo, ks.pods[0], ks.pods[1], paths.kernel.label)
    const k = await ends(ks, sources, paths.kernel.label)
    const fallback = await defaultCongestion(ks.topo, ks.hosts[0])
    const rounds: Round[][] = cases.map(() => [])
    const errors: Array<string | undefined> = cases.map(() => undefined)
    const result = (): ConditionResult[] => cases.map((c, i) => summarise({
      name: `${c.name}:${c.congestion}`,
      source: c.source,
      streams: c.streams,
      congestion: c.congestion,
      algorithm: c.congestion === 'default' ? fallback : c.congestion,
      rounds: rounds[i],
      ...(errors[i] !== undefined ? { error: errors[i] } : {})
    }))
    try {
      await withPath(paths.weft, opts, async (ws) => {
        await proveReachable(ws.topo, ws.pods[0], ws.pods[1], paths.weft.label)
        const w = await ends(ws, sources, paths.weft.label)
        for (let r = 0; r < o.rounds; r++) {
          o.progress(`head to head by condition: round ${r + 1} of ${o.rounds}, ${cases.length} conditions, ${o.seconds} s through each path ...`)
          for (const [i, c] of cases.entries()) {
            const label = conditionLabel({ ...c, algorithm: c.congestion === 'default' ? fallback : c.congestion })
            try {
              let kernelGbps: number
              let weftGbps: number
              if ((r + i) % 2 === 0) {
                kernelGbps = await tcp(k, c.source, c.streams, c.congestion, o.seconds)
                weftGbps = await tcp(w, c.source, c.streams, c.congestion, o.seconds)
              } else {
                weftGbps = await tcp(w, c.source, c.streams, c.congestion, o.seconds)
                kernelGbps = await tcp(k, c.source, c.streams, c.congestion, o.seconds)
              }
              rounds[i].push({ kernelGbps, weftGbps, ratio: weftGbps / kernelGbps })
              o.progress(`  ${label}: ${paths.kernel.label} ${kernelGbps.toFixed(2)}, ${paths.weft.label} ${weftGbps.toFixed(2)} Gbit/s: ${(weftGbps / kernelGbps).toFixed(2)}x`)
            } catch (err) {
              // one failed run loses that round of that condition, not the others
              errors[i] ??= (err as Error).message
              o.progress(`  ${label}: failed: ${(err as Error).message.split('\n')[0]}`)
            }
          }
        }
      })
    } catch (err) {
      // weft failed to come up (or broke): say so for every condition, keep what was measured
      o.progress(`head to head by condition failed: ${(err as Error).stack ?? String(err)}`)
      for (let i = 0; i < cases.length; i++) errors[i] ??= (err as Error).message
    }
    return result()
  })
}

function defaultPaths (): { kernel: PathDef, weft: PathDef } {
  const find = (name: string): PathDef => {
    const d = PATHS.find((p) => p.name === name)
    if (d === undefined) throw new Error(`no path ${name}`)
    return d
  }
  return { kernel: find('kernel-vxlan'), weft: find('vxlan') }
}
