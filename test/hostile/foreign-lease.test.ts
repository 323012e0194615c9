// Hostile store entries: a lease whose key is well-formed but names a subnet
// this network cannot hold (outside the Network, or not a SubnetLen-sized
// subnet of it). Left behind by a cluster that changed its Network, or
// written by anyone with access to the store, it must cost that entry only:
// both nodes keep running and keep their peer tables.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { waitFor, withTopology } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'
import { logs, pair } from '../backend/mesh'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const VALUE = '{"PublicIP":"198.18.0.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:03"}}'

test('a lease in the store for a subnet outside the network, or of the wrong size, is ignored: both nodes keep running with their peers', {
  skip: netnsSkipReason(),
  timeout: 60_000
}, async (t) => {
  await withTopology(t, { hosts: 3, label: 'foreign-lease', timeoutMs: 50_000 }, async (topo) => {
    const { c, a, b } = await pair(t, topo, CONFIG)
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    store.putRaw('10.99.1.0-24', VALUE, 86400) // outside 10.244.0.0/16
    store.putRaw('10.244.0.0-16', VALUE, 86400) // the whole network as one "subnet"
    await store.close()
    // both entries reached both nodes: each has named them (and answers status after, below)
    for (const d of [a, b]) {
      await waitFor(() => logs(d).filter((l) => l.msg === 'ignoring a lease that is not a subnet of this network').length >= 2, { what: `${d.host.name} to name both entries`, timeoutMs: 5000 })
    }
    for (const d of [a, b]) {
      assert.equal(d.child.running, true, `${d.host.name} stopped: ${d.child.stderr.slice(-400)}`)
      assert.equal((await d.status()).peers.length, 1, `${d.host.name} keeps exactly its one real peer`)
    }
  })
})

test('dual stack: a lease whose IPv6 subnet is outside IPv6Network is ignored with one warning naming why, in both halves, and both nodes keep their peers', {
  skip: netnsSkipReason(),
  timeout: 60_000
}, async (t) => {
  await withTopology(t, { hosts: 3, label: 'foreign-lease6', ipv6: true, timeoutMs: 50_000 }, async (topo) => {
    const { c, a, b } = await pair(t, topo, '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}')
    const value = '{"PublicIP":"198.18.0.3","PublicIPv6":"2001:2::3","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:03"},"BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:00:33"}}'
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    store.putRaw('10.244.99.0-24&fc01:0:0:1::-64', value, 86400) // fc01:0:0:1::/64 is outside fc00::/48
    await store.close()
    const status = async (d: typeof a): Promise<{ peers: unknown[], ipv6: { peers: unknown[] } }> => await d.status() as unknown as { peers: unknown[], ipv6: { peers: unknown[] } }
    for (const d of [a, b]) {
      await waitFor(() => logs(d).some((l) => l.msg === 'ignoring a lease that is not a subnet of this network' && /IPv6 subnet fc01:0:0:1::\/64/.test(String(l.reason))), { what: `${d.host.name} to name the entry`, timeoutMs: 5000 })
      await waitFor(async () => (await status(d)).ipv6.peers.length === 1, { what: `${d.host.name}'s IPv6 peer`, timeoutMs: 5000 })
      const s = await status(d)
      assert.equal(s.peers.length, 1, `${d.host.name} keeps its one IPv4 peer`)
      assert.equal(s.ipv6.peers.length, 1, `${d.host.name} keeps its one IPv6 peer`)
      assert.equal(logs(d).filter((l) => l.msg === 'ignoring a lease that is not a subnet of this network').length, 1, 'named once')
    }
  })
})
