// `npm run bench` / `weft bench`: every path in one run, so the figures share
// a machine, a kernel and a moment and can be divided by each other.
// 1. micro-benchmarks of the dataplane's stages (micro.ts), a few seconds
// 2. for each path (paths.ts: plain veth, kernel VXLAN as flanneld sets it
//    up, weft vxlan, ipip, udp, host-gw), in a fresh two-host topology with a
//    pod on each host, pod on h1 -> pod on h2:
//    a. the background load (cores busy with nothing of ours running)
//    b. ping RTT: --pings echo requests at 10 ms, median and p99, after
//       300 unmeasured ones at 2 ms on every path (a warm-up: weft's daemons
//       are fresh processes whose per-batch code V8 has not optimised yet;
//       what a long-running node has is what is measured)
//    c. iperf3 TCP, 1 stream and 4 streams, --seconds each
//    d. iperf3 UDP at --udp-rate (1 Gbit/s) in full-size datagrams: the rate
//       that arrived and the loss
//    e. small packets: 64-byte UDP payloads from udp-flood.js (batched
//       sendmmsg, bounded by time) to a port nobody listens on; delivered =
//       IP packets the receiving pod's kernel counted, per second of flood
//    for weft: each daemon's CPU (utime + stime, in cores) during each of
//    b..e, its VmRSS after each and its peak (VmHWM), its drop counters and
//    its TUN's tx drops
// 3. head to head (rounds.ts): kernel VXLAN and each weft path set up at
//    once, one TCP stream through each in turn, --rounds times; the median
//    of the rounds' ratios is the figure least moved by the machine's drift
//    then weft vxlan with two workers against one (4 streams), and ping
//    rounds: kernel VXLAN, weft vxlan and weft vxlan --busy-poll 20000 up
//    at once, 100 pings at 10 ms through each in turn, 2 x --rounds times; a
//    weft path's figure is its median minus kernel VXLAN's (issue 7 asks
//    for 50 µs at most)
//    and head to head by condition (conditions.ts): weft vxlan against
//    kernel VXLAN, both up at once, for TCP from a weft-attached pod (1 and
//    4 streams), from the node itself and from a pod attached without
//    weft's gso_max_size (another CNI's), each under the machine's default
//    congestion control and under cubic; its pod, 1 stream, --congestion
//    rounds stand for weft vxlan in the per-path head to head
//    and UDP (udp-search.ts): the highest rate kernel VXLAN, weft vxlan and
//    weft udp each carry with at most 1 % loss, all set up at once and
//    probed in turn, and each one's loss at kernel VXLAN's rate
//    and the WireGuard head to head (wg-rounds.ts): weft wireguard,
//    wireguard-go and weft vxlan set up at once, one TCP stream through each
//    in turn under the machine's default congestion control and cubic,
//    with the CPU seconds per GB of the processes carrying the packets
//    and IPv6 beside IPv4 (ipv6.ts, issue 22): kernel flannel.1 and
//    flannel-v6.1 and weft vxlan dual stack set up at once, one TCP stream
//    through each of the four paths in turn; weft/kernel over IPv4 and over
//    IPv6, and how far apart the two ratios are
// 4. a table (ratios against kernel VXLAN), a JSON file and an SVG chart
//    next to it
// --no-offloads runs the daemons with WEFT_OFFLOADS=off (no TUN TSO, no
// UDP_GRO, no UDP_SEGMENT): the same table, non-offload figures.
// Every TCP sender uses --congestion (cubic, Linux's default) whatever the
// machine's default is: BBR paces a stream to the rate it has measured, and
// on this VM (BBR by default) it held kernel VXLAN to 12-13 Gbit/s where
// cubic carried 18-20, and weft to 9-10 where cubic carried 12-14. The
// rounds by condition are the exception: they run each condition under the
// machine's default and under cubic (--h2h-congestion), since users run both.
//
// --only head-to-head runs the conditions' rounds alone (about 2.5 minutes);
// --only udp the UDP search alone (about 1.5 minutes; the daemons take
// WEFT_UDP_PACING from the bench's environment); --only wireguard the
// WireGuard head to head alone (about 1.5 minutes at --seconds 3, 2.5 at 5);
// --only ipv6 IPv6 beside IPv4 alone (about 1.5 minutes at --rounds 3 --seconds 3).
//
// usage: sudo node dist/bench/run.js [--seconds 3] [--paths veth,kernel-vxlan,vxlan,vxlan-2w,ipip,udp,host-gw,forwarder]
//          [--no-offloads] [--out FILE.json] [--udp-rate 1G] [--pings 200] [--rounds 3] [--congestion cubic] [--no-micro]
//          [--only head-to-head|udp|wireguard|ipv6] [--conditions pod,pod-4,node,other-cni] [--h2h-congestion default,cubic]
//        node dist/bench/run.js --report FILE.json   (table and chart again from a run's JSON)
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Topology } from '../lab/netns'
import type { Pod } from '../lab/pods'
import { iperf, ping } from '../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../lab/skip'
import { backgroundLoad, coresBetween, cpuOf, machineTicks, memoryOf } from '../lab/cpu'
import type { Cores } from '../lab/cpu'
import { BUSY_POLL_US, cleanUpOnInterrupt, PATHS, proveReachable, selectPaths, setUnderlay, VXLAN_BUSY_POLL, weftCounters, weftCpu, weftSamples, withPath } from './paths'
import type { DaemonSample, PathDef, PathSetup, Weft } from './paths'
import { fmtRate, printMicro, runMicro } from './micro'
import type { MicroResult } from './micro'
import { renderChart } from './chart'
import { headToHead, pingRounds, PING_ROUND_COUNT, WARM_UP_PINGS } from './rounds'
import { overFloor } from './ping-floor'
import type { HeadToHead, PingHeadToHead } from './rounds'
import { CONDITIONS, conditionRounds, selectConditions, selectCongestions } from './conditions'
import type { Condition, ConditionResult } from './conditions'
import type { Bar, Panel } from './chart'
import { benchArgs, congestionOption, numberFlag, usage } from './args'
import { LOSS_LIMIT, PROBE_SECONDS, printUdpMaxRate, udpMaxRate, udpPanel } from './udp-search'
import type { UdpMaxRate } from './udp-search'
import { median, percentile } from './stats'
import { printWireguardRounds, wireguardRounds } from './wg-rounds'
import type { WireguardHeadToHead } from './wg-rounds'
import { ipv6Panels, ipv6Rounds, ipv6SkipReason, printIpv6Rounds } from './ipv6'
import type { Ipv6HeadToHead } from './ipv6'

const FLOOD = path.join(__dirname, 'udp-flood.js')
const ROOT = path.join(__dirname, '..', '..')
/** a UDP port nothing listens on: the receiving kernel counts the packet, then drops it */
const SINK_PORT = 9

const progress = (msg: string): void => { process.stderr.write(`bench: ${msg}\n`) }

const ONLY = ['head-to-head', 'udp', 'wireguard', 'ipv6'] as const
type Only = typeof ONLY[number]

