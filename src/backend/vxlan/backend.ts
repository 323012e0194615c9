// The VXLAN backend, flannel's default and weft's reason to exist: VXLAN on
// the wire exactly as the kernel's flannel.1 speaks it, with the
// encapsulation done in userspace by the batched pipeline.
// Config and construction live here; the run loop over lease events is the
// TUN backends' (../tun-network.ts), the kernel state ../tun-device.ts.
import type { Lease, LeaseAttrs } from '../../lease/lease'
import { closeFd, openUdp4, openUdp4Fd, steerInnerFlow } from '../../native'
import { parseMac } from '../../packet/mac'
import type { VxlanBackendConfig } from '../../subnet/config'
import { Fdb } from '../../dataplane/fdb'
import { Pipeline } from '../../dataplane/pipeline'
import { VxlanEncap } from '../../dataplane/vxlan-encap'
import { WorkerGroup } from '../../dataplane/workers'
import type { Backend, BackendContext, Network } from '../backend'
import { podMtu } from '../mtu'
import { enableGro } from '../offloads'
import { TunDevice } from '../tun-device'
import { TunNetwork } from '../tun-network'
import { peerMac, peerTakesRemCsum } from './peer-mac'
import { loadOrCreateVtepMac } from './vtep-mac'

/** Packets per batch: one JS call moves this many (tuned in bench/). */
export const VXLAN_BATCH = 64
/** Peers the table holds (the Fdb's default; a worker's copy needs it spelled out). */
const FDB_CAPACITY = 4096
/** Socket buffers sized for bursts of a few milliseconds at multi-Gbit/s. */
const SOCKET_BUFFER = 4 << 20

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
    const device = await TunDevice.create({ name: `weft.${this.cfg.vni}`, mtu, subnet: lease.subnet, network: config.network, ipMasq: this.ctx.ipMasq, batch: VXLAN_BATCH, queues: workers, log })
    const sockOpts = { addr: 0, port: this.cfg.port, batch: VXLAN_BATCH, rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER, reusePort: workers > 1 }
    const sock = await device.adopt(() => openUdp4(sockOpts))
    enableGro(sock.io, device.offloads, log)
    // more workers: a socket each on the same port, datagrams steered by inner flow
    const sockFds: number[] = []
    await device.adopt(() => {
      try {
        for (let k = 1; k < workers; k++) sockFds.push(openUdp4Fd({ ...sockOpts, gro: device.offloads.gro }))
        if (workers > 1) steerInnerFlow(sock.io.fd, workers)
      } catch (err) {
        sock.io.close()
        for (const fd of sockFds) closeFd(fd)
        throw err
      }
    })
    // from here on a failure closes what was opened: the sockets (or the
    // workers, once they own theirs) here, the device and its queues in adopt()
    let group: WorkerGroup | undefined
    const { network, pipeline } = await device.adopt(async () => {
      try {
        const fdb = new Fdb({ network: config.network, subnetLen: config.subnetLen, port: this.cfg.port, capacity: FDB_CAPACITY })
        const pipeline = new Pipeline({
          tun: device.tun.io,
          sock: sock.io,
          fdb,
          encap: new VxlanEncap(this.cfg.vni, parseMac(this.vtepMac), fdb, this.cfg.remCsum),
          mtu,
          batch: VXLAN_BATCH,
          offloads: device.offloads,
          busyPollUs: this.ctx.busyPoll ?? 0,
          checkSource: this.ctx.sourceCheck ?? true,
          onFatal: (where, errno) => log.error({ where, errno }, 'the dataplane stopped reading after a fatal I/O error')
        })
        if (workers > 1) {
          const specs = device.takeQueues().map((tunFd, k) => ({
            tunFd,
            sockFd: sockFds[k],
            mtu,
            batch: VXLAN_BATCH,
            offloads: { ...device.offloads },
            busyPollUs: this.ctx.busyPoll ?? 0,
            checkSource: this.ctx.sourceCheck ?? true,
            fdb: { network: config.network, subnetLen: config.subnetLen, port: this.cfg.port, capacity: FDB_CAPACITY },
            vxlan: { vni: this.cfg.vni, mac: this.vtepMac, remCsum: this.cfg.remCsum }
          }))
          sockFds.length = 0 // the group owns them now, even if it fails to start
          group = new WorkerGroup({ main: pipeline, fdb, specs, log })
        }
        const network = new TunNetwork({
          backend: 'vxlan',
          device,
          dataplane: group ?? pipeline,
          fdb,
          lease,
          mtu,
          ownPublicIP: this.ctx.underlay.publicIP,
          underlayName: this.ctx.underlay.name,
          unusable: (l) => { const m = peerMac(l); return typeof m === 'string' ? undefined : m.reason },
          macOf: (l) => { const m = peerMac(l); return typeof m === 'string' ? parseMac(m) : undefined },
          remCsumOf: (l) => this.cfg.remCsum && peerTakesRemCsum(l),
          log
        })
        return { network, pipeline }
      } catch (err) {
        sock.io.close()
        for (const fd of sockFds) closeFd(fd)
        await group?.close()
        throw err
      }
    })
    pipeline.start()
    log.info({ port: sock.port, vni: this.cfg.vni, vtepMAC: this.vtepMac, offloads: device.offloads, remoteChecksumOffload: this.cfg.remCsum, ...(workers > 1 ? { workers } : {}) }, 'VXLAN dataplane running')
    return network
  }
}
