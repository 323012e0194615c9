// Single-stream TCP throughput between two pods on different nodes, through
// every dataplane weft has beside the kernel's own, in one run, so the numbers
// share a machine, a kernel and a moment and can be divided by each other.
//
// 1. plain veth (the ceiling): two hosts on the bridge underlay, a pod on
//    each (cni0 bridge, 10.244.1.0/24 and 10.244.2.0/24), routed by the
//    hosts' kernels with static routes `10.244.x.0/24 via 198.18.0.y`
// 2. kernel VXLAN: the same pod layout behind flannel-style flannel.1
//    devices (what flanneld programs), one on each host
// 3. weft vxlan, ipip, udp and host-gw: two real `weft run` daemons on one
//    SQLite store, configured with `{"Network":"10.244.0.0/16","Backend":
//    {"Type":"<backend>"}}` and nothing else, so they differ only in the
//    backend; pods on the subnets the daemons leased (from subnet.env)
// 4. `--paths` picks some of them (default all six); they always run in the
//    order above, each in a fresh two-host topology (nothing left over from
//    the one before), a ping to prove reachability, then `--repeat` iperf3
//    runs of `--seconds` each, pod on h1 -> pod on h2; median, min, max
// 5. for every path: retransmits, and the machine's busy cores (user, sys,
//    softirq) during the runs, plus the load before the path started with
//    nothing of ours running (other work on the box skews everything)
// 6. for each weft backend also: each daemon's CPU time (utime + stime of its
//    node process), average batch size (packets per TUN read / per outside
//    read, from its status counters), the TUN devices' tx drops (what the
//    kernel queued that the daemon did not read in time: lost packets, so
//    retransmits), and one extra run the other way (h2 -> h1) to check
//    symmetry; host-gw has no TUN (the kernel forwards, weft only keeps the
//    routes), so only its CPU is shown
// 7. a table, one line of daemon figures per weft backend, the ratios (each
//    weft backend over kernel VXLAN and over veth), then one JSON line
//
// All pods use the same MTU (1450, flannel's VXLAN MTU on a 1500 underlay)
// so the paths differ only in what carries the packets; the MTU each weft
// backend chose for its device (ipip 1480, udp 1472, host-gw 1500) is shown
// under the table, and would allow its pods slightly bigger packets.
//
// usage: sudo node dist/bench/vxlan-iperf.js [--seconds 3] [--repeat 2] [--congestion cubic]
//          [--paths veth,kernel-vxlan,vxlan,vxlan-2w,ipip,udp,host-gw,forwarder,wireguard,wireguard-go]
import os from 'node:os'
import type { Topology } from '../lab/netns'
import type { Pod } from '../lab/pods'
import { iperf } from '../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../lab/skip'
import { backgroundLoad, coresBetween, machineTicks } from '../lab/cpu'
import type { Cores } from '../lab/cpu'
import { cleanUpOnInterrupt, PATHS, POD_MTU, proveReachable, selectPaths, weftCounters, weftCpu, weftSamples, withPath } from './paths'
import type { DaemonSample, PathDef, Weft } from './paths'
import { benchArgs, congestionOption, numberFlag } from './args'
import { max, median, min } from './stats'

const flags = benchArgs('vxlan-iperf', {
  seconds: { type: 'string', default: '3' },
  repeat: { type: 'string', default: '2' },
  congestion: { type: 'string', default: 'cubic' },
  paths: { type: 'string', default: PATHS.map((p) => p.name).join(',') }
})
const seconds = numberFlag('seconds', flags.seconds, { min: 0, max: 600, above: true })
const repeat = numberFlag('repeat', flags.repeat, { min: 1, max: 100, integer: true })
const selected: readonly PathDef[] = selectPaths(flags.paths)
// the senders' congestion control, as run.js: cubic unless told ('default': the machine's)
const congestion = congestionOption(flags.congestion)

const progress = (msg: string): void => { process.stderr.write(`vxlan-iperf: ${msg}\n`) }

// --- one path's runs -------------------------------------------------------

