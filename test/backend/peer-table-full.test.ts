// One lease too many for the peer table: the node keeps running and keeps
// the peers it has; the one that does not fit is named once and counted, and
// gets its entry as soon as a slot is free. Pure table code: the TUN device,
// dataplane and kernel routes are fakes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TunNetwork } from '../../src/backend/tun-network'
import type { Dataplane } from '../../src/backend/tun-network'
import type { TunDevice } from '../../src/backend/tun-device'
import { Fdb } from '../../src/dataplane/fdb'
import { UNKNOWN_RING } from '../../src/dataplane/outside'
import type { Outside } from '../../src/dataplane/outside'
import { Drop, DROP_COUNT } from '../../src/dataplane/stats'
import { formatCidr, parseCidr } from '../../src/ip/net'
import { decodeLeaseAttrs } from '../../src/lease/json'
import type { Lease } from '../../src/lease/lease'
import type { PeerEvent } from '../../src/lease/watcher'
import { parseIp4 } from '../../src/packet/ip'
import { captureLogger } from '../helpers/log'

const NETWORK = parseCidr('10.244.0.0/16')
let revision = 1
const lease = (cidr: string, ip: string): Lease => ({ subnet: parseCidr(cidr), attrs: decodeLeaseAttrs(`{"PublicIP":"${ip}"}`), expiration: null, revision: revision++ })
const event = (type: PeerEvent['type'], cidr: string, ip: string): PeerEvent => ({ type, lease: lease(cidr, ip) })

test('a lease that does not fit the peer table is refused, named once and counted; the node and its peers carry on', async () => {
  const logs = captureLogger()
  const fdb = new Fdb({ network: NETWORK, subnetLen: 24, port: 8285, capacity: 2 })
  const stats = new Float64Array(DROP_COUNT)
  const outside = { setOwnSubnet: () => {}, unknownSources: new Uint32Array(UNKNOWN_RING) } as unknown as Outside
  const dataplane: Dataplane = { stats, outside, snapshot: () => ({}), close: () => {} }
  const device = { name: 'weft.test', offloads: {}, resync: async () => {}, setSubnet: async () => {}, close: async () => {} } as unknown as TunDevice
  const net = new TunNetwork({ backend: 'udp', device, dataplane, fdb, lease: lease('10.244.1.0/24', '198.18.0.1'), mtu: 1472, ownPublicIP: parseIp4('198.18.0.1'), underlayName: 'lo', unusable: () => undefined, log: logs.log })
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
