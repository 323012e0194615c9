// Issue 21 end to end: weft nodes whose store is the Kubernetes API (the
// lab's stand-in server, itself checked with kubectl in test/lab), pods
// attached by weft's CNI plugin, and a node that runs only the kernel's
// flannel.1 with its Node annotated as flanneld annotates it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { withTopology, waitFor } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { cniPods, cniSkipReason } from '../../lab/cni'
import { addPods } from '../../lab/pods'
import { kernelVxlanNode } from '../../lab/kernel-vxlan'
import { ping, pingMatrix } from '../../lab/traffic'
import { BIN } from '../../lab/daemons'
import type { Daemon } from '../../lab/daemons'
import { KUBE_CALLS } from '../../src/kube/calls'
import { memoryOf, nodePid } from '../../lab/cpu'
import { flannelAnnotations, kubeCluster } from './cluster'
import { logs } from '../backend/mesh'

const skip = netnsSkipReason() ?? toolSkipReason('ping', 'openssl') ?? cniSkipReason()

const peersOf = async (d: Daemon): Promise<string[]> => (await d.status()).peers.map((p) => String(p.subnet)).sort()

test('three weft nodes on the Kubernetes API form a mesh through the CNI plugin, publish flanneld\'s annotations and mark their network available; a kernel flannel.1 node annotated by hand is reached both ways within a second of joining, and gone from every table when deleted; the calls made are exactly the ClusterRole\'s', { skip, timeout: 180_000 }, async (t) => {
  await withTopology(t, { hosts: 4, label: 'kube-mesh' }, async (topo) => {
    const [h1, h2, h3, h4] = topo.hosts
    const k = await kubeCluster(t, topo)
    for (const h of [h1, h2, h3]) await k.addNode(h)
    // h3 finds its node as a DaemonSet pod does: from its pod's spec.nodeName
    await k.api.addPod('kube-flannel', 'kube-weft-ds-x1', h3.name)
    const nodes = [await k.start(h1), await k.start(h2), await k.start(h3, { podName: 'kube-weft-ds-x1' })]

    // 1. each node's subnet is its pod CIDR, published as flanneld publishes it
    for (const d of nodes) {
      assert.equal(String(d.env().subnet.ip >>> 8 & 0xff), String(d.host.index), `${d.host.name} leased its pod CIDR`)
      const node = await k.api.getNode(d.host.name)
      const a = flannelAnnotations(node)
      const mac = a['backend-data']
      // flannel's JSON, byte for byte, plus weft's remote checksum offload offer (README: Differences)
      assert.match(mac, /^\{"VNI":1,"VtepMAC":"([0-9a-f]{2}:){5}[0-9a-f]{2}"(,"RemCsumRx":true)?\}$/, 'backend-data is flannel\'s JSON')
      assert.deepEqual({ ...a, 'backend-data': undefined }, { 'backend-data': undefined, 'backend-type': 'vxlan', 'kube-subnet-manager': 'true', 'public-ip': d.host.underlayIp })
      await waitFor(async () => {
        const c = ((await k.api.getNode(d.host.name))?.status?.conditions ?? []) as Array<{ type: string, status: string, reason: string }>
        return c.some((x) => x.type === 'NetworkUnavailable' && x.status === 'False' && x.reason === 'FlannelIsUp')
      }, { what: `${d.host.name}'s NetworkUnavailable condition False`, timeoutMs: 10_000 })
    }
    await waitFor(async () => (await Promise.all(nodes.map(peersOf))).every((p) => p.length === 2), { what: 'every node knows the other two', timeoutMs: 10_000 })

    // weft leases reads the same Nodes
    const listed = JSON.parse((await topo.exec(h1, [process.execPath, BIN, 'leases', '--json', '--kube-subnet-mgr', '--kubeconfig-file', k.kubeconfig])).stdout) as Array<{ subnet: string, publicIP: string, backendType: string }>
    assert.deepEqual(listed.map((l) => `${l.subnet} ${l.publicIP} ${l.backendType}`), nodes.map((d) => `10.244.${d.host.index}.0/24 ${d.host.underlayIp} vxlan`))

    // 2. pods attached by weft's CNI plugin reach each other across nodes
    const pods = []
    for (const d of nodes) pods.push(...await cniPods(topo, d.host, { subnetFile: `${d.stateDir}/subnet.env`, dataDir: d.stateDir, count: 1 }))
    const m = await pingMatrix(topo, pods, { count: 2 })
    assert.deepEqual(m.failed, [], 'every pod reaches every pod')

    // 3. a node running only the kernel's VXLAN, set up and annotated as flanneld does both
    const kv = await kernelVxlanNode(topo, h4, { subnet: '10.244.4.0/24' })
    for (const d of nodes) {
      const a = flannelAnnotations(await k.api.getNode(d.host.name))
      await kv.addPeer({ subnet: `10.244.${d.host.index}.0/24`, vtepMac: (JSON.parse(a['backend-data']) as { VtepMAC: string }).VtepMAC, publicIp: d.host.underlayIp })
    }
    const [kp] = await addPods(topo, h4, { subnet: '10.244.4.0/24', count: 1, mtu: 1450 })
    const joined = Date.now()
    await k.api.addNode({
      name: h4.name,
      podCIDR: '10.244.4.0/24',
      annotations: {
        'flannel.alpha.coreos.com/backend-data': `{"VNI":1,"VtepMAC":"${kv.mac}"}`,
        'flannel.alpha.coreos.com/backend-type': 'vxlan',
        'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
        'flannel.alpha.coreos.com/public-ip': h4.underlayIp
      }
    })
    await waitFor(async () => (await Promise.all(nodes.map(peersOf))).every((p) => p.includes('10.244.4.0/24')), { what: 'every weft node learns the kernel node', timeoutMs: 5000, intervalMs: 50 })
    const delays: number[] = []
    for (const d of nodes) {
      const added = logs(d).find((l) => l.msg === 'peer added to the FDB' && l.subnet === '10.244.4.0/24')
      assert.ok(added !== undefined, `${d.host.name} logged the kernel node`)
      assert.ok(added.time - joined < 1000, `${d.host.name} could reach the new node ${added.time - joined} ms after it joined the API (at most 1000)`)
      delays.push(added.time - joined)
    }
    t.diagnostic(`a node added to the API was in each weft node's table after ${delays.join(', ')} ms`)
    for (const p of pods) {
      assert.equal((await ping(topo, p, kp.ip, { count: 2, intervalS: 0.2 })).received, 2, `${p.name} -> kernel node's pod`)
      assert.equal((await ping(topo, kp, p.ip, { count: 2, intervalS: 0.2 })).received, 2, `kernel node's pod -> ${p.name}`)
    }

    // 4. deleted from the API: gone from every table
    await k.api.deleteNode(h4.name)
    await waitFor(async () => (await Promise.all(nodes.map(peersOf))).every((p) => !p.includes('10.244.4.0/24')), { what: 'the deleted node is gone from every table', timeoutMs: 5000, intervalMs: 50 })

    t.diagnostic(`RSS of the kube-mode daemons: ${nodes.map((d) => memoryOf(nodePid(d.child.pid)).rssMiB.toFixed(1)).join(', ')} MiB`)

    // 5. what weft asked the API for is what its ClusterRole grants, all of it
    const made = new Set((await k.api.calls()).map((c) => `${c.verb} ${c.resource}`))
    assert.deepEqual([...made].sort(), KUBE_CALLS.map((c) => `${c.verb} ${c.resource}`).sort())
  })
})