interface Options {
  seconds: number
  paths: PathDef[]
  offloads: boolean
  out: string | undefined
  udpRate: string
  pings: number
  /** head-to-head rounds of TCP 1 stream, kernel VXLAN against each weft path; 0: none */
  rounds: number
  /** the iperf3 TCP senders' congestion control (-C); undefined: the machine's default */
  congestion: string | undefined
  micro: boolean
  /** print the table and redraw the chart of an earlier run's JSON, run nothing */
  report: string | undefined
  /** 'head-to-head': the conditions' rounds alone, nothing else; 'udp': the UDP search alone; 'wireguard': the WireGuard head to head alone; 'ipv6': IPv6 beside IPv4 alone */
  only: Only | undefined
  /** head to head by condition: the sources and stream counts */
  conditions: Condition[]
  /** ... each under these congestion controls ('default': the machine's) */
  h2hCongestions: string[]
  /** what every topology's links behave like (lab/netns.ts TopologyOptions.underlay) */
  underlay: 'veth' | 'nic'
}

const FLAGS = {
  seconds: { type: 'string', default: '3' },
  paths: { type: 'string', default: PATHS.map((p) => p.name).join(',') },
  'no-offloads': { type: 'boolean', default: false },
  out: { type: 'string', hint: 'FILE.json' },
  'udp-rate': { type: 'string', default: '1G' },
  pings: { type: 'string', default: '200' },
  rounds: { type: 'string', default: '3' },
  congestion: { type: 'string', default: 'cubic' },
  'no-micro': { type: 'boolean', default: false },
  report: { type: 'string', hint: 'FILE.json' },
  only: { type: 'string', hint: 'head-to-head|udp|wireguard|ipv6' },
  conditions: { type: 'string', default: CONDITIONS.map((c) => c.name).join(',') },
  'h2h-congestion': { type: 'string', default: 'default,cubic' },
  underlay: { type: 'string', default: 'veth', hint: 'veth|nic' }
} as const

function options (argv: string[]): Options {
  const values = benchArgs('run', FLAGS, argv)
  const seconds = numberFlag('seconds', values.seconds, { min: 1, max: 60 })
  const pings = numberFlag('pings', values.pings, { min: 10, max: 2000, integer: true })
  const rounds = numberFlag('rounds', values.rounds, { min: 0, max: 9, integer: true })
  if (!/^\d+(\.\d+)?[KMG]?$/.test(values['udp-rate'])) throw new RangeError(`--udp-rate takes an iperf3 rate such as 1G or 500M, got ${values['udp-rate']}`)
  const only = values.only as Only | undefined
  if (only !== undefined && !ONLY.includes(only)) throw new RangeError(`--only takes head-to-head, udp, wireguard or ipv6, got ${values.only}`)
  if ((only === 'head-to-head' || only === 'wireguard' || only === 'ipv6') && rounds === 0) throw new RangeError(`--only ${only} needs --rounds 1 or more`)
  if (values.underlay !== 'veth' && values.underlay !== 'nic') throw new RangeError(`--underlay takes veth or nic, got ${values.underlay}`)
  return {
    seconds,
    paths: selectPaths(values.paths),
    offloads: !values['no-offloads'],
    out: values.out,
    udpRate: values['udp-rate'],
    pings,
    rounds,
    congestion: congestionOption(values.congestion),
    micro: !values['no-micro'],
    report: values.report,
    only,
    conditions: selectConditions(values.conditions),
    h2hCongestions: selectCongestions(values['h2h-congestion'], congestionOption),
    underlay: values.underlay
  }
}

// --- measuring windows ---------------------------------------------------------

interface DaemonWindow extends DaemonSample {
  /** CPU cores (user + sys over the window) */
  cores: number
  rssMiB: number
}

interface Window {
  /** seconds */
  wall: number
  /** the whole machine, averaged over the window */
  cores: Cores
  /** weft only: each daemon over the window */
  daemons?: DaemonWindow[]
  /** a path carried by processes that are not weft (wireguard-go): each one's cores (user + sys over the window), h1's first */
  processes?: number[]
}

/**
 * Runs fn with the machine's and the daemons' CPU sampled tightly around it
 * (status queries outside); without weft, the CPU of `procs` (wireguard-go's).
 */
async function measured<T> (topo: Topology, weft: Weft | undefined, fn: () => Promise<T>, procs: number[] = []): Promise<{ value: T, window: Window }> {
  const c0 = weft !== undefined ? await weftCounters(topo, weft) : undefined
  const cpu0 = weftCpu(weft)
  const others = weft === undefined ? procs : []
  const p0 = others.map(cpuOf)
  const m0 = machineTicks()
  const t0 = performance.now()
  const value = await fn()
  const wall = (performance.now() - t0) / 1000
  const m1 = machineTicks()
  const cpu1 = weftCpu(weft)
  const p1 = others.map(cpuOf)
  const mem = weft?.pids.map(memoryOf)
  const c1 = weft !== undefined ? await weftCounters(topo, weft) : undefined
  const window: Window = { wall, cores: coresBetween(m0, m1) }
  if (others.length > 0) window.processes = others.map((_, j) => (p1[j].user + p1[j].sys - p0[j].user - p0[j].sys) / wall)
  if (weft !== undefined && c0 !== undefined && c1 !== undefined && mem !== undefined) {
    window.daemons = weftSamples(weft, c0, c1, cpu0, cpu1).map((s, j) => ({ ...s, cores: (s.user + s.sys) / wall, rssMiB: mem[j].rssMiB }))
  }
  return { value, window }
}

interface PingFigures { sent: number, received: number, medianMs: number, p99Ms: number, window: Window }
interface TcpFigures { gbps: number, retransmits: number, window: Window }
interface UdpFigures { offeredGbps: number, receivedGbps: number, sentGbps: number, lostPercent: number, packets: number, lostPackets: number, window: Window }
interface PpsFigures { offered: number, delivered: number, seconds: number, window: Window }

interface PathFigures {
  name: string
  label: string
  kind: Bar['kind']
  background: number
  podMtu: number
  backend?: string
  deviceMtu?: number
  /** weft: each daemon's offloads in use (its status) */
  offloads?: Array<Record<string, boolean> | undefined>
  ping?: PingFigures
  tcp1?: TcpFigures
  tcp4?: TcpFigures
  udp?: UdpFigures
  pps?: PpsFigures
  /** weft: each daemon's peak RSS (VmHWM) at the end, MiB */
  peakMiB?: number[]
  /** weft: what each daemon dropped over all the measurements, by reason, and its TUN's tx drops */
  drops?: Array<{ node: string, reasons: Record<string, number>, tunTxDropped: number }>
  error?: string
}

function rateToGbps (rate: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)$/.exec(rate)
  const mult = { '': 1e-9, K: 1e-6, M: 1e-3, G: 1 }[m?.[2] ?? '']
  return Number(m?.[1] ?? NaN) * (mult ?? NaN)
}

/**
 * IP packets the pod's namespace received, GSO segments counted one by one
 * (IpExt InNoECTPkts and its ECN siblings: ip_rcv adds gso_segs). A weft
 * receiver writes runs of datagrams into its TUN as UDP super-packets, which
 * reach the pod as one skb each: eth0's rx_packets would count those once.
 */
async function ipPacketsIn (topo: Topology, pod: Pod): Promise<number> {
  const lines = (await topo.exec(pod.ns, ['cat', '/proc/net/netstat'])).stdout.split('\n').filter((l) => l.startsWith('IpExt:'))
  if (lines.length < 2) throw new Error(`no IpExt counters in ${pod.ns}'s /proc/net/netstat`)
  const keys = lines[0].trim().split(/\s+/)
  const values = lines[1].trim().split(/\s+/).map(Number)
  return ['InNoECTPkts', 'InECT1Pkts', 'InECT0Pkts', 'InCEPkts'].reduce((a, k) => a + (values[keys.indexOf(k)] ?? 0), 0)
}