interface Run {
  gbps: number
  retransmits: number
  /** seconds the iperf3 run took, server start-up included: the window CPU is measured over */
  wall: number
  /** machine-wide, averaged over that window */
  cores: Cores
  daemons?: DaemonSample[]
}

interface PathResult {
  key: string
  label: string
  from: string
  to: string
  /** cores busy before setup, with nothing of ours running */
  background: number
  /** weft: the backend, the MTU it gave its device, and whether packets pass through the daemon (a TUN) */
  backend?: string
  deviceMtu?: number
  tun?: boolean
  runs: Run[]
}

async function measure (topo: Topology, label: string, client: Pod, server: Pod, n: number, weft?: Weft): Promise<Run[]> {
  await proveReachable(topo, client, server, label)
  const runs: Run[] = []
  for (let i = 0; i < n; i++) {
    progress(`${label} ${client.host.name} -> ${server.host.name}: run ${i + 1}/${n}, ${seconds} s ...`)
    // Status queries cost the daemons CPU too: counters outside the CPU window, CPU times tight around iperf3.
    const c0 = weft !== undefined ? await weftCounters(topo, weft) : undefined
    const cpu0 = weftCpu(weft)
    const m0 = machineTicks()
    const w0 = performance.now()
    const r = await iperf(topo, server, client, { serverIp: server.ip, seconds, congestion })
    const wall = (performance.now() - w0) / 1000
    const m1 = machineTicks()
    const cpu1 = weftCpu(weft)
    const c1 = weft !== undefined ? await weftCounters(topo, weft) : undefined
    // The iperf3 server's start-up is idle time inside the window: it dilutes
    // the CPU figures a little (a few percent at 5 s), the same for all paths.
    const run: Run = { gbps: r.gbps, retransmits: r.retransmits, wall, cores: coresBetween(m0, m1) }
    if (weft !== undefined && c0 !== undefined && c1 !== undefined) run.daemons = weftSamples(weft, c0, c1, cpu0, cpu1)
    progress(`  ${r.gbps.toFixed(2)} Gbit/s, ${r.retransmits} retransmits`)
    runs.push(run)
  }
  return runs
}

// --- the paths -------------------------------------------------------------

const TOPO_TIMEOUT_MS = (repeat + 1) * (seconds + 25) * 1000 + 90_000

async function runPath (def: PathDef): Promise<PathResult[]> {
  const background = await backgroundLoad()
  progress(`${def.label}: setting up (background load ${background.toFixed(2)} cores)`)
  return await withPath(def, { label: 'bench-iperf', timeoutMs: TOPO_TIMEOUT_MS, progress }, async ({ topo, pods: [p1, p2], weft }) => {
    const forward = await measure(topo, def.label, p1, p2, repeat, weft)
    if (weft === undefined) return [{ key: def.key, label: def.label, from: 'h1', to: 'h2', background, runs: forward }]
    const reverse = await measure(topo, def.label, p2, p1, 1, weft)
    for (const d of weft.daemons) {
      const drops = (await d.status()).counters.drops
      if (Object.keys(drops).length > 0) progress(`note: ${def.label} ${d.host.name} dropped ${JSON.stringify(drops)}`)
    }
    const common = { label: def.label, background, backend: weft.backend, deviceMtu: weft.deviceMtu, tun: weft.tun }
    return [
      { ...common, key: def.key, from: 'h1', to: 'h2', runs: forward },
      { ...common, key: `${def.key}Reverse`, from: 'h2', to: 'h1', runs: reverse }
    ]
  })
}

// --- report ----------------------------------------------------------------

interface DaemonSummary {
  node: string
  role: 'sender' | 'receiver'
  /** cores (user + sys) over the runs' windows */
  cores: number
  user: number
  sys: number
  /** share of the CPU time spent on the main (event loop) thread, where the dataplane runs */
  mainShare: number
  /** packets per TUN read batch (inside) and per outside read (recvmmsg, or the raw socket's batch for ipip) */
  insideBatch: number
  outsideBatch: number
  insidePackets: number
  outsidePackets: number
  tunTxDroppedPerRun: number
}

