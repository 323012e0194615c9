// A TunNetwork over fakes (TUN device, dataplane, outside loop) and a real
// Fdb, for tests of what the table code does with peer leases.
import { TunNetwork } from '../../src/backend/tun/network'
import type { Dataplane, TunNetworkOptions } from '../../src/backend/tun/network'
import type { TunDevice } from '../../src/backend/tun/device'
import type { Fdb } from '../../src/dataplane/fdb'
import { PER_PEER } from '../../src/dataplane/fdb'
import { UNKNOWN_RING } from '../../src/dataplane/outside'
import { DROP_COUNT } from '../../src/dataplane/stats'
import type { Lease } from '../../src/subnet/lease'
import { parseIp4 } from '../../src/packet/ip'
import { captureLogger } from '../helpers/log'

export interface FakeTunNetwork { net: TunNetwork, stats: Float64Array, logs: ReturnType<typeof captureLogger> }

/** Our own lease is `own`, held at 198.18.0.1 on lo. */
export function fakeTunNetwork (o: Pick<TunNetworkOptions, 'backend' | 'unusable' | 'macOf' | 'mtu'> & { fdb: Fdb, own: Lease }): FakeTunNetwork {
  const logs = captureLogger()
  const stats = new Float64Array(DROP_COUNT)
  const ring = new Uint32Array(UNKNOWN_RING)
  const spoofed = new Uint32Array(UNKNOWN_RING)
  const dataplane: Dataplane = { stats, setOwnSubnet: () => {}, setLocalAddresses: () => {}, unknownRings: () => [ring], spoofRings: () => [spoofed], peerCounter: (i, k) => o.fdb.perPeer[i * PER_PEER + k], snapshot: () => ({ drops: {} }), close: () => {} }
  const device = { name: 'weft.test', offloads: {}, resync: async () => {}, setSubnet: async () => {}, close: async () => {} } as unknown as TunDevice
  const net = new TunNetwork({
    backend: o.backend,
    device,
    dataplane,
    fdb: o.fdb,
    lease: o.own,
    mtu: o.mtu,
    ownPublicIP: parseIp4('198.18.0.1'),
    underlayName: 'lo',
    unusable: o.unusable,
    ...(o.macOf !== undefined ? { macOf: o.macOf } : {}),
    log: logs.log
  })
  return { net, stats, logs }
}