/** 64-byte UDP payloads from `from` to `to` for `seconds`, as fast as udp-flood.js can send them. */
async function flood (topo: Topology, from: Pod, to: Pod, seconds: number): Promise<Omit<PpsFigures, 'window'>> {
  const rx0 = await ipPacketsIn(topo, to)
  const r = await topo.exec(from.ns, [process.execPath, FLOOD, '--to', `${to.ip}:${SINK_PORT}`, '--size', '64', '--batch', '64', '--seconds', String(seconds)], { timeoutMs: (seconds + 20) * 1000 })
  // what is still in queues arrives within moments
  await new Promise((resolve) => setTimeout(resolve, 300))
  const rx1 = await ipPacketsIn(topo, to)
  const line = r.stdout.split('\n').find((l) => l.startsWith('{"flood"'))
  if (line === undefined) throw new Error(`udp-flood printed no result: ${r.stdout.slice(-300)}${r.stderr.slice(-300)}`)
  const f = (JSON.parse(line) as { flood: { sent: number, seconds: number } }).flood
  return { offered: f.sent / f.seconds, delivered: (rx1 - rx0) / f.seconds, seconds: f.seconds }
}

function kindOf (def: PathDef): Bar['kind'] {
  return def.name === 'veth' ? 'ceiling' : def.name === 'kernel-vxlan' || def.name === 'wireguard-go' ? 'reference' : def.name === 'forwarder' ? 'floor' : 'weft'
}

async function measurePath (def: PathDef, o: Options): Promise<PathFigures> {
  const background = await backgroundLoad()
  const kind = kindOf(def)
  progress(`${def.label}: setting up (background load ${background.toFixed(2)} cores)`)
  const timeoutMs = 4 * (o.seconds + 25) * 1000 + o.pings * 20 + 120_000
  return await withPath(def, { label: 'bench-run', timeoutMs, progress }, async (s: PathSetup) => {
    const { topo, weft } = s
    const [client, server] = s.pods
    const fig: PathFigures = { name: def.name, label: def.label, kind, background, podMtu: s.podMtu }
    if (weft !== undefined) Object.assign(fig, { backend: weft.backend, deviceMtu: weft.deviceMtu, offloads: weft.offloads })
    await proveReachable(topo, client, server, def.label)
    const first = weft !== undefined ? await weftCounters(topo, weft) : undefined

    progress(`${def.label}: warm-up, ${WARM_UP_PINGS} pings at 2 ms; ping, ${o.pings} at 10 ms ...`)
    await ping(topo, client, server.ip, { count: WARM_UP_PINGS, intervalS: 0.002, waitS: 1 })
    const p = await measured(topo, weft, async () => await ping(topo, client, server.ip, { count: o.pings, intervalS: 0.01, waitS: 1, rtts: true }), s.procs)
    const rtts = p.value.rtts ?? []
    fig.ping = { sent: p.value.sent, received: p.value.received, medianMs: median(rtts), p99Ms: percentile(rtts, 99), window: p.window }
    progress(`  median ${fig.ping.medianMs.toFixed(3)} ms, p99 ${fig.ping.p99Ms.toFixed(3)} ms, ${fig.ping.received}/${fig.ping.sent} replies`)

    for (const streams of [1, 4]) {
      progress(`${def.label}: TCP, ${streams} stream${streams > 1 ? 's' : ''}, ${o.seconds} s ...`)
      const t = await measured(topo, weft, async () => await iperf(topo, server, client, { serverIp: server.ip, seconds: o.seconds, parallel: streams, congestion: o.congestion }), s.procs)
      const f: TcpFigures = { gbps: t.value.gbps, retransmits: t.value.retransmits, window: t.window }
      if (streams === 1) fig.tcp1 = f
      else fig.tcp4 = f
      progress(`  ${f.gbps.toFixed(2)} Gbit/s, ${f.retransmits} retransmits`)
    }

    progress(`${def.label}: UDP at ${o.udpRate}bit/s, ${o.seconds} s ...`)
    const u = await measured(topo, weft, async () => await iperf(topo, server, client, { serverIp: server.ip, seconds: o.seconds, udp: { bitrate: o.udpRate, length: s.podMtu - 28 } }), s.procs)
    fig.udp = {
      offeredGbps: rateToGbps(o.udpRate),
      receivedGbps: u.value.gbps,
      sentGbps: u.value.udp?.sentGbps ?? NaN,
      lostPercent: u.value.udp?.lostPercent ?? NaN,
      packets: u.value.udp?.packets ?? 0,
      lostPackets: u.value.udp?.lostPackets ?? 0,
      window: u.window
    }
    progress(`  ${(fig.udp.receivedGbps * 1000).toFixed(0)} Mbit/s arrived, ${fig.udp.lostPercent.toFixed(2)} % lost`)

    progress(`${def.label}: 64-byte UDP flood, ${o.seconds} s ...`)
    const f = await measured(topo, weft, async () => await flood(topo, client, server, o.seconds), s.procs)
    fig.pps = { ...f.value, window: f.window }
    progress(`  ${fmtRate(fig.pps.delivered)}packets/s delivered of ${fmtRate(fig.pps.offered)}packets/s sent`)

    if (weft !== undefined && first !== undefined) {
      const last = await weftCounters(topo, weft)
      fig.peakMiB = weft.pids.map((pid) => memoryOf(pid).peakMiB)
      fig.drops = weftSamples(weft, first, last, weftCpu(weft), weftCpu(weft)).map((d) => ({ node: d.node, reasons: d.drops, tunTxDropped: d.tunTxDropped }))
      for (const d of fig.drops) {
        if (Object.keys(d.reasons).length > 0 || d.tunTxDropped > 0) progress(`note: ${def.label} ${d.node} dropped ${JSON.stringify(d.reasons)}, its TUN ${d.tunTxDropped} (tx_dropped)`)
      }
    }
    return fig
  })
}

// --- report ----------------------------------------------------------------------

const f2 = (x: number | undefined): string => x !== undefined && Number.isFinite(x) ? x.toFixed(2) : '-'
const f3 = (x: number | undefined): string => x !== undefined && Number.isFinite(x) ? x.toFixed(3) : '-'
const f0 = (x: number | undefined): string => x !== undefined && Number.isFinite(x) ? x.toFixed(0) : '-'
const kpps = (x: number | undefined): string => x !== undefined && Number.isFinite(x) ? (x / 1000).toFixed(0) : '-'

/** Everything the flood sent arrived: the generator, not the path, set the rate (a lower bound for the path). */
function senderBound (p: PathFigures): boolean {
  return p.pps !== undefined && p.pps.delivered >= 0.98 * p.pps.offered
}

/** Both daemons' cores summed over a window (or both wireguard-go's). */
function daemonCores (w: Window | undefined): number | undefined {
  return w?.daemons?.reduce((a, d) => a + d.cores, 0) ?? w?.processes?.reduce((a, c) => a + c, 0)
}

