// VXLAN's peer offload (src/backend/tun/peer-offload.ts), on by default: a
// tc BPF program on weft.1's egress writes the VXLAN headers flannel.1
// writes (a UDP source port by flow hash, to 8472, the VNI, an inner
// Ethernet header from our VTEP MAC to the peer's) in front of what the
// route table sends to a peer, marked so that the kernel segments it; one
// on the underlay's ingress takes those headers off what a known peer sent
// and hands the packet to weft.1. Checked between weft nodes and against
// the kernel's flannel.1, and with what the receive program must leave to
// weft's pipeline (a spoofed inner source).
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { withTopology } from '../../lab/netns'
import { iperf, ping } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { waitFor } from '../../lab/wait'
import { kernelPeer, pair } from './mesh'
import { assertCarriedByKernel, assertPingsByKernel, carriedBy, offloadStatus, pipedIn } from './peer-offload-checks'
import type { OffloadPeer } from './peer-offload-checks'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3')

const statusOf = offloadStatus

/** The daemons this test starts take WEFT_OFFLOAD from this process's environment. */
function offload (t: TestContext, value: string): void {
  const was = process.env.WEFT_OFFLOAD
  process.env.WEFT_OFFLOAD = value
  t.after(() => { if (was === undefined) delete process.env.WEFT_OFFLOAD; else process.env.WEFT_OFFLOAD = was })
}

test('vxlan peer offload between weft nodes: the kernel sends for both, and receives light packets (super-packets go to weft\'s pipeline whole on this kernel); ping and TCP both ways, nothing dropped', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'vxlan-off', timeoutMs: 80_000 }, async (topo) => {
    const { a, b, pa, pb } = await pair(t, topo, CONFIG)
    await waitFor(async () => (await statusOf(b)).peers.length === 1, { what: 'h2 has h1 as its peer', timeoutMs: 5000 })
    assert.equal((await ping(topo, pa, pb.ip, { count: 20, intervalS: 0.01, waitS: 2 })).received, 20, 'every ping came back')
    await assertPingsByKernel([['h1', a], ['h2', b]], 20)
    const there = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2 })
    const back = await iperf(topo, pa, pb, { serverIp: pa.ip, seconds: 2 })
    const [sa, sb] = await Promise.all([statusOf(a), statusOf(b)])
    const peers: Array<[string, OffloadPeer]> = [['h1', sa.peers[0]], ['h2', sb.peers[0]]]
    t.diagnostic(`pa -> pb ${there.gbps.toFixed(2)} Gbit/s, pb -> pa ${back.gbps.toFixed(2)}; ${carriedBy(peers)}`)
    assertCarriedByKernel(peers)
    assert.deepEqual(sa.counters.drops, {}, 'h1 dropped nothing')
    assert.deepEqual(sb.counters.drops, {}, 'h2 dropped nothing')
    assert.ok(there.gbps > 0.1 && back.gbps > 0.1, 'TCP flows both ways')
  })
})

test('vxlan peer offload with a kernel flannel.1 node: each side takes the other\'s VXLAN; ping and TCP both ways; an inner source the node does not hold is left to weft, which drops it', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'vxlan-off-k', timeoutMs: 80_000 }, async (topo) => {
    const { w, wp, kp } = await kernelPeer(t, topo, CONFIG)
    assert.equal((await ping(topo, wp, kp.ip, { count: 10, intervalS: 0.01, waitS: 2 })).received, 10, 'weft -> kernel -> weft')
    assert.equal((await ping(topo, kp, wp.ip, { count: 10, intervalS: 0.01, waitS: 2 })).received, 10, 'kernel -> weft -> kernel')
    const there = await iperf(topo, kp, wp, { serverIp: kp.ip, seconds: 2 })
    const back = await iperf(topo, wp, kp, { serverIp: wp.ip, seconds: 2 })
    const s = await statusOf(w)
    const peer = s.peers[0]
    t.diagnostic(`weft -> kernel ${there.gbps.toFixed(2)} Gbit/s, kernel -> weft ${back.gbps.toFixed(2)}; ${carriedBy([['weft', peer]])}`)
    assert.equal(peer.sendOffload, true)
    assert.equal(peer.receiveOffload, true)
    assert.ok((peer.offloadPackets ?? 0) > 20 && (peer.offloadInPackets ?? 0) > 20, 'weft\'s side was carried by its programs both ways')
    assert.ok(there.gbps > 0.1 && back.gbps > 0.1, 'TCP flows both ways')
    assert.deepEqual(s.counters.drops, {}, 'nothing dropped')

    // the kernel pod sends from an address in the network outside its node's subnet: the program leaves it to weft's source check
    await topo.exec(kp.ns, ['ip', 'addr', 'add', '10.244.78.5/32', 'dev', 'eth0'])
    await topo.exec(kp.ns, ['ping', '-n', '-q', '-c', '3', '-i', '0.01', '-W', '1', '-I', '10.244.78.5', wp.ip], { allowFail: true, timeoutMs: 10_000 })
    await waitFor(async () => ((await statusOf(w)).counters.drops.spoofed_source ?? 0) >= 3, { what: 'weft dropped the spoofed pings as spoofed_source', timeoutMs: 5000 })
  })
})

