// The kernel offloads under a real TCP stream between two weft nodes, and the
// same stream without them (WEFT_OFFLOADS=off, the fallback a kernel without
// TSO/GSO/GRO gets): both must carry it; only the first may batch it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { withTopology } from '../../lab/netns'
import { iperf, ping } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { pair } from './mesh'

// this tests the TUN and socket offloads of weft's own pipeline:
// its daemons carry every packet themselves, without the peer offload
// (src/backend/tun/peer-offload.ts)
process.env.WEFT_OFFLOAD = 'off'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3')

type Status = Record<string, unknown> & { counters: { drops: Record<string, number>, counters: Record<string, number>, sock: Record<string, number>, tun: Record<string, number> } }

async function stream (t: Parameters<typeof pair>[0], label: string): Promise<{ gbps: number, a: Status, b: Status }> {
  return await withTopology(t, { hosts: 2, label, timeoutMs: 100_000 }, async (topo) => {
    const { a, b, pa, pb } = await pair(t, topo, CONFIG)
    assert.equal((await ping(topo, pa, pb.ip, { count: 3, intervalS: 0.2 })).received, 3)
    const { gbps } = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2 })
    return { gbps, a: await a.status() as unknown as Status, b: await b.status() as unknown as Status }
  })
}

test('with the kernel offloads, a TCP stream leaves the TUN as super-packets, goes out in UDP_SEGMENT sends, comes in as UDP_GRO reads and enters the other TUN coalesced, losing nothing', { skip, timeout: 120_000 }, async (t) => {
  const { gbps, a, b } = await stream(t, 'offloads-on')
  t.diagnostic(`${gbps.toFixed(2)} Gbit/s with offloads`)
  assert.deepEqual(a.offloads, { vnet: true, tso: true, uso: true, gro: true, gso: true })
  const sent = a.counters
  const got = b.counters
  assert.ok(sent.counters.inside_super_packets > 0, 'super-packets read from the sender\'s TUN')
  assert.ok(sent.sock.txSegmented > sent.counters.inside_super_packets, 'each cut into several segments')
  assert.ok(sent.sock.txGsoSegments > sent.sock.txSyscalls, 'more than one datagram per send syscall')
  assert.ok(got.sock.rxGroSegments > got.sock.rxSyscalls, 'more than one datagram per receive syscall')
  assert.ok(got.counters.outside_super_packets > 0 && got.counters.outside_coalesced > 2 * got.counters.outside_super_packets, 'segments coalesced back into super-packets')
  assert.deepEqual(sent.drops, {})
  assert.deepEqual(got.drops, {})
  assert.equal(b.tunQueueDrops, 0)
})

test('without offloads (WEFT_OFFLOADS=off) the same stream goes one packet per read and per datagram, and still arrives', { skip, timeout: 120_000 }, async (t) => {
  // the daemons inherit this process' environment
  process.env.WEFT_OFFLOADS = 'off'
  t.after(() => { delete process.env.WEFT_OFFLOADS })
  const { gbps, a, b } = await stream(t, 'offloads-off')
  t.diagnostic(`${gbps.toFixed(2)} Gbit/s without offloads`)
  assert.ok(gbps > 0)
  assert.deepEqual(a.offloads, { vnet: false, tso: false, uso: false, gro: false, gso: false })
  assert.equal(a.counters.counters.inside_super_packets, 0)
  assert.equal(a.counters.sock.txSegmented, 0)
  assert.equal(a.counters.sock.txCoalesced, 0)
  assert.equal(a.counters.sock.txGsoSegments, 0)
  assert.equal(b.counters.sock.rxGroSegments, 0)
  assert.equal(b.counters.counters.outside_super_packets, 0)
  assert.deepEqual(a.counters.drops, {})
  assert.deepEqual(b.counters.drops, {})
})
