// The paths the throughput benchmarks compare, each set up in a fresh
// two-host topology with a pod on each host, so nothing is left over from the
// path before:
// 1. plain veth (the ceiling): the hosts route 10.244.1.0/24 and
//    10.244.2.0/24 to each other over the bridge underlay, no tunnel
// 2. kernel VXLAN: flannel.1 devices programmed as flanneld programs them
// 3. weft vxlan, ipip, udp and host-gw: two real `weft run` daemons on one
//    SQLite store, configured with `{"Network":"10.244.0.0/16","Backend":
//    {"Type":"<backend>"}}` and nothing else; pods on the leased subnets
// 4. the C forwarder (forwarder.c): a TUN device per host routed as weft's
//    is, and the least program that can carry it, one packet per syscall;
//    the floor under any TUN-based tunnel, weft included
// 5. wireguard-go (wireguard-go.ts): Debian's userspace WireGuard set up as
//    flanneld's wireguard backend sets it up, the reference for weft's
//    wireguard; its pods get the device's MTU (1420)
// 6. weft wireguard: two `weft run` daemons as in 3, `"Backend":{"Type":
//    "wireguard"}`, each with a key file of its own (lab/daemons.ts); the
//    device's MTU is 1420 (underlay less 80, as flannel), so its pods get 1420
// All pods get the same MTU (1450, flannel's VXLAN MTU on a 1500 underlay),
// lowered only where a backend cannot carry it, so the paths differ only in
// what carries the packets. The topology (namespaces, daemons, pods) is torn
// down when the callback returns or throws, and on Ctrl-C (netns.ts).
import { formatCidr } from '../src/packet/net'
import { withTopology, waitFor } from '../lab/netns'
import type { Host, Topology } from '../lab/netns'
import { addPods } from '../lab/pods'
import type { Pod } from '../lab/pods'
import { ping } from '../lab/traffic'
import { podGsoMaxSize } from '../src/cni/gso'
import { kernelVxlanNode } from '../lab/kernel-vxlan'
import { cluster } from '../lab/daemons'
import type { Daemon } from '../lab/daemons'
import { cpuOf, nodePid } from '../lab/cpu'
import { forwarderBinary } from './forwarder'
import { buildWireguardGo } from './wireguard-go'
import type { CpuTimes } from '../lab/cpu'

export const POD_MTU = 1450
/** the forwarder path's TUN device, and how long its program may live (seconds) */
const FORWARDER_DEV = 'fwd0'
const FORWARDER_S = 900

/** Every path, in the order they run and are printed; `name` is what --paths takes. */
export const PATHS = [
  { name: 'veth', key: 'veth', label: 'plain veth' },
  { name: 'kernel-vxlan', key: 'kernelVxlan', label: 'kernel VXLAN' },
  { name: 'vxlan', key: 'weftVxlan', label: 'weft vxlan', backend: 'vxlan' },
  // two dataplane workers per node: where more than one flow can use both cores (not in the one-stream head to head)
  { name: 'vxlan-2w', key: 'weftVxlan2w', label: 'weft vxlan x2', backend: 'vxlan', flags: ['--workers', '2'], headToHead: false },
  { name: 'ipip', key: 'weftIpip', label: 'weft ipip', backend: 'ipip' },
  { name: 'udp', key: 'weftUdp', label: 'weft udp', backend: 'udp' },
  { name: 'host-gw', key: 'weftHostGw', label: 'weft host-gw', backend: 'host-gw' },
  { name: 'forwarder', key: 'forwarder', label: 'C forwarder' },
  // encrypted: measured against wireguard-go in rounds of their own (wg-rounds.ts), not in the VXLAN head to head
  { name: 'wireguard', key: 'weftWireguard', label: 'weft wireguard', backend: 'wireguard', headToHead: false },
  // a reference like kernel VXLAN, for weft's wireguard: not in the VXLAN head to head
  { name: 'wireguard-go', key: 'wireguardGo', label: 'wireguard-go', headToHead: false }
] as const

/**
 * weft vxlan with `--busy-poll`: only in the ping rounds (rounds.ts), beside
 * kernel VXLAN and weft vxlan as it runs by default. The window outlasts
 * the 10 ms between the bench's pings, so the loops never sleep between them.
 */