test('vxlan with WEFT_OFFLOAD=send: the kernel sends, weft\'s pipeline receives', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'vxlan-off-set', timeoutMs: 80_000 }, async (topo) => {
    offload(t, 'send')
    const { a, pa, pb } = await pair(t, topo, CONFIG)
    await waitFor(async () => (await statusOf(a)).peers.length === 1, { what: 'h1 has h2 as its peer', timeoutMs: 5000 })
    const r = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2 })
    const s = await statusOf(a)
    t.diagnostic(`WEFT_OFFLOAD=send: pa -> pb ${r.gbps.toFixed(2)} Gbit/s; received by weft's pipeline: ${pipedIn(s.peers[0])} packets`)
    assert.equal(s.peers[0].sendOffload, true)
    assert.equal(s.peers[0].receiveOffload, false)
    assert.ok(pipedIn(s.peers[0]) > 20, 'weft\'s pipeline received')
    assert.ok(r.gbps > 0.1, 'TCP flows')
  })
})

test('vxlan peer offload on another port (Backend.Port 4789): both programs use the configured port, ping and TCP both ways', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'vxlan-off-port', timeoutMs: 80_000 }, async (topo) => {
    const { a, b, pa, pb } = await pair(t, topo, '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","Port":4789}}')
    await waitFor(async () => (await statusOf(b)).peers.length === 1, { what: 'h2 has h1 as its peer', timeoutMs: 5000 })
    assert.equal((await ping(topo, pa, pb.ip, { count: 10, intervalS: 0.01, waitS: 2 })).received, 10, 'every ping came back')
    await assertPingsByKernel([['h1', a], ['h2', b]], 10)
    const r = await iperf(topo, pa, pb, { serverIp: pa.ip, seconds: 1 })
    assert.ok(r.gbps > 0.1, 'TCP flows')
  })
})

test('a bulk stream keeps to one path: while its super-packets go through weft\'s pipeline (this kernel cannot take them), its single packets follow them there instead of overtaking them on the kernel\'s path', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'vxlan-off-order', timeoutMs: 80_000 }, async (topo) => {
    const { a, b, pa, pb } = await pair(t, topo, CONFIG)
    await waitFor(async () => (await statusOf(b)).peers.length === 1, { what: 'h2 has h1 as its peer', timeoutMs: 5000 })
    const before = (await statusOf(b)).peers[0]
    // cubic: the congestion control that halves its window when a segment comes late
    const r = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2, congestion: 'cubic' })
    const after = (await statusOf(b)).peers[0]
    const byKernel = (after.offloadInPackets ?? 0) - (before.offloadInPackets ?? 0)
    const byWeft = pipedIn(after) - pipedIn(before)
    t.diagnostic(`pa -> pb ${r.gbps.toFixed(2)} Gbit/s, ${r.retransmits} segments sent again; pb's node received ${byWeft} packets by weft's pipeline, ${byKernel} by the kernel's path; ${carriedBy([['h1', (await statusOf(a)).peers[0]], ['h2', after]])}`)
    assert.ok(byWeft > 1000, 'the stream\'s super-packets went through weft\'s pipeline')
    // without the rule, about one packet in ten took the kernel's path and overtook the super-packets queued in weft
    assert.ok(byKernel <= 20 + byWeft / 1000, `the kernel's path took next to none of it (${byKernel} packets, beside ${byWeft} through weft)`)
  })
})
