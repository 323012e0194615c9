// IPv6 beside IPv4, each against the kernel (issue 22): is weft's IPv6 path
// as close to the kernel's flannel-v6.1 as its IPv4 path is to flannel.1?
// Both ratios come from one run with everything up at once, so the machine's
// drift (a third of a path's rate between minutes on this VM) is shared.
// 1. a kernel topology (IPv6 underlay 2001:2::/64 beside 198.18.0.0/24):
//    h1 and h2 each run flannel.1 (lab/kernel-vxlan.ts) and flannel-v6.1
//    (lab/kernel-vxlan6.ts), set up as flanneld sets them up, subnets
//    10.244.1.0/24 + fc00:0:0:1::/64 and 10.244.2.0/24 + fc00:0:0:2::/64,
//    each the other's peer, a dual-stack pod on each
// 2. beside it, a weft topology: two `weft run` daemons with
//    {"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48",
//    "Backend":{"Type":"vxlan"}} (weft.1 and weft-v6.1), a dual-stack pod on
//    each on the leased subnets, attached as weft's CNI plugin attaches them
// 3. every path proven (pinged) and warmed (pings at 2 ms, as rounds.ts)
// 4. --rounds rounds of one TCP stream pod on h1 -> pod on h2, --seconds
//    each, through kernel IPv4, weft IPv4, kernel IPv6, weft IPv6; every
//    other round in the reverse order, so each family's pair runs ABBA
//    like rounds.ts's and the families alternate too
// 5. per round ratio4 = weft/kernel over IPv4 and ratio6 the same over IPv6;
//    the medians, and median ratio6 - median ratio4, which the issue wants
//    within 0.1
// Pods get MTU 1430 on all four paths: what weft's dual-stack pods get (the
// IPv6 device's MTU, underlay less 70, is the smaller). flannel-v6.1 is
// 1430 too, as on a flanneld node: flanneld asks for the underlay less 50,
// which does not fit VXLAN over IPv6 (70 bytes of outer headers), and the
// kernel clamps it to less 70 at creation. flanneld's pods still get
// FLANNEL_MTU 1450 (the IPv4 device's figure), so on a flanneld node a
// flow's first full-size IPv6 packets meet a Packet Too Big; here they do not.
import fs from 'node:fs'
import os from 'node:os'
import { formatCidr } from '../src/packet/net'
import { formatCidr6 } from '../src/packet/net6'
import { podGsoMaxSize } from '../src/cni/gso'
import { waitFor, withTopology } from '../lab/netns'
import type { Host, Topology } from '../lab/netns'
import { addPods } from '../lab/pods'
import type { Pod } from '../lab/pods'
import { iperf, ping } from '../lab/traffic'
import { kernelVxlanNode } from '../lab/kernel-vxlan'
import { kernelVxlan6Node } from '../lab/kernel-vxlan6'
import { cluster } from '../lab/daemons'
import type { Daemon } from '../lab/daemons'
import { backgroundLoad, cpuOf, nodePid } from '../lab/cpu'
import { WARM_UP_PINGS } from './rounds'
import { benchUnderlay } from './paths'
import type { Panel } from './chart'
import { max, median, min } from './stats'

/** The issue's goal: |median ratio6 - median ratio4| at most this. */
export const TARGET_DIFFERENCE = 0.1
/** every pod's MTU, on all four paths: weft's dual-stack pods' (underlay 1500 less 70) */
export const POD_MTU6 = 1430
/** flannel-v6.1's MTU below the underlay's: VXLAN over IPv6's outer headers, and the kernel's limit */
export const KERNEL_V6_OVERHEAD = 70
/** what flanneld asks for flannel-v6.1 and gives its pods (FLANNEL_MTU), below the underlay's */
const FLANNELD_OVERHEAD = 50

