// How a TUN backend (vxlan, ipip, udp) starts. They differ only in the
// parts they pass in; the order, the sizes and the clean-up are here, once:
// 1. the TUN device: our subnet's address on it, the network routed into
//    it, the rules, the offloads negotiated (device.ts)
// 2. the backend's underlay socket(s), opened once the device exists
// 3. the peer table (Fdb) and the Pipeline over the backend's
//    encapsulation; a backend may put more pipelines beside it (vxlan's
//    --workers) and hand back what runs them all, or bring loops of its own
//    over the same device, socket and table (wireguard: its packets are
//    sealed per session, not wrapped per packet)
// 4. the TunNetwork that turns lease events into table entries (network.ts)
// 5. the loops start
// A failure at any step closes what the steps before it opened.
import type { Encapsulation } from '../../dataplane/encap'
import { Fdb } from '../../dataplane/fdb'
import { Pipeline } from '../../dataplane/pipeline'
import type { PacketIo } from '../../native'
import type { Offloads } from './offloads'
import type { Lease } from '../../subnet/lease'
import { trafficSettings, type BackendContext } from '../backend'
import { addressing4, rulesScope, TunDevice } from './device'
import { TunNetwork } from './network'
import type { Dataplane, TunNetworkOptions } from './network'

/** Packets per batch: one JS call moves this many (tuned in bench/). */
export const TUN_BATCH = 64
/** Underlay socket buffers, sized for bursts of a few milliseconds at multi-Gbit/s. */
export const SOCKET_BUFFER = 4 << 20

/** The underlay socket a backend opened: what the pipeline reads and writes, and how to close all it opened. */
export interface UnderlaySocket {
  io: PacketIo
  close: () => void
}

/** What a backend's own peer handling adds to the network (see TunNetworkOptions). */
export type PeerOptions = Pick<TunNetworkOptions, 'unusable' | 'macOf' | 'remCsumOf' | 'direct' | 'onSubnet' | 'portOf' | 'peerSet' | 'peerDeleted' | 'peerStatus' | 'onClose'>

/** A backend's own loops (instead of the shared Pipeline): what the network needs, and start(). */
export interface OwnLoops extends Dataplane {
  start: () => void
}

/** What a backend's own loops are made from. */
export interface LoopParts {
  tun: PacketIo
  sock: PacketIo
  fdb: Fdb
  mtu: number
  offloads: Offloads
}

export interface TunStart<P extends OwnLoops = Pipeline> {
  backend: TunNetworkOptions['backend']
  ctx: BackendContext
  lease: Lease
  /** the TUN device's MTU (the pods') */
  mtu: number
  /** the device's name (flannel's name with weft for flannel) */
  device: string
  /** TUN queues (vxlan --workers); default 1 */
  queues?: number
  /** 2: the underlay socket(s); whatever this opens, it closes if it throws */
  socket: (device: TunDevice) => Promise<UnderlaySocket> | UnderlaySocket
  /** the port peers listen on (0 for IP-in-IP) */
  port: number
  /** the socket reads packets of up to 64 KB without UDP_GRO (a raw socket: PipelineOptions.wholeReads) */
  wholeReads?: boolean
  /** peers the table holds (the Fdb's default) */
  capacity?: number
  /** destinations past the table's peers the backend sets itself (Fdb spareAddrs) */
  spareAddrs?: number
  /** 3: the shared pipeline's encapsulation; or `loops` */
  encap?: (fdb: Fdb) => Encapsulation
  /** 3: instead of encap, the backend's own loops (they close what they were given on close()) */
  loops?: (parts: LoopParts) => P
  /** 3: more pipelines beside the first, and what runs them all (it closes its own on failure) */
  dataplane?: (main: P, fdb: Fdb, device: TunDevice) => Dataplane
  /** 4: the backend's peer rules, given the pipeline (or the backend's loops) */
  peers: (pipeline: P) => PeerOptions
}

/** Steps 1 to 5; resolves with the running network and its device. */
export async function startTun<P extends OwnLoops = Pipeline> (o: TunStart<P>): Promise<{ network: TunNetwork, device: TunDevice }> {
  const { ctx, lease, mtu } = o
  const { config, log, underlay } = ctx
  const device = await TunDevice.create({ name: o.device, mtu, addressing: addressing4(lease.subnet, config.network), rules: rulesScope(lease, config), ipMasq: ctx.ipMasq, traffic: trafficSettings(ctx), batch: TUN_BATCH, ...(o.queues !== undefined ? { queues: o.queues } : {}), log })
  const sock = await device.adopt(() => o.socket(device))
  // from here on a failure closes the sockets (or the dataplane, once it
  // owns them) here, the device and its queues in adopt()
  let extra: Dataplane | undefined
  const { network, pipeline } = await device.adopt(async () => {
    try {
      const fdb = new Fdb({ network: config.network, subnetLen: config.subnetLen, port: o.port, ...(o.capacity !== undefined ? { capacity: o.capacity } : {}), ...(o.spareAddrs !== undefined ? { spareAddrs: o.spareAddrs } : {}) })
      const pipeline: P = o.loops !== undefined
        ? o.loops({ tun: device.tun.io, sock: sock.io, fdb, mtu, offloads: device.offloads })
        : new Pipeline({
          tun: device.tun.io,
          sock: sock.io,
          fdb,
          encap: requireEncap(o.encap)(fdb),
          mtu,
          batch: TUN_BATCH,
          offloads: device.offloads,
          ...(o.wholeReads === true ? { wholeReads: true } : {}),
          busyPollUs: ctx.busyPoll ?? 0,
          checkSource: ctx.sourceCheck ?? true,
          onFatal: (where, errno) => log.error({ where, errno }, 'the dataplane stopped reading after a fatal I/O error')
        }) as unknown as P
      extra = o.dataplane?.(pipeline, fdb, device)
      const network = new TunNetwork({
        backend: o.backend,
        device,
        dataplane: extra ?? pipeline,
        fdb,
        lease,
        mtu,
        ownPublicIP: underlay.publicIP,
        underlayName: underlay.name,
        rulesFor: (l) => rulesScope(l, config),
        ...o.peers(pipeline),
        log
      })
      return { network, pipeline }
    } catch (err) {
      sock.close()
      await extra?.close()
      throw err
    }
  })
  pipeline.start()
  return { network, device }
}

function requireEncap (e: ((fdb: Fdb) => Encapsulation) | undefined): (fdb: Fdb) => Encapsulation {
  if (e === undefined) throw new TypeError('startTun needs encap or loops')
  return e
}
