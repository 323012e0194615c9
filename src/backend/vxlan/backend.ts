// The VXLAN backend, flannel's default and weft's reason to exist: VXLAN on
// the wire exactly as the kernel's flannel.1 speaks it, with the
// encapsulation done in userspace by the batched pipeline.
// Config, construction, the encapsulation (encap.ts), peers' MACs and
// ours, and the extra dataplane threads (--workers: workers.ts) live here;
// how every TUN backend starts and follows lease events is ../tun/.
// Where the kernel allows tc BPF, the peer offload (../tun/peer-offload.ts)
// has the kernel carry a peer's packets both ways; the pipeline takes
// what it leaves (inner UDP, super-packets on kernels without BPF's
// decapsulation flags, anything weft must judge).
// With EnableIPv6 a second device carries the IPv6 pods over the IPv6
// underlay, as flanneld's flannel-v6.<VNI> does: weft-v6.<VNI>, its own
// VTEP MAC (published in BackendV6Data), socket and table; an IPv6-only
// network (EnableIPv4 false) has that device alone.
import type { Lease, LeaseAttrs } from '../../subnet/lease'
import { closeFd, openUdp4, openUdp4Fd, steerInnerFlow } from '../../native'
import { parseMac } from '../../packet/mac'
import type { VxlanBackendConfig } from '../../subnet/config'
import type { Backend, BackendContext, Network } from '../backend'
import { podMtu, vxlan6Mtu } from '../mtu'
import { ip6ToString } from '../../packet/net6'
import { WeftError } from '../../errors'
import { DualNetwork } from '../tun/dual'
import { startTun6 } from '../tun/start6'
import { enableGro } from '../tun/offloads'
import { SOCKET_BUFFER, startTun, TUN_BATCH } from '../tun/start'
import { VxlanEncap } from './encap'
import { peerMac, peerTakesRemCsum } from './peer-mac'
import { PeerOffload } from '../tun/peer-offload'
import { loadOrCreateVtepMac } from './vtep-mac'
import { WorkerGroup } from './workers'

/** Peers the table holds (the Fdb's default; a worker's copy needs it spelled out). */
const FDB_CAPACITY = 4096

export class VxlanBackend implements Backend {
  readonly type = 'vxlan'
  readonly vtepMac: string
  /** the IPv6 device's MAC (BackendV6Data), when the network has IPv6 */
  readonly vtepMac6: string | undefined

  constructor (private readonly ctx: BackendContext, private readonly cfg: VxlanBackendConfig) {
    this.vtepMac = loadOrCreateVtepMac(ctx.stateDir, cfg.vni)
    this.vtepMac6 = ctx.config.enableIPv6 ? loadOrCreateVtepMac(ctx.stateDir, cfg.vni, 6) : undefined
    if (ctx.config.enableIPv6 && ctx.publicIPv6 === undefined) throw new WeftError('ECONFIG', 'EnableIPv6 is set but this node has no public IPv6 address (give one with --public-ipv6)')
  }

  leaseAttrs (): LeaseAttrs {
    // RemCsumRx: we take remote checksum offload (flannel ignores the key)
    const data = this.cfg.remCsum ? { VNI: this.cfg.vni, VtepMAC: this.vtepMac, RemCsumRx: true } : { VNI: this.cfg.vni, VtepMAC: this.vtepMac }
    const v6 = this.vtepMac6 !== undefined && this.ctx.publicIPv6 !== undefined
    return {
      publicIP: this.ctx.underlay.publicIP,
      publicIPv6: v6 ? ip6ToString(this.ctx.publicIPv6 as bigint) : null,
      backendType: 'vxlan',
      // flanneld writes BackendData only with IPv4 on, BackendV6Data only with IPv6 on
      ...(this.ctx.config.enableIPv4 ? { backendData: data } : {}),
      ...(v6 ? { backendV6Data: { VNI: this.cfg.vni, VtepMAC: this.vtepMac6 } } : {})
    }
  }

  /** The pods' MTU: in dual stack the smaller of the two devices', so that a pod's packet fits either tunnel. */
  mtu (): number {
    const v4 = podMtu(this.cfg, this.ctx.underlay.mtu)
    if (!this.ctx.config.enableIPv6) return v4
    const v6 = vxlan6Mtu(this.cfg, this.ctx.underlay.mtu)
    return this.ctx.config.enableIPv4 ? Math.min(v4, v6) : v6
  }

  async start (lease: Lease): Promise<Network> {
    const { enableIPv4, enableIPv6 } = this.ctx.config
    if (!enableIPv6) return await this.start4(lease)
    if (!enableIPv4) return await this.start6(lease)
    const v4 = await this.start4(lease)
    try {
      return new DualNetwork(v4, await this.start6(lease))
    } catch (err) {
      await v4.close()
      throw err
    }
  }

