// How the IPv6 half of a TUN backend starts (vxlan's weft-v6.<VNI>, as
// flanneld's flannel-v6.<VNI>): the same steps as start.ts, in one family:
// 1. the TUN device, with the lease's IPv6 subnet address (/128) and
//    IPv6Network routed into it; it keeps the traffic rules only when the
//    node is IPv6-only (in dual stack the IPv4 device keeps both families')
// 2. a UDP socket over IPv6 (V6ONLY, beside the IPv4 one on the same port)
// 3. the IPv6 peer table (Fdb6) and a Pipeline over it
// 4. the TunNetwork6 that turns lease events into table entries
// 5. the loops start
// A failure at any step closes what the steps before it opened.
import type { Encapsulation } from '../../dataplane/encap'
import { Fdb6 } from '../../dataplane/fdb6'
import { Pipeline } from '../../dataplane/pipeline'
import { openUdp6 } from '../../native'
import type { Lease } from '../../subnet/lease'
import { WeftError } from '../../errors'
import { trafficSettings, type BackendContext } from '../backend'
import { addressing6, rulesScope, TunDevice } from './device'
import { enableGro } from './offloads'
import { SOCKET_BUFFER, TUN_BATCH } from './start'
import { TunNetwork6 } from './network6'
import type { TunNetwork6Options } from './network6'

export interface TunStart6 {
  ctx: BackendContext
  lease: Lease
  /** the device's MTU */
  mtu: number
  device: string
  /** this device keeps the network's traffic rules (an IPv6-only node) */
  keepsRules: boolean
  port: number
  capacity?: number
  ownPublicIPv6: bigint
  encap: (fdb: Fdb6) => Encapsulation
  peers: Pick<TunNetwork6Options, 'unusable' | 'macOf' | 'remCsumOf'>
}

export async function startTun6 (o: TunStart6): Promise<{ network: TunNetwork6, device: TunDevice }> {
  const { ctx, lease, mtu } = o
  const { config, log } = ctx
  const network6 = config.ipv6Network
  const subnet6 = lease.subnet6
  if (network6 === undefined || subnet6 === undefined) throw new WeftError('ECONFIG', 'IPv6 is enabled but the lease has no IPv6 subnet')
  const device = await TunDevice.create({ name: o.device, mtu, addressing: addressing6(subnet6, network6), rules: o.keepsRules ? rulesScope(lease, config) : undefined, ipMasq: ctx.ipMasq, traffic: trafficSettings(ctx), batch: TUN_BATCH, log })
  const sock = await device.adopt(() => {
    const s = openUdp6({ addr: Buffer.alloc(16), port: o.port, batch: TUN_BATCH, rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER })
    enableGro(s.io, device.offloads, log)
    return s
  })
  const { network, pipeline } = await device.adopt(async () => {
    try {
      const fdb = new Fdb6({ network: network6, subnetLen: config.ipv6SubnetLen, port: o.port, ...(o.capacity !== undefined ? { capacity: o.capacity } : {}) })
      const pipeline = new Pipeline({
        tun: device.tun.io,
        sock: sock.io,
        fdb,
        encap: o.encap(fdb),
        mtu,
        batch: TUN_BATCH,
        offloads: device.offloads,
        busyPollUs: ctx.busyPoll ?? 0,
        checkSource: ctx.sourceCheck ?? true,
        onFatal: (where, errno) => log.error({ where, errno, family: 6 }, 'the dataplane stopped reading after a fatal I/O error')
      })
      const network = new TunNetwork6({
        backend: 'vxlan',
        device,
        dataplane: pipeline,
        fdb,
        lease,
        mtu,
        ownPublicIPv6: o.ownPublicIPv6,
        ...o.peers,
        ...(o.keepsRules ? { rulesFor: (l: Lease) => rulesScope(l, config) } : {}),
        log
      })
      return { network, pipeline }
    } catch (err) {
      sock.io.close()
      throw err
    }
  })
  pipeline.start()
  return { network, device }
}
