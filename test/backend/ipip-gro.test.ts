// IP-in-IP behind an underlay that does GRO, as most NICs do by default
// (virtio_net, ENA, mlx5): the receiving kernel merges a node's IP-in-IP TCP
// segments (ipip_gro_receive is built into the IPv4 stack, module or not)
// and the raw socket gets the merged packet whole, up to 64 KB, its inner
// TCP checksum left partial. weft must take it whole: read into slots that
// hold 64 KB, finish the checksum, and hand it to the TUN as TSO.
// The lab's NIC-like underlay (lab/netns.ts, underlay 'nic') gives each
// host's veth GRO as a NIC does it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { withTopology } from '../../lab/netns'
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

test('ipip behind an underlay with GRO: merged IP-in-IP packets (up to 64 KB) are taken whole, not dropped as truncated, and TCP flows both ways', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'ipip-gro', timeoutMs: 80_000, underlay: 'nic' }, async (topo) => {
    const { a, b, pa, pb } = await pair(t, topo, CONFIG)
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
  await withTopology(t, { hosts: 2, label: 'ipip-gro-mtu', timeoutMs: 80_000, underlay: 'nic' }, async (topo) => {
    const [h1, h2] = topo.hosts
    const c = cluster(t, topo, CONFIG)
    const a = await c.start(h1)
    const b = await c.start(h2)
    const [pa] = await addPods(topo, h1, { subnet: formatCidr(a.env().subnet), count: 1, mtu: 1400 })
    const [pb] = await addPods(topo, h2, { subnet: formatCidr(b.env().subnet), count: 1, mtu: 1400 })
    const there = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2 })
    const back = await iperf(topo, pa, pb, { serverIp: pa.ip, seconds: 2 })
    const [ca, cb] = await Promise.all([countersOf(a), countersOf(b)])
    t.diagnostic(`pa -> pb ${there.gbps.toFixed(2)} Gbit/s, pb -> pa ${back.gbps.toFixed(2)}; merged packets taken whole: ${cb.counters.outside_unsegmented} on h2, ${ca.counters.outside_unsegmented} on h1`)
    assert.ok(cb.counters.outside_unsegmented > 0 && ca.counters.outside_unsegmented > 0, 'both nodes received merged packets')
    // declared at weft's own MTU (1480), the merged packets' segments did not fit the pods' 1400: the kernel dropped them (fragmentation needed) and TCP stalled
    assert.ok(there.gbps > 0.1 && back.gbps > 0.1, 'TCP flows both ways')
  })
})
