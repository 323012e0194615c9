// The end-to-end scenario every backend must pass, on real daemons in
// namespaces (daemons.ts) with pods behind a bridge on each node:
// 1. three nodes, two pods each: every pod pings every pod, TCP between
//    every ordered pair (bounded bytes), one 3-second throughput figure
// 2. a fourth node joins: each other node logs it within a second of its
//    lease (log timestamps), and its pod reaches every pod
// 3. SIGTERM on a node: its device, routes and rules are gone, its lease kept
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import Database from 'better-sqlite3'
import { formatCidr } from '../../src/packet/net'
import { waitFor } from '../../lab/netns'
import type { Host, Topology } from '../../lab/netns'
import { addPods } from '../../lab/pods'
import type { Pod } from '../../lab/pods'
import { iperf, ping, pingMatrix } from '../../lab/traffic'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { kernelVxlanNode, vxlanLeaseValue } from '../../lab/kernel-vxlan'
import type { KernelVxlan } from '../../lab/kernel-vxlan'
import { cluster } from '../../lab/daemons'
import type { Cluster, Daemon } from '../../lab/daemons'

export interface LogLine { msg: string, time: number, [k: string]: unknown }
export const logs = (d: Daemon): LogLine[] => d.child.stderrLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine)

export async function podsFor (topo: Topology, d: Daemon, count = 2): Promise<Pod[]> {
  return await addPods(topo, d.host, { subnet: formatCidr(d.env().subnet), count, mtu: d.env().mtu })
}

/** The lease values as stored, byte for byte (flannel's JSON), by subnet key. */
export function rawLeases (c: Cluster): Record<string, string> {
  const db = new Database(`${c.dir}/store.db`, { readonly: true })
  try {
    return Object.fromEntries((db.prepare('SELECT key, value FROM kv').all() as Array<{ key: string, value: string }>).map((r) => [r.key, r.value]))
  } finally { db.close() }
}

/** The VTEP MAC a daemon's lease carries, as `weft leases` shows it. */
export function vtepMacOf (c: Cluster, d: Daemon): string {
  const mac = (JSON.parse(c.weft('leases', '--json')) as Array<{ publicIP: string, backendData: { VtepMAC: string } }>)
    .find((l) => l.publicIP === d.host.underlayIp)?.backendData.VtepMAC
  assert.ok(mac !== undefined, `no lease with a VtepMAC for ${d.host.underlayIp}`)
  return mac
}

/** Nothing of ours left in a host: no device, no route into the network except the pods' bridge, no FLANNEL chains. */
export async function assertCleanedUp (topo: Topology, h: Host, device: string | undefined): Promise<void> {
  if (device !== undefined) {
    assert.notEqual((await topo.exec(h, ['ip', 'link', 'show', 'dev', device], { allowFail: true })).code, 0, `${device} is gone`)
  }
  const routes = JSON.parse((await topo.exec(h, ['ip', '-j', 'route', 'show'])).stdout) as Array<{ dst: string, dev: string }>
  assert.deepEqual(routes.filter((r) => r.dst.startsWith('10.244.') && r.dev !== 'cni0'), [], 'no routes into the network left')
  for (const [table, chain] of [['filter', 'FLANNEL-FWD'], ['nat', 'FLANNEL-POSTRTG']]) {
    assert.notEqual((await topo.exec(h, ['iptables', '-t', table, '-S', chain], { allowFail: true })).code, 0, `${chain} is gone`)
  }
}

/** Resolves once every node lists `peers` peers in `status`. */
export async function tablesComplete (nodes: readonly Daemon[], peers: number, timeoutMs = 5000): Promise<void> {
  await waitFor(async () => (await Promise.all(nodes.map((d) => d.status()))).every((s) => s.peers.length === peers), { what: `${peers} peers in every node's table`, timeoutMs })
}

/** A daemon on each of the first `n` hosts, `podsEach` pods behind each, every table complete (`peers` entries: the other nodes unless told). */
export async function nodesWithPods (topo: Topology, c: Cluster, n: number, podsEach: number, peers = n - 1): Promise<{ nodes: Daemon[], pods: Pod[] }> {
  const nodes: Daemon[] = []
  for (const h of topo.hosts.slice(0, n)) nodes.push(await c.start(h))
  const pods: Pod[] = []
  for (const d of nodes) pods.push(...await podsFor(topo, d, podsEach))
  await tablesComplete(nodes, peers)
  return { nodes, pods }
}

export interface MeshOptions {
  config: string
  /** the log line a node writes when it can reach a new peer (with a `subnet` field) */
  addedMsg: string
  /** the backend's device, to check it goes on SIGTERM */
  device: string | undefined
  /** peers each node lists in `status` once the mesh is complete */
  peersWhenFull?: number
  /** extra `weft run` flags for every node (e.g. ['--workers', '2']) */
  flags?: string[]
}

export interface MeshResult {
  c: Cluster
  nodes: Daemon[]
  pods: Pod[]
  /** pod to pod on two nodes, 3 s of iperf3 */
  gbps: number
}