export const BUSY_POLL_US = 20_000
export const VXLAN_BUSY_POLL = { name: 'vxlan-bp', key: 'weftVxlanBp', label: 'weft vxlan --busy-poll', backend: 'vxlan', flags: ['--busy-poll', String(BUSY_POLL_US)] } as const

export type PathDef = typeof PATHS[number] | typeof VXLAN_BUSY_POLL

/** The paths a `--paths a,b,c` list names, in the canonical order; throws on an unknown name. */
export function selectPaths (list: string): PathDef[] {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean)
  const unknown = names.filter((n) => !PATHS.some((p) => p.name === n))
  if (unknown.length > 0 || names.length === 0) throw new RangeError(`--paths takes a comma list of ${PATHS.map((p) => p.name).join(', ')}; got ${JSON.stringify(list)}`)
  return PATHS.filter((p) => names.includes(p.name))
}

export interface Weft {
  backend: string
  daemons: Daemon[]
  /** the daemons' node processes (for CPU and RSS) */
  pids: number[]
  /** each daemon's TUN device; undefined for host-gw, where the kernel forwards */
  tuns: Array<string | undefined>
  /** packets pass through the daemons (a TUN backend), not host-gw */
  tun: boolean
  /** the MTU the backend gave its device */
  deviceMtu: number
  /** per daemon: the kernel offloads in use as its status reports them (tso, uso, gro, gso); undefined without a TUN */
  offloads: Array<Record<string, boolean> | undefined>
}

export interface PathSetup {
  def: PathDef
  topo: Topology
  hosts: [Host, Host]
  /** the pod on h1 and the pod on h2 */
  pods: [Pod, Pod]
  podMtu: number
  weft?: Weft
  /** the processes that carry the packets (weft's daemons, wireguard-go; h1's first), for their CPU; empty where the kernel does it */
  procs: number[]
}

export interface PathOptions {
  /** topology label prefix, e.g. 'bench-run' */
  label: string
  /** the whole callback's limit (setup included) */
  timeoutMs: number
  progress: (msg: string) => void
}

/**
 * What every topology of this bench run has for links ('veth', or 'nic':
 * lab/netns.ts TopologyOptions.underlay); one setting per process, set
 * once from --underlay before anything is set up.
 */
let underlay: 'veth' | 'nic' = 'veth'
export function setUnderlay (u: 'veth' | 'nic'): void { underlay = u }
export function benchUnderlay (): 'veth' | 'nic' { return underlay }

/** Cleanups of paths being measured now (the daemons' store dirs), for an interrupt. */
const pending = new Set<() => void>()

/** Sets up `def` in a fresh topology, runs fn on it, tears it all down (also when fn throws). */
export async function withPath<T> (def: PathDef, o: PathOptions, fn: (p: PathSetup) => Promise<T>): Promise<T> {
  // cluster() wants a test context only for t.after(); collect and run those ourselves
  const cleanups: Array<() => void> = []
  const cleanup = (): void => {
    for (const fn of cleanups.splice(0).reverse()) {
      try { fn() } catch (err) { o.progress(`cleanup: ${String(err)}`) }
    }
  }
  pending.add(cleanup)
  try {
    return await withTopology(undefined, { hosts: 2, label: `${o.label}-${def.name}`, timeoutMs: o.timeoutMs, underlay }, async (topo) => {
      const [h1, h2] = topo.hosts as [Host, Host]
      const setup = await build(def, topo, h1, h2, (fn) => { cleanups.push(fn) }, o.progress)
      return await fn(setup)
    })
  } finally {
    pending.delete(cleanup)
    cleanup()
  }
}

/**
 * On Ctrl-C or TERM: remove what the paths being measured left in /tmp.
 * The topologies' own signal hook (netns.ts) kills their processes, deletes
 * their namespaces and then re-raises the signal; if no topology exists yet,
 * this re-raises it itself. Install before anything else, so it runs first.
 */
export function cleanUpOnInterrupt (): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const hook = (): void => {
      process.removeListener(sig, hook)
      for (const fn of pending) fn()
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
    }
    process.on(sig, hook)
  }
}