/** CPU seconds of the carrying processes per GB (10^9 bytes) a TCP measurement moved. */
function cpuPerGB (f: TcpFigures | undefined, seconds: number): number | undefined {
  const cores = daemonCores(f?.window)
  if (f === undefined || cores === undefined) return undefined
  return cores * f.window.wall / (f.gbps * seconds / 8)
}

type Metric = 'tcp1' | 'tcp4' | 'udp' | 'pps' | 'rtt'
const METRICS: Record<Metric, { label: string, get: (p: PathFigures) => number | undefined }> = {
  tcp1: { label: 'TCP 1', get: (p) => p.tcp1?.gbps },
  tcp4: { label: 'TCP 4', get: (p) => p.tcp4?.gbps },
  udp: { label: 'UDP', get: (p) => p.udp?.receivedGbps },
  pps: { label: '64B pps', get: (p) => p.pps?.delivered },
  rtt: { label: 'RTT med', get: (p) => p.ping?.medianMs }
}

function ratios (results: PathFigures[]): Record<string, Record<Metric, number>> {
  const ref = results.find((p) => p.name === 'kernel-vxlan')
  const out: Record<string, Record<Metric, number>> = {}
  if (ref === undefined) return out
  for (const p of results) {
    if (p === ref) continue
    out[p.name] = Object.fromEntries((Object.keys(METRICS) as Metric[]).map((m) => [m, (METRICS[m].get(p) ?? NaN) / (METRICS[m].get(ref) ?? NaN)])) as Record<Metric, number>
  }
  return out
}

/** 'cubic'; a run with --congestion default (or from before the option) says so */
function congestionLabel (o: Options): string {
  return o.congestion ?? "the machine's default congestion control"
}

function table (results: PathFigures[], o: Options, print: (l: string) => void, h2h: HeadToHead[], workers: HeadToHead[], pings: PingHeadToHead[], conds: ConditionResult[] = [], udp?: UdpMaxRate, wg?: WireguardHeadToHead, v6: Ipv6HeadToHead[] = []): void {
  // a run of the conditions, the UDP search, the WireGuard or the IPv6 rounds alone (--only) has no paths' table
  if (results.length > 0 || (conds.length === 0 && udp === undefined && wg === undefined && v6 === undefined)) pathsTable(results, o, print)
  if (udp !== undefined) printUdpMaxRate(udp, print)
  if (wg !== undefined) printWireguardRounds(wg, print)
  for (const h of v6) printIpv6Rounds(h, print)
  printRounds(`head to head: TCP 1 stream, kernel VXLAN and each weft path set up at once and run in turn, ${o.rounds} rounds of ${o.seconds} s`, 'kernel/weft', h2h, print)
  printConditions(`head to head by condition: weft vxlan against kernel VXLAN, both set up at once and run in turn, ${Math.max(0, ...conds.map((c) => c.rounds.length))} rounds of ${o.seconds} s`, conds, print)
  printRounds(`two workers against one: TCP ${WORKER_STREAMS} streams, weft vxlan with one worker and with two set up at once and run in turn, ${o.rounds} rounds of ${o.seconds} s`, '1 worker/2', workers, print)
  printPingRounds(`ping rounds: kernel VXLAN, ${pings.map((h) => h.name === 'vxlan-bp' ? `${h.label} ${BUSY_POLL_US}` : h.label).join(', ')} set up at once and pinged in turn, ${pingRoundCount(pings)} rounds of ${PING_ROUND_COUNT} pings at 10 ms`, pings, print)
  const busiest = Math.max(...results.map((p) => p.background))
  if (busiest > 0.25) print(`\nnote: the machine was not idle (up to ${f2(busiest)} of ${os.cpus().length} cores busy before a path started): every path shared the cores with that load`)
  for (const p of results.filter((p) => p.backend !== undefined && p.error === undefined)) {
    for (const d of p.drops ?? []) {
      const reasons = Object.entries(d.reasons).map(([k, v]) => `${k} ${v}`).join(', ')
      if (reasons !== '' || d.tunTxDropped > 0) print(`note: ${p.label} ${d.node} dropped ${reasons !== '' ? reasons : 'nothing itself'}; its TUN tx_dropped ${d.tunTxDropped} (packets the kernel queued that the daemon did not read in time)`)
    }
  }
}

/** '1450', or '1450 (weft wireguard, wireguard-go: 1420)' where some paths' pods have another */
function podMtus (results: PathFigures[]): string {
  const ok = results.filter((p) => Number.isFinite(p.podMtu))
  const first = ok[0]?.podMtu
  if (first === undefined) return '-'
  const others = [...new Set(ok.filter((p) => p.podMtu !== first).map((p) => p.podMtu))]
  return `${first}${others.map((m) => ` (${ok.filter((p) => p.podMtu === m).map((p) => p.label).join(', ')}: ${m})`).join('')}`
}

/** The paths' own table: each path's figures, the daemons' CPU and RSS, the ratios. */
function pathsTable (results: PathFigures[], o: Options, print: (l: string) => void): void {
  print(`\nall paths, pod on h1 -> pod on h2, ${o.seconds} s per iperf3 run, pod MTU ${podMtus(results)}, weft offloads ${o.offloads ? 'on' : 'OFF (WEFT_OFFLOADS=off)'}, TCP ${congestionLabel(o)}, ${os.cpus().length} CPUs, kernel ${os.release()}, underlay ${o.underlay === 'nic' ? 'NIC-like (GSO in software before eth0, GRO after it)' : 'veth (super-packets cross whole)'}`)
  print(`                 TCP Gbit/s       UDP at ${o.udpRate.padEnd(4)}       64-byte UDP kpps     ping RTT ms     background`)
  print('path            1 str  4 str   Mbit/s  loss %   delivered  (sent)   median    p99     cores')
  for (const p of results) {
    if (p.error !== undefined) { print(`${p.label.padEnd(14)}  failed: ${p.error.split('\n')[0]}`); continue }
    print(`${p.label.padEnd(14)} ${f2(p.tcp1?.gbps).padStart(6)} ${f2(p.tcp4?.gbps).padStart(6)}  ${f0((p.udp?.receivedGbps ?? NaN) * 1000).padStart(7)} ${f2(p.udp?.lostPercent).padStart(7)}   ${`${kpps(p.pps?.delivered)}${senderBound(p) ? '*' : ' '}`.padStart(9)} ${`(${kpps(p.pps?.offered)})`.padStart(7)}  ${f3(p.ping?.medianMs).padStart(7)} ${f3(p.ping?.p99Ms).padStart(7)}  ${f2(p.background).padStart(8)}`)
  }
  if (results.some(senderBound)) print('* all that was sent arrived: the flood generator, not the path, set this rate (the path can do at least this)')
  const wefts = results.filter((p) => p.error === undefined && (p.backend !== undefined || p.tcp1?.window.processes !== undefined))
  if (wefts.length > 0) {
    print('\nweft daemons (and wireguard-go\'s processes): CPU of both (h1 sender + h2 receiver) in cores during each measurement, and CPU seconds per GB that TCP moved; RSS in MiB (largest seen / peak)')
    print('path            ping   TCP 1  TCP 4    UDP  flood  s/GB 1  s/GB 4    RSS h1     RSS h2   dev MTU  offloads in use')
    for (const p of wefts) {
      const rss = (j: number): string => {
        if (p.backend === undefined) return '-'
        const seen = Math.max(...[p.ping, p.tcp1, p.tcp4, p.udp, p.pps].map((m) => m?.window.daemons?.[j]?.rssMiB ?? 0))
        return `${f0(seen)}/${f0(p.peakMiB?.[j])}`
      }
      const on = (x: Record<string, boolean> | undefined | null): string => x === undefined || x === null ? '-' : Object.keys(x).filter((k) => x[k]).join(',') || 'none'
      const offl = p.backend === undefined ? 'none (one packet per syscall)' : [...new Set((p.offloads ?? []).map(on))].join(' / ')
      print(`${p.label.padEnd(14)} ${f2(daemonCores(p.ping?.window)).padStart(5)}  ${f2(daemonCores(p.tcp1?.window)).padStart(5)}  ${f2(daemonCores(p.tcp4?.window)).padStart(5)}  ${f2(daemonCores(p.udp?.window)).padStart(5)}  ${f2(daemonCores(p.pps?.window)).padStart(5)}  ${f2(cpuPerGB(p.tcp1, o.seconds)).padStart(6)}  ${f2(cpuPerGB(p.tcp4, o.seconds)).padStart(6)}  ${rss(0).padStart(8)}   ${rss(1).padStart(8)}  ${String(p.deviceMtu ?? p.podMtu).padStart(7)}  ${offl}`)
    }
    if (wefts.some((p) => p.backend === 'host-gw')) print('(host-gw: the kernel forwards, the daemon only keeps routes: its CPU is idle upkeep)')
  }
  const r = ratios(results)
  if (Object.keys(r).length > 0) {
    print('\nratios to kernel VXLAN   TCP 1   TCP 4     UDP  64B pps   RTT median (lower is better)')
    for (const p of results) {
      const x = r[p.name]
      if (x === undefined) continue
      print(`${p.label.padEnd(22)} ${f2(x.tcp1).padStart(6)}  ${f2(x.tcp4).padStart(6)}  ${f2(x.udp).padStart(6)}  ${f2(x.pps).padStart(7)}  ${f2(x.rtt).padStart(7)}`)
    }
  }
}

