// Seeing inside a running overlay: /metrics moving while iperf3 runs, and
// `weft capture` decoding the VXLAN of a ping between two pods.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { formatCidr } from '../../src/packet/net'
import { withTopology, waitFor } from '../../lab/netns'
import type { Host, Topology } from '../../lab/netns'
import { addPods } from '../../lab/pods'
import { ping } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { BIN, cluster } from '../../lab/daemons'

// this tests weft's own pipeline's counters and capture:
// its daemons carry every packet themselves, without the peer offload
// (src/backend/tun/peer-offload.ts)
process.env.WEFT_OFFLOAD = 'off'

const GET = path.join(__dirname, '..', 'fixtures', 'http-get.js')
const skip = netnsSkipReason() ?? toolSkipReason('iperf3')

async function metric (topo: Topology, h: Host, name: string): Promise<number> {
  const r = JSON.parse((await topo.exec(h, [process.execPath, GET, 'http://127.0.0.1:8081/metrics'])).stdout) as { body: string }
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)$`, 'm').exec(r.body)
  return m === null ? NaN : Number(m[1])
}

test('/metrics counters move while iperf3 runs, and `weft capture` shows the pods\' ping decoded inside VXLAN', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'observe' }, async (topo) => {
    const [h1, h2] = topo.hosts
    const c = cluster(t, topo, '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}')
    const a = await c.start(h1, '--healthz-ip', '127.0.0.1', '--healthz-port', '8081')
    const b = await c.start(h2)
    const [pa] = await addPods(topo, h1, { subnet: formatCidr(a.env().subnet), count: 1, mtu: a.env().mtu })
    const [pb] = await addPods(topo, h2, { subnet: formatCidr(b.env().subnet), count: 1, mtu: b.env().mtu })
    await waitFor(async () => (await a.status()).peers.length === 1, { what: 'peer', timeoutMs: 5000 })

    // capture while the pods ping: the request and the reply, outer and inner
    const cap = topo.spawn(h1, [process.execPath, BIN, 'capture', '--iface', 'eth0', '--count', '2', '--pod', pa.ip, '--seconds', '20'])
    await cap.waitForLine(/listening on/, 10_000, 'stderr')
    assert.equal((await ping(topo, pa, pb.ip, { count: 1 })).received, 1)
    await cap.exited
    const esc = (s: string): string => s.replace(/\./g, '\\.')
    assert.match(cap.stdout, new RegExp(`${esc(h1.underlayIp)} > ${esc(h2.underlayIp)} VXLAN vni 1 \\| ${esc(pa.ip)} > ${esc(pb.ip)} ICMP echo request`))
    assert.match(cap.stdout, new RegExp(`${esc(h2.underlayIp)} > ${esc(h1.underlayIp)} VXLAN vni 1 \\| ${esc(pb.ip)} > ${esc(pa.ip)} ICMP echo reply`))

    // metrics while TCP flows
    const server = topo.spawn(pb.ns, ['iperf3', '-s', '-1'])
    await waitFor(async () => (await topo.exec(pb.ns, ['ss', '-Hltn', 'sport = :5201'])).stdout.trim() !== '', { what: 'iperf3 listening', timeoutMs: 5000 })
    const client = topo.spawn(pa.ns, ['iperf3', '-c', pb.ip, '-t', '3'])
    const inside = async (): Promise<number> => await metric(topo, h1, 'weft_bytes_total{direction="inside"}')
    const first = await waitFor(inside, { what: 'inside bytes in /metrics', timeoutMs: 5000, intervalMs: 100 })
    const second = await waitFor(async () => { const v = await inside(); return v > first ? v : undefined }, { what: 'inside bytes to grow while TCP flows', timeoutMs: 5000, intervalMs: 100 })
    assert.ok(second > first && first > 0, `inside bytes moved during the run: ${first} -> ${second}`)
    await client.exited
    // between weft nodes the segments went with their inner checksums left to the peer
    assert.ok(await metric(topo, h1, 'weft_offload_packets_total{stage="checksums_left_to_peer"}') > 0, 'RCO shows in /metrics on the sender')
    assert.ok((await b.status()).counters.counters.outside_partial_checksums > 0, 'and the receiver took them so')
    await server.stop()
  })
})