async function build (def: PathDef, topo: Topology, h1: Host, h2: Host, after: (fn: () => void) => void, progress: (msg: string) => void): Promise<PathSetup> {
  const base = { def, topo, hosts: [h1, h2] as [Host, Host], podMtu: POD_MTU, procs: [] as number[] }
  if (def.name === 'veth') {
    const [p1] = await addPods(topo, h1, { subnet: '10.244.1.0/24', count: 1, mtu: POD_MTU })
    const [p2] = await addPods(topo, h2, { subnet: '10.244.2.0/24', count: 1, mtu: POD_MTU })
    // addPods turned forwarding on; the underlay is one L2 segment, so the peer host is the next hop
    await topo.exec(h1, ['ip', 'route', 'add', '10.244.2.0/24', 'via', h2.underlayIp, 'dev', 'eth0'])
    await topo.exec(h2, ['ip', 'route', 'add', '10.244.1.0/24', 'via', h1.underlayIp, 'dev', 'eth0'])
    return { ...base, pods: [p1, p2] }
  }
  if (def.name === 'kernel-vxlan') {
    const k1 = await kernelVxlanNode(topo, h1, { subnet: '10.244.1.0/24' })
    const k2 = await kernelVxlanNode(topo, h2, { subnet: '10.244.2.0/24' })
    await k1.addPeer(k2.peer)
    await k2.addPeer(k1.peer)
    const [p1] = await addPods(topo, h1, { subnet: k1.subnet, count: 1, mtu: POD_MTU })
    const [p2] = await addPods(topo, h2, { subnet: k2.subnet, count: 1, mtu: POD_MTU })
    return { ...base, pods: [p1, p2] }
  }
  if (def.name === 'forwarder') {
    const bin = forwarderBinary()
    const subnets = ['10.244.1.0/24', '10.244.2.0/24']
    for (const [i, h] of [h1, h2].entries()) {
      const peer = i === 0 ? h2 : h1
      // bounded: it exits on its own after FORWARDER_S even if teardown never comes
      const child = topo.spawn(h, [bin, FORWARDER_DEV, h.underlayIp, peer.underlayIp, String(FORWARDER_S)])
      await child.waitForLine(/^ready$/, 10_000)
      await topo.exec(h, ['ip', 'link', 'set', FORWARDER_DEV, 'mtu', String(POD_MTU), 'up'])
      await topo.exec(h, ['ip', 'route', 'add', subnets[1 - i], 'dev', FORWARDER_DEV])
    }
    const [p1] = await addPods(topo, h1, { subnet: subnets[0], count: 1, mtu: POD_MTU })
    const [p2] = await addPods(topo, h2, { subnet: subnets[1], count: 1, mtu: POD_MTU })
    return { ...base, pods: [p1, p2] }
  }
  if (def.name === 'wireguard-go') {
    const w = await buildWireguardGo(topo, h1, h2)
    return { ...base, podMtu: w.podMtu, pods: w.pods, procs: w.nodes.map((n) => nodePid(n.pid)) }
  }
  const backend = def.backend
  const config = JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: backend } })
  const c = cluster({ after }, topo, config)
  const flags = 'flags' in def ? def.flags : []
  const d1 = await c.start(h1, ...flags)
  const d2 = await c.start(h2, ...flags)
  await waitFor(async () => (await d1.status()).peers.length === 1 && (await d2.status()).peers.length === 1, { what: 'both daemons know each other', timeoutMs: 10_000 })
  const [s1, s2] = await Promise.all([d1.status(), d2.status()])
  if (s1.backend !== backend || s2.backend !== backend) throw new Error(`${def.label}: the daemons run ${String(s1.backend)}/${String(s2.backend)}`)
  // the same pod MTU on every path; lower only if the backend cannot carry it
  const mtu = Math.min(POD_MTU, d1.env().mtu, d2.env().mtu)
  if (mtu !== POD_MTU) progress(`note: ${def.label} allows pod MTU ${d1.env().mtu}/${d2.env().mtu} only, its pods get ${mtu}, the other paths ${POD_MTU}`)
  // pods as weft's CNI plugin attaches them: the MTU and a GSO size whose TCP super-packets fit one weft message
  const gsoMaxSize = podGsoMaxSize(mtu)
  const [p1] = await addPods(topo, h1, { subnet: formatCidr(d1.env().subnet), count: 1, mtu, gsoMaxSize })
  const [p2] = await addPods(topo, h2, { subnet: formatCidr(d2.env().subnet), count: 1, mtu, gsoMaxSize })
  // TUN backends count their packets; host-gw only keeps kernel routes on the underlay device
  const tun = 'inside_packets' in s1.counters.counters
  const weft: Weft = {
    backend,
    daemons: [d1, d2],
    pids: [nodePid(d1.child.pid), nodePid(d2.child.pid)],
    tuns: [s1, s2].map((s) => tun ? String(s.device) : undefined),
    tun,
    deviceMtu: Number(s1.mtu),
    offloads: [s1, s2].map((s) => s.offloads as Record<string, boolean> | undefined)
  }
  return { ...base, podMtu: mtu, pods: [p1, p2], weft, procs: weft.pids }
}