/** Head to head by condition: each condition's rounds, the median ratio with its least and greatest, and each path's median rate. */
function printConditions (title: string, conds: ConditionResult[], print: (l: string) => void): void {
  if (conds.length === 0) return
  const n = Math.max(...conds.map((c) => c.rounds.length))
  const w = Math.max(9, ...conds.map((c) => c.label.length)) + 2
  print(`\n${title}`)
  print(`${'condition'.padEnd(w)}${Array.from({ length: n }, (_, i) => `round ${i + 1}: kernel/weft Gbit/s`.padEnd(28)).join('')}median ratio (min to max)   median Gbit/s kernel/weft`)
  for (const c of conds) {
    const cells = c.rounds.map((r) => `${f2(r.kernelGbps)}/${f2(r.weftGbps)} = ${f2(r.ratio)}x`.padEnd(28)).join('')
    const ratio = `${f2(c.medianRatio)}x (${f2(c.minRatio)} to ${f2(c.maxRatio)})`
    print(`${c.label.padEnd(w)}${cells.padEnd(28 * n)}${ratio.padEnd(28)}${f2(c.kernelGbps)}/${f2(c.weftGbps)}${c.error !== undefined ? `  failed: ${c.error.split('\n')[0]}` : ''}`)
  }
}

/** A condition's name on a chart bar: 'node, bbr', 'pod x4, cubic' */
function shortLabel (c: ConditionResult): string {
  return `${c.source}${c.streams > 1 ? ` x${c.streams}` : ''}, ${c.algorithm}`
}

/** Each path's rounds and their median ratio (nothing if none ran). */
function printRounds (title: string, pair: string, h2h: HeadToHead[], print: (l: string) => void): void {
  if (h2h.length === 0) return
  const n = Math.max(...h2h.map((h) => h.rounds.length))
  print(`\n${title}`)
  print(`path            ${Array.from({ length: n }, (_, i) => `round ${i + 1}: ${pair} Gbit/s`.padEnd(31)).join('')}median ratio`)
  for (const h of h2h) {
    const cells = h.rounds.map((r) => `${f2(r.kernelGbps)}/${f2(r.weftGbps)} = ${f2(r.ratio)}x`.padEnd(31)).join('')
    const range = h.rounds.length > 1 ? ` (${f2(Math.min(...h.rounds.map((r) => r.ratio)))} to ${f2(Math.max(...h.rounds.map((r) => r.ratio)))})` : ''
    print(`${h.label.padEnd(15)} ${cells.padEnd(31 * n)}${f2(h.medianRatio)}x${range}${h.error !== undefined ? `  failed: ${h.error.split('\n')[0]}` : ''}`)
  }
}

function pingRoundCount (pings: PingHeadToHead[]): number {
  return Math.max(0, ...pings.map((h) => h.rounds.length))
}

/** Each weft path's ping rounds: the medians, and how far behind kernel VXLAN's it was. */
function printPingRounds (title: string, pings: PingHeadToHead[], print: (l: string) => void): void {
  if (pings.length === 0) return
  const n = pingRoundCount(pings)
  print(`\n${title}`)
  print(`path                    ${Array.from({ length: n }, (_, i) => `round ${i + 1}: kernel/weft ms, gap`.padEnd(32)).join('')}median gap`)
  for (const h of pings) {
    const cells = h.rounds.map((r) => `${f3(r.kernelMs)}/${f3(r.weftMs)}, ${f0(r.gapUs)} µs`.padEnd(32)).join('')
    print(`${h.label.padEnd(23)} ${cells.padEnd(32 * n)}${f0(h.medianGapUs)} µs${h.error !== undefined ? `  failed: ${h.error.split('\n')[0]}` : ''}`)
  }
  const floor = overFloor(pings)
  if (floor !== undefined) print(`weft vxlan over the C forwarder (the floor of a TUN-and-socket design) in the same rounds: median ${f0(floor.gapUs)} µs behind it, ${f2(floor.ratio)}x its median; the C forwarder is ${f2(floor.floorRatio)}x kernel VXLAN's`)
}

/** The ping rounds' median gaps, with the issue's target (50 µs) as the reference line. */
function pingPanel (title: string, pings: PingHeadToHead[]): Panel {
  return {
    title,
    unit: 'µs behind kernel VXLAN',
    bars: pings.map((h) => ({ label: h.label, value: h.medianGapUs, kind: h.name === 'forwarder' ? 'floor' as const : 'weft' as const, ...(h.rounds.length > 1 ? { note: `rounds ${f0(Math.min(...h.rounds.map((r) => r.gapUs)))} to ${f0(Math.max(...h.rounds.map((r) => r.gapUs)))}` } : {}) })),
    reference: PING_TARGET_US,
    referenceLabel: `${PING_TARGET_US} µs`,
    ratios: false
  }
}

/**
 * Ping rounds per --rounds: a round costs a second per path, and kernel
 * VXLAN's median alone moved from 0.033 to 0.114 ms between two rounds.
 */
const PING_ROUNDS_PER_ROUND = 2

/** How far behind kernel VXLAN's median ping weft may be (issue 7). */
const PING_TARGET_US = 50

