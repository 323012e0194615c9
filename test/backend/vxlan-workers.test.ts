// weft's VXLAN with two dataplane workers per node (`--workers 2`), across
// real kernels: the mesh as with one worker, flows spread over both workers
// on both ends, and a kernel flannel.1 node as the peer.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { withTopology } from '../../lab/netns'
import { iperf, ping } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { BIN } from '../../lab/daemons'
import type { Daemon } from '../../lab/daemons'
import { kernelPeer, mesh } from './mesh'

// this tests weft's own pipeline's workers:
// its daemons carry every packet themselves, without the peer offload
// (src/backend/tun/peer-offload.ts)
process.env.WEFT_OFFLOAD = 'off'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const WORKERS = ['--workers', '2']
const skip = netnsSkipReason() ?? toolSkipReason('iperf3')

type Carried = Array<{ inside_packets: number, outside_packets: number }>

async function workersOf (d: Daemon): Promise<Carried> {
  const s = await d.status()
  return (s.counters as unknown as { workers: Carried }).workers
}

test('two workers per node: the mesh works as with one (pings, TCP, a node joining later, SIGTERM cleans up), and eight TCP streams spread over both workers on both ends', { skip, timeout: 240_000 }, async (t) => {
  await withTopology(t, { hosts: 4, label: 'vxlan-workers', timeoutMs: 220_000 }, async (topo) => {
    const { c, nodes, pods } = await mesh(t, topo, { config: CONFIG, addedMsg: 'peer added to the FDB', device: 'weft.1', flags: WORKERS })
    // pods[0..1] are on nodes[0], pods[2..3] on nodes[1]
    const before = await Promise.all([workersOf(nodes[0]), workersOf(nodes[1])])
    const r = await iperf(topo, pods[2], pods[0], { serverIp: pods[2].ip, seconds: 2, parallel: 8 })
    assert.ok(r.gbps > 0, 'eight streams through')
    const after = await Promise.all([workersOf(nodes[0]), workersOf(nodes[1])])
    for (const [n, w] of after.entries()) {
      assert.equal(w.length, 2, 'two pipelines per node')
      for (const k of [0, 1]) {
        const inside = w[k].inside_packets - before[n][k].inside_packets
        const outside = w[k].outside_packets - before[n][k].outside_packets
        assert.ok(inside > 0 && outside > 0, `node ${n} worker ${k} carried ${inside} packets out and ${outside} in`)
      }
    }
    t.diagnostic(`8 streams: ${r.gbps.toFixed(2)} Gbit/s; per worker (in, out) on the receiver: ${after[1].map((w, k) => `${w.outside_packets - before[1][k].outside_packets}/${w.inside_packets - before[1][k].inside_packets}`).join(', ')}`)

    // the per-peer counters are the sum over both workers
    const s = await nodes[1].status()
    const fromPeers = s.peers.reduce((sum, p) => sum + Number(p.outsidePackets), 0)
    assert.ok(fromPeers > after[1][0].outside_packets && fromPeers > after[1][1].outside_packets, `per-peer counters sum the workers (${fromPeers})`)
    assert.deepEqual(Object.keys(s.counters.drops).filter((k) => k !== 'no_route'), [], `no drops: ${JSON.stringify(s.counters.drops)}`)
    // a second daemon on a node is refused its device, as with one worker,
    // instead of joining it as two more queues and sockets
    const dir = `${c.dir}/second`
    const second = await topo.exec(nodes[0].host, [process.execPath, BIN, 'run', '--store', `sqlite:${c.dir}/store.db`, '--state-dir', dir, '--subnet-file', `${dir}/subnet.env`, '--iface', 'eth0', ...WORKERS], { allowFail: true, timeoutMs: 30_000 })
    assert.notEqual(second.code, 0, 'the second daemon stops')
    assert.match(second.stderr, /weft\.1.*(busy|already)|EBUSY/i)
    assert.equal((await workersOf(nodes[0])).length, 2, 'the first keeps running')

    // and `weft status` says what each worker carried
    const text = execFileSync(BIN, ['status', '--state-dir', nodes[1].stateDir], { encoding: 'utf8' })
    assert.match(text, /^workers {3}2, out\/in packets each: \d+\/\d+, \d+\/\d+$/m)
  })
})

test('two workers and a kernel flannel.1 node: TCP both ways over four streams, with the kernel\'s per-flow source ports steered by inner flow all the same', { skip, timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'vxlan-workers-k', timeoutMs: 100_000 }, async (topo) => {
    const { w, wp, kp } = await kernelPeer(t, topo, CONFIG, WORKERS)
    assert.equal((await ping(topo, wp, kp.ip, { count: 3 })).received, 3, 'weft pod -> kernel pod')
    assert.equal((await ping(topo, kp, wp.ip, { count: 3 })).received, 3, 'kernel pod -> weft pod')

    const there = await iperf(topo, kp, wp, { serverIp: kp.ip, seconds: 1, parallel: 4 })
    const back = await iperf(topo, wp, kp, { serverIp: wp.ip, seconds: 1, parallel: 4 })
    assert.ok(there.gbps > 0 && back.gbps > 0, `TCP both ways (${there.gbps.toFixed(2)} / ${back.gbps.toFixed(2)} Gbit/s)`)
    const s = await w.status()
    const carried = (s.counters as unknown as { workers: Carried }).workers
    for (const [i, x] of carried.entries()) assert.ok(x.outside_packets > 0, `worker ${i} took packets from the kernel node: ${JSON.stringify(carried)}`)
    for (const reason of ['too_big', 'bad_inner_checksum', 'unknown_source']) assert.equal(s.counters.drops[reason] ?? 0, 0, `${reason}: ${JSON.stringify(s.counters.drops)}`)
    t.diagnostic(`TCP weft -> kernel ${there.gbps.toFixed(2)}, kernel -> weft ${back.gbps.toFixed(2)} Gbit/s; per worker (in, out): ${carried.map((x) => `${x.outside_packets}/${x.inside_packets}`).join(', ')}`)
  })
})
