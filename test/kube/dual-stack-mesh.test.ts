// Issue 22 in kube mode, end to end: weft nodes whose Nodes carry a pod CIDR
// of each family (spec.podCIDRs), leasing both, publishing the IPv6
// annotations as flanneld does, and pods through the CNI plugin reaching
// each other by both families.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { withTopology, waitFor } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { cniPods, cniSkipReason } from '../../lab/cni'
import { pingMatrix } from '../../lab/traffic'
import type { Daemon } from '../../lab/daemons'
import { formatCidr6 } from '../../src/packet/net6'
import { flannelAnnotations, kubeCluster } from './cluster'

const skip = netnsSkipReason() ?? toolSkipReason('ping', 'openssl') ?? cniSkipReason()
const DUAL = '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}'

const peers6 = async (d: Daemon): Promise<number> => ((await d.status()) as unknown as { ipv6?: { peers: unknown[] } }).ipv6?.peers.length ?? 0

test('kube mode, dual stack: each node leases its two pod CIDRs (spec.podCIDRs), publishes public-ipv6 and backend-v6-data as flanneld does, and pods attached by the CNI plugin reach each other by both families', { skip, timeout: 150_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'kube-dual', ipv6: true }, async (topo) => {
    const k = await kubeCluster(t, topo, DUAL)
    for (const h of topo.hosts) {
      await k.api.addNode({ name: h.name, podCIDRs: [`10.244.${h.index}.0/24`, `fc00:0:0:${h.index}::/64`], addresses: [{ type: 'InternalIP', address: h.underlayIp }] })
    }
    const nodes = [await k.start(topo.hosts[0]), await k.start(topo.hosts[1])]
    for (const d of nodes) {
      const env = d.subnetEnv()
      assert.equal(env.subnet6 !== undefined ? formatCidr6(env.subnet6) : undefined, `fc00:0:0:${d.host.index}::/64`, `${d.host.name} leased its IPv6 pod CIDR`)
      const a = flannelAnnotations(await k.api.getNode(d.host.name))
      assert.equal(a['public-ipv6'], d.host.underlayIp6)
      assert.match(a['backend-v6-data'], /^\{"VNI":1,"VtepMAC":"([0-9a-f]{2}:){5}[0-9a-f]{2}"\}$/, 'backend-v6-data is flannel\'s JSON')
      assert.notEqual(JSON.parse(a['backend-v6-data']).VtepMAC, JSON.parse(a['backend-data']).VtepMAC, 'the IPv6 device has a MAC of its own')
    }
    await waitFor(async () => (await Promise.all(nodes.map(async (d) => (await d.status()).peers.length === 1 && await peers6(d) === 1))).every(Boolean), { what: 'each node knows the other in both families', timeoutMs: 10_000 })
    const pods = []
    for (const d of nodes) pods.push(...await cniPods(topo, d.host, { subnetFile: `${d.stateDir}/subnet.env`, dataDir: d.stateDir, count: 1 }))
    assert.deepEqual((await pingMatrix(topo, pods, { count: 2 })).failed, [], 'IPv4')
    assert.deepEqual((await pingMatrix(topo, pods, { count: 2, family: 6 })).failed, [], 'IPv6')
  })
})
