// One lease too many for the peer table: the node keeps running and keeps
// the peers it has; the one that does not fit is named once and counted, and
// gets its entry as soon as a slot is free. Pure table code over fakes
// (fake-tun-network.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Fdb } from '../../src/dataplane/fdb'
import { Drop } from '../../src/dataplane/stats'
import { formatCidr, parseCidr } from '../../src/packet/net'
import { decodeLeaseAttrs } from '../../src/subnet/lease-json'
import type { Lease } from '../../src/subnet/lease'
import type { PeerEvent } from '../../src/lease/watcher'
import { fakeTunNetwork } from './fake-tun-network'

const NETWORK = parseCidr('10.244.0.0/16')
let revision = 1
const lease = (cidr: string, ip: string): Lease => ({ subnet: parseCidr(cidr), attrs: decodeLeaseAttrs(`{"PublicIP":"${ip}"}`), expiration: null, revision: revision++ })
const event = (type: PeerEvent['type'], cidr: string, ip: string): PeerEvent => ({ type, lease: lease(cidr, ip) })

test('a lease that does not fit the peer table is refused, named once and counted; the node and its peers carry on', async () => {
  const fdb = new Fdb({ network: NETWORK, subnetLen: 24, port: 8285, capacity: 2 })
  const { net, stats, logs } = fakeTunNetwork({ backend: 'udp', fdb, own: lease('10.244.1.0/24', '198.18.0.1'), mtu: 1472, unusable: () => undefined })
  try {
    net.handlePeers([event('added', '10.244.2.0/24', '198.18.0.2'), event('added', '10.244.3.0/24', '198.18.0.3')])
    assert.doesNotThrow(() => { net.handlePeers([event('added', '10.244.4.0/24', '198.18.0.4')]) })
    assert.doesNotThrow(() => { net.handlePeers([event('added', '10.244.4.0/24', '198.18.0.4')]) }, 'a renewal of the same lease')
    assert.deepEqual(fdb.entries().map((e) => formatCidr(e.subnet)).sort(), ['10.244.2.0/24', '10.244.3.0/24'])
    assert.equal(stats[Drop.PEER_UNUSABLE], 2)
    const full = logs.find(/the peer table is full/)
    assert.equal(full.length, 1, 'named once')
    assert.equal(full[0].subnet, '10.244.4.0/24')

    net.handlePeers([event('removed', '10.244.2.0/24', '198.18.0.2'), event('added', '10.244.4.0/24', '198.18.0.4')])
    assert.deepEqual(fdb.entries().map((e) => formatCidr(e.subnet)).sort(), ['10.244.3.0/24', '10.244.4.0/24'])
  } finally {
    await net.close()
  }
})