const CONFIG = JSON.stringify({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fc00::/48', Backend: { Type: 'vxlan' } })
const KERNEL_SUBNETS = [
  { subnet: '10.244.1.0/24', subnet6: 'fc00:0:0:1::/64' },
  { subnet: '10.244.2.0/24', subnet6: 'fc00:0:0:2::/64' }
] as const

/** The four paths, in a round's order (reversed every other round). */
export const IPV6_PATHS = [
  { key: 'kernel4', label: 'kernel flannel.1', family: 4 },
  { key: 'weft4', label: 'weft weft.1', family: 4 },
  { key: 'kernel6', label: 'kernel flannel-v6.1', family: 6 },
  { key: 'weft6', label: 'weft weft-v6.1', family: 6 }
] as const
export type PathKey = typeof IPV6_PATHS[number]['key']

export interface Ipv6Run {
  gbps: number
  retransmits: number
  /** weft runs: both daemons' CPU seconds (user + sys) per GB (10^9 bytes) moved */
  cpuPerGB?: number
  error?: string
}

export interface Ipv6Round {
  /** each path's run, by key */
  runs: Record<PathKey, Ipv6Run>
  /** weft / kernel over IPv4, over IPv6 (NaN where a run failed) */
  ratio4: number
  ratio6: number
  /** ratio6 - ratio4 */
  difference: number
}

export interface Ipv6PathSummary { key: PathKey, label: string, family: 4 | 6, medianGbps: number, minGbps: number, maxGbps: number, cpuPerGB?: number }

/** What a weft daemon's IPv4 and IPv6 halves dropped over the rounds, and their TUNs' tx_dropped. */
export interface Ipv6Drops {
  node: string
  ipv4: Record<string, number>
  ipv6: Record<string, number>
  tunTxDropped: { ipv4: number, ipv6: number }
  /** packets through the IPv6 half (inside + outside): proof that the IPv6 runs took weft-v6.1 */
  ipv6Packets: number
}

export interface Ipv6HeadToHead {
  rounds: number
  seconds: number
  /** the senders' congestion control ('default': the machine's) */
  congestion: string
  podMtu: number
  /** flannel-v6.1's MTU as the kernel set it */
  kernelV6Mtu: number
  /** the FLANNEL_MTU a flanneld node gives its pods (the underlay less 50), for the note */
  flanneldPodMtu: number
  /** the MTU weft gave its dual-stack pods (subnet.env's FLANNEL_MTU), and the gso_max_size its pods got here */
  weftMtu?: number
  gsoMaxSize?: number
  /** every round, in order */
  roundList: Ipv6Round[]
  paths: Ipv6PathSummary[]
  /** medians of the rounds' ratios */
  ratio4: number
  ratio6: number
  /** ratio6 - ratio4 (of the medians): the issue's figure */
  difference: number
  /** the median of the rounds' own differences, for comparison */
  medianRoundDifference: number
  withinTarget: boolean
  drops: Ipv6Drops[]
  background: number
  loadavg: { before: number[], after: number[] }
  /** seconds the whole thing took */
  took: number
  error?: string
}

export interface Ipv6Options {
  rounds: number
  seconds: number
  /** the TCP senders' congestion control; undefined: the machine's */
  congestion: string | undefined
  progress: (msg: string) => void
}

/** Why the IPv6 rounds cannot run here (no IPv6 in the kernel), or undefined. */
export function ipv6SkipReason (): string | undefined {
  return fs.existsSync('/proc/sys/net/ipv6') ? undefined : 'the kernel has no IPv6 (/proc/sys/net/ipv6 is missing)'
}

interface Side {
  topo: Topology
  pods: [Pod, Pod]
  /** kernel only: flannel-v6.1's MTU */
  v6Mtu?: number
  /** weft only */
  daemons?: [Daemon, Daemon]
}

/** The IPv6 half of a daemon's status (dual stack: under `ipv6`). */
interface Half { peers?: unknown[], device?: unknown, mtu?: unknown, counters?: { drops?: Record<string, number>, counters?: Record<string, number> } }

async function halves (d: Daemon): Promise<{ v4: Half, v6: Half | undefined }> {
  const s = await d.status() as unknown as Half & { ipv6?: Half }
  return { v4: s, v6: s.ipv6 }
}

function podIp (p: Pod, family: 4 | 6): string {
  if (family === 4) return p.ip
  if (p.ip6 === undefined) throw new Error(`${p.name} has no IPv6 address`)
  return p.ip6
}

/** Pings first: resolves neighbours and proves the path before it is timed; then warms it as rounds.ts does. */
async function proveAndWarm (s: Side, family: 4 | 6, label: string): Promise<void> {
  const [from, to] = s.pods
  const ip = podIp(to, family)
  const p = await ping(s.topo, from, ip, { count: 3, intervalS: 0.2, waitS: 2 })
  if (p.received === 0) throw new Error(`${label}: ${from.name} cannot reach ${ip}:\n${p.output}`)
  await ping(s.topo, from, ip, { count: WARM_UP_PINGS, intervalS: 0.002, waitS: 1 })
}

/** flannel.1 and flannel-v6.1 on both hosts, each the other's peer, a dual-stack pod on each. */
async function kernelSide (topo: Topology): Promise<Side> {
  const hosts = topo.hosts as [Host, Host]
  const k4 = await Promise.all(hosts.map(async (h, i) => await kernelVxlanNode(topo, h, { subnet: KERNEL_SUBNETS[i].subnet })))
  const k6 = await Promise.all(hosts.map(async (h, i) => await kernelVxlan6Node(topo, h, { subnet6: KERNEL_SUBNETS[i].subnet6, mtu: topo.mtu - KERNEL_V6_OVERHEAD })))
  await k4[0].addPeer(k4[1].peer)
  await k4[1].addPeer(k4[0].peer)
  await k6[0].addPeer(k6[1].peer)
  await k6[1].addPeer(k6[0].peer)
  const pods: Pod[] = []
  for (const [i, h] of hosts.entries()) pods.push(...await addPods(topo, h, { ...KERNEL_SUBNETS[i], count: 1, mtu: POD_MTU6 }))
  return { topo, pods: pods as [Pod, Pod], v6Mtu: Math.min(k6[0].mtu, k6[1].mtu) }
}

/** A daemon's leased subnets, both families (subnet.env has both in dual stack). */
function subnetsOf (d: Daemon): { subnet: string, subnet6: string, mtu: number } {
  const env = d.env()
  if (env.subnet === undefined || env.subnet6 === undefined) throw new Error(`${d.host.name}'s subnet.env lacks a family: ${JSON.stringify({ subnet: env.subnet, subnet6: env.subnet6 }, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v)}`)
  return { subnet: formatCidr(env.subnet), subnet6: formatCidr6(env.subnet6), mtu: env.mtu }
}

/** Two dual-stack weft daemons, each knowing the other in both families, a dual-stack pod on each. */
async function weftSide (topo: Topology, after: (fn: () => void) => void, progress: (msg: string) => void): Promise<Side & { envMtu: number, gsoMaxSize: number | undefined }> {
  const hosts = topo.hosts as [Host, Host]
  const c = cluster({ after }, topo, CONFIG)
  const d1 = await c.start(hosts[0])
  const d2 = await c.start(hosts[1])
  const known = async (d: Daemon): Promise<boolean> => {
    const { v4, v6 } = await halves(d)
    return v4.peers?.length === 1 && v6?.peers?.length === 1
  }
  await waitFor(async () => await known(d1) && await known(d2), { what: 'both daemons know each other in both families (status peers and ipv6.peers)', timeoutMs: 10_000 })
  const nets = [subnetsOf(d1), subnetsOf(d2)]
  // the same pod MTU on every path; lower only if weft cannot carry it
  const mtu = Math.min(POD_MTU6, nets[0].mtu, nets[1].mtu)
  if (mtu !== POD_MTU6) progress(`note: weft's dual-stack pods get MTU ${nets[0].mtu}/${nets[1].mtu}; all four paths' pods get ${mtu}`)
  // as weft's CNI plugin attaches them (paths.ts does the same for weft's IPv4 paths)
  const gsoMaxSize = podGsoMaxSize(mtu)
  const pods: Pod[] = []
  for (const [i, h] of hosts.entries()) pods.push(...await addPods(topo, h, { subnet: nets[i].subnet, subnet6: nets[i].subnet6, count: 1, mtu, ...(gsoMaxSize !== undefined ? { gsoMaxSize } : {}) }))
  return { topo, pods: pods as [Pod, Pod], daemons: [d1, d2], envMtu: Math.min(nets[0].mtu, nets[1].mtu), gsoMaxSize }
}

/** One TCP stream pod on h1 -> pod on h2 over `family`; for weft, the daemons' CPU around it. */
async function run (s: Side, family: 4 | 6, o: Ipv6Options): Promise<Ipv6Run> {
  const [client, server] = s.pods
  const pids = s.daemons?.map((d) => nodePid(d.child.pid)) ?? []
  const cpu0 = pids.map(cpuOf)
  try {
    const t = await iperf(s.topo, server, client, { serverIp: podIp(server, family), seconds: o.seconds, congestion: o.congestion })
    const cpu1 = pids.map(cpuOf)
    const out: Ipv6Run = { gbps: t.gbps, retransmits: t.retransmits }
    if (pids.length > 0) {
      const cpuS = pids.reduce((a, _, j) => a + cpu1[j].user + cpu1[j].sys - cpu0[j].user - cpu0[j].sys, 0)
      out.cpuPerGB = cpuS / (t.gbps * o.seconds / 8)
    }
    return out
  } catch (err) {
    // one failed run loses that run, not the round's others
    return { gbps: NaN, retransmits: NaN, error: (err as Error).message }
  }
}

interface DaemonSnapshot { v4: Record<string, number>, v6: Record<string, number>, v6Counters: Record<string, number>, tx4: number, tx6: number }

async function txDropped (topo: Topology, h: Host, device: unknown): Promise<number> {
  if (typeof device !== 'string' || !/^[\w.-]{1,15}$/.test(device)) return NaN
  const r = await topo.exec(h, ['cat', `/sys/class/net/${device}/statistics/tx_dropped`], { allowFail: true })
  return r.code === 0 ? Number(r.stdout) : NaN
}

async function snapshot (s: Side): Promise<DaemonSnapshot[]> {
  return await Promise.all((s.daemons ?? []).map(async (d) => {
    const { v4, v6 } = await halves(d)
    return {
      v4: v4.counters?.drops ?? {},
      v6: v6?.counters?.drops ?? {},
      v6Counters: v6?.counters?.counters ?? {},
      tx4: await txDropped(s.topo, d.host, v4.device ?? 'weft.1'),
      tx6: await txDropped(s.topo, d.host, v6?.device ?? 'weft-v6.1')
    }
  }))
}

function grown (a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(b)) {
    const n = v - (a[k] ?? 0)
    if (n > 0) out[k] = n
  }
  return out
}

function dropsBetween (daemons: readonly Daemon[], a: DaemonSnapshot[], b: DaemonSnapshot[]): Ipv6Drops[] {
  return daemons.map((d, j) => {
    const delta = (k: string): number => (b[j].v6Counters[k] ?? 0) - (a[j].v6Counters[k] ?? 0)
    return {
      node: d.host.name,
      ipv4: grown(a[j].v4, b[j].v4),
      ipv6: grown(a[j].v6, b[j].v6),
      tunTxDropped: { ipv4: b[j].tx4 - a[j].tx4, ipv6: b[j].tx6 - a[j].tx6 },
      ipv6Packets: delta('inside_packets') + delta('outside_packets')
    }
  })
}

/** A round's order: the four paths, reversed every other round. */
export function ipv6RoundOrder (r: number): number[] {
  const order = IPV6_PATHS.map((_, k) => k)
  return r % 2 === 0 ? order : order.reverse()
}

/** A round's ratios from its four runs (NaN where a run failed). */
export function roundOf (runs: Record<PathKey, Ipv6Run>): Ipv6Round {
  const ratio4 = runs.weft4.gbps / runs.kernel4.gbps
  const ratio6 = runs.weft6.gbps / runs.kernel6.gbps
  return { runs, ratio4, ratio6, difference: ratio6 - ratio4 }
}

/** The rounds summarised: each path's figures, the medians of the ratios and their difference. */
export function summariseIpv6 (roundList: Ipv6Round[]): Pick<Ipv6HeadToHead, 'paths' | 'ratio4' | 'ratio6' | 'difference' | 'medianRoundDifference' | 'withinTarget'> {
  const finite = (xs: number[]): number[] => xs.filter((x) => Number.isFinite(x))
  const paths = IPV6_PATHS.map((p) => {
    const g = finite(roundList.map((r) => r.runs[p.key].gbps))
    const cpu = finite(roundList.map((r) => r.runs[p.key].cpuPerGB ?? NaN))
    return { key: p.key, label: p.label, family: p.family, medianGbps: median(g), minGbps: min(g), maxGbps: max(g), ...(cpu.length > 0 ? { cpuPerGB: median(cpu) } : {}) }
  })
  const ratio4 = median(finite(roundList.map((r) => r.ratio4)))
  const ratio6 = median(finite(roundList.map((r) => r.ratio6)))
  const difference = ratio6 - ratio4
  return { paths, ratio4, ratio6, difference, medianRoundDifference: median(finite(roundList.map((r) => r.difference))), withinTarget: Math.abs(difference) <= TARGET_DIFFERENCE }
}

/**
 * The kernel's and weft's dual-stack paths set up at once, then --rounds
 * rounds through all four. Never throws: a failure is in `error`, with the
 * rounds measured before it.
 */
export async function ipv6Rounds (o: Ipv6Options): Promise<Ipv6HeadToHead> {
  const t0 = performance.now()
  const before = os.loadavg()
  const background = await backgroundLoad()
  o.progress(`IPv6 head to head: setting up kernel flannel.1 + flannel-v6.1 and weft vxlan dual stack (background load ${background.toFixed(2)} cores) ...`)
  const timeoutMs = (o.rounds * IPV6_PATHS.length * (o.seconds + 10) + 240) * 1000
  const roundList: Ipv6Round[] = []
  const drops: Ipv6Drops[] = []
  let weftMtu: number | undefined
  let gsoMaxSize: number | undefined
  let kernelV6Mtu = NaN
  let flanneldPodMtu = NaN
  // cluster() hands its store dir's removal to `after`; run those at the end, and on Ctrl-C
  const cleanups: Array<() => void> = []
  const cleanup = (): void => { for (const fn of cleanups.splice(0).reverse()) { try { fn() } catch (err) { o.progress(`cleanup: ${String(err)}`) } } }
  const unhook = onInterrupt(cleanup)

  const measure = async (kernel: Side, weft: Side): Promise<void> => {
    const sides = { kernel4: kernel, weft4: weft, kernel6: kernel, weft6: weft }
    const first = await snapshot(weft)
    for (let r = 0; r < o.rounds; r++) {
      o.progress(`IPv6 head to head: round ${r + 1} of ${o.rounds}, one TCP stream, ${o.seconds} s through each of ${ipv6RoundOrder(r).map((k) => IPV6_PATHS[k].label).join(', ')} ...`)
      const runs: Partial<Record<PathKey, Ipv6Run>> = {}
      for (const k of ipv6RoundOrder(r)) {
        const p = IPV6_PATHS[k]
        runs[p.key] = await run(sides[p.key], p.family, o)
      }
      const x = roundOf(runs as Record<PathKey, Ipv6Run>)
      roundList.push(x)
      const failed = IPV6_PATHS.filter((p) => x.runs[p.key].error !== undefined).map((p) => `${p.label} failed: ${(x.runs[p.key].error ?? '').split('\n')[0]}`)
      o.progress(`  IPv4 ${f2(x.runs.kernel4.gbps)}/${f2(x.runs.weft4.gbps)} Gbit/s = ${f2(x.ratio4)}x, IPv6 ${f2(x.runs.kernel6.gbps)}/${f2(x.runs.weft6.gbps)} Gbit/s = ${f2(x.ratio6)}x, ratio6 - ratio4 ${f2(x.difference)}${failed.length > 0 ? `; ${failed.join('; ')}` : ''}`)
    }
    drops.push(...dropsBetween(weft.daemons ?? [], first, await snapshot(weft)))
  }

  const base = (): Omit<Ipv6HeadToHead, 'took' | 'loadavg'> => ({
    rounds: o.rounds,
    seconds: o.seconds,
    congestion: o.congestion ?? 'default',
    podMtu: POD_MTU6,
    kernelV6Mtu,
    flanneldPodMtu,
    ...(weftMtu !== undefined ? { weftMtu } : {}),
    ...(gsoMaxSize !== undefined ? { gsoMaxSize } : {}),
    roundList,
    ...summariseIpv6(roundList),
    drops,
    background
  })
  try {
    await withTopology(undefined, { hosts: 2, ipv6: true, label: 'bench-ipv6-kernel', timeoutMs, underlay: benchUnderlay() }, async (ktopo) => {
      const kernel = await kernelSide(ktopo)
      kernelV6Mtu = kernel.v6Mtu ?? NaN
      flanneldPodMtu = ktopo.mtu - FLANNELD_OVERHEAD
      await proveAndWarm(kernel, 4, 'kernel flannel.1')
      await proveAndWarm(kernel, 6, 'kernel flannel-v6.1')
      await withTopology(undefined, { hosts: 2, ipv6: true, label: 'bench-ipv6-weft', timeoutMs, underlay: benchUnderlay() }, async (wtopo) => {
        const weft = await weftSide(wtopo, (fn) => { cleanups.push(fn) }, o.progress)
        weftMtu = weft.envMtu
        gsoMaxSize = weft.gsoMaxSize
        await proveAndWarm(weft, 4, 'weft weft.1')
        await proveAndWarm(weft, 6, 'weft weft-v6.1')
        await measure(kernel, weft)
      })
    })
    return { ...base(), loadavg: { before, after: os.loadavg() }, took: (performance.now() - t0) / 1000 }
  } catch (err) {
    o.progress(`IPv6 head to head failed: ${(err as Error).stack ?? String(err)}`)
    return { ...base(), loadavg: { before, after: os.loadavg() }, took: (performance.now() - t0) / 1000, error: (err as Error).message }
  } finally {
    cleanup()
    unhook()
  }
}

/**
 * Runs fn on SIGINT/SIGTERM, then re-raises the signal if nobody else
 * listens (the topologies' own hooks kill the processes and delete the
 * namespaces; this removes what the daemons left in /tmp). Returns the undo.
 */
function onInterrupt (fn: () => void): () => void {
  const hooks = (['SIGINT', 'SIGTERM'] as const).map((sig) => {
    const hook = (): void => {
      process.removeListener(sig, hook)
      fn()
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
    }
    process.on(sig, hook)
    return { sig, hook }
  })
  return () => { for (const { sig, hook } of hooks) process.removeListener(sig, hook) }
}

// --- the table and the chart ----------------------------------------------------

const f2 = (x: number | undefined): string => x !== undefined && Number.isFinite(x) ? x.toFixed(2) : '-'
const f1 = (x: number | undefined): string => x !== undefined && Number.isFinite(x) ? x.toFixed(1) : '-'

export function printIpv6Rounds (h: Ipv6HeadToHead, print: (l: string) => void): void {
  print(`\nIPv6 beside IPv4: kernel flannel.1 + flannel-v6.1 and weft vxlan dual stack set up at once, one TCP stream pod -> pod through each of the four paths in turn (the order reversed every other round), ${h.rounds} rounds of ${h.seconds} s, TCP ${h.congestion}`)
  if (h.roundList.length === 0 && h.error !== undefined) { print(`failed: ${h.error.split('\n')[0]}`); return }
  print('round   IPv4: kernel/weft Gbit/s = ratio4    IPv6: kernel/weft Gbit/s = ratio6    ratio6 - ratio4')
  for (const [i, r] of h.roundList.entries()) {
    const v4 = `${f2(r.runs.kernel4.gbps)}/${f2(r.runs.weft4.gbps)} = ${f2(r.ratio4)}x`
    const v6 = `${f2(r.runs.kernel6.gbps)}/${f2(r.runs.weft6.gbps)} = ${f2(r.ratio6)}x`
    print(`${String(i + 1).padEnd(8)}${v4.padEnd(37)}${v6.padEnd(37)}${f2(r.difference).padStart(6)}`)
  }
  print(`median  ${`ratio4 ${f2(h.ratio4)}x`.padEnd(37)}${`ratio6 ${f2(h.ratio6)}x`.padEnd(37)}${f2(h.difference).padStart(6)}  (${Number.isFinite(h.difference) ? (h.withinTarget ? 'within' : 'NOT within') : 'not measured:'} the goal of ${TARGET_DIFFERENCE}; the rounds' own differences' median ${f2(h.medianRoundDifference)})`)
  print('path                   median Gbit/s (min to max)   CPU s/GB (both daemons)')
  for (const p of h.paths) print(`${p.label.padEnd(23)}${`${f2(p.medianGbps)} (${f2(p.minGbps)} to ${f2(p.maxGbps)})`.padEnd(29)}${p.cpuPerGB !== undefined ? f1(p.cpuPerGB) : ''}`)
  const lower = h.weftMtu !== undefined && h.weftMtu < h.podMtu
  print(`pods' MTU ${h.podMtu} on ${lower ? `the kernel's paths, ${h.weftMtu ?? '-'} on weft's (all weft allows)` : 'all four paths'} (weft's dual-stack pods' MTU: ${h.weftMtu ?? '-'}; gso_max_size ${h.gsoMaxSize ?? "the kernel's"} on weft's pods, as its CNI plugin sets it); flannel-v6.1's MTU ${h.kernelV6Mtu}, the underlay less ${KERNEL_V6_OVERHEAD}, as on a flanneld node: flanneld asks for less ${FLANNELD_OVERHEAD}, which does not fit VXLAN over IPv6's ${KERNEL_V6_OVERHEAD} bytes, and the kernel clamps it; flanneld's pods get FLANNEL_MTU ${h.flanneldPodMtu} all the same, so there a flow's first full-size IPv6 packets meet a Packet Too Big (not here: every pod has ${h.podMtu})`)
  for (const d of h.drops) {
    const text = (x: Record<string, number>): string => Object.keys(x).length === 0 ? 'nothing' : Object.entries(x).map(([k, v]) => `${k} ${v}`).join(', ')
    const quiet = Object.keys(d.ipv4).length === 0 && Object.keys(d.ipv6).length === 0 && !(d.tunTxDropped.ipv4 > 0) && !(d.tunTxDropped.ipv6 > 0)
    print(`weft ${d.node}: ${d.ipv6Packets} packets through the IPv6 half; ${quiet ? 'dropped nothing' : `dropped: IPv4 half ${text(d.ipv4)}, IPv6 half ${text(d.ipv6)}; TUN tx_dropped weft.1 ${d.tunTxDropped.ipv4}, weft-v6.1 ${d.tunTxDropped.ipv6}`}`)
  }
  if (h.error !== undefined) print(`failed: ${h.error.split('\n')[0]}`)
  print(`Background load ${f2(h.background)} cores before the set-up; load average ${h.loadavg.before.map(f2).join(' ')} before, ${h.loadavg.after.map(f2).join(' ')} after, on ${os.cpus().length} CPUs`)
}

/** Two panels: the two ratios (IPv4's as the line), and the four paths' median Gbit/s. */
export function ipv6Panels (h: Ipv6HeadToHead | undefined): Panel[] {
  if (h === undefined || h.roundList.length === 0) return []
  const range = (xs: number[]): string | undefined => {
    const ok = xs.filter((x) => Number.isFinite(x))
    return ok.length > 1 ? `rounds ${f2(min(ok))} to ${f2(max(ok))}` : undefined
  }
  const note = (xs: number[]): { note: string } | Record<string, never> => { const n = range(xs); return n !== undefined ? { note: n } : {} }
  return [
    {
      title: `IPv6 beside IPv4, TCP 1 stream, ${h.congestion}: weft / kernel, median of ${h.roundList.length} alternating rounds (ratio6 - ratio4 ${f2(h.difference)}, goal within ${TARGET_DIFFERENCE})`,
      unit: 'x kernel',
      bars: [
        { label: 'IPv4 (flannel.1)', value: h.ratio4, kind: 'weft' as const, ...note(h.roundList.map((r) => r.ratio4)) },
        { label: 'IPv6 (flannel-v6.1)', value: h.ratio6, kind: 'weft' as const, ...note(h.roundList.map((r) => r.ratio6)) }
      ],
      reference: h.ratio4,
      referenceLabel: 'IPv4',
      ratios: false
    },
    {
      title: `IPv6 beside IPv4, TCP 1 stream, pod MTU ${h.podMtu}: median Gbit/s of ${h.roundList.length} rounds`,
      unit: 'Gbit/s',
      bars: h.paths.map((p) => ({ label: p.label, value: p.medianGbps, kind: p.key.startsWith('kernel') ? 'reference' as const : 'weft' as const }))
    }
  ]
}
