// The wireguard-go path: what weft's userspace WireGuard is measured
// against. Two hosts, each running Debian's wireguard-go set up as flanneld's
// wireguard backend sets up flannel-wg (lab/wireguard.ts: MTU underlay - 80,
// the subnet's address /32, the Network routed into the device, each peer
// with its subnet as allowed IPs and PublicIP:51820 as endpoint), and a pod
// on each, attached as the other paths' pods (cni0 bridge) with the device's
// MTU, 1420, since WireGuard cannot carry the 1450 the VXLAN paths use.
// paths.ts sets it up as the `wireguard-go` path of run.js and
// vxlan-iperf.js (a reference, like kernel VXLAN, not a weft path).
//
// Run alone it measures one TCP stream pod to pod under each congestion
// control asked for (default: the machine's, then cubic), with the CPU
// time of both wireguard-go processes and how busy the machine was:
//
// usage: sudo node dist/bench/wireguard-go.js [--seconds 3] [--repeat 2] [--congestion default,cubic]
//
// Debian's wireguard-go is 0.0.20220316: it predates the TUN offloads and
// UDP GSO/GRO (0.0.20230223) that took upstream past 10 Gbit/s, so this is
// wireguard-go one packet at a time, as a Debian node runs it.
import os from 'node:os'
import type { Host, Topology } from '../lab/netns'
import { withTopology } from '../lab/netns'
import { addPods } from '../lab/pods'
import type { Pod } from '../lab/pods'
import { iperf, ping } from '../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../lab/skip'
import { backgroundLoad, coresBetween, cpuOf, machineTicks } from '../lab/cpu'
import type { Cores } from '../lab/cpu'
import { wireguardGoNode } from '../lab/wireguard'
import type { WireguardGoNode } from '../lab/wireguard'
import { benchArgs, congestionOption, numberFlag } from './args'
import { max, median, min } from './stats'

export const WIREGUARD_GO_SUBNETS = ['10.244.1.0/24', '10.244.2.0/24'] as const

export interface WireguardGoPath {
  nodes: [WireguardGoNode, WireguardGoNode]
  /** the pod on h1 and the pod on h2 */
  pods: [Pod, Pod]
  /** the devices' MTU, which the pods get */
  podMtu: number
}

/** Two wireguard-go nodes peered with each other, a pod on each; torn down with the topology. */
export async function buildWireguardGo (topo: Topology, h1: Host, h2: Host): Promise<WireguardGoPath> {
  const a = await wireguardGoNode(topo, h1, { subnet: WIREGUARD_GO_SUBNETS[0] })
  const b = await wireguardGoNode(topo, h2, { subnet: WIREGUARD_GO_SUBNETS[1] })
  await a.setPeer(b.peer)
  await b.setPeer(a.peer)
  const [p1] = await addPods(topo, h1, { subnet: a.subnet, count: 1, mtu: a.mtu })
  const [p2] = await addPods(topo, h2, { subnet: b.subnet, count: 1, mtu: b.mtu })
  return { nodes: [a, b], pods: [p1!, p2!], podMtu: a.mtu }
}

// --- run alone ---------------------------------------------------------------

interface Run {
  gbps: number
  retransmits: number
  /** seconds the window lasted (iperf3 server start-up included) */
  wall: number
  /** machine-wide over the window */
  cores: Cores
  /** each wireguard-go's CPU over the window, in cores (user + sys), h1's first */
  wgCores: [number, number]
}

interface Summary { congestion: string, median: number, min: number, max: number, retransmitsMedian: number, cores: Cores, wgCores: [number, number], runs: Run[] }

