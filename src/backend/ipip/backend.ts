// The IP-in-IP backend in userspace: flannel's ipip on the wire (outer IPv4,
// protocol 4, then the pod's packet), for kernels without the ipip module.
// 1. a TUN device `weft.ipip` (flannel's is `flannel.ipip`), MTU = underlay
//    less 20, our subnet's address on it, the network routed into it (the
//    TUN backends' start, ../tun/start.ts)
// 2. a raw IPv4 socket for protocol 4, bound to the underlay address, on the
//    batched native path: the kernel writes the outer header on send and
//    hands it to us on receive; an underlay with GRO on (most NICs) merges
//    a flow's IP-in-IP TCP segments (the IPv4 stack does it, module or
//    not), so reads hold up to 64 KB and a merged packet goes to the TUN
//    whole, as TSO
// 3. the shared pipeline over IpipEncap (encap.ts); peers come from lease
//    events (../tun/network.ts), with DirectRouting as flannel does it
// 4. the peer offload (../tun/peer-offload.ts): where the kernel allows tc
//    BPF, one program encapsulates and segments what the table routes to a
//    peer, which the raw socket cannot (it sends one segment at a time),
//    and one takes what a peer sent off the underlay into the TUN; the
//    pipeline still takes what has no peer and what the programs leave
// The lease says BackendType "ipip" and carries no BackendData, as flannel's.
import type { Lease, LeaseAttrs } from '../../subnet/lease'
import { constants, openRaw4 } from '../../native'
import type { IpipBackendConfig } from '../../subnet/config'
import { PeerRoutes } from '../../kernel/routes'
import { otherBackend } from '../backend'
import type { Backend, BackendContext, Network } from '../backend'
import { podMtu } from '../mtu'
import { SOCKET_BUFFER, startTun, TUN_BATCH } from '../tun/start'
import { IpipEncap } from './encap'
import { PeerOffload } from '../tun/peer-offload'

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
    const { log, underlay } = this.ctx
    let offload: PeerOffload | undefined
    const { network, device } = await startTun({
      backend: 'ipip',
      ctx: this.ctx,
      lease,
      mtu: this.mtu(),
      device: 'weft.ipip',
      // bound to the interface address (flannel's tunnel `local`): only
      // protocol-4 packets for this node reach the socket
      socket: () => {
        const io = openRaw4({ protocol: constants.IPPROTO_IPIP, addr: underlay.ip, batch: TUN_BATCH, rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER })
        return { io, close: () => io.close() }
      },
      port: 0,
      // an underlay with GRO (most NICs) merges IP-in-IP TCP segments: read them whole
      wholeReads: true,
      encap: () => new IpipEncap(),
      peers: () => {
        offload = PeerOffload.start({ kind: 'ipip', device: 'weft.ipip', underlay, ownSubnet: lease.subnet, network: this.ctx.config.network, sourceCheck: this.ctx.sourceCheck ?? true, log })
        return {
          unusable: (l) => otherBackend(l, 'ipip'),
          ...(this.cfg.directRouting ? { direct: new PeerRoutes({ dev: underlay.name, log }) } : {}),
          ...offload?.hooks()
        }
      }
    })
    log.info({ directRouting: this.cfg.directRouting, offloads: device.offloads, peerOffload: offload !== undefined }, 'IP-in-IP dataplane running')
    return network
  }
}
