// The addon across real kernels: two namespaces, a TUN in each, and the
// minimal batched relay (lab/fixtures/relay.ts) carrying traffic over the
// 198.18.0.0/24 underlay. Skipped, with the reason, where namespaces or
// /dev/net/tun are not available.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { withTopology } from '../../lab/netns'
import type { ChildHandle, Host, Topology } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'

const RELAY = path.join(__dirname, '..', '..', 'lab', 'fixtures', 'relay.js')
const STREAM = path.join(__dirname, '..', 'fixtures', 'udp-stream.js')
const MTU = 1400

/** Host i gets 10.244.i.1 on its TUN; the whole /16 routes into the TUN. */
function startRelay (topo: Topology, self: Host, peer: Host, batch: number): ChildHandle {
  return topo.spawn(self, [process.execPath, RELAY,
    '--tun', 'wt0', '--addr', `10.244.${self.index}.1/16`, '--mtu', String(MTU), '--batch', String(batch),
    '--listen', `${self.underlayIp}:8472`, '--peer', `${peer.underlayIp}:8472`])
}

interface RelayStats { tun: Record<string, number>, udp: Record<string, number>, outsideDropped: number }

async function stopRelay (relay: ChildHandle): Promise<RelayStats> {
  await relay.stop(2000)
  const line = relay.stdoutLines.find((l) => l.startsWith('{"stats"'))
  assert.ok(line, `relay printed no stats; stderr: ${relay.stderr}`)
  return (JSON.parse(line) as { stats: RelayStats }).stats
}

test('ICMP echo crosses two TUNs and the batched UDP relay, both ways', { skip: netnsSkipReason() }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'smoke-ping', timeoutMs: 60_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const r1 = startRelay(topo, h1, h2, 64)
    const r2 = startRelay(topo, h2, h1, 64)
    await r1.waitForLine(/"ready"/, 10_000)
    await r2.waitForLine(/"ready"/, 10_000)

    const there = await topo.exec(h1, ['ping', '-c', '3', '-i', '0.2', '-W', '2', '10.244.2.1'])
    assert.match(there.stdout, /3 received/)
    const back = await topo.exec(h2, ['ping', '-c', '3', '-i', '0.2', '-W', '2', '10.244.1.1'])
    assert.match(back.stdout, /3 received/)

    const s1 = await stopRelay(r1)
    const s2 = await stopRelay(r2)
    // 6 requests + 6 replies, each crossing one relay's inside and the other's outside
    assert.equal(s1.tun.rxPackets, 6)
    assert.equal(s1.udp.txPackets, 6)
    assert.equal(s2.udp.rxPackets, 6)
    assert.equal(s2.tun.txPackets, 6)
    for (const s of [s1, s2]) {
      assert.equal(s.tun.rxDropTruncated + s.tun.rxDropError + s.udp.txDropError + s.udp.rxDropTruncated, 0)
      assert.equal(s.outsideDropped, 0)
    }
  })
})

test('random batches of 1..64 datagrams of random sizes cross the relay byte-exact and in order', { skip: netnsSkipReason() }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'smoke-stream', timeoutMs: 90_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const r1 = startRelay(topo, h1, h2, 64)
    const r2 = startRelay(topo, h2, h1, 64)
    await r1.waitForLine(/"ready"/, 10_000)
    await r2.waitForLine(/"ready"/, 10_000)

    const seed = 1 + Math.floor(Math.random() * 1e6)
    const recv = topo.spawn(h2, [process.execPath, STREAM, 'recv', '--listen', '10.244.2.1:7000', '--seed', String(seed), '--idle-ms', '1500', '--timeout-ms', '60000'])
    await recv.waitForLine(/"listening"/, 10_000)
    const sent = await topo.exec(h1, [process.execPath, STREAM, 'send', '--to', '10.244.2.1:7000', '--seed', String(seed),
      '--batches', '150', '--max-batch', '64', '--max-size', String(MTU - 28)], { timeoutMs: 60_000 })
    const total = (JSON.parse(sent.stdout.trim().split('\n').pop() ?? '{}') as { sent: number }).sent
    const line = await recv.waitForLine(/"result"/, 65_000)
    const result = (JSON.parse(line) as { result: { received: number, corrupt: number, reordered: number, gaps: number, lastSeq: number } }).result

    assert.equal(result.corrupt, 0, `seed ${seed}`)
    assert.equal(result.reordered, 0, `seed ${seed}`)
    assert.equal(result.gaps, 0, `seed ${seed}: none lost`)
    assert.equal(result.received, total, `seed ${seed}: every datagram arrived`)
    assert.equal(result.lastSeq, total - 1)

    const s1 = await stopRelay(r1)
    assert.ok(s1.tun.rxBatches < s1.tun.rxPackets, `the TUN was read in batches (${s1.tun.rxPackets} packets in ${s1.tun.rxBatches} batches)`)
    assert.ok(s1.udp.txSyscalls < s1.udp.txPackets, 'sendmmsg carried several datagrams per call')
    await stopRelay(r2)
  })
})
