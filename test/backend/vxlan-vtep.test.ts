// Two weft VXLAN nodes in namespaces: their VTEPs reach each other through
// the userspace dataplane.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ip4ToString } from '../../src/packet/ip'
import { withTopology, waitFor } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'
import { cluster } from '../../lab/daemons'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'

test('two nodes: each VTEP answers ping from the other, through weft\'s VXLAN', { skip: netnsSkipReason() }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'vxlan-vtep' }, async (topo) => {
    const c = cluster(t, topo, CONFIG)
    const [a, b] = [await c.start(topo.hosts[0]), await c.start(topo.hosts[1])]
    await waitFor(async () => (await a.status()).peers.length === 1 && (await b.status()).peers.length === 1, { what: 'FDB entries', timeoutMs: 5000 })
    const bVtep = ip4ToString(b.env().subnet.ip)
    const r = await topo.exec(topo.hosts[0], ['ping', '-c', '3', '-i', '0.2', '-W', '2', bVtep])
    assert.match(r.stdout, /3 received/)
    const sa = await a.status()
    assert.equal(sa.device, 'weft.1')
    // three out and three back, through weft's pipeline or the kernel's peer offload: the peer's counts hold both
    assert.equal(sa.peers[0].insidePackets, 3)
    assert.equal(sa.peers[0].outsidePackets, 3)
  })
})