async function main (): Promise<void> {
  const flags = benchArgs('wireguard-go', {
    seconds: { type: 'string', default: '3' },
    repeat: { type: 'string', default: '2' },
    congestion: { type: 'string', default: 'default,cubic' }
  })
  const seconds = numberFlag('seconds', flags.seconds, { min: 0, max: 600, above: true })
  const repeat = numberFlag('repeat', flags.repeat, { min: 1, max: 100, integer: true })
  const congestions = flags.congestion.split(',').map((c) => c.trim()).filter(Boolean)
  for (const c of congestions) congestionOption(c) // throws on a bad name
  const progress = (msg: string): void => { process.stderr.write(`wireguard-go: ${msg}\n`) }

  const skip = netnsSkipReason() ?? toolSkipReason('iperf3', 'wireguard-go', 'wg', 'nsenter')
  if (skip !== undefined) { console.log(`wireguard-go: skipped: ${skip}`); return }
  const background = await backgroundLoad()
  progress(`setting up (background load ${background.toFixed(2)} cores)`)
  const timeoutMs = congestions.length * repeat * (seconds + 25) * 1000 + 60_000
  const sums = await withTopology(undefined, { hosts: 2, label: 'bench-wggo', timeoutMs }, async (topo) => {
    const [h1, h2] = topo.hosts as [Host, Host]
    const { nodes, pods: [p1, p2] } = await buildWireguardGo(topo, h1, h2)
    const r = await ping(topo, p1, p2.ip, { count: 3, intervalS: 0.2, waitS: 2 })
    if (r.received === 0) throw new Error(`the pods cannot reach each other:\n${r.output}`)
    const machineDefault = (await topo.exec(p1.ns, ['sysctl', '-n', 'net.ipv4.tcp_congestion_control'])).stdout.trim()
    const out: Summary[] = []
    for (const name of congestions) {
      const congestion = congestionOption(name)
      const label = congestion === undefined ? `default (${machineDefault})` : congestion
      const runs: Run[] = []
      for (let i = 0; i < repeat; i++) {
        progress(`${label}: run ${i + 1}/${repeat}, ${seconds} s ...`)
        const cpu0 = nodes.map((n) => cpuOf(n.pid))
        const m0 = machineTicks()
        const w0 = performance.now()
        const t = await iperf(topo, p2, p1, { serverIp: p2.ip, seconds, congestion })
        const wall = (performance.now() - w0) / 1000
        const m1 = machineTicks()
        const cpu1 = nodes.map((n) => cpuOf(n.pid))
        const wgCores = nodes.map((_, j) => (cpu1[j]!.user + cpu1[j]!.sys - cpu0[j]!.user - cpu0[j]!.sys) / wall) as [number, number]
        runs.push({ gbps: t.gbps, retransmits: t.retransmits, wall, cores: coresBetween(m0, m1), wgCores })
        progress(`  ${t.gbps.toFixed(2)} Gbit/s, ${t.retransmits} retransmits, wireguard-go ${wgCores.map((c) => c.toFixed(2)).join(' + ')} cores`)
      }
      const g = runs.map((x) => x.gbps)
      const wall = runs.reduce((a, x) => a + x.wall, 0)
      const avg = (f: (x: Run) => number): number => runs.reduce((a, x) => a + f(x) * x.wall, 0) / wall
      out.push({
        congestion: label,
        median: median(g),
        min: min(g),
        max: max(g),
        retransmitsMedian: median(runs.map((x) => x.retransmits)),
        cores: { busy: avg((x) => x.cores.busy), user: avg((x) => x.cores.user), sys: avg((x) => x.cores.sys), softirq: avg((x) => x.cores.softirq) },
        wgCores: [avg((x) => x.wgCores[0]), avg((x) => x.wgCores[1])],
        runs
      })
    }
    return out
  })

  const f2 = (x: number): string => x.toFixed(2)
  const cpus = os.cpus().length
  console.log(`\nwireguard-go (Debian's), one TCP stream, pod on h1 -> pod on h2, ${seconds} s per run, pod MTU 1420, ${cpus} CPUs, kernel ${os.release()}`)
  console.log('                         Gbit/s               retransmits   wireguard-go cores      machine cores busy')
  console.log('congestion       runs  median    min    max      per run   sender  receiver      all   user    sys  softirq')
  for (const s of sums) {
    console.log(`${s.congestion.padEnd(16)} ${String(s.runs.length).padStart(4)}  ${f2(s.median).padStart(6)} ${f2(s.min).padStart(6)} ${f2(s.max).padStart(6)}  ${String(s.retransmitsMedian).padStart(11)}  ${f2(s.wgCores[0]).padStart(7)} ${f2(s.wgCores[1]).padStart(9)}   ${f2(s.cores.busy).padStart(6)} ${f2(s.cores.user).padStart(6)} ${f2(s.cores.sys).padStart(6)} ${f2(s.cores.softirq).padStart(8)}`)
  }
  if (background > 0.25) console.log(`\nnote: the machine was not idle (${f2(background)} of ${cpus} cores busy before the run)`)
  console.log(JSON.stringify({ bench: 'wireguard-go', seconds, repeat, cpus, kernel: os.release(), background, results: sums }))
}

if (require.main === module) main().catch((err) => { console.error(err); process.exitCode = 1 })
