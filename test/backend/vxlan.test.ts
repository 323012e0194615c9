// weft's userspace VXLAN across real kernels: nodes and pods in namespaces,
// pods attached to a bridge on each node's subnet as the CNI bridge plugin
// would, the kernel's own flannel.1 as the interop reference.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { formatCidr } from '../../src/packet/net'
import { ip4ToString } from '../../src/packet/ip'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { withTopology, waitFor } from '../../lab/netns'
import { iperf, ping } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { kernelPeer, logs, mesh, pair, vtepMacOf } from './mesh'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const JUNK = path.join(__dirname, '..', 'fixtures', 'vxlan-junk.js')
const skip = netnsSkipReason() ?? toolSkipReason('iperf3', 'tcpdump')

test('three weft nodes with two pods each: every pod pings every pod, TCP between every pair; a fourth node is reachable within a second of its lease; SIGTERM leaves only the lease; a removed lease leaves every table', { skip, timeout: 240_000 }, async (t) => {
  await withTopology(t, { hosts: 4, label: 'vxlan-mesh', timeoutMs: 220_000 }, async (topo) => {
    const { c, nodes } = await mesh(t, topo, { config: CONFIG, addedMsg: 'peer added to the FDB', device: 'weft.1' })
    // mesh() stopped node 3 with SIGTERM and its lease stayed; now the lease
    // goes too (a decommissioned node): every other node drops it
    const gone = nodes[2].env().subnet
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    await store.deleteLease(gone)
    await store.close()
    for (const d of [nodes[0], nodes[1], nodes[3]]) {
      await waitFor(async () => !(await d.status()).peers.some((p) => p.subnet === formatCidr(gone)), { what: `${d.host.name} drops ${formatCidr(gone)}`, timeoutMs: 2000 })
    }
  })
})

test('interop: a weft node and a kernel flannel.1 node (no weft) reach each other both ways, and the underlay carries valid VXLAN', { skip, timeout: 120_000 }, async (t) => {
  // weft's own pipeline against flannel.1 (checksums, super-packets, RCO): without the peer
  // offload, whose interop with flannel.1 is vxlan-offload.test.ts's
  process.env.WEFT_OFFLOAD = 'off'
  t.after(() => { delete process.env.WEFT_OFFLOAD })
  await withTopology(t, { hosts: 2, label: 'vxlan-interop', timeoutMs: 100_000 }, async (topo) => {
    const { c, w, wp, kp } = await kernelPeer(t, topo, CONFIG)

    const cap = topo.spawn(topo.underlayNs, ['tcpdump', '-i', 'br0', '-n', '-U', '-c', '6', '-w', `${c.dir}/underlay.pcap`, 'udp port 8472'])
    await cap.waitForLine(/listening on/, 5000, 'stderr')
    assert.equal((await ping(topo, wp, kp.ip, { count: 3 })).received, 3, 'weft pod -> kernel pod')
    assert.equal((await ping(topo, kp, wp.ip, { count: 3 })).received, 3, 'kernel pod -> weft pod')
    await cap.exited
    const decoded = await topo.exec(topo.underlayNs, ['tcpdump', '-r', `${c.dir}/underlay.pcap`, '-n', '-T', 'vxlan', '-v'])
    assert.match(decoded.stdout, /VXLAN, flags \[I\] \(0x08\), vni 1/)
    assert.match(decoded.stdout, new RegExp(`${wp.ip.replace(/\./g, '\\.')} > ${kp.ip.replace(/\./g, '\\.')}: ICMP echo request`))
    assert.match(decoded.stdout, new RegExp(`${kp.ip.replace(/\./g, '\\.')} > ${wp.ip.replace(/\./g, '\\.')}: ICMP echo reply`))
    assert.doesNotMatch(decoded.stdout, /bad (udp )?cksum/i)

    const there = await iperf(topo, kp, wp, { serverIp: kp.ip, seconds: 1 })
    const back = await iperf(topo, wp, kp, { serverIp: wp.ip, seconds: 1 })
    assert.ok(there.gbps > 0 && back.gbps > 0, `TCP both ways (${there.gbps.toFixed(2)} / ${back.gbps.toFixed(2)} Gbit/s)`)
    // flannel.1 over a veth leaves inner TCP checksums partial; weft finished them
    const s = await w.status()
    assert.ok(s.counters.counters.checksums_finished > 0)
    // flannel.1's TSO super-packets cross the veth whole and arrive as one
    // datagram each: written into the TUN as super-packets, not dropped as too big
    t.diagnostic(`TCP weft -> kernel ${there.gbps.toFixed(2)}, kernel -> weft ${back.gbps.toFixed(2)} Gbit/s; ${s.counters.counters.outside_unsegmented} super-packets flannel.1 sent unsegmented`)
    assert.equal(s.counters.drops.too_big ?? 0, 0, `kernel -> weft: ${JSON.stringify(s.counters.drops)}, ${s.counters.counters.outside_unsegmented} unsegmented super-packets taken`)
    // its lease asks for no remote checksum offload, so weft left none of its checksums to it
    assert.ok(s.counters.counters.inside_super_packets > 0, 'weft sent super-packets it could have sent with RCO')
    assert.equal(s.counters.counters.inside_partial_checksums, 0, 'no super-packet sent with RCO')
    assert.equal((s.counters as unknown as { sock: Record<string, number> }).sock.txCsumPartial, 0, 'no segment sent with a partial checksum')
  })
})