interface PathSummary {
  label: string
  from: string
  to: string
  backend?: string
  deviceMtu?: number
  background: number
  median: number
  min: number
  max: number
  retransmitsMedian: number
  /** machine-wide, over all the runs' windows */
  cores: Cores
  runs: Run[]
  daemons?: DaemonSummary[]
}

function summarize (p: PathResult): PathSummary {
  const g = p.runs.map((r) => r.gbps)
  const wall = p.runs.reduce((a, r) => a + r.wall, 0)
  // weighted by window length, like one long sample
  const cores = (k: keyof Cores): number => p.runs.reduce((a, r) => a + r.cores[k] * r.wall, 0) / wall
  const out: PathSummary = {
    label: p.label,
    from: p.from,
    to: p.to,
    ...(p.backend !== undefined ? { backend: p.backend, deviceMtu: p.deviceMtu } : {}),
    background: p.background,
    median: median(g),
    min: min(g),
    max: max(g),
    retransmitsMedian: median(p.runs.map((r) => r.retransmits)),
    cores: { busy: cores('busy'), user: cores('user'), sys: cores('sys'), softirq: cores('softirq') },
    runs: p.runs
  }
  const first = p.runs[0].daemons
  if (first !== undefined) {
    out.daemons = first.map((d0, j) => {
      const all = p.runs.map((r) => r.daemons![j])
      const sum = (k: Exclude<keyof DaemonSample, 'node' | 'drops'>): number => all.reduce((a, s) => a + s[k], 0)
      const cpu = sum('user') + sum('sys')
      return {
        node: d0.node,
        role: d0.node === p.from ? 'sender' : 'receiver',
        cores: cpu / wall,
        user: sum('user') / wall,
        sys: sum('sys') / wall,
        mainShare: cpu > 0 ? sum('main') / cpu : 0,
        insideBatch: sum('insidePackets') / Math.max(1, sum('insideBatches')),
        outsideBatch: sum('outsidePackets') / Math.max(1, sum('outsideBatches')),
        insidePackets: sum('insidePackets'),
        outsidePackets: sum('outsidePackets'),
        tunTxDroppedPerRun: sum('tunTxDropped') / all.length
      }
    })
  }
  return out
}

