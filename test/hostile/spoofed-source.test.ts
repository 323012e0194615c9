// A lease holder (node B, from its own underlay address) sends VXLAN frames
// that are perfect but for their inner source: an address in A's own
// subnet, or in a subnet nobody holds. None reaches A's pod; each is counted
// as spoofed_source and B is named once. The same frames with B's own pod
// as the source arrive. Two real `weft run` daemons in namespaces, tcpdump
// in A's pod (issue 17, item 4).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { waitFor, withTopology } from '../../lab/netns'
import type { Host, Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { logs, pair, vtepMacOf } from '../backend/mesh'
import { captured, markedFilter } from './marked'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const FLOOD = path.join(__dirname, '..', 'fixtures', 'vxlan-flood.js')
const skip = netnsSkipReason() ?? toolSkipReason('tcpdump')
const COUNT = 200

/** COUNT frames from `from` to A's VTEP, inner source `src`; resolves with how many were sent. */
async function send (topo: Topology, from: Host, to: string, mac: string, src: string, dst: string, marker: string): Promise<number> {
  const f = topo.spawn(from, [process.execPath, FLOOD, '--to', `${to}:8472`, '--dst-mac', mac, '--inner-src', src, '--inner-dst', dst, '--seconds', '5', '--max-count', String(COUNT), '--marker', marker])
  const done = await f.waitForLine(/"sent":/, 10_000, 'stdout')
  return (JSON.parse(done) as { flood: { sent: number } }).flood.sent
}

test('a lease holder\'s frames with an inner source in our subnet, or in one nobody holds, never reach a pod and are counted as spoofed_source; its own pods\' arrive', { skip, timeout: 60_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'spoofed', timeoutMs: 55_000 }, async (topo) => {
    const { c, a, b, pa, pb } = await pair(t, topo, CONFIG)
    const aMac = vtepMacOf(c, a)
    // immediate mode: each packet counted as it comes, none left in a capture block at the end
    const spoofedCap = topo.spawn(pa.ns, ['tcpdump', '-i', 'eth0', '-n', '-p', '--immediate-mode', '-w', '/dev/null', markedFilter('SPOF')])
    const goodCap = topo.spawn(pa.ns, ['tcpdump', '-i', 'eth0', '-n', '-p', '--immediate-mode', '-l', markedFilter('GOOD')])
    for (const cap of [spoofedCap, goodCap]) await cap.waitForLine(/listening on/, 5000, 'stderr')
    const ownSubnetSrc = pa.ip.replace(/\.\d+$/, '.250')
    const before = (await a.status()).counters.drops.spoofed_source ?? 0

    const sent = await send(topo, b.host, a.host.underlayIp, aMac, ownSubnetSrc, pa.ip, 'SPOF-own') +
      await send(topo, b.host, a.host.underlayIp, aMac, '10.244.99.9', pa.ip, 'SPOF-nobody')
    const good = await send(topo, b.host, a.host.underlayIp, aMac, pb.ip, pa.ip, 'GOOD')
    // the good frames came after the spoofed ones, on the same path: once one is in the pod, any spoofed one would be too
    await goodCap.waitForLine(/UDP/, 5000, 'stdout')
    const after = (await a.status()).counters.drops.spoofed_source ?? 0
    const [spoofedInPod, goodInPod] = [await captured(spoofedCap), await captured(goodCap)]

    t.diagnostic(`sent ${sent} spoofed and ${good} good frames from B; A counted ${after - before} spoofed_source; in A's pod: ${spoofedInPod} spoofed, ${goodInPod} good`)
    assert.equal(spoofedInPod, 0, 'no spoofed packet reached the pod')
    assert.ok(after - before > 0 && after - before <= sent, `spoofed_source moved by ${after - before} for ${sent} sent`)
    assert.ok(goodInPod > 0, 'B\'s own pods\' packets arrive')
    assert.equal(a.child.running, true)
    // the control plane names senders from its rings every few seconds
    const named = await waitFor(() => { const n = logs(a).filter((l) => /inner source is not the sender's/.test(l.msg)); return n.length > 0 ? n : undefined }, { what: 'A to name B', timeoutMs: 8000 })
    assert.equal(named.length, 1, 'B named once')
    assert.equal(named[0].source, b.host.underlayIp)
  })
})
