// The VXLAN backend, flannel's default and weft's reason to exist: VXLAN on
// the wire exactly as the kernel's flannel.1 speaks it, with the
// encapsulation done in userspace by the batched pipeline.
// Config, construction, the encapsulation (encap.ts), peers' MACs and
// ours, and the extra dataplane threads (--workers: workers.ts) live here;
// how every TUN backend starts and follows lease events is ../tun/.
import type { Lease, LeaseAttrs } from '../../subnet/lease'
import { closeFd, openUdp4, openUdp4Fd, steerInnerFlow } from '../../native'
import { parseMac } from '../../packet/mac'
import type { VxlanBackendConfig } from '../../subnet/config'
import type { Backend, BackendContext, Network } from '../backend'
import { podMtu } from '../mtu'
import { enableGro } from '../tun/offloads'
import { SOCKET_BUFFER, startTun, TUN_BATCH } from '../tun/start'
import { VxlanEncap } from './encap'
import { peerMac, peerTakesRemCsum } from './peer-mac'
import { loadOrCreateVtepMac } from './vtep-mac'
import { WorkerGroup } from './workers'

/** Peers the table holds (the Fdb's default; a worker's copy needs it spelled out). */
const FDB_CAPACITY = 4096

export class VxlanBackend implements Backend {
  readonly type = 'vxlan'
  readonly vtepMac: string

  constructor (private readonly ctx: BackendContext, private readonly cfg: VxlanBackendConfig) {
    this.vtepMac = loadOrCreateVtepMac(ctx.stateDir, cfg.vni)
  }

  leaseAttrs (): LeaseAttrs {
    // RemCsumRx: we take remote checksum offload (flannel ignores the key)
    const data = this.cfg.remCsum ? { VNI: this.cfg.vni, VtepMAC: this.vtepMac, RemCsumRx: true } : { VNI: this.cfg.vni, VtepMAC: this.vtepMac }
    return { publicIP: this.ctx.underlay.publicIP, publicIPv6: null, backendType: 'vxlan', backendData: data }
  }

  mtu (): number {
    return podMtu(this.cfg, this.ctx.underlay.mtu)
  }

  async start (lease: Lease): Promise<Network> {
    const { config, log } = this.ctx
    const mtu = this.mtu()
    const workers = this.ctx.workers ?? 1
    const sockOpts = { addr: 0, port: this.cfg.port, batch: TUN_BATCH, rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER, reusePort: workers > 1 }
    /** the extra workers' sockets, until their WorkerGroup owns them */
    const sockFds: number[] = []
    let port = 0
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
      peers: () => ({
        unusable: (l) => { const m = peerMac(l); return typeof m === 'string' ? undefined : m.reason },
        macOf: (l) => { const m = peerMac(l); return typeof m === 'string' ? parseMac(m) : undefined },
        remCsumOf: (l) => this.cfg.remCsum && peerTakesRemCsum(l)
      })
    })
    log.info({ port, vni: this.cfg.vni, vtepMAC: this.vtepMac, offloads: device.offloads, remoteChecksumOffload: this.cfg.remCsum, ...(workers > 1 ? { workers } : {}) }, 'VXLAN dataplane running')
    return network
  }
}
