// `weft run --busy-poll` with the wireguard backend: its one dataplane loop
// polls after light batches as the TUN pipeline's do. Pings through the
// tunnel find both nodes' loops awake, a TCP stream holds polling off, and
// nothing is dropped.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { withTopology } from '../../lab/netns'
import { iperf, ping } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { pair } from './mesh'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3')

type Counters = Record<string, number>
const countersOf = async (d: { status: () => Promise<{ counters: unknown }> }): Promise<{ counters: Counters, drops: Counters }> => (await d.status()).counters as { counters: Counters, drops: Counters }

test('wireguard with --busy-poll 20000: pings find both nodes\' loops awake, a TCP stream holds polling off, nothing is dropped', { skip, timeout: 90_000 }, async (t) => {
  process.env.FLANNELD_BUSY_POLL = '20000'
  t.after(() => { delete process.env.FLANNELD_BUSY_POLL })
  await withTopology(t, { hosts: 2, label: 'wg-busy-poll', timeoutMs: 80_000 }, async (topo) => {
    const { a, b, pa, pb } = await pair(t, topo, CONFIG)
    // the first ping brings the session up; the rest are timed light batches
    const first = await ping(topo, pa, pb.ip, { count: 5, intervalS: 0.2, waitS: 5 })
    assert.ok(first.received > 0, `the session came up: ${first.output}`)
    const [a0, b0] = await Promise.all([countersOf(a), countersOf(b)])
    const p = await ping(topo, pa, pb.ip, { count: 50, intervalS: 0.01, waitS: 1 })
    assert.equal(p.received, 50, 'every ping answered')
    const [a1, b1] = await Promise.all([countersOf(a), countersOf(b)])
    for (const [name, c0, c1] of [['sender', a0, a1], ['receiver', b0, b1]] as const) {
      const caught = c1.counters.busy_poll_caught - (c0.counters.busy_poll_caught ?? 0)
      assert.ok(caught > 25, `${name}: ${caught} of about 100 light batches caught awake`)
      assert.ok(c1.counters.busy_poll_ns > 0, `${name}: polled`)
    }
    const r = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2 })
    assert.ok(r.gbps > 0)
    const [a2, b2] = await Promise.all([countersOf(a), countersOf(b)])
    assert.ok(a2.counters.busy_poll_suspended > 0 && b2.counters.busy_poll_suspended > 0, `heavy batches held polling off on both nodes (${a2.counters.busy_poll_suspended}, ${b2.counters.busy_poll_suspended} times)`)
    assert.deepEqual(a2.drops, {}, 'no drops on the sender')
    assert.deepEqual(b2.drops, {}, 'no drops on the receiver')
    t.diagnostic(`caught awake: ${a1.counters.busy_poll_caught} and ${b1.counters.busy_poll_caught}; TCP ${r.gbps.toFixed(2)} Gbit/s`)
    const exit = await a.child.stop(5000)
    assert.equal(exit.code, 0, `clean exit while polling: ${a.child.stderr.slice(-500)}`)
  })
})