/** A chart panel of rounds' median ratios against their reference path. */
function roundsPanel (title: string, reference: string, h2h: HeadToHead[]): Panel {
  return {
    title,
    unit: `x ${reference}`,
    bars: [
      // coloured as what it is: kernel VXLAN, or a weft path
      { label: reference, value: 1, kind: reference === 'kernel VXLAN' ? 'reference' as const : 'weft' as const },
      ...h2h.map((h) => ({ label: h.label, value: h.medianRatio, kind: 'weft' as const, ...(h.rounds.length > 1 ? { note: `rounds ${f2(Math.min(...h.rounds.map((r) => r.ratio)))} to ${f2(Math.max(...h.rounds.map((r) => r.ratio)))}` } : {}) }))
    ]
  }
}

/** The WireGuard head to head: per congestion control, each path's median Gbit/s, wireguard-go as the reference line. */
function wgPanels (wg: WireguardHeadToHead | undefined): Panel[] {
  if (wg === undefined) return []
  return wg.congestions.map((c) => {
    const go = c.paths.find((p) => p.name === 'wireguard-go')
    return {
      title: `WireGuard head to head, TCP 1 stream, ${c.label}: median of ${wg.rounds} alternating rounds (CPU s/GB after the value)`,
      unit: 'Gbit/s',
      bars: c.paths.map((p) => ({ label: p.label, value: p.medianGbps, kind: p.name === 'wireguard-go' ? 'reference' as const : 'weft' as const, note: `${Number.isFinite(p.cpuPerGB) ? p.cpuPerGB.toFixed(1) : '-'} s/GB` })),
      ...(go !== undefined ? { reference: go.medianGbps, referenceLabel: 'wireguard-go' } : {})
    }
  })
}

function chart (results: PathFigures[], o: Options, stamp: string, h2h: HeadToHead[], workers: HeadToHead[], pings: PingHeadToHead[], conds: ConditionResult[] = [], udp?: UdpMaxRate, wg?: WireguardHeadToHead, v6: Ipv6HeadToHead[] = []): string {
  const ok = results.filter((p) => p.error === undefined)
  const ref = ok.find((p) => p.name === 'kernel-vxlan')
  const panel = (title: string, unit: string, get: (p: PathFigures) => number | undefined, note?: (p: PathFigures) => string | undefined) => ({
    title,
    unit,
    bars: ok.map((p) => ({ label: p.label, value: get(p), kind: p.kind, ...(note?.(p) !== undefined ? { note: note(p) } : {}) })),
    ...(ref !== undefined ? { reference: get(ref), referenceLabel: 'kernel VXLAN' } : {})
  })
  const bg = Math.max(...results.map((p) => p.background))
  const condPanel = conds.length > 0 ? [roundsPanel(`TCP head to head by condition (source, streams, congestion control): weft vxlan, median of ${Math.max(...conds.map((c) => c.rounds.length))} alternating rounds, as a share of kernel VXLAN`, 'kernel VXLAN', conds.map((c) => ({ ...c, label: shortLabel(c) })))] : []
  const udpPanels = udp !== undefined ? [udpPanel(udp)] : []
  const wireguardPanels = wgPanels(wg)
  const v6Panels = v6.flatMap(ipv6Panels)
  if (results.length === 0 && v6.length > 0 && wg === undefined && conds.length === 0 && udp === undefined) {
    return renderChart({
      title: `weft bench ${stamp}: IPv6 beside IPv4`,
      subtitle: `${os.cpus().length} CPUs, kernel ${os.release()}, weft offloads ${o.offloads ? 'on' : 'off'}, TCP ${v6.map((h) => h.congestion).join(' and ')}, ${v6[0].seconds} s per run; ratios are to the kernel's flannel.1 and flannel-v6.1 in the same run`,
      panels: v6Panels
    })
  }
  if (results.length === 0 && wg !== undefined && conds.length === 0 && udp === undefined) {
    return renderChart({
      title: `weft bench ${stamp}: WireGuard head to head`,
      subtitle: `${os.cpus().length} CPUs, kernel ${os.release()}, weft offloads ${o.offloads ? 'on' : 'off'}, ${wg.seconds} s per run, ${wg.wireguardGo}; ratios are to wireguard-go in the same run`,
      panels: wireguardPanels
    })
  }
  if (results.length === 0 && (conds.length > 0 || udp !== undefined)) {
    return renderChart({
      title: `weft bench ${stamp}: ${conds.length > 0 ? 'head to head by condition' : 'UDP within 1 % loss'}`,
      subtitle: `${os.cpus().length} CPUs, kernel ${os.release()}, weft offloads ${o.offloads ? 'on' : 'off'}, ${conds.length > 0 ? `${o.seconds} s per run` : `${udp?.probeSeconds ?? '-'} s per probe`}; ratios are to kernel VXLAN in the same run`,
      panels: [...condPanel, ...udpPanels, ...wireguardPanels, ...v6Panels]
    })
  }
  return renderChart({
    title: `weft bench ${stamp}: pod to pod across two nodes`,
    subtitle: `${os.cpus().length} CPUs, kernel ${os.release()}, weft offloads ${o.offloads ? 'on' : 'off'}, TCP ${congestionLabel(o)}, ${o.seconds} s per run, background load up to ${bg.toFixed(2)} cores; ratios are to kernel VXLAN`,
    panels: [
      panel('TCP, 1 stream', 'Gbit/s', (p) => p.tcp1?.gbps),
      panel('TCP, 4 streams', 'Gbit/s', (p) => p.tcp4?.gbps),
      panel(`64-byte UDP packets delivered${ok.some(senderBound) ? ' ("= sent": all arrived, the sender was the limit)' : ''}`, 'kpackets/s', (p) => p.pps === undefined ? undefined : p.pps.delivered / 1000,
        (p) => senderBound(p) ? '= sent' : undefined),
      panel('ping round trip, median (shorter is better)', 'ms', (p) => p.ping?.medianMs),
      ...udpPanels,
      ...(h2h.length > 0 ? [roundsPanel(`TCP, 1 stream, head to head: median of ${o.rounds} alternating rounds, as a share of kernel VXLAN`, 'kernel VXLAN', h2h)] : []),
      ...condPanel,
      ...(workers.length > 0 ? [roundsPanel(`TCP, ${WORKER_STREAMS} streams, two workers against one: median of ${o.rounds} alternating rounds`, 'weft vxlan', workers)] : []),
      ...(pings.length > 0 ? [pingPanel(`ping, median of ${pingRoundCount(pings)} alternating rounds: weft's median minus kernel VXLAN's (shorter is better; line: ${PING_TARGET_US} µs)`, pings)] : []),
      ...wireguardPanels,
      ...v6Panels
    ]
  })
}

/** 2024-05-01T14-24-11Z: sortable, and no colons in file names. */
function timestamp (d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')
}

/** Streams in the workers' rounds: one flow always stays on one worker, so it takes several to tell. */
const WORKER_STREAMS = 4

/** weft vxlan with two workers against one, --rounds alternating rounds of WORKER_STREAMS streams, when both were measured. */
async function workerRounds (o: Options, results: PathFigures[]): Promise<HeadToHead[]> {
  const one = o.paths.find((d) => d.name === 'vxlan')
  const two = o.paths.find((d) => d.name === 'vxlan-2w')
  const ok = (d: PathDef | undefined): d is PathDef => d !== undefined && results.some((p) => p.name === d.name && p.error === undefined)
  if (o.rounds === 0 || !ok(one) || !ok(two)) return []
  try {
    return await headToHead(one, [two], { rounds: o.rounds, seconds: o.seconds, congestion: o.congestion, streams: WORKER_STREAMS, progress })
  } catch (err) {
    progress(`two workers against one failed: ${(err as Error).stack ?? String(err)}`)
    return [{ name: two.name, label: two.label, rounds: [], medianRatio: NaN, error: (err as Error).message }]
  }
}

