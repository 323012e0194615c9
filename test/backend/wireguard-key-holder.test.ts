// Two leases with one WireGuard key: the first keeps it and the second is
// skipped (a copy of a node's key file?). When the first goes, the second is
// taken up at once, not at its next renewal a day later.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatCidr, parseCidr } from '../../src/packet/net'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { waitFor, withTopology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { cluster } from '../../lab/daemons'
import { logs, rawLeases } from './mesh'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}'
const skip = netnsSkipReason() ?? toolSkipReason('wg')
const SECOND = '10.244.230.0-24'

test('wireguard: a lease skipped because a peer held its PublicKey is taken up as soon as that peer\'s lease goes', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'wg-keyholder', timeoutMs: 80_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const c = cluster(t, topo, CONFIG)
    const a = await c.start(h1)
    const b = await c.start(h2)
    const bSubnet = formatCidr(b.env().subnet)
    await waitFor(async () => (await a.status()).peers.length === 1, { what: 'h1 knows h2', timeoutMs: 5000 })
    const bValue = JSON.parse(rawLeases(c)[bSubnet.replace('/', '-')]) as { BackendData: { PublicKey: string } }

    // a second lease, elsewhere, with h2's key
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    try {
      store.putRaw(SECOND, JSON.stringify({ PublicIP: '198.18.0.230', PublicIPv6: null, BackendType: 'wireguard', BackendData: { PublicKey: bValue.BackendData.PublicKey, Port: 51820 } }), 86400)
    } finally { await store.close() }
    await waitFor(() => logs(a).some((l) => l.msg === 'ignoring a peer this backend cannot reach' && l.subnet === SECOND.replace('-', '/')), { what: 'h1 skips the second lease, naming it', timeoutMs: 5000 })
    assert.deepEqual((await a.status()).peers.map((p) => p.subnet), [bSubnet], 'h2 keeps its key; the second lease is not a peer')

    // h2 is decommissioned: its daemon stops and its lease is deleted
    assert.equal((await b.child.stop(5000)).code, 0)
    const again = new SqliteStore({ path: `${c.dir}/store.db` })
    try {
      await again.deleteLease(parseCidr(bSubnet))
    } finally { await again.close() }
    const t0 = Date.now()
    await waitFor(async () => {
      const peers = (await a.status()).peers.map((p) => p.subnet)
      return peers.length === 1 && peers[0] === SECOND.replace('-', '/')
    }, { what: 'h1 drops h2 and takes up the second lease in its place', timeoutMs: 5000 })
    t.diagnostic(`the second lease became a peer ${Date.now() - t0} ms after h2's lease was deleted`)
    assert.ok(logs(a).some((l) => l.msg === 'peer added to the WireGuard peer table' || /peer added/.test(String(l.msg))), 'its addition is logged')
  })
})
