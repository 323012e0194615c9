// weft's host-gw backend in IPv6 across real kernels, on an IPv6 underlay
// (2001:2::/64 beside 198.18.0.0/24): each peer's IPv6 subnet is a route
// `<subnet6> via <PublicIPv6> dev eth0`, added, replaced, checked and put
// back, removed, as flannel's RouteNetwork keeps its v6Routes. Each node is
// the backend itself run by host-gw6-node.ts on a lease given to it (no
// store: the store's IPv6 leases are tested with the stores), and pods are
// attached by weft's CNI plugin with the real bridge and host-local.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { withTopology, waitFor } from '../../lab/netns'
import type { ChildHandle, Host, Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { cniPods, cniSkipReason } from '../../lab/cni'
import type { Pod } from '../../lab/pods'

const NODE = path.join(__dirname, 'host-gw6-node.js')
const skip = netnsSkipReason() ?? toolSkipReason('ip6tables', 'iptables') ?? cniSkipReason()
const DUAL = '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}'
const V6ONLY = '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}'

interface LeaseJson { subnet?: string, subnet6?: string, publicIP?: string, publicIPv6?: string | null, backendType?: string }
interface PeerStatus { subnet?: string, route?: string, subnet6?: string, publicIPv6?: string, route6?: string }
interface LogLine { msg: string, [k: string]: unknown }

class Node {
  private id = 0
  constructor (readonly host: Host, readonly child: ChildHandle, readonly lease: LeaseJson) {}

  private async call (o: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = ++this.id
    this.child.stdin?.write(`${JSON.stringify({ ...o, id })}\n`)
    return JSON.parse(await this.child.waitForLine(new RegExp(`^\\{"id":${id},`), 15_000, 'stdout')) as Record<string, unknown>
  }

  async peers (events: Array<{ type: 'added' | 'removed', lease: LeaseJson }>): Promise<void> { await this.call({ op: 'peers', events }) }
  async status (): Promise<{ peers: PeerStatus[], counters: { counters: Record<string, number> } }> {
    return (await this.call({ op: 'status' })).status as { peers: PeerStatus[], counters: { counters: Record<string, number> } }
  }

  async close (): Promise<void> { await this.call({ op: 'close' }) }
  logs (): LogLine[] { return this.child.stderrLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine) }
}

function leaseOf (h: Host, v4: boolean): LeaseJson {
  return { ...(v4 ? { subnet: `10.244.${h.index}.0/24`, publicIP: h.underlayIp } : {}), subnet6: `fc00:0:0:${h.index}::/64`, publicIPv6: h.underlayIp6 as string }
}

async function startNode (topo: Topology, h: Host, config: string, lease: LeaseJson): Promise<Node> {
  const argv = [process.execPath, NODE, '--config', config, '--lease', JSON.stringify(lease), '--public-ipv6', h.underlayIp6 as string, ...(lease.publicIP !== undefined ? ['--public-ip', h.underlayIp] : [])]
  const child = topo.spawn(h, argv, { stdin: 'pipe' })
  await child.waitForLine(/"ok":"started"/, 15_000, 'stdout')
  return new Node(h, child, lease)
}

/**
 * One pod per node through weft's CNI plugin, from the node's subnet.env;
 * FLANNEL_IPMASQ true (flanneld's --ip-masq, kube-flannel's default), so the
 * bridge does not masquerade pod-to-pod traffic to the node's address, which
 * the other pod (routes to the networks only) could not answer.
 */
async function podOn (topo: Topology, dir: string, n: Node): Promise<Pod> {
  const d = path.join(dir, n.host.name)
  fs.mkdirSync(d, { recursive: true })
  const l = n.lease
  const v4 = l.subnet !== undefined ? `FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=${l.subnet.replace('.0/24', '.1/24')}\n` : ''
  fs.writeFileSync(`${d}/subnet.env`, `${v4}FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=${(l.subnet6 as string).replace('::/64', '::1/64')}\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=true\n`)
  const [pod] = await cniPods(topo, n.host, { subnetFile: `${d}/subnet.env`, dataDir: d, count: 1 })
  return pod
}

async function pings (topo: Topology, from: Pod, ip: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(async () => (await topo.exec(from.ns, ['ping', '-n', '-c', '1', '-W', '1', ip], { allowFail: true })).code === 0, { what: `${from.name} reaches ${ip}`, timeoutMs, intervalMs: 200 })
}

async function routes6 (topo: Topology, h: Host): Promise<string> {
  return (await topo.exec(h, ['ip', '-6', 'route', 'show', 'dev', 'eth0'])).stdout
}

