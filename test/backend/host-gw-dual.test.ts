// host-gw on real `weft run` daemons in a dual-stack network (EnableIPv6,
// IPv6Network fc00::/48) over a dual-stack underlay (198.18.0.0/24 and
// 2001:2::/64): each daemon leases both families, publishes its PublicIPv6
// in flannel's lease JSON, routes every peer's IPv6 subnet via its public
// IPv6, and pods attached by weft's CNI plugin reach each other in both
// families; SIGTERM takes the node's routes of both families away.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { withTopology, waitFor } from '../../lab/netns'
import type { Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { cluster } from '../../lab/daemons'
import type { Daemon } from '../../lab/daemons'
import { cniPods, cniSkipReason } from '../../lab/cni'
import type { Pod } from '../../lab/pods'
import { formatCidr6 } from '../../src/packet/net6'
import { rawLeases } from './mesh'

const CONFIG = '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}'
const skip = netnsSkipReason() ?? toolSkipReason('iptables', 'ip6tables') ?? cniSkipReason()

async function pings (topo: Topology, from: Pod, ip: string): Promise<void> {
  await waitFor(async () => (await topo.exec(from.ns, ['ping', '-n', '-c', '1', '-W', '1', ip], { allowFail: true })).code === 0, { what: `${from.name} reaches ${ip}`, timeoutMs: 10_000, intervalMs: 200 })
}

test('host-gw dual stack on daemons: leases of both families in flannel\'s key and JSON, IPv6 routes via PublicIPv6, pods reach each other by IPv4 and IPv6, SIGTERM removes the node\'s routes', { skip, timeout: 180_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'hostgw-dual', ipv6: true, timeoutMs: 170_000 }, async (topo) => {
    const c = cluster(t, topo, CONFIG)
    const nodes: Daemon[] = []
    for (const h of topo.hosts) nodes.push(await c.start(h, '--ip-masq'))
    await waitFor(async () => (await Promise.all(nodes.map(async (d) => await d.status()))).every((s) => s.peers.length === 2 && s.peers.every((p) => p.route === 'routed' && p.route6 === 'routed')), { what: 'both families routed on every node', timeoutMs: 15_000 })

    const raw = rawLeases(c)
    for (const d of nodes) {
      const e = d.subnetEnv()
      assert.ok(e.subnet !== undefined && e.subnet6 !== undefined, `${d.host.name}: subnet.env has both families`)
      const key = `${e.subnet !== undefined ? `${e.subnet.ip >>> 24}.${(e.subnet.ip >>> 16) & 255}.${(e.subnet.ip >>> 8) & 255}.0-24` : ''}&${formatCidr6(e.subnet6).replace('/', '-')}`
      assert.equal(raw[key], `{"PublicIP":"${d.host.underlayIp}","PublicIPv6":"${d.host.underlayIp6 ?? ''}","BackendType":"host-gw"}`, `${d.host.name}'s lease ${key}`)
    }
    const [d1, d2] = nodes
    const r1 = (await topo.exec(d1.host, ['ip', '-6', 'route', 'show', 'dev', 'eth0'])).stdout
    const sub2 = d2.subnetEnv().subnet6
    assert.ok(sub2 !== undefined)
    assert.match(r1, new RegExp(`${formatCidr6(sub2).replace(/[.:/]/g, (ch) => `\\${ch}`)} via 2001:2::2 `))

    const pods: Pod[] = []
    for (const d of nodes) pods.push(...await cniPods(topo, d.host, { subnetFile: `${d.stateDir}/subnet.env`, dataDir: d.stateDir, count: 1 }))
    for (const a of pods) {
      for (const b of pods) {
        if (a === b) continue
        await pings(topo, a, b.ip)
        await pings(topo, a, b.ip6 as string)
      }
    }

    d1.child.kill('SIGTERM')
    await d1.child.exited
    assert.doesNotMatch((await topo.exec(d1.host, ['ip', '-6', 'route', 'show', 'dev', 'eth0'])).stdout, /fc00:/, 'no IPv6 route left on the stopped node')
    assert.doesNotMatch((await topo.exec(d1.host, ['ip', '-4', 'route', 'show', 'dev', 'eth0'])).stdout, /10\.244\./, 'no IPv4 route left')
    assert.ok(fs.existsSync(`${c.dir}/store.db`))
  })
})