  /** The IPv6 device, socket and table (one dataplane thread: --workers is the IPv4 device's). */
  private async start6 (lease: Lease): Promise<Network> {
    const { log } = this.ctx
    const mac6 = this.vtepMac6 as string
    const mtu = this.mtu()
    const { network } = await startTun6({
      ctx: this.ctx,
      lease,
      mtu,
      device: `weft-v6.${this.cfg.vni}`,
      keepsRules: !this.ctx.config.enableIPv4,
      port: this.cfg.port,
      capacity: FDB_CAPACITY,
      ownPublicIPv6: this.ctx.publicIPv6 as bigint,
      encap: (fdb) => new VxlanEncap(this.cfg.vni, parseMac(mac6), fdb, false),
      peers: {
        unusable: (l) => { const m = peerMac(l, 6); return typeof m === 'string' ? undefined : m.reason },
        macOf: (l) => { const m = peerMac(l, 6); return typeof m === 'string' ? parseMac(m) : undefined }
      }
    })
    log.info({ port: this.cfg.port, vni: this.cfg.vni, vtepMAC: mac6, publicIPv6: ip6ToString(this.ctx.publicIPv6 as bigint) }, 'VXLAN IPv6 dataplane running')
    return network
  }

  private async start4 (lease: Lease): Promise<Network> {
    const { config, log } = this.ctx
    const mtu = this.mtu()
    const workers = this.ctx.workers ?? 1
    const sockOpts = { addr: 0, port: this.cfg.port, batch: TUN_BATCH, rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER, reusePort: workers > 1 }
    /** the extra workers' sockets, until their WorkerGroup owns them */
    const sockFds: number[] = []
    let port = 0
    let offload: PeerOffload | undefined
    const { network, device } = await startTun({
      backend: 'vxlan',
      ctx: this.ctx,
      lease,
      mtu,
      device: `weft.${this.cfg.vni}`,
      queues: workers,
      socket: (device) => {
        const sock = openUdp4(sockOpts)
        port = sock.port
        enableGro(sock.io, device.offloads, log)
        const close = (): void => {
          sock.io.close()
          for (const fd of sockFds) closeFd(fd)
        }
        // more workers: a socket each on the same port, datagrams steered by inner flow
        try {
          for (let k = 1; k < workers; k++) sockFds.push(openUdp4Fd({ ...sockOpts, gro: device.offloads.gro }))
          if (workers > 1) steerInnerFlow(sock.io.fd, workers)
        } catch (err) {
          close()
          throw err
        }
        return { io: sock.io, close }
      },
      port: this.cfg.port,
      capacity: FDB_CAPACITY,
      encap: (fdb) => new VxlanEncap(this.cfg.vni, parseMac(this.vtepMac), fdb, this.cfg.remCsum),
      ...(workers > 1
        ? {
            dataplane: (main, fdb, device) => {
              const specs = device.takeQueues().map((tunFd, k) => ({
                tunFd,
                sockFd: sockFds[k],
                mtu,
                batch: TUN_BATCH,
                offloads: { ...device.offloads },
                busyPollUs: this.ctx.busyPoll ?? 0,
                checkSource: this.ctx.sourceCheck ?? true,
                fdb: { network: config.network, subnetLen: config.subnetLen, port: this.cfg.port, capacity: FDB_CAPACITY },
                vxlan: { vni: this.cfg.vni, mac: this.vtepMac, remCsum: this.cfg.remCsum }
              }))
              sockFds.length = 0 // the group owns them now, even if it fails to start
              return new WorkerGroup({ main, fdb, specs, log })
            }
          }
        : {}),
      peers: () => {
        const ourMac = parseMac(this.vtepMac)
        offload = PeerOffload.start({
          kind: 'vxlan',
          device: `weft.${this.cfg.vni}`,
          underlay: this.ctx.underlay,
          ownSubnet: lease.subnet,
          network: config.network,
          sourceCheck: this.ctx.sourceCheck ?? true,
          log,
          vxlanOf: (l) => { const m = peerMac(l); return typeof m === 'string' ? { vni: this.cfg.vni, port: this.cfg.port, peerMac: parseMac(m), ourMac } : undefined }
        })
        return {
          unusable: (l) => { const m = peerMac(l); return typeof m === 'string' ? undefined : m.reason },
          macOf: (l) => { const m = peerMac(l); return typeof m === 'string' ? parseMac(m) : undefined },
          remCsumOf: (l) => this.cfg.remCsum && peerTakesRemCsum(l),
          ...offload?.hooks()
        }
      }
    })
    log.info({ port, vni: this.cfg.vni, vtepMAC: this.vtepMac, offloads: device.offloads, remoteChecksumOffload: this.cfg.remCsum, peerOffload: offload !== undefined, ...(workers > 1 ? { workers } : {}) }, 'VXLAN dataplane running')
    return network
  }
}