test('bad input from the network is dropped and counted by reason while a ping keeps flowing', { skip, timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'vxlan-junk', timeoutMs: 100_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const { c, a, pa, pb, stranger } = await pair(t, topo, CONFIG)
    const aMac = vtepMacOf(c, a)
    const innerDst = pa.ip

    const pinging = ping(topo, pb, pa.ip, { count: 15, intervalS: 0.2 })
    const junk = async (from: typeof h1, kind: string, count: number): Promise<void> => {
      await topo.exec(from, [process.execPath, JUNK, '--to', `${h1.underlayIp}:8472`, '--kind', kind, '--count', String(count), '--dst-mac', aMac, '--inner-dst', innerDst], { timeoutMs: 20_000 })
    }
    // From an address with no lease: everything must be refused whatever it looks like.
    await junk(stranger, 'good-looking', 20_000)
    // From a node that holds a lease (h2): each kind of malformed frame.
    for (const kind of ['truncated', 'wrong-vni', 'bad-flags', 'other-mac', 'not-ipv4', 'oversize']) await junk(h2, kind, 2000)
    const p = await pinging
    assert.ok(p.received >= p.sent - 1, `ping kept flowing: ${p.received}/${p.sent}`)

    const s = await a.status()
    const drops = s.counters.drops
    const sock = (s.counters as unknown as { sock: Record<string, number> }).sock
    assert.ok(drops.unknown_source > 10_000, `unknown_source ${drops.unknown_source}`)
    assert.ok(drops.truncated > 0, 'truncated')
    assert.ok(drops.wrong_vni > 0, 'wrong_vni')
    assert.ok(drops.bad_vxlan_flags > 0, 'bad_vxlan_flags')
    assert.ok(drops.not_our_mac > 0, 'not_our_mac')
    assert.ok(drops.not_ipv4 > 0, 'not_ipv4')
    assert.ok((drops.too_big ?? 0) + sock.rxDropTruncated > 0, 'oversize')
    await waitFor(() => logs(a).some((l) => l.msg === 'dropping VXLAN from an address that holds no lease' && l.source === stranger.underlayIp), { what: 'the stranger named in the log', timeoutMs: 8000 })
    assert.equal(logs(a).filter((l) => l.msg === 'dropping VXLAN from an address that holds no lease').length, 1, 'logged once')
    assert.equal(a.child.running, true)
    assert.equal(ip4ToString(a.env().subnet.ip).startsWith('10.244.'), true)
  })
})