/** Pod-to-pod ping: resolves neighbours and proves the path before timing it. */
export async function proveReachable (topo: Topology, from: Pod, to: Pod, label: string): Promise<void> {
  const p = await ping(topo, from, to.ip, { count: 3, intervalS: 0.2, waitS: 2 })
  if (p.received === 0) throw new Error(`${label}: ${from.name} cannot reach ${to.ip}:\n${p.output}`)
}

// --- the daemons' own figures ----------------------------------------------

export interface WeftCounters { counters: Array<Record<string, number>>, drops: Array<Record<string, number>>, tunTxDropped: number[] }

/** Each daemon's dataplane counters and drops, and its TUN device's tx_dropped. */
export async function weftCounters (topo: Topology, w: Weft): Promise<WeftCounters> {
  const statuses = await Promise.all(w.daemons.map(async (d) => await d.status()))
  return {
    counters: statuses.map((s) => s.counters.counters),
    drops: statuses.map((s) => s.counters.drops),
    tunTxDropped: await Promise.all(w.daemons.map(async (d, j) => {
      const tun = w.tuns[j]
      return tun === undefined ? 0 : Number((await topo.exec(d.host, ['cat', `/sys/class/net/${tun}/statistics/tx_dropped`])).stdout)
    }))
  }
}

export interface DaemonSample {
  node: string
  /** CPU seconds over the run */
  user: number
  sys: number
  /** of which on the main thread */
  main: number
  insidePackets: number
  insideBatches: number
  outsidePackets: number
  outsideBatches: number
  /** packets the kernel queued on the TUN device that weft did not read in time */
  tunTxDropped: number
  /** the daemon's own drop counters that grew, by reason */
  drops: Record<string, number>
}

/** What each daemon did between two (counters, CPU) samples. */
export function weftSamples (w: Weft, c0: WeftCounters, c1: WeftCounters, cpu0: CpuTimes[], cpu1: CpuTimes[]): DaemonSample[] {
  return w.daemons.map((d, j) => {
    const delta = (k: string): number => (c1.counters[j][k] ?? 0) - (c0.counters[j][k] ?? 0)
    const drops: Record<string, number> = {}
    for (const [k, v] of Object.entries(c1.drops[j])) {
      const n = v - (c0.drops[j][k] ?? 0)
      if (n > 0) drops[k] = n
    }
    return {
      node: d.host.name,
      user: cpu1[j].user - cpu0[j].user,
      sys: cpu1[j].sys - cpu0[j].sys,
      main: cpu1[j].main - cpu0[j].main,
      insidePackets: delta('inside_packets'),
      insideBatches: delta('inside_batches'),
      outsidePackets: delta('outside_packets'),
      outsideBatches: delta('outside_batches'),
      tunTxDropped: c1.tunTxDropped[j] - c0.tunTxDropped[j],
      drops
    }
  })
}

/** CPU times of the daemons now (empty without weft). */
export function weftCpu (w: Weft | undefined): CpuTimes[] {
  return w?.pids.map(cpuOf) ?? []
}
