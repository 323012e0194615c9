// `weft run --busy-poll` across real kernels: two VXLAN nodes with two
// dataplane workers each, pinged and then loaded. Pings are light batches:
// the loops poll between them and the replies find them awake. Sixteen light
// UDP flows spread over both workers: each worker's loop polls (the main
// thread's and the worker thread's). A TCP stream is heavy: polling stops
// while it runs. Nothing is lost either way, and `weft status` and /metrics
// say what polling did.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { waitFor, withTopology } from '../../lab/netns'
import { iperf, ping } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import path from 'node:path'
import { BIN } from '../../lab/daemons'
import { assertCleanedUp, pair } from './mesh'

const GET = path.join(__dirname, '..', 'fixtures', 'http-get.js')
const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3')
// this tests weft's own loops: its daemons carry every packet themselves,
// without the peer offload (which would take the pings past them)
process.env.WEFT_OFFLOAD = 'off'

type Counters = Record<string, number>
type Workers = Array<{ inside_packets: number, outside_packets: number, busy_poll_caught: number }>
const workersOf = async (d: { status: () => Promise<{ counters: unknown }> }): Promise<Workers> => ((await d.status()).counters as { workers: Workers }).workers
const countersOf = async (d: { status: () => Promise<{ counters: { counters: Counters, drops: Counters } }> }): Promise<{ counters: Counters, drops: Counters }> => (await d.status()).counters

test('with --busy-poll 20000 (and two workers), pings find both nodes\' loops awake, a TCP stream stops the polling, nothing is dropped, weft status and /metrics tell, and SIGTERM while polling exits cleanly', { skip, timeout: 120_000 }, async (t) => {
  // the daemons read their flags from the environment they inherit, as flanneld's do
  process.env.FLANNELD_BUSY_POLL = '20000'
  process.env.FLANNELD_WORKERS = '2'
  process.env.FLANNELD_HEALTHZ_IP = '127.0.0.1'
  process.env.FLANNELD_HEALTHZ_PORT = '8081'
  t.after(() => { for (const k of ['FLANNELD_BUSY_POLL', 'FLANNELD_WORKERS', 'FLANNELD_HEALTHZ_IP', 'FLANNELD_HEALTHZ_PORT']) delete process.env[k] })
  await withTopology(t, { hosts: 2, label: 'busy-poll', timeoutMs: 100_000 }, async (topo) => {
    const { a, b, pa, pb } = await pair(t, topo, CONFIG)
    const p = await ping(topo, pa, pb.ip, { count: 50, intervalS: 0.01, waitS: 1 })
    assert.equal(p.received, 50, 'every ping answered')
    const [ca, cb] = await Promise.all([countersOf(a), countersOf(b)])
    for (const [name, c] of [['sender', ca], ['receiver', cb]] as const) {
      // each echo and each reply is a light batch on each node; most come
      // while the loop still polls after the one before (10 ms < 20 ms)
      assert.ok(c.counters.busy_poll_caught > 25, `${name}: ${c.counters.busy_poll_caught} of about 100 batches caught awake`)
      assert.ok(c.counters.busy_poll_ns > 0, `${name}: polled`)
    }
    t.diagnostic(`caught awake: ${ca.counters.busy_poll_caught} and ${cb.counters.busy_poll_caught} batches`)

    // sixteen light UDP flows (100-byte datagrams, 100 a second each) spread
    // over both workers on both nodes: every worker that carried them polled
    const before = await Promise.all([workersOf(a), workersOf(b)])
    const light = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2, parallel: 16, udp: { bitrate: '80K', length: 100 } })
    assert.ok((light.udp?.packets ?? 0) > 0, 'the light flows went through')
    const after = await Promise.all([workersOf(a), workersOf(b)])
    for (const [n, w] of after.entries()) {
      for (const k of [0, 1]) {
        const carried = w[k].inside_packets + w[k].outside_packets - before[n][k].inside_packets - before[n][k].outside_packets
        const caught = w[k].busy_poll_caught - before[n][k].busy_poll_caught
        assert.ok(carried > 0, `node ${n} worker ${k} carried some of the sixteen flows`)
        assert.ok(caught > 0, `node ${n} worker ${k} polled: ${caught} of its batches caught awake`)
      }
    }

    const r = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2 })
    assert.ok(r.gbps > 0)
    const [da, db] = await Promise.all([countersOf(a), countersOf(b)])
    assert.ok(da.counters.busy_poll_suspended > 0 && db.counters.busy_poll_suspended > 0, `heavy batches stopped polling on both nodes (${da.counters.busy_poll_suspended}, ${db.counters.busy_poll_suspended} times)`)
    assert.deepEqual(da.drops, {}, 'no drops on the sender')
    assert.deepEqual(db.drops, {}, 'no drops on the receiver')
    t.diagnostic(`TCP with --busy-poll: ${r.gbps.toFixed(2)} Gbit/s`)

    const text = execFileSync(BIN, ['status', '--state-dir', b.stateDir], { encoding: 'utf8' })
    const metrics = JSON.parse((await topo.exec(topo.hosts[1], [process.execPath, GET, 'http://127.0.0.1:8081/metrics'])).stdout) as { body: string }
    assert.match(metrics.body, /^weft_busy_poll_total\{event="caught"\} [1-9]\d*$/m)
    assert.match(metrics.body, /^weft_busy_poll_total\{event="suspended"\} [1-9]\d*$/m)
    assert.match(metrics.body, /^weft_busy_poll_seconds_total [0-9.e-]+$/m)
    assert.match(text, /^busy poll \d+\.\d{3} s spent polling, \d+ batches found the loop awake, held off \d+ times by heavy traffic$/m)

    // SIGTERM while both loops poll (pings still coming): a clean exit that
    // takes its device, routes and rules with it, workers and pollers closed
    const caughtBefore = (await countersOf(a)).counters.busy_poll_caught
    const pinging = ping(topo, pa, pb.ip, { count: 100, intervalS: 0.01, waitS: 1 })
    await waitFor(async () => (await countersOf(a)).counters.busy_poll_caught >= caughtBefore + 5, { what: 'A\'s loops to catch the pings awake', timeoutMs: 5000, intervalMs: 20 })
    const exit = await a.child.stop(5000)
    assert.equal(exit.code, 0, `clean exit while polling: ${a.child.stderr.slice(-500)}`)
    assert.doesNotMatch(a.child.stderr, /open handles|Assertion|Aborted/)
    await assertCleanedUp(topo, a.host, 'weft.1')
    await pinging
  })
})
