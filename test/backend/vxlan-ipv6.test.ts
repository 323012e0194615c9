// VXLAN in both families across real kernels: the IPv6 pods go over the
// IPv6 underlay through weft-v6.1, as flanneld's flannel-v6.1 carries them,
// and a node set up as flanneld sets up flannel.1 and flannel-v6.1 is the
// interop reference.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatCidr } from '../../src/packet/net'
import { formatCidr6 } from '../../src/packet/net6'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { withTopology, waitFor } from '../../lab/netns'
import type { Topology } from '../../lab/netns'
import { iperf, ping, pingMatrix } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { addPods } from '../../lab/pods'
import type { Pod } from '../../lab/pods'
import { cluster } from '../../lab/daemons'
import type { Daemon } from '../../lab/daemons'
import { cniPods, cniSkipReason } from '../../lab/cni'
import { kernelVxlanNode } from '../../lab/kernel-vxlan'
import { kernelVxlan6Node, vxlanLeaseValue6 } from '../../lab/kernel-vxlan6'

const DUAL = '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}'
const V6_ONLY = '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3', 'tcpdump')

interface Status6 { peers: unknown[], ipv6?: { peers: unknown[], counters: { drops: Record<string, number>, counters: Record<string, number> } } }

/** The IPv6 half's peer count (dual stack: status.ipv6; IPv6-only: the status itself). */
async function peers6 (d: Daemon): Promise<number> {
  const s = await d.status() as unknown as Status6
  return (s.ipv6 ?? s).peers.length
}

/** TCP both ways between two pods over `family`, bounded in bytes. */
async function tcpBothWays (topo: Topology, a: Pod, b: Pod, family: 4 | 6): Promise<void> {
  const ipOf = (p: Pod): string => (family === 6 ? p.ip6 : p.ip) as string
  let r = await iperf(topo, b, a, { serverIp: ipOf(b), bytes: '1M', port: 5201 })
  if (r.gbps === 0) r = await iperf(topo, b, a, { serverIp: ipOf(b), bytes: '1M', port: 5201 })
  assert.ok(r.gbps > 0, `TCP over IPv${family} ${a.name} -> ${b.name}`)
  r = await iperf(topo, a, b, { serverIp: ipOf(a), bytes: '1M', port: 5201 })
  if (r.gbps === 0) r = await iperf(topo, a, b, { serverIp: ipOf(a), bytes: '1M', port: 5201 })
  assert.ok(r.gbps > 0, `TCP over IPv${family} ${b.name} -> ${a.name}`)
}

test('interop in both families: a weft node and a node set up as flanneld sets up flannel.1 and flannel-v6.1 (leases in flannel\'s format) reach each other both ways by ping and TCP, IPv6 as VXLAN over the IPv6 underlay', { skip, timeout: 150_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'vxlan6-interop', ipv6: true, timeoutMs: 130_000 }, async (topo) => {
    const [hw, hk] = topo.hosts
    const c = cluster(t, topo, DUAL)
    const k4 = await kernelVxlanNode(topo, hk, { subnet: '10.244.77.0/24' })
    const k6 = await kernelVxlan6Node(topo, hk, { subnet6: 'fc00:0:0:77::/64' })
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    store.putRaw('10.244.77.0-24&fc00:0:0:77::-64', vxlanLeaseValue6({ publicIp: hk.underlayIp, publicIp6: hk.underlayIp6 as string, vni: 1, mac: k4.mac, mac6: k6.mac }), 86400)
    await store.close()
    const w = await c.start(hw)
    const env = w.subnetEnv()
    assert.ok(env.subnet !== undefined && env.subnet6 !== undefined, 'subnet.env has both families')
    const lease = (JSON.parse(c.weft('leases', '--json')) as Array<Record<string, unknown>>).find((l) => l.publicIP === hw.underlayIp) as { publicIPv6: string, backendData: { VtepMAC: string }, backendV6Data: { VtepMAC: string } }
    assert.equal(lease.publicIPv6, hw.underlayIp6, 'our lease publishes our IPv6 underlay address')
    await k4.addPeer({ subnet: formatCidr(env.subnet), vtepMac: lease.backendData.VtepMAC, publicIp: hw.underlayIp })
    await k6.addPeer({ subnet6: formatCidr6(env.subnet6), vtepMac: lease.backendV6Data.VtepMAC, publicIp6: hw.underlayIp6 as string })
    const [wp] = await addPods(topo, hw, { subnet: formatCidr(env.subnet), subnet6: formatCidr6(env.subnet6), count: 1, mtu: env.mtu })
    const [kp] = await addPods(topo, hk, { subnet: '10.244.77.0/24', subnet6: 'fc00:0:0:77::/64', count: 1, mtu: 1450 })
    await waitFor(async () => (await w.status()).peers.length === 1 && await peers6(w) === 1, { what: 'weft learns the kernel node in both families', timeoutMs: 5000 })

    // the pods' first IPv6 packets wait for neighbour discovery on the new bridges
    const t0 = Date.now()
    await waitFor(async () => (await ping(topo, wp, kp.ip6 as string, { count: 1, waitS: 1 })).received === 1, { what: 'a first IPv6 echo across', timeoutMs: 10_000 })
    t.diagnostic(`first IPv6 echo across after ${Date.now() - t0} ms`)
    const cap = topo.spawn(topo.underlayNs, ['tcpdump', '-i', 'br0', '-n', '-U', '-c', '4', '-w', `${c.dir}/underlay6.pcap`, 'ip6 and udp port 8472'])
    await cap.waitForLine(/listening on/, 5000, 'stderr')
    assert.equal((await ping(topo, wp, kp.ip6 as string, { count: 3 })).received, 3, 'weft pod -> kernel pod over IPv6')
    assert.equal((await ping(topo, kp, wp.ip6 as string, { count: 3 })).received, 3, 'kernel pod -> weft pod over IPv6')
    await cap.exited
    const decoded = await topo.exec(topo.underlayNs, ['tcpdump', '-r', `${c.dir}/underlay6.pcap`, '-n', '-T', 'vxlan', '-v'])
    assert.match(decoded.stdout, /VXLAN, flags \[I\] \(0x08\), vni 1/)
    assert.match(decoded.stdout, /ICMP6, echo request/)
    assert.match(decoded.stdout, /ICMP6, echo reply/)
    assert.doesNotMatch(decoded.stdout, /bad (udp )?cksum/i)

    assert.equal((await ping(topo, wp, kp.ip, { count: 2 })).received, 2, 'weft pod -> kernel pod over IPv4')
    assert.equal((await ping(topo, kp, wp.ip, { count: 2 })).received, 2, 'kernel pod -> weft pod over IPv4')
    await tcpBothWays(topo, wp, kp, 6)
    await tcpBothWays(topo, wp, kp, 4)
    const s = await w.status() as unknown as Status6
    t.diagnostic(`IPv6 half: ${JSON.stringify(s.ipv6?.counters.drops)}`)
  })
})

