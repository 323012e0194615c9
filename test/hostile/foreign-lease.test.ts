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