export async function mesh (t: TestContext, topo: Topology, o: MeshOptions): Promise<MeshResult> {
  const c = cluster(t, topo, o.config)
  const flags = o.flags ?? []
  const nodes = [await c.start(topo.hosts[0], ...flags), await c.start(topo.hosts[1], ...flags), await c.start(topo.hosts[2], ...flags)]
  const pods = (await Promise.all(nodes.map((d) => podsFor(topo, d)))).flat()
  await waitFor(async () => (await Promise.all(nodes.map((d) => d.status()))).every((s) => s.peers.length === (o.peersWhenFull ?? 2)), { what: 'complete peer tables', timeoutMs: 5000 })
  for (const d of nodes) await waitFor(() => logs(d).filter((l) => l.msg === o.addedMsg).length >= 2, { what: `${d.host.name}: ${o.addedMsg} x2`, timeoutMs: 5000 })

  const m = await pingMatrix(topo, pods)
  assert.deepEqual(m.failed, [], 'every pod reaches every pod')
  assert.equal(m.ok.length, 30)
  for (const from of pods) {
    for (const to of pods) {
      if (from === to) continue
      // iperf3's server stops counting when the client's TEST_END arrives on
      // the control connection; on a loaded machine it can read that before
      // the data it already has, and report 0 for a short -n run: ask twice
      let r = await iperf(topo, to, from, { serverIp: to.ip, bytes: '256K', port: 5201 })
      if (r.gbps === 0) r = await iperf(topo, to, from, { serverIp: to.ip, bytes: '1M', port: 5201 })
      assert.ok(r.gbps > 0, `TCP ${from.name} -> ${to.name}`)
    }
  }
  const { gbps } = await iperf(topo, pods[2], pods[0], { serverIp: pods[2].ip, seconds: 3 })
  t.diagnostic(`throughput pod -> pod across nodes: ${gbps.toFixed(3)} Gbit/s (iperf3, 3 s, 1 stream)`)

  // A fourth node joins: the others can reach it within a second of its lease.
  const h4 = topo.hosts[3]
  if (h4 !== undefined) {
    const d4 = await c.start(h4, ...flags)
    const leasedAt = logs(d4).find((l) => l.msg === 'leased a new subnet')?.time
    assert.ok(leasedAt !== undefined)
    const subnet4 = formatCidr(d4.env().subnet)
    for (const d of nodes) {
      await waitFor(() => logs(d).some((l) => l.msg === o.addedMsg && l.subnet === subnet4), { what: `${d.host.name} learns ${subnet4}`, timeoutMs: 3000 })
      const at = logs(d).find((l) => l.msg === o.addedMsg && l.subnet === subnet4)?.time ?? Infinity
      assert.ok(at - leasedAt < 1000, `${d.host.name} could reach the new node ${at - leasedAt} ms after its lease`)
    }
    const [p4] = await podsFor(topo, d4, 1)
    for (const p of pods) assert.equal((await ping(topo, p4, p.ip, { count: 1, waitS: 2 })).received, 1, `new pod -> ${p.name}`)
    nodes.push(d4)
  }

  // SIGTERM: the device, routes and rules go; the lease stays (as with flanneld).
  const gone = nodes[2]
  const exit = await gone.child.stop(5000)
  assert.equal(exit.code, 0, `clean exit: ${gone.child.stderr.slice(-500)}`)
  await assertCleanedUp(topo, gone.host, o.device)
  const leases = JSON.parse(c.weft('leases', '--json')) as Array<{ subnet: string }>
  assert.ok(leases.some((l) => l.subnet === formatCidr(gone.env().subnet)), 'the lease is kept')
  return { c, nodes, pods, gbps }
}

export interface Pair {
  c: Cluster
  /** daemons on h1 and h2, a pod on each */
  a: Daemon
  b: Daemon
  pa: Pod
  pb: Pod
  /** h3: on the underlay, but holding no lease */
  stranger: Host
}

/** The hostile-input scenario's set-up: two nodes that know each other, a pod on each, and a stranger. */
export async function pair (t: TestContext, topo: Topology, config: string): Promise<Pair> {
  const c = cluster(t, topo, config)
  const a = await c.start(topo.hosts[0])
  const b = await c.start(topo.hosts[1])
  const [pa] = await podsFor(topo, a, 1)
  const [pb] = await podsFor(topo, b, 1)
  await waitFor(async () => (await a.status()).peers.length === 1, { what: 'peers', timeoutMs: 5000 })
  return { c, a, b, pa, pb, stranger: topo.hosts[2] }
}

export interface KernelPeer {
  c: Cluster
  /** the weft node on the first host, and its pod */
  w: Daemon
  wp: Pod
  /** the kernel flannel.1 node on the second host (no weft), and its pod */
  k: KernelVxlan
  kp: Pod
}

/**
 * A weft node and a kernel flannel.1 node that know each other: the kernel
 * node's lease written into the store in flannel's format, as flanneld
 * would, and weft's lease given to flannel.1 as flanneld would.
 */
export async function kernelPeer (t: TestContext, topo: Topology, config: string, flags: string[] = []): Promise<KernelPeer> {
  const [hw, hk] = topo.hosts
  const c = cluster(t, topo, config)
  const k = await kernelVxlanNode(topo, hk, { subnet: '10.244.77.0/24' })
  const store = new SqliteStore({ path: `${c.dir}/store.db` })
  store.putRaw('10.244.77.0-24', vxlanLeaseValue(k), 86400)
  await store.close()
  const w = await c.start(hw, ...flags)
  const wl = JSON.parse(c.weft('leases', '--json')).find((l: { publicIP: string }) => l.publicIP === hw.underlayIp) as { subnet: string, backendData: { VtepMAC: string } }
  await k.addPeer({ subnet: wl.subnet, vtepMac: wl.backendData.VtepMAC, publicIp: hw.underlayIp })
  const [wp] = await podsFor(topo, w, 1)
  const [kp] = await addPods(topo, hk, { subnet: '10.244.77.0/24', count: 1, mtu: 1450 })
  await waitFor(async () => (await w.status()).peers.length === 1, { what: 'weft learns the kernel node', timeoutMs: 5000 })
  return { c, w, wp, k, kp }
}