test('a dual-stack weft mesh: three nodes, pods attached by the CNI plugin, every pod reaches every pod by both families', { skip: skip ?? cniSkipReason(), timeout: 200_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'vxlan6-mesh', ipv6: true, timeoutMs: 180_000 }, async (topo) => {
    const c = cluster(t, topo, DUAL)
    const nodes: Daemon[] = []
    for (const h of topo.hosts) nodes.push(await c.start(h))
    const pods: Pod[] = []
    for (const d of nodes) pods.push(...await cniPods(topo, d.host, { subnetFile: `${d.stateDir}/subnet.env`, dataDir: d.stateDir, count: 2 }))
    for (const p of pods) assert.ok(p.ip6 !== undefined, `${p.name} has an IPv6 address`)
    await waitFor(async () => (await Promise.all(nodes.map(async (d) => (await d.status()).peers.length === 2 && await peers6(d) === 2))).every(Boolean), { what: 'complete tables in both families', timeoutMs: 5000 })
    const m4 = await pingMatrix(topo, pods)
    assert.deepEqual(m4.failed, [], 'every pod reaches every pod over IPv4')
    const m6 = await pingMatrix(topo, pods, { family: 6 })
    assert.deepEqual(m6.failed, [], 'every pod reaches every pod over IPv6')
    assert.equal(m6.ok.length, 30)
    await tcpBothWays(topo, pods[0], pods[2], 6)
    await tcpBothWays(topo, pods[1], pods[4], 6)
    const { gbps } = await iperf(topo, pods[2], pods[0], { serverIp: pods[2].ip6 as string, seconds: 2 })
    t.diagnostic(`IPv6 pod -> pod across nodes: ${gbps.toFixed(3)} Gbit/s (iperf3, 2 s, 1 stream)`)
  })
})

test('an IPv6-only cluster (EnableIPv4 false): pods attached by the CNI plugin reach each other over IPv6, and the nodes run no IPv4 device', { skip: skip ?? cniSkipReason(), timeout: 150_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'vxlan6-only', ipv6: true, timeoutMs: 130_000 }, async (topo) => {
    const c = cluster(t, topo, V6_ONLY)
    const a = await c.start(topo.hosts[0])
    const b = await c.start(topo.hosts[1])
    assert.equal(a.subnetEnv().subnet, undefined, 'no IPv4 subnet in subnet.env')
    const pods: Pod[] = []
    for (const d of [a, b]) pods.push(...await cniPods(topo, d.host, { subnetFile: `${d.stateDir}/subnet.env`, dataDir: d.stateDir, count: 1 }))
    await waitFor(async () => await peers6(a) === 1 && await peers6(b) === 1, { what: 'each node learns the other', timeoutMs: 5000 })
    const m = await pingMatrix(topo, pods, { family: 6 })
    assert.deepEqual(m.failed, [])
    await tcpBothWays(topo, pods[0], pods[1], 6)
    assert.notEqual((await topo.exec(topo.hosts[0], ['ip', 'link', 'show', 'dev', 'weft.1'], { allowFail: true })).code, 0, 'no IPv4 device')
    // SIGTERM: the IPv6 device and its route go
    assert.equal((await a.child.stop(5000)).code, 0)
    assert.notEqual((await topo.exec(topo.hosts[0], ['ip', 'link', 'show', 'dev', 'weft-v6.1'], { allowFail: true })).code, 0, 'weft-v6.1 is gone')
  })
})
