// flannel's UDP backend, compatible on the wire: the pod's IPv4 packet is the
// whole UDP payload, port 8285 (Backend.Port), no header of our own.
// 1. a TUN device `weft0` (flannel's is `flannel0`), MTU = underlay less 28,
//    our subnet's address on it, the network routed into it (the TUN
//    backends' start, ../tun/start.ts)
// 2. a UDP socket on the interface address and Backend.Port, batched
// 3. the shared loops over UdpEncap (encap.ts; TTL decremented both ways, as flannel's
//    proxy does), with ICMP net-unreachable answered into the TUN for
//    destinations no lease covers (Inside.answerUnreachable)
// flannel's udp leases have no BackendType (the key is absent) and no
// BackendData, and its backend takes every lease, whatever its type.
import type { Lease, LeaseAttrs } from '../../subnet/lease'
import { setSysctl } from '../../kernel/sysctl'
import { openUdp4 } from '../../native'
import type { UdpBackendConfig } from '../../subnet/config'
import type { Backend, BackendContext, Network } from '../backend'
import { podMtu } from '../mtu'
import { enableGro } from '../tun/offloads'
import { SOCKET_BUFFER, startTun, TUN_BATCH } from '../tun/start'
import { UdpEncap } from './encap'

export const UDP_DEVICE = 'weft0'

export class UdpBackend implements Backend {
  readonly type = 'udp'

  constructor (private readonly ctx: BackendContext, private readonly cfg: UdpBackendConfig) {}

  leaseAttrs (): LeaseAttrs {
    return { publicIP: this.ctx.underlay.publicIP, publicIPv6: null, backendType: '' }
  }

  mtu (): number {
    return podMtu(this.cfg, this.ctx.underlay.mtu)
  }

  async start (lease: Lease): Promise<Network> {
    const { log, underlay } = this.ctx
    let port = 0
    const { network, device } = await startTun({
      backend: 'udp',
      ctx: this.ctx,
      lease,
      mtu: this.mtu(),
      device: UDP_DEVICE,
      socket: async (device) => {
        // Our ICMP answers come out of the TUN from the TUN's own address; the
        // kernel drops a packet arriving with a local source unless told not to.
        await setSysctl(`net.ipv4.conf.${UDP_DEVICE}.accept_local`, 1)
        // bound to the interface address and port, as flannel's proxy binds
        const sock = openUdp4({ addr: underlay.ip, port: this.cfg.port, batch: TUN_BATCH, rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER })
        enableGro(sock.io, device.offloads, log)
        port = sock.port
        return { io: sock.io, close: () => sock.io.close() }
      },
      port: this.cfg.port,
      encap: () => new UdpEncap(),
      // flannel's udp backend takes every lease, whatever its type; it
      // answers packets no lease covers with ICMP net-unreachable
      peers: (pipeline) => {
        pipeline.inside.answerUnreachable(lease.subnet.ip)
        return { unusable: () => undefined, onSubnet: (l) => pipeline.inside.answerUnreachable(l.subnet.ip) }
      }
    })
    log.info({ port, offloads: device.offloads }, 'UDP dataplane running')
    return network
  }
}
