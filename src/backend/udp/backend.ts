// flannel's UDP backend, compatible on the wire: the pod's IPv4 packet is the
// whole UDP payload, port 8285 (Backend.Port), no header of our own.
// 1. a TUN device `weft0` (flannel's is `flannel0`), MTU = underlay less 28,
//    our subnet's address on it, the network routed into it (the VXLAN
//    backend's device code, reused)
// 2. a UDP socket on the interface address and Backend.Port, batched
// 3. the shared loops over UdpEncap (TTL decremented both ways, as flannel's
//    proxy does), with ICMP net-unreachable answered into the TUN for
//    destinations no lease covers (Inside.answerUnreachable)
// flannel's udp leases have no BackendType (the key is absent) and no
// BackendData, and its backend takes every lease, whatever its type.
import type { Lease, LeaseAttrs } from '../../lease/lease'
import { setSysctl } from '../../kernel/sysctl'
import { openUdp4 } from '../../native'
import type { UdpBackendConfig } from '../../subnet/config'
import { Fdb } from '../../dataplane/fdb'
import { Pipeline } from '../../dataplane/pipeline'
import { UdpEncap } from '../../dataplane/udp-encap'
import type { Backend, BackendContext, Network } from '../backend'
import { podMtu } from '../mtu'
import { enableGro } from '../offloads'
import { TunDevice } from '../tun-device'
import { TunNetwork } from '../tun-network'

export const UDP_DEVICE = 'weft0'
/** Packets per batch, as the VXLAN backend's. */
export const UDP_BATCH = 64
/** Socket buffers sized for bursts of a few milliseconds at multi-Gbit/s. */
const SOCKET_BUFFER = 4 << 20

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
    const { config, log, underlay } = this.ctx
    const mtu = this.mtu()
    const device = await TunDevice.create({ name: UDP_DEVICE, mtu, subnet: lease.subnet, network: config.network, ipMasq: this.ctx.ipMasq, batch: UDP_BATCH, log })
    const sock = await device.adopt(async () => {
      // Our ICMP answers come out of the TUN from the TUN's own address; the
      // kernel drops a packet arriving with a local source unless told not to.
      await setSysctl(`net.ipv4.conf.${UDP_DEVICE}.accept_local`, 1)
      // bound to the interface address and port, as flannel's proxy binds
      return openUdp4({ addr: underlay.ip, port: this.cfg.port, batch: UDP_BATCH, rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER })
    })
    enableGro(sock.io, device.offloads, log)
    const fdb = new Fdb({ network: config.network, subnetLen: config.subnetLen, port: this.cfg.port })
    const dataplane = new Pipeline({
      tun: device.tun.io,
      sock: sock.io,
      fdb,
      encap: new UdpEncap(),
      mtu,
      batch: UDP_BATCH,
      offloads: device.offloads,
      busyPollUs: this.ctx.busyPoll ?? 0,
      checkSource: this.ctx.sourceCheck ?? true,
      onFatal: (where, errno) => log.error({ where, errno }, 'the dataplane stopped reading after a fatal I/O error')
    })
    dataplane.inside.answerUnreachable(lease.subnet.ip)
    const network = new TunNetwork({
      backend: 'udp',
      device,
      dataplane,
      fdb,
      lease,
      mtu,
      ownPublicIP: underlay.publicIP,
      underlayName: underlay.name,
      unusable: () => undefined,
      onSubnet: (l) => dataplane.inside.answerUnreachable(l.subnet.ip),
      log
    })
    dataplane.start()
    log.info({ port: sock.port, offloads: device.offloads }, 'UDP dataplane running')
    return network
  }
}
