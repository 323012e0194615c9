// IP-in-IP behind an underlay that does GRO, as most NICs do by default
// (virtio_net, ENA, mlx5): the receiving kernel merges a node's IP-in-IP TCP
// segments (ipip_gro_receive is built into the IPv4 stack, module or not)
// and the raw socket gets the merged packet whole, up to 64 KB, its inner
// TCP checksum left partial. weft must take it whole: read into slots that
// hold 64 KB, finish the checksum, and hand it to the TUN as TSO.
// In the lab, the receiving host's veth does GRO once it has NAPI (gro on)
// and its peer in the underlay namespace sends without TSO.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { withTopology } from '../../lab/netns'
import type { Host, Topology } from '../../lab/netns'
import { iperf } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { formatCidr } from '../../src/packet/net'
import { cluster } from '../../lab/daemons'
import { addPods } from '../../lab/pods'
import { pair } from './mesh'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"ipip"}}'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3', 'ethtool')

type Counters = Record<string, number>
const countersOf = async (d: { status: () => Promise<{ counters: unknown }> }): Promise<{ counters: Counters, drops: Counters, sock: Counters }> => (await d.status()).counters as { counters: Counters, drops: Counters, sock: Counters }

/**
 * GRO on `h`'s underlay interface as a NIC does it: veth merges only with
 * NAPI on (gro on), from a peer without TSO, and only what one poll finds;
 * a NIC's interrupt coalescing hands it bursts, here a flush timeout lets
 * merged packets wait for the next poll.
 */
async function groOn (topo: Topology, h: Host): Promise<void> {
  await topo.exec(topo.underlayNs, ['ethtool', '-K', h.name, 'tso', 'off'])
  await topo.exec(h, ['ethtool', '-K', h.ifname, 'gro', 'on'])
  await topo.exec(h, ['sh', '-c', `echo 200000 > /sys/class/net/${h.ifname}/gro_flush_timeout && echo 2 > /sys/class/net/${h.ifname}/napi_defer_hard_irqs`])
}

test('ipip behind an underlay with GRO: merged IP-in-IP packets (up to 64 KB) are taken whole, not dropped as truncated, and TCP flows both ways', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'ipip-gro', timeoutMs: 80_000 }, async (topo) => {
    const { a, b, pa, pb } = await pair(t, topo, CONFIG)
    for (const h of topo.hosts.slice(0, 2)) await groOn(topo, h)
    const there = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2 })
    const back = await iperf(topo, pa, pb, { serverIp: pa.ip, seconds: 2 })
    const [ca, cb] = await Promise.all([countersOf(a), countersOf(b)])
    t.diagnostic(`pa -> pb ${there.gbps.toFixed(2)} Gbit/s, pb -> pa ${back.gbps.toFixed(2)}; merged packets taken whole: ${cb.counters.outside_unsegmented} on h2, ${ca.counters.outside_unsegmented} on h1`)
    assert.ok(cb.counters.outside_unsegmented > 0 && ca.counters.outside_unsegmented > 0, 'both nodes received merged packets (else the lab did no GRO and this proves nothing)')
    assert.equal(cb.sock.rxDropTruncated, 0, 'h2\'s socket cut none short')
    assert.equal(ca.sock.rxDropTruncated, 0, 'h1\'s socket cut none short')
    assert.equal(cb.drops.bad_inner_checksum ?? 0, 0, 'their partial checksums were finished, not refused')
    assert.deepEqual(ca.drops, {}, 'h1 dropped nothing')
    assert.deepEqual(cb.drops, {}, 'h2 dropped nothing')
    // before weft read them whole, both ways carried 0.00 Gbit/s here
    assert.ok(there.gbps > 0.1 && back.gbps > 0.1, 'TCP flows both ways')
  })
})

test('ipip behind an underlay with GRO, to pods attached with a smaller MTU than weft\'s device (1400, as another CNI plugin may): the merged packets still reach them and TCP flows both ways', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'ipip-gro-mtu', timeoutMs: 80_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const c = cluster(t, topo, CONFIG)
    const a = await c.start(h1)
    const b = await c.start(h2)
    const [pa] = await addPods(topo, h1, { subnet: formatCidr(a.env().subnet), count: 1, mtu: 1400 })
    const [pb] = await addPods(topo, h2, { subnet: formatCidr(b.env().subnet), count: 1, mtu: 1400 })
    for (const h of [h1, h2]) await groOn(topo, h)
    const there = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2 })
    const back = await iperf(topo, pa, pb, { serverIp: pa.ip, seconds: 2 })
    const [ca, cb] = await Promise.all([countersOf(a), countersOf(b)])
    t.diagnostic(`pa -> pb ${there.gbps.toFixed(2)} Gbit/s, pb -> pa ${back.gbps.toFixed(2)}; merged packets taken whole: ${cb.counters.outside_unsegmented} on h2, ${ca.counters.outside_unsegmented} on h1`)
    assert.ok(cb.counters.outside_unsegmented > 0 && ca.counters.outside_unsegmented > 0, 'both nodes received merged packets')
    // declared at weft's own MTU (1480), the merged packets' segments did not fit the pods' 1400: the kernel dropped them (fragmentation needed) and TCP stalled
    assert.ok(there.gbps > 0.1 && back.gbps > 0.1, 'TCP flows both ways')
  })
})
