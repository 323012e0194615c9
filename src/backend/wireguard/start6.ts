// How the IPv6 WireGuard device starts (weft-wg-v6, flannel's flannel-wg-v6
// in the "separate" Mode): the steps of ../tun/start6.ts with the WireGuard
// loops in place of the pipeline:
// 1. the TUN device, with the lease's IPv6 subnet address (/128) and
//    IPv6Network routed into it; it keeps the traffic rules only when the
//    node is IPv6-only (in dual stack the IPv4 device keeps both families')
// 2. a UDP socket over IPv6 on ListenPortV6, on every address (V6ONLY:
//    beside the IPv4 device's socket)
// 3. the IPv6 peer table (Fdb6) and the WireGuard loops over it, with the
//    node's one key pair (flannel gives both devices the same key)
// 4. the network that turns the leases' IPv6 halves into peers (network6.ts)
// 5. the loops start; `wg show weft-wg-v6` through its own UAPI socket
// A failure at any step closes what the steps before it opened.
import { Fdb6 } from '../../dataplane/fdb6'
import { openUdp6 } from '../../native'
import type { Lease } from '../../subnet/lease'
import { WeftError } from '../../errors'
import { trafficSettings, type BackendContext } from '../backend'
import { addressing6, rulesScope, TunDevice } from '../tun/device'
import { enableGro } from '../tun/offloads'
import { SOCKET_BUFFER, TUN_BATCH } from '../tun/start'
import type { KeyPair } from '../../wireguard/keys'
import { WgLoops } from './loops'
import { WgNetwork6 } from './network6'

export interface WgStart6 {
  ctx: BackendContext
  lease: Lease
  mtu: number
  device: string
  /** this device keeps the network's traffic rules (an IPv6-only node) */
  keepsRules: boolean
  listenPort: number
  keys: KeyPair
  psk: Buffer | undefined
  persistentKeepalive: number
  /** peers the table holds */
  capacity: number
  /** where the UAPI socket goes (tests) */
  uapiDir?: string
}

export async function startWg6 (o: WgStart6): Promise<{ network: WgNetwork6, loops: WgLoops, device: TunDevice }> {
  const { ctx, lease, mtu } = o
  const { config, log } = ctx
  const network6 = config.ipv6Network
  const subnet6 = lease.subnet6
  if (network6 === undefined || subnet6 === undefined) throw new WeftError('ECONFIG', 'IPv6 is enabled but the lease has no IPv6 subnet')
  if (ctx.publicIPv6 === undefined) throw new WeftError('ECONFIG', 'EnableIPv6 is set but this node has no public IPv6 address (give one with --public-ipv6)')
  const ownPublicIPv6 = ctx.publicIPv6
  const device = await TunDevice.create({ name: o.device, mtu, addressing: addressing6(subnet6, network6), rules: o.keepsRules ? rulesScope(lease, config) : undefined, ipMasq: ctx.ipMasq, traffic: trafficSettings(ctx), batch: TUN_BATCH, log })
  const sock = await device.adopt(() => {
    const s = openUdp6({ addr: Buffer.alloc(16), port: o.listenPort, batch: TUN_BATCH, rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER })
    enableGro(s.io, device.offloads, log)
    return s
  })
  const { network, loops } = await device.adopt(async () => {
    try {
      const fdb = new Fdb6({ network: network6, subnetLen: config.ipv6SubnetLen, port: o.listenPort, capacity: o.capacity })
      const loops = new WgLoops({ tun: device.tun.io, sock: sock.io, fdb, mtu, offloads: device.offloads, keys: o.keys, psk: o.psk, persistentKeepalive: o.persistentKeepalive, device: o.device, listenPort: o.listenPort, log, busyPollUs: ctx.busyPoll ?? 0, ...(o.uapiDir !== undefined ? { uapiDir: o.uapiDir } : {}) })
      const network = new WgNetwork6({
        device,
        loops,
        fdb,
        lease,
        mtu,
        listenPort: o.listenPort,
        ownPublicIPv6,
        ...(o.keepsRules ? { rulesFor: (l: Lease) => rulesScope(l, config) } : {}),
        log
      })
      return { network, loops }
    } catch (err) {
      sock.io.close()
      throw err
    }
  })
  loops.start()
  return { network, loops, device }
}