/**
 * Ping rounds: kernel VXLAN, weft vxlan and weft vxlan --busy-poll, when the
 * first two were measured and --rounds > 0; and the C forwarder when it was
 * measured: issue 19 names it the floor of a TUN-and-socket design, to be
 * measured in the same rounds, since one round's medians move by 2x between
 * minutes on this VM.
 */
async function pingRoundsOf (o: Options, results: PathFigures[]): Promise<PingHeadToHead[]> {
  const kernel = o.paths.find((d) => d.name === 'kernel-vxlan')
  const vxlan = o.paths.find((d) => d.name === 'vxlan')
  const forwarder = o.paths.find((d) => d.name === 'forwarder')
  const ok = (d: PathDef | undefined): d is PathDef => d !== undefined && results.some((p) => p.name === d.name && p.error === undefined)
  if (o.rounds === 0 || !ok(kernel) || !ok(vxlan)) return []
  const wefts: PathDef[] = [vxlan, VXLAN_BUSY_POLL, ...(ok(forwarder) ? [forwarder] : [])]
  try {
    return await pingRounds(kernel, wefts, { rounds: PING_ROUNDS_PER_ROUND * o.rounds, progress })
  } catch (err) {
    progress(`ping rounds failed: ${(err as Error).stack ?? String(err)}`)
    return wefts.map((d) => ({ name: d.name, label: d.label, rounds: [], medianGapUs: NaN, error: (err as Error).message }))
  }
}

/**
 * Head to head, when kernel VXLAN and a weft path were both measured and
 * --rounds > 0. Weft vxlan's rounds are the conditions' pod, 1 stream,
 * --congestion rounds when those ran (the same measure: run again, they
 * would only cost half a minute).
 */
async function rounds (o: Options, results: PathFigures[], conds: ConditionResult[]): Promise<HeadToHead[]> {
  const kernel = o.paths.find((d) => d.name === 'kernel-vxlan')
  const ok = (d: PathDef): boolean => results.some((p) => p.name === d.name && p.error === undefined)
  const wefts = o.paths.filter((d) => kindOf(d) === 'weft' && ok(d) && !('headToHead' in d && !d.headToHead))
  if (o.rounds === 0 || kernel === undefined || !ok(kernel) || wefts.length === 0) return []
  const same = conds.find((c) => c.source === 'pod' && c.streams === 1 && c.congestion === (o.congestion ?? 'default') && c.error === undefined && c.rounds.length > 0)
  const taken = (d: PathDef): HeadToHead | undefined => d.name === 'vxlan' && same !== undefined ? { name: d.name, label: d.label, rounds: same.rounds, medianRatio: same.medianRatio } : undefined
  const run = wefts.filter((d) => taken(d) === undefined)
  let measured: HeadToHead[] = []
  if (run.length > 0) {
    try {
      measured = await headToHead(kernel, run, { rounds: o.rounds, seconds: o.seconds, congestion: o.congestion, progress })
    } catch (err) {
      progress(`head to head failed: ${(err as Error).stack ?? String(err)}`)
      measured = run.map((d) => ({ name: d.name, label: d.label, rounds: [], medianRatio: NaN, error: (err as Error).message }))
    }
  }
  return wefts.map((d) => taken(d) ?? measured.find((h) => h.name === d.name) as HeadToHead)
}

/** The UDP search (udp-search.ts): kernel VXLAN against weft vxlan and udp, those of --paths that were measured (with --only udp: selected). */
async function udpSearchOf (o: Options, results: PathFigures[]): Promise<UdpMaxRate | undefined> {
  if (o.only === 'head-to-head' || o.only === 'wireguard' || o.only === 'ipv6') return undefined
  const ok = (d: PathDef): boolean => o.only === 'udp' || results.some((p) => p.name === d.name && p.error === undefined)
  const kernel = o.paths.find((d) => d.name === 'kernel-vxlan')
  const wefts = o.paths.filter((d) => (d.name === 'vxlan' || d.name === 'udp') && ok(d))
  if (kernel === undefined || !ok(kernel) || wefts.length === 0) return undefined
  try {
    return await udpMaxRate(kernel, wefts, { progress })
  } catch (err) {
    progress(`UDP search failed: ${(err as Error).stack ?? String(err)}`)
    return { lossLimitPercent: LOSS_LIMIT, probeSeconds: PROBE_SECONDS, datagramBytes: NaN, pacing: process.env.WEFT_UDP_PACING ?? '', background: [], paths: [kernel, ...wefts].map((d) => ({ name: d.name, label: d.label, probes: [], maxMbps: NaN, maxOfferedMbps: NaN, senderBound: false, finished: false, error: (err as Error).message })), seconds: NaN }
  }
}

/**
 * The WireGuard head to head (wg-rounds.ts): weft wireguard and wireguard-go,
 * and weft vxlan beside them, set up at once. In a whole run, when weft
 * wireguard and wireguard-go were both measured (weft vxlan joins if it was);
 * with --only wireguard, those of --paths (wireguard and wireguard-go always).
 */
async function wireguardOf (o: Options, results: PathFigures[]): Promise<WireguardHeadToHead | undefined> {
  if (o.rounds === 0 || (o.only !== undefined && o.only !== 'wireguard')) return undefined
  const find = (name: string): PathDef | undefined => PATHS.find((d) => d.name === name)
  const chosen = (name: string): boolean => o.paths.some((d) => d.name === name)
  const ok = (name: string): boolean => o.only === 'wireguard' ? chosen(name) : chosen(name) && results.some((p) => p.name === name && p.error === undefined)
  const reference = find('wireguard-go')
  const weft = find('wireguard')
  if (reference === undefined || weft === undefined) return undefined
  if (o.only !== 'wireguard' && (!ok('wireguard') || !ok('wireguard-go'))) return undefined
  const vxlan = ok('vxlan') ? find('vxlan') : undefined
  return await wireguardRounds({ reference, weft, ...(vxlan !== undefined ? { vxlan } : {}) }, { rounds: o.rounds, seconds: o.seconds, congestions: o.h2hCongestions, progress })
}

/**
 * IPv6 beside IPv4 (ipv6.ts): in a whole run, when kernel VXLAN and weft
 * vxlan were both measured (its IPv4 half is theirs again, beside its IPv6
 * half); with --only ipv6, always. Not with --rounds 0.
 */
async function ipv6Of (o: Options, results: PathFigures[]): Promise<Ipv6HeadToHead[]> {
  if (o.rounds === 0 || (o.only !== undefined && o.only !== 'ipv6')) return []
  if (o.only === undefined) {
    const ok = (name: string): boolean => o.paths.some((d) => d.name === name) && results.some((p) => p.name === name && p.error === undefined)
    if (!ok('kernel-vxlan') || !ok('vxlan')) return []
    const skip = ipv6SkipReason()
    if (skip !== undefined) { progress(`IPv6 beside IPv4 skipped: ${skip}`); return [] }
  }
  // under each --h2h-congestion, as the other head-to-head rounds: the
  // kernel's own IPv6 and IPv4 paths compare differently under each
  const out: Ipv6HeadToHead[] = []
  for (const c of o.h2hCongestions) out.push(await ipv6Rounds({ rounds: o.rounds, seconds: o.seconds, congestion: c === 'default' ? undefined : c, progress }))
  return out
}