function tmp (t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-hostgw6-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('host-gw dual stack: three nodes route each other\'s IPv4 and IPv6 subnets via their public addresses; pods reach each other in both families; a stale route is replaced, a deleted one put back, a removed peer\'s route deleted, and close() leaves none', { skip, timeout: 120_000 }, async (t) => {
  const dir = tmp(t)
  await withTopology(t, { hosts: 3, label: 'hostgw6', ipv6: true, timeoutMs: 110_000 }, async (topo) => {
    const [h1, , h3] = topo.hosts
    // a route to h3's subnet through a wrong gateway, as a node that moved leaves behind: host-gw replaces it
    await topo.exec(h1, ['ip', '-6', 'route', 'add', 'fc00:0:0:3::/64', 'via', '2001:2::99', 'dev', 'eth0'])
    const nodes = await Promise.all(topo.hosts.map(async (h) => await startNode(topo, h, DUAL, leaseOf(h, true))))
    for (const n of nodes) await n.peers(nodes.filter((o) => o !== n).map((o) => ({ type: 'added', lease: o.lease })))
    await waitFor(async () => (await Promise.all(nodes.map(async (n) => await n.status()))).every((s) => s.peers.length === 2 && s.peers.every((p) => p.route === 'routed' && p.route6 === 'routed')), { what: 'every route in', timeoutMs: 10_000 })
    const [n1, n2] = nodes
    const s1 = await n1.status()
    assert.deepEqual(s1.peers.map((p) => [p.subnet, p.subnet6, p.publicIPv6]).sort(), [['10.244.2.0/24', 'fc00:0:0:2::/64', '2001:2::2'], ['10.244.3.0/24', 'fc00:0:0:3::/64', '2001:2::3']])
    assert.equal(s1.counters.counters.routes, 4)
    const r1 = await routes6(topo, h1)
    assert.match(r1, /fc00:0:0:2::\/64 via 2001:2::2 /)
    assert.match(r1, /fc00:0:0:3::\/64 via 2001:2::3 /)
    assert.doesNotMatch(r1, /2001:2::99/, 'the stale route was replaced')
    assert.match((await topo.exec(h1, ['ip', '-4', 'route', 'show'])).stdout, /10\.244\.2\.0\/24 via 198\.18\.0\.2 dev eth0/)
    assert.equal((await topo.exec(h1, ['sysctl', '-n', 'net.ipv6.conf.all.forwarding'])).stdout.trim(), '1')

    const pods = await Promise.all(nodes.map(async (n) => await podOn(topo, dir, n)))
    for (const a of pods) {
      for (const b of pods) {
        if (a === b) continue
        await pings(topo, a, b.ip6 as string)
        await pings(topo, a, b.ip)
      }
    }

    // the periodic check (flannel's every 10 s) puts back a route someone deleted
    await topo.exec(h1, ['ip', '-6', 'route', 'del', 'fc00:0:0:2::/64'])
    await waitFor(() => n1.logs().some((l) => l.msg === 'a route to a peer was missing; re-added it' && l.subnet6 === 'fc00:0:0:2::/64'), { what: 'the IPv6 route re-added', timeoutMs: 13_000, intervalMs: 200 })
    assert.match(await routes6(topo, h1), /fc00:0:0:2::\/64 via 2001:2::2 /)
    await pings(topo, pods[0], pods[1].ip6 as string)

    // a peer removed: its routes go, both families
    await n1.peers([{ type: 'removed', lease: n2.lease }])
    await waitFor(async () => !(await routes6(topo, h1)).includes('fc00:0:0:2::/64'), { what: 'h2\'s IPv6 route deleted', timeoutMs: 5000 })
    assert.doesNotMatch((await topo.exec(h1, ['ip', '-4', 'route', 'show'])).stdout, /10\.244\.2\.0/)
    assert.equal((await topo.exec(pods[0].ns, ['ping', '-n', '-c', '1', '-W', '1', pods[1].ip6 as string], { allowFail: true })).code !== 0, true, 'h2\'s pod is unreachable from h1 without the route')

    await n1.close()
    assert.doesNotMatch(await routes6(topo, h1), /fc00:0:0:/, 'close() deleted our IPv6 routes')
    assert.match(await routes6(topo, h3), /fc00:0:0:1::\/64 via 2001:2::1 /, 'the others keep theirs')
  })
})

test('host-gw IPv6: a peer with an IPv6 subnet but no usable PublicIPv6, or one off our link, is skipped with one warning and no route; its IPv4 route is still made', { skip, timeout: 60_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'hostgw6-skip', ipv6: true, timeoutMs: 50_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const n1 = await startNode(topo, h1, DUAL, leaseOf(h1, true))
    const noV6: LeaseJson = { ...leaseOf(h2, true), publicIPv6: null }
    const bad: LeaseJson = { subnet: '10.244.8.0/24', subnet6: 'fc00:0:0:8::/64', publicIP: '198.18.0.2', publicIPv6: 'not-an-address' }
    const offLink: LeaseJson = { subnet: '10.244.9.0/24', subnet6: 'fc00:0:0:9::/64', publicIP: '198.18.0.2', publicIPv6: '2001:db8::9' }
    await n1.peers([{ type: 'added', lease: noV6 }, { type: 'added', lease: bad }, { type: 'added', lease: offLink }])
    // renewals of the same leases say nothing new
    await n1.peers([{ type: 'added', lease: noV6 }, { type: 'added', lease: offLink }])
    await waitFor(async () => (await n1.status()).peers.every((p) => p.route === 'routed'), { what: 'the IPv4 routes', timeoutMs: 5000 })
    const byV6 = Object.fromEntries((await n1.status()).peers.map((p) => [p.subnet6, p.route6]))
    assert.deepEqual(byV6, { 'fc00:0:0:2::/64': 'unusable', 'fc00:0:0:8::/64': 'unusable', 'fc00:0:0:9::/64': 'not directly connected' })
    const warned = n1.logs().filter((l) => l.msg.startsWith('ignoring a peer\'s IPv6 subnet: no usable PublicIPv6'))
    assert.deepEqual(warned.map((l) => [l.subnet6, l.reason]).sort(), [['fc00:0:0:2::/64', 'its PublicIPv6 is missing'], ['fc00:0:0:8::/64', 'its PublicIPv6 is not an IPv6 address']])
    assert.equal(n1.logs().filter((l) => l.msg.startsWith('skipping a peer that is not on our link') && l.subnet6 === 'fc00:0:0:9::/64').length, 1)
    assert.doesNotMatch(await routes6(topo, h1), /fc00:0:0:/)
    assert.match((await topo.exec(h1, ['ip', '-4', 'route', 'show'])).stdout, /10\.244\.2\.0\/24 via 198\.18\.0\.2 dev eth0/)
    // the peer publishes its IPv6 address later: now it is routed
    await n1.peers([{ type: 'added', lease: leaseOf(h2, true) }])
    await waitFor(async () => (await routes6(topo, h1)).includes('fc00:0:0:2::/64 via 2001:2::2'), { what: 'the IPv6 route once the address is known', timeoutMs: 5000 })
    await n1.close()
  })
})

