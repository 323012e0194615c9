// The IP-in-IP backend in userspace: flannel's ipip on the wire (outer IPv4,
// protocol 4, then the pod's packet), for kernels without the ipip module.
// 1. a TUN device `weft.ipip` (flannel's is `flannel.ipip`), MTU = underlay
//    less 20, our subnet's address on it, the network routed into it (the
//    VXLAN backend's device code, reused)
// 2. a raw IPv4 socket for protocol 4, bound to the underlay address, on the
//    batched native path: the kernel writes the outer header on send and
//    hands it to us on receive
// 3. the shared pipeline over IpipEncap; peers come from lease events
//    (network.ts), with DirectRouting as flannel does it
// The lease says BackendType "ipip" and carries no BackendData, as flannel's.
import type { Lease, LeaseAttrs } from '../../lease/lease'
import { constants, openRaw4 } from '../../native'
import type { IpipBackendConfig } from '../../subnet/config'
import { Fdb } from '../../dataplane/fdb'
import { IpipEncap } from '../../dataplane/ipip-encap'
import { Pipeline } from '../../dataplane/pipeline'
import type { Backend, BackendContext, Network } from '../backend'
import { podMtu } from '../mtu'
import { TunDevice } from '../tun-device'
import { PeerRoutes } from '../host-gw/routes'
import { TunNetwork } from '../tun-network'

/** Packets per batch, as the VXLAN backend's. */
export const IPIP_BATCH = 64
/** Socket buffers sized for bursts of a few milliseconds at multi-Gbit/s. */
const SOCKET_BUFFER = 4 << 20

export class IpipBackend implements Backend {
  readonly type = 'ipip'

  constructor (private readonly ctx: BackendContext, private readonly cfg: IpipBackendConfig) {}

  leaseAttrs (): LeaseAttrs {
    return { publicIP: this.ctx.underlay.publicIP, publicIPv6: null, backendType: 'ipip' }
  }

  mtu (): number {
    return podMtu(this.cfg, this.ctx.underlay.mtu)
  }

  async start (lease: Lease): Promise<Network> {
    const { config, log, underlay } = this.ctx
    const mtu = this.mtu()
    const device = await TunDevice.create({ name: 'weft.ipip', mtu, subnet: lease.subnet, network: config.network, ipMasq: this.ctx.ipMasq, batch: IPIP_BATCH, log })
    // bound to the interface address (flannel's tunnel `local`): only
    // protocol-4 packets for this node reach the socket
    const sock = await device.adopt(() => openRaw4({ protocol: constants.IPPROTO_IPIP, addr: underlay.ip, batch: IPIP_BATCH, rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER }))
    const fdb = new Fdb({ network: config.network, subnetLen: config.subnetLen, port: 0 })
    const pipeline = new Pipeline({
      tun: device.tun.io,
      sock,
      fdb,
      encap: new IpipEncap(),
      mtu,
      batch: IPIP_BATCH,
      offloads: device.offloads,
      busyPollUs: this.ctx.busyPoll ?? 0,
      checkSource: this.ctx.sourceCheck ?? true,
      onFatal: (where, errno) => log.error({ where, errno }, 'the dataplane stopped reading after a fatal I/O error')
    })
    const network = new TunNetwork({
      backend: 'ipip',
      device,
      dataplane: pipeline,
      fdb,
      lease,
      mtu,
      ownPublicIP: underlay.publicIP,
      underlayName: underlay.name,
      unusable: (l) => l.attrs.backendType === 'ipip' ? undefined : `its backend is ${l.attrs.backendType === '' ? 'udp' : l.attrs.backendType}, not ipip`,
      ...(this.cfg.directRouting ? { direct: new PeerRoutes({ dev: underlay.name, log }) } : {}),
      log
    })
    pipeline.start()
    log.info({ directRouting: this.cfg.directRouting, offloads: device.offloads }, 'IP-in-IP dataplane running')
    return network
  }
}
