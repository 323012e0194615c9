// VXLAN's send offload (WEFT_SEND_OFFLOAD=on; src/backend/tun/send-offload.ts):
// a tc BPF program on weft.1's egress writes the VXLAN headers flannel.1
// writes (a UDP source port by flow hash, to 8472, the VNI, an inner
// Ethernet header from our VTEP MAC to the peer's) in front of what the
// route table sends to a peer, marked so that the kernel segments it.
// Checked against weft's own receiver and against the kernel's flannel.1.
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { withTopology } from '../../lab/netns'
import { iperf, ping } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import type { Daemon } from '../../lab/daemons'
import { waitFor } from '../../lab/wait'
import { kernelPeer, pair } from './mesh'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3')

interface Peer { subnet: string, sendOffload?: boolean, offloadPackets?: number, insidePackets: number }
interface Status { peers: Peer[], counters: { counters: Record<string, number>, drops: Record<string, number> } }
const statusOf = async (d: Daemon): Promise<Status> => await d.status() as unknown as Status
const piped = (p: Peer): number => p.insidePackets - (p.offloadPackets ?? 0)

/** The daemons this test starts take the setting from this process's environment. */
function offloadOn (t: TestContext): void {
  const was = process.env.WEFT_SEND_OFFLOAD
  process.env.WEFT_SEND_OFFLOAD = 'on'
  t.after(() => { if (was === undefined) delete process.env.WEFT_SEND_OFFLOAD; else process.env.WEFT_SEND_OFFLOAD = was })
}

test('vxlan send offload between weft nodes: the kernel sends, weft receives; ping and TCP both ways, nothing dropped', { skip, timeout: 90_000 }, async (t) => {
  offloadOn(t)
  await withTopology(t, { hosts: 2, label: 'vxlan-off', timeoutMs: 80_000 }, async (topo) => {
    const { a, b, pa, pb } = await pair(t, topo, CONFIG)
    await waitFor(async () => (await statusOf(b)).peers.length === 1, { what: 'h2 has h1 as its peer', timeoutMs: 5000 })
    assert.equal((await ping(topo, pa, pb.ip, { count: 20, intervalS: 0.01, waitS: 2 })).received, 20, 'every ping came back')
    const there = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2 })
    const back = await iperf(topo, pa, pb, { serverIp: pa.ip, seconds: 2 })
    const [sa, sb] = await Promise.all([statusOf(a), statusOf(b)])
    const [peerA, peerB] = [sa.peers[0], sb.peers[0]]
    t.diagnostic(`pa -> pb ${there.gbps.toFixed(2)} Gbit/s, pb -> pa ${back.gbps.toFixed(2)}; sent by the kernel: ${peerA.offloadPackets} packets from h1, ${peerB.offloadPackets} from h2; through weft's pipeline: ${piped(peerA)} and ${piped(peerB)}`)
    assert.equal(peerA.sendOffload, true)
    assert.equal(peerB.sendOffload, true)
    assert.ok((peerA.offloadPackets ?? 0) > 20 && (peerB.offloadPackets ?? 0) > 20, 'the kernel carried the pings and the streams')
    assert.ok(piped(peerA) < 20 && piped(peerB) < 20, 'weft\'s own pipeline carried next to nothing to the peer')
    assert.deepEqual(sa.counters.drops, {}, 'h1 dropped nothing')
    assert.deepEqual(sb.counters.drops, {}, 'h2 dropped nothing')
    assert.ok(there.gbps > 0.1 && back.gbps > 0.1, 'TCP flows both ways')
  })
})

test('vxlan send offload to a kernel flannel.1 node: what the program writes is VXLAN the kernel takes; ping and TCP both ways', { skip, timeout: 90_000 }, async (t) => {
  offloadOn(t)
  await withTopology(t, { hosts: 2, label: 'vxlan-off-k', timeoutMs: 80_000 }, async (topo) => {
    const { w, wp, kp } = await kernelPeer(t, topo, CONFIG)
    assert.equal((await ping(topo, wp, kp.ip, { count: 10, intervalS: 0.01, waitS: 2 })).received, 10, 'weft -> kernel -> weft')
    assert.equal((await ping(topo, kp, wp.ip, { count: 10, intervalS: 0.01, waitS: 2 })).received, 10, 'kernel -> weft -> kernel')
    const there = await iperf(topo, kp, wp, { serverIp: kp.ip, seconds: 2 })
    const back = await iperf(topo, wp, kp, { serverIp: wp.ip, seconds: 2 })
    const peer = (await statusOf(w)).peers[0]
    t.diagnostic(`weft -> kernel ${there.gbps.toFixed(2)} Gbit/s, kernel -> weft ${back.gbps.toFixed(2)}; sent by the kernel for weft: ${peer.offloadPackets} packets`)
    assert.equal(peer.sendOffload, true)
    assert.ok((peer.offloadPackets ?? 0) > 20, 'weft\'s side was sent by its program')
    assert.ok(there.gbps > 0.1 && back.gbps > 0.1, 'TCP flows both ways')
  })
})