test('host-gw IPv6-only (EnableIPv4 false): the lease publishes PublicIPv6 and no IPv4; pods reach each other over IPv6 routes alone', { skip, timeout: 90_000 }, async (t) => {
  const dir = tmp(t)
  await withTopology(t, { hosts: 2, label: 'hostgw6-only', ipv6: true, timeoutMs: 80_000 }, async (topo) => {
    const nodes = await Promise.all(topo.hosts.map(async (h) => await startNode(topo, h, V6ONLY, leaseOf(h, false))))
    const attrs = JSON.parse(nodes[0].child.stdoutLines.find((l) => l.includes('"started"')) as string) as { attrs: Record<string, unknown> }
    assert.deepEqual(attrs.attrs, { publicIP: 0, publicIPv6: '2001:2::1', backendType: 'host-gw' })
    for (const n of nodes) await n.peers(nodes.filter((o) => o !== n).map((o) => ({ type: 'added', lease: o.lease })))
    await waitFor(async () => (await Promise.all(nodes.map(async (n) => await n.status()))).every((s) => s.peers.length === 1 && s.peers[0].route6 === 'routed' && s.peers[0].route === undefined), { what: 'the IPv6 routes', timeoutMs: 10_000 })
    assert.doesNotMatch((await topo.exec(topo.hosts[0], ['ip', '-4', 'route', 'show'])).stdout, /10\.244\.|0\.0\.0\.0/, 'no IPv4 route for an IPv6-only lease')
    const pods = await Promise.all(nodes.map(async (n) => await podOn(topo, dir, n)))
    await pings(topo, pods[0], pods[1].ip)
    await pings(topo, pods[1], pods[0].ip)
    for (const n of nodes) await n.close()
  })
})