/** Head to head by condition (conditions.ts): in a whole run, when kernel VXLAN and weft vxlan were both measured and --rounds > 0. */
async function conditionsOf (o: Options, results: PathFigures[]): Promise<ConditionResult[]> {
  if (o.rounds === 0 || o.only === 'udp' || o.only === 'wireguard' || o.only === 'ipv6') return []
  if (o.only === undefined) {
    const ok = (name: string): boolean => o.paths.some((d) => d.name === name) && results.some((p) => p.name === name && p.error === undefined)
    if (!ok('kernel-vxlan') || !ok('vxlan')) return []
  }
  return await conditionRounds({ rounds: o.rounds, seconds: o.seconds, conditions: o.conditions, congestions: o.h2hCongestions, progress })
}

export async function main (argv: string[]): Promise<number> {
  let o: Options
  try { o = options(argv) } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${usage('run', FLAGS)}\n`)
    return 2
  }
  if (o.report !== undefined) return report(o.report)
  const skip = netnsSkipReason() ?? toolSkipReason('iperf3', 'ping') ?? (o.only === 'wireguard' ? toolSkipReason('wireguard-go', 'wg', 'nsenter') : undefined) ?? (o.only === 'ipv6' ? ipv6SkipReason() : undefined)
  if (skip !== undefined) { console.log(`bench: skipped: ${skip}`); return 0 }
  // the daemons inherit our environment (cluster() spawns them with it)
  cleanUpOnInterrupt()
  if (!o.offloads) process.env.WEFT_OFFLOADS = 'off'
  setUnderlay(o.underlay)
  if (o.underlay === 'nic') { const t = toolSkipReason('ethtool'); if (t !== undefined) { console.log(`bench: --underlay nic: ${t}`); return 2 } }
  const started = new Date()
  const stamp = timestamp(started)
  const t0 = performance.now()

  let micro: MicroResult | undefined
  if (o.micro && o.only === undefined) {
    micro = await runMicro({ progress })
    printMicro(micro, (l) => console.log(l))
  }

  const results: PathFigures[] = []
  // One path at a time, each in its own topology torn down before the next starts.
  for (const def of o.only === undefined ? o.paths : []) {
    try {
      results.push(await measurePath(def, o))
    } catch (err) {
      // one broken path must not lose the others' figures
      progress(`${def.label} failed: ${(err as Error).stack ?? String(err)}`)
      results.push({ name: def.name, label: def.label, kind: kindOf(def), background: NaN, podMtu: NaN, error: (err as Error).message })
    }
  }
  const conds = await conditionsOf(o, results)
  const h2h = await rounds(o, results, conds)
  const workers = await workerRounds(o, results)
  const pings = await pingRoundsOf(o, results)
  const udp = await udpSearchOf(o, results)
  const wg = await wireguardOf(o, results)
  const v6 = await ipv6Of(o, results)
  const took = (performance.now() - t0) / 1000
  progress(`done in ${took.toFixed(0)} s`)
  table(results, o, (l) => console.log(l), h2h, workers, pings, conds, udp, wg, v6)

  const jsonPath = path.resolve(o.out ?? path.join(ROOT, 'bench', 'results', `${stamp}.json`))
  const svgPath = jsonPath.replace(/\.json$/, '') + '.svg'
  fs.mkdirSync(path.dirname(jsonPath), { recursive: true })
  fs.writeFileSync(jsonPath, JSON.stringify({
    bench: 'run',
    started: started.toISOString(),
    seconds: took,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, kernel: os.release(), node: process.version, loadavg: os.loadavg() },
    options: { seconds: o.seconds, paths: o.only === undefined ? o.paths.map((p) => p.name) : [], offloads: o.offloads, udpRate: o.udpRate, pings: o.pings, rounds: o.rounds, congestion: o.congestion ?? 'default', ...(o.only !== undefined ? { only: o.only } : {}), conditions: o.conditions.map((c) => c.name), h2hCongestion: o.h2hCongestions, underlay: o.underlay },
    micro,
    paths: results,
    ratiosToKernelVxlan: ratios(results),
    headToHead: h2h,
    headToHeadByCondition: conds,
    workers,
    pingRounds: pings,
    ...(udp !== undefined ? { udpMaxRate: udp } : {}),
    ...(wg !== undefined ? { wireguardHeadToHead: wg } : {}),
    // the first congestion control's alone, as runs before there were several
    ...(v6.length > 0 ? { ipv6HeadToHead: v6[0], ipv6HeadToHeadByCongestion: v6 } : {})
  }, null, 2) + '\n')
  fs.writeFileSync(svgPath, chart(results, o, stamp, h2h, workers, pings, conds, udp, wg, v6))
  console.log(`\nJSON: ${jsonPath}\nSVG:  ${svgPath}`)
  return results.some((p) => p.error !== undefined) || conds.some((c) => c.error !== undefined) || (udp?.paths.some((p) => p.error !== undefined) ?? false) || wg?.error !== undefined || v6.some((h) => h.error !== undefined) ? 1 : 0
}

/** --report: the table and the chart again from a JSON this program wrote (after a change to either). */
function report (file: string): number {
  const j = JSON.parse(fs.readFileSync(file, 'utf8')) as { started: string, options: { seconds: number, offloads: boolean, udpRate: string, pings: number, rounds?: number, congestion?: string }, micro?: MicroResult, paths: PathFigures[], headToHead?: HeadToHead[], headToHeadByCondition?: ConditionResult[], workers?: HeadToHead[], pingRounds?: PingHeadToHead[], udpMaxRate?: UdpMaxRate, wireguardHeadToHead?: WireguardHeadToHead, ipv6HeadToHead?: Ipv6HeadToHead, ipv6HeadToHeadByCongestion?: Ipv6HeadToHead[] }
  const v6 = j.ipv6HeadToHeadByCongestion ?? (j.ipv6HeadToHead !== undefined ? [j.ipv6HeadToHead] : [])
  const congestion = j.options.congestion === undefined || j.options.congestion === 'default' ? undefined : j.options.congestion
  const o: Options = { ...j.options, rounds: j.options.rounds ?? 0, congestion, paths: [], out: file, micro: j.micro !== undefined, report: file, only: undefined, conditions: [], h2hCongestions: [], underlay: (j.options as { underlay?: 'veth' | 'nic' }).underlay ?? 'veth' }
  const conds = j.headToHeadByCondition ?? []
  const h2h = j.headToHead ?? []
  const workers = j.workers ?? []
  if (j.micro !== undefined) printMicro(j.micro, (l) => console.log(l))
  const pings = j.pingRounds ?? []
  table(j.paths, o, (l) => console.log(l), h2h, workers, pings, conds, j.udpMaxRate, j.wireguardHeadToHead, v6)
  const svgPath = path.resolve(file).replace(/\.json$/, '') + '.svg'
  fs.writeFileSync(svgPath, chart(j.paths, o, timestamp(new Date(j.started)), h2h, workers, pings, conds, j.udpMaxRate, j.wireguardHeadToHead, v6))
  console.log(`\nSVG:  ${svgPath}`)
  return 0
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err) => { console.error(err); process.exitCode = 1 })
}