function report (results: PathResult[]): void {
  const sums = new Map(results.map((p) => [p.key, summarize(p)]))
  const f2 = (x: number): string => Number.isFinite(x) ? x.toFixed(2) : '-'
  const dir = (p: PathResult): string => `${p.from}->${p.to}`
  const cpus = os.cpus().length

  const wgMtu = results.some((p) => /wireguard/i.test(p.key)) ? ' (1420 on the WireGuard paths: the device\'s, underlay less 80)' : ''
  console.log(`\nsingle-stream TCP, pod on one node -> pod on the other, ${seconds} s per run, pod MTU ${POD_MTU}${wgMtu}, ${cpus} CPUs, kernel ${os.release()}`)
  console.log('                                 Gbit/s                 retransmits   machine cores busy during runs     background')
  console.log('path          dir     runs   median    min    max        per run     all   user    sys  softirq     (idle: 0)')
  for (const p of results) {
    const s = sums.get(p.key)!
    console.log(`${p.label.padEnd(13)} ${dir(p).padEnd(6)} ${String(p.runs.length).padStart(5)}  ${f2(s.median).padStart(7)} ${f2(s.min).padStart(6)} ${f2(s.max).padStart(6)}  ${String(s.retransmitsMedian).padStart(13)}  ${f2(s.cores.busy).padStart(6)} ${f2(s.cores.user).padStart(6)} ${f2(s.cores.sys).padStart(6)} ${f2(s.cores.softirq).padStart(8)}  ${f2(s.background).padStart(12)}`)
  }
  const wefts = results.filter((p) => p.backend !== undefined && p.from === 'h1')
  if (wefts.length > 0) console.log(`weft device MTUs: ${wefts.map((p) => `${p.backend} ${p.deviceMtu ?? '?'}`).join(', ')} (the pods use ${POD_MTU} on every path${wgMtu !== '' ? ' but the WireGuard ones' : ''})`)

  if (wefts.length > 0) {
    console.log('\nweft daemons during the h1->h2 runs (CPU in cores, and its share on the main thread; the rest is the iperf3s, the kernel and any background)')
    console.log('                  sender        receiver     pkts per TUN read   pkts per outside read   TUN tx drops   rest of')
    console.log('path           CPU   main     CPU   main          (sender)              (receiver)        per run    machine')
    for (const p of wefts) {
      const s = sums.get(p.key)!
      const ds = s.daemons ?? []
      const snd = ds.find((d) => d.role === 'sender')
      const rcv = ds.find((d) => d.role === 'receiver')
      const pct = (d: DaemonSummary | undefined): string => d !== undefined && d.cores >= 0.05 ? `${(d.mainShare * 100).toFixed(0)}%` : '-'
      const rest = s.cores.busy - ds.reduce((a, x) => a + x.cores, 0)
      const drops = ds.reduce((a, d) => a + d.tunTxDroppedPerRun, 0)
      const tunCol = (x: string | undefined): string => p.tun === true && x !== undefined ? x : '-'
      console.log(`${p.label.padEnd(13)} ${f2(snd?.cores ?? NaN).padStart(4)} ${pct(snd).padStart(6)}    ${f2(rcv?.cores ?? NaN).padStart(4)} ${pct(rcv).padStart(6)}   ${tunCol(snd?.insideBatch.toFixed(1)).padStart(17)}   ${tunCol(rcv?.outsideBatch.toFixed(1)).padStart(21)}   ${tunCol(drops.toFixed(0)).padStart(12)}   ${f2(rest).padStart(8)}`)
    }
    if (wefts.some((p) => p.tun === false)) console.log('(host-gw: the kernel forwards between the nodes, the daemon only keeps the routes: no TUN, no batches)')
  }

  const m = (k: string): number => sums.get(k)?.median ?? NaN
  const ratios: Record<string, number | Record<string, number>> = { kernelVxlanOverVeth: m('kernelVxlan') / m('veth') }
  for (const p of wefts) {
    ratios[p.key] = {
      overKernelVxlan: m(p.key) / m('kernelVxlan'),
      overVeth: m(p.key) / m('veth'),
      reverseOverForward: m(`${p.key}Reverse`) / m(p.key)
    }
  }
  console.log('\nratios of medians   / kernel VXLAN   / plain veth   h2->h1 / h1->h2 (one reverse run)')
  if (sums.has('kernelVxlan')) console.log(`${'kernel VXLAN'.padEnd(18)} ${f2(1).padStart(14)} ${f2(m('kernelVxlan') / m('veth')).padStart(14)}`)
  for (const p of wefts) {
    const r = ratios[p.key] as Record<string, number>
    console.log(`${p.label.padEnd(18)} ${f2(r.overKernelVxlan).padStart(14)} ${f2(r.overVeth).padStart(14)} ${f2(r.reverseOverForward).padStart(17)}`)
  }
  const busiest = Math.max(...results.map((p) => p.background))
  if (busiest > 0.25) console.log(`\nnote: the machine was not idle (up to ${f2(busiest)} of ${cpus} cores busy before a path started): every path shares the cores with that load`)

  console.log(JSON.stringify({
    bench: 'vxlan-iperf',
    seconds,
    repeat,
    cpus,
    kernel: os.release(),
    podMtu: POD_MTU,
    pathsRun: selected.map((p) => p.name),
    paths: Object.fromEntries(sums),
    ratios
  }))
}

async function main (): Promise<void> {
  const skip = netnsSkipReason() ?? toolSkipReason('iperf3')
  if (skip !== undefined) { console.log(`vxlan-iperf: skipped: ${skip}`); return }
  cleanUpOnInterrupt()
  const results: PathResult[] = []
  const t0 = performance.now()
  // One path at a time, each in its own topology torn down before the next starts.
  for (const def of selected) {
    results.push(...await runPath(def))
  }
  progress(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
  report(results)
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
