// The IP-in-IP peer offload (src/backend/tun/peer-offload.ts): a tc BPF
// program on weft.ipip's egress encapsulates what the route table sends to
// a peer, marked so that the kernel segments it, instead of weft's raw
// socket sending one segment at a time; one on the underlay's ingress
// takes the outer header off what a known peer sent and hands the packet
// to weft.ipip. weft keeps the decisions: one map entry per peer, set and
// removed with the route table; anything else still reaches weft.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { withTopology } from '../../lab/netns'
import { iperf, ping } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { execFileSync } from 'node:child_process'
import { BIN, startDaemon } from '../../lab/daemons'
import { waitFor } from '../../lab/wait'
import { pair, podsFor } from './mesh'
import { assertCarriedByKernel, assertPingsByKernel, carriedBy, offloadStatus } from './peer-offload-checks'
import type { OffloadPeer } from './peer-offload-checks'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { parseCidr } from '../../src/packet/net'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"ipip"}}'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3')

type Peer = OffloadPeer
const statusOf = offloadStatus

test('ipip peer offload: the kernel encapsulates and segments what goes to a peer, and decapsulates what comes from it; TCP and ping flow both ways; what has no peer still reaches weft, which drops it as before', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'ipip-off', timeoutMs: 80_000 }, async (topo) => {
    const { a, b, pa, pb } = await pair(t, topo, CONFIG)
    await waitFor(async () => (await statusOf(b)).peers.length === 1, { what: 'h2 has h1 as its peer', timeoutMs: 5000 })
    const p = await ping(topo, pa, pb.ip, { count: 20, intervalS: 0.01, waitS: 2 })
    assert.equal(p.received, 20, 'every ping came back')
    await assertPingsByKernel([['h1', a], ['h2', b]], 20)
    const there = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2 })
    const back = await iperf(topo, pa, pb, { serverIp: pa.ip, seconds: 2 })
    const [sa, sb] = await Promise.all([statusOf(a), statusOf(b)])
    const peers: Array<[string, Peer]> = [['h1', sa.peers[0]], ['h2', sb.peers[0]]]
    t.diagnostic(`pa -> pb ${there.gbps.toFixed(2)} Gbit/s, pb -> pa ${back.gbps.toFixed(2)}; ${carriedBy(peers)}`)
    assertCarriedByKernel(peers)
    assert.deepEqual(sa.counters.drops, {}, 'h1 dropped nothing')
    assert.deepEqual(sb.counters.drops, {}, 'h2 dropped nothing')
    assert.ok(there.gbps > 0.1 && back.gbps > 0.1, 'TCP flows both ways')
    const text = execFileSync(BIN, ['status', '--state-dir', a.stateDir], { encoding: 'utf8' })
    assert.match(text, /OUT PKTS +IN PKTS +OUT BY KERNEL +IN BY KERNEL/, '`weft status` shows what the kernel carried')

    // an address in the network that no lease holds: no map entry, so weft's pipeline sees it and drops it as no_route
    const before = sa.counters.drops.no_route ?? 0
    await ping(topo, pa, '10.244.250.9', { count: 3, intervalS: 0.01, waitS: 1 })
    await waitFor(async () => ((await statusOf(a)).counters.drops.no_route ?? 0) >= before + 3, { what: 'weft counted the packets with no peer', timeoutMs: 5000 })
  })
})

test('ipip peer offload follows the route table: a peer\'s subnet goes into the map with its lease, and out with it, after which its packets reach weft again', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'ipip-off-leave', timeoutMs: 80_000 }, async (topo) => {
    const { c, a, pa } = await pair(t, topo, CONFIG)
    // a peer with no host behind it (its packets go out of the lab's underlay, and nowhere)
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    t.after(async () => { await store.close() })
    store.putRaw('10.244.251.0-24', '{"PublicIP":"198.18.0.9","PublicIPv6":null,"BackendType":"ipip"}', 86400)
    const peer = async (): Promise<Peer | undefined> => (await statusOf(a)).peers.find((p) => p.subnet === '10.244.251.0/24')
    await waitFor(peer, { what: 'h1 took the lease', timeoutMs: 5000 })
    await ping(topo, pa, '10.244.251.2', { count: 3, intervalS: 0.01, waitS: 1 })
    await waitFor(async () => ((await peer())?.offloadPackets ?? 0) >= 3, { what: 'the kernel sent the pings to the new peer', timeoutMs: 5000 })
    const before = (await statusOf(a)).counters.drops.no_route ?? 0
    await store.deleteLease(parseCidr('10.244.251.0/24'))
    await waitFor(async () => (await peer()) === undefined, { what: 'h1 dropped the peer', timeoutMs: 5000 })
    await ping(topo, pa, '10.244.251.2', { count: 3, intervalS: 0.01, waitS: 1 })
    await waitFor(async () => ((await statusOf(a)).counters.drops.no_route ?? 0) >= before + 3, { what: 'packets for the gone peer reached weft (its map entry went with it)', timeoutMs: 5000 })
  })
})

test('ipip with WEFT_OFFLOAD=off beside a node with it: weft\'s raw socket sends every segment and its pipeline receives super-packets whole; TCP and ping still flow', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'ipip-off-off', timeoutMs: 80_000 }, async (topo) => {
    const { c, a, pa } = await pair(t, topo, CONFIG)
    // a third node without the offload, beside h1 with it
    const off = await startDaemon(topo, topo.hosts[2], { dir: c.dir, store: ['--store', `sqlite:${c.dir}/store.db`], env: { ...process.env, WEFT_OFFLOAD: 'off' } })
    const [po] = await podsFor(topo, off, 1)
    await waitFor(async () => (await statusOf(off)).peers.length === 2 && (await statusOf(a)).peers.length === 2, { what: 'the three-node mesh', timeoutMs: 5000 })
    const p = await ping(topo, po, pa.ip, { count: 10, intervalS: 0.01, waitS: 2 })
    assert.equal(p.received, 10, 'every ping came back')
    const r = await iperf(topo, pa, po, { serverIp: pa.ip, seconds: 2 })
    const back = await iperf(topo, po, pa, { serverIp: po.ip, seconds: 2 })
    const s = await statusOf(off)
    const aSubnet = (await statusOf(a)).counters.subnet
    const toA = s.peers.find((x) => x.subnet === aSubnet)
    t.diagnostic(`offload off: po -> pa ${r.gbps.toFixed(2)} Gbit/s, pa -> po ${back.gbps.toFixed(2)}; through the pipeline ${s.peers.map((x) => x.insidePackets).join(', ')} packets out, ${s.counters.counters.outside_unsegmented} super-packets read whole`)
    assert.ok(s.peers.every((x) => x.sendOffload !== true && x.receiveOffload !== true), 'no peer of the node without the offload says it is offloaded')
    assert.ok(toA !== undefined && toA.insidePackets >= 10 && toA.offloadPackets === undefined, 'its pipeline carried the pings and the stream')
    // a super-packet h1's kernel left whole crosses the veth whole: the pipeline takes it in one read
    assert.ok(s.counters.counters.outside_unsegmented > 0, 'its pipeline read IP-in-IP super-packets whole')
    assert.ok(r.gbps > 0.1 && back.gbps > 0.1, 'TCP flows both ways')
  })
})
