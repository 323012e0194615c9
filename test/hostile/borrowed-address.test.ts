// A lease that borrows a real peer's PublicIP (a store writer's, or a node
// misconfigured with another's address), written and deleted, while the
// real peer's pod pings ours and sends TCP: the real peer is never cut off
// (no unknown_source drop, no lost ping), its remote-checksum-offloaded TCP
// segments are never judged by the borrower's lease, and the conflict is
// named once. Two real `weft run` daemons in namespaces (issue 17, item 3).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseCidr } from '../../src/packet/net'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { waitFor, withTopology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { iperf, ping } from '../../lab/traffic'
import { logs, pair } from '../backend/mesh'

// RemCsum on (weft's default): both real nodes ask for RCO; the borrower's lease does not
const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const BOGUS = '10.244.200.0/24'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3')

test('a lease borrowing a real peer\'s PublicIP, written and deleted, leaves the real peer reachable without a pause; the conflict is named once', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'borrowed', timeoutMs: 80_000 }, async (topo) => {
    const { c, a, b, pa, pb } = await pair(t, topo, CONFIG)
    const drops = async (): Promise<Record<string, number>> => (await a.status()).counters.drops
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    t.after(() => store.close())

    const bogus = `{"PublicIP":"${b.host.underlayIp}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:ba:dd:00:00:c8"}}`
    store.putRaw(BOGUS.replace('/', '-'), bogus, 86400)
    await waitFor(async () => ((await a.status()).conflicts as unknown[] | undefined)?.length === 1, { what: 'A to see two leases claiming B\'s address', timeoutMs: 5000 })
    // TCP from B's pod while the borrower's lease lives: B sends RCO, which the borrower's lease does not ask for
    const during = await iperf(topo, pa, pb, { serverIp: pa.ip, seconds: 2 })
    assert.ok(during.gbps > 0, 'TCP flows while the borrowed lease lives')

    // B's pod pings A's for 4 s; the borrowed lease goes in the middle of it
    const pinging = ping(topo, pb, pa.ip, { count: 400, intervalS: 0.01 })
    await waitFor(async () => ((await a.status()).counters.counters.outside_packets ?? 0) > 0, { what: 'pings arriving' })
    await store.deleteLease(parseCidr(BOGUS))
    await waitFor(async () => ((await a.status()).conflicts as unknown[] | undefined)?.length === 0, { what: 'A to forget the borrowed lease', timeoutMs: 5000 })
    const p = await pinging
    const after = await iperf(topo, pa, pb, { serverIp: pa.ip, seconds: 1 })

    const d = await drops()
    t.diagnostic(`TCP while borrowed: ${during.gbps.toFixed(2)} Gbit/s, after: ${after.gbps.toFixed(2)}; pings ${p.received}/${p.sent}; A's drops ${JSON.stringify(d)}`)
    assert.equal(p.received, p.sent, `every ping answered: ${p.output.slice(-300)}`)
    assert.equal(d.unknown_source ?? 0, 0, 'B was never an unknown sender')
    assert.equal(d.bad_vxlan_rco ?? 0, 0, 'B\'s RCO segments were judged by its own lease')
    assert.ok(after.gbps > 0)
    assert.equal(logs(a).filter((l) => l.msg.startsWith('more than one lease claims this public IP')).length, 1, 'the conflict is named once')
    assert.equal((await a.status()).peers.length, 1, 'B alone is A\'s peer again')
  })
})
