// Two nodes running no weft, only flanneld-style kernel VXLAN (flannel.1,
// permanent neighbour + FDB entry + onlink route per peer), each with two
// pods: all pods reach each other and iperf3 pushes data across. This
// proves the pod/traffic helpers and the kernel reference setup that weft's
// userspace VXLAN is compared against. Skipped, with the reason, without
// root or iperf3.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { kernelVxlanNode, randomVtepMac, vxlanLeaseValue } from '../../lab/kernel-vxlan'
import { withTopology, type Host } from '../../lab/netns'
import { addPods } from '../../lab/pods'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { iperf, ping, pingMatrix } from '../../lab/traffic'

const skip = netnsSkipReason() ?? toolSkipReason('iperf3', 'bridge', 'ss')

test('lease value is flannel\'s compact JSON, byte for byte', () => {
  assert.equal(
    vxlanLeaseValue({ publicIp: '198.18.0.2', vni: 1, mac: 'C6:D2:32:6F:8F:44' }),
    '{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}'
  )
  for (let i = 0; i < 50; i++) {
    const mac = randomVtepMac()
    assert.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/)
    assert.equal(parseInt(mac.slice(0, 2), 16) & 0x03, 0x02, 'unicast, locally administered')
  }
})

test('two kernel-VXLAN nodes: full pod ping matrix and iperf3 across nodes', { skip }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'kvxlan', timeoutMs: 90_000 }, async (topo) => {
    const [h1, h2] = topo.hosts as [Host, Host]
    const a = await kernelVxlanNode(topo, h1, { subnet: '10.244.5.0/24' })
    const b = await kernelVxlanNode(topo, h2, { subnet: '10.244.6.0/24', mac: '02:77:65:66:74:06' })
    assert.equal(b.mac, '02:77:65:66:74:06')
    assert.equal(a.mtu, 1450)
    assert.equal(vxlanLeaseValue(a), `{"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${a.mac}"}}`)

    const dev = JSON.parse((await topo.exec(h1, ['ip', '-d', '-j', 'link', 'show', 'flannel.1'])).stdout)[0]
    assert.equal(dev.mtu, 1450)
    assert.equal(dev.linkinfo.info_kind, 'vxlan')
    assert.equal(dev.linkinfo.info_data.id, 1)
    assert.equal(dev.linkinfo.info_data.port, 8472)
    assert.equal(dev.linkinfo.info_data.local, '198.18.0.1')
    assert.equal(dev.linkinfo.info_data.learning, false)
    assert.match((await topo.exec(h1, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'flannel.1'])).stdout, /inet 10\.244\.5\.0\/32 /)

    await a.addPeer(b.peer)
    await b.addPeer(a.peer)
    await a.addPeer(b.peer) // flannel replaces: re-adding a peer is harmless
    assert.match((await topo.exec(h1, ['ip', 'neigh', 'show', 'dev', 'flannel.1'])).stdout, new RegExp(`^10\\.244\\.6\\.0 lladdr ${b.mac} PERMANENT`, 'm'))
    const fdb = (await topo.exec(h1, ['bridge', 'fdb', 'show', 'dev', 'flannel.1'])).stdout
    assert.equal(fdb.split('\n').filter((l) => l.startsWith(`${b.mac} dst 198.18.0.2 self permanent`)).length, 1, fdb)
    assert.match((await topo.exec(h1, ['ip', 'route', 'show', '10.244.6.0/24'])).stdout, /10\.244\.6\.0\/24 via 10\.244\.6\.0 dev flannel\.1 onlink/)

    const pods = [
      ...await addPods(topo, h1, { subnet: a.subnet, count: 2 }),
      ...await addPods(topo, h2, { subnet: b.subnet, count: 2 }),
    ]
    const m = await pingMatrix(topo, pods)
    assert.deepEqual(m.failed, [])
    assert.equal(m.ok.length, 12)
    // 1422 + 28 = 1450: a full-MTU pod packet crosses without fragmentation.
    const big = await topo.exec(pods[0]!.ns, ['ping', '-n', '-c', '1', '-W', '2', '-M', 'do', '-s', '1422', pods[2]!.ip], { timeoutMs: 5000 })
    assert.match(big.stdout, /1 received/)

    const r = await iperf(topo, pods[2]!, pods[0]!, { serverIp: pods[2]!.ip, seconds: 2 })
    t.diagnostic(`kernel VXLAN pod-to-pod iperf3: ${r.gbps.toFixed(2)} Gbit/s, ${r.retransmits} retransmits`)
    assert.ok(r.gbps > 0, `throughput ${r.gbps}`)

    // removePeer takes away all three entries: the other node is unreachable again.
    await a.removePeer(b.peer)
    assert.equal((await topo.exec(h1, ['ip', 'route', 'show', '10.244.6.0/24'])).stdout.trim(), '')
    assert.doesNotMatch((await topo.exec(h1, ['bridge', 'fdb', 'show', 'dev', 'flannel.1'])).stdout, new RegExp(b.mac))
    const gone = await ping(topo, pods[0]!, pods[2]!.ip, { count: 1, waitS: 1 })
    assert.equal(gone.received, 0)
  })
})
