// The run loop over lease events for the TUN backends (vxlan, ipip, udp):
// each usable peer's lease becomes an entry in the userspace table (Fdb:
// subnet -> peer -> public IP, and for vxlan the peer's VTEP MAC) and goes
// again with the lease. Applied between batches, so traffic never pauses for
// it.
// DirectRouting (ipip, as flannel does it): a peer on our underlay's own
// subnet also gets a kernel route `<subnet> via <public IP> dev <underlay>`,
// more specific than the network's route into the TUN, so its traffic never
// reaches the dataplane. It stays in the Fdb all the same: a peer that does
// not route directly to us still sends through the tunnel, and must be let in.
import { readFileSync } from 'node:fs'
import { LRUCache } from 'lru-cache'
import { formatCidr } from '../ip/net'
import { unusablePublicIP } from '../lease/lease'
import type { Lease } from '../lease/lease'
import type { PeerEvent } from '../lease/watcher'
import type { Logger } from '../log'
import { ip4ToString } from '../packet/ip'
import type { Fdb } from '../dataplane/fdb'
import { PeerCount } from '../dataplane/fdb'
import { UNKNOWN_RING } from '../dataplane/outside'
import { Drop } from '../dataplane/stats'
import type { Network, NetworkStatus } from './backend'
import type { TunDevice } from './tun-device'
import { directlyConnected } from './host-gw/routes'
import type { PeerRoutes } from './host-gw/routes'

/** What the network needs of a running dataplane (a Pipeline, or a WorkerGroup of them). */
export interface Dataplane {
  /** where the network counts the drops it decides (peer_unusable) */
  readonly stats: Float64Array
  setOwnSubnet: (ip: number, prefixLen: number) => void
  /** the rings of recent senders without a lease, one per pipeline (0 = empty slot) */
  unknownRings: () => Uint32Array[]
  /** a PeerCount counter of the peer at `index`, over every pipeline */
  peerCounter: (index: number, which: number) => number
  snapshot: () => object
  /** closes the fds; resolves when every pipeline has stopped */
  close: () => void | Promise<void>
}

export interface TunNetworkOptions {
  backend: 'vxlan' | 'ipip' | 'udp'
  /** the TUN, its address, route and rules (the VXLAN backend's device, reused) */
  device: TunDevice
  dataplane: Dataplane
  fdb: Fdb
  lease: Lease
  mtu: number
  /** our public IP and underlay interface */
  ownPublicIP: number
  underlayName: string
  /** why this backend cannot use a peer's lease, or undefined if it can (a lease without a usable PublicIP is refused before this is asked) */
  unusable: (lease: Lease) => string | undefined
  /** the peer's MAC for the Fdb (vxlan: its VTEP MAC); only asked of usable leases */
  macOf?: (lease: Lease) => Buffer | undefined
  /** vxlan: we and the peer both speak remote checksum offload */
  remCsumOf?: (lease: Lease) => boolean
  /** DirectRouting: kernel routes to directly connected peers */
  direct?: PeerRoutes
  /** our lease moved: anything the backend keeps per subnet (the UDP backend's ICMP source) */
  onSubnet?: (lease: Lease) => void
  log: Logger
}

const RESYNC_MS = 5000

/** The device's tx_dropped: packets for us the kernel could not queue. */
function tunTxDropped (dev: string): number {
  try {
    return Number(readFileSync(`/sys/class/net/${dev}/statistics/tx_dropped`, 'utf8'))
  } catch {
    return 0
  }
}

/** What the logs call the table and the packets, per backend. */
const WORDS = {
  vxlan: { table: 'FDB', packets: 'VXLAN' },
  ipip: { table: 'route table', packets: 'IP-in-IP' },
  udp: { table: 'route table', packets: 'UDP-encapsulated packets' }
} as const

export class TunNetwork implements Network {
  readonly mtu: number
  private lease: Lease
  private readonly reported = new LRUCache<number, true>({ max: 1024 })
  private readonly unusable = new Set<string>()
  /** subnets routed directly (DirectRouting) */
  private readonly direct = new Set<string>()
  private readonly timer: NodeJS.Timeout
  private closed = false
  private gsoRefusalLogged = false

  constructor (private readonly o: TunNetworkOptions) {
    this.mtu = o.mtu
    this.lease = o.lease
    o.dataplane.setOwnSubnet(o.lease.subnet.ip, o.lease.subnet.prefixLen)
    // Off the hot path: name each sender without a lease once, and resync the
    // rules as flannel does every few seconds.
    this.timer = setInterval(() => { this.report(); void o.device.resync().catch((err: Error) => o.log.warn({ err: err.message }, 'could not re-apply the iptables rules')) }, RESYNC_MS)
    this.timer.unref()
  }

  handlePeers (events: readonly PeerEvent[]): void {
    const { fdb, log } = this.o
    for (const e of events) {
      const l = e.lease
      const key = formatCidr(l.subnet)
      const publicIP = ip4ToString(l.attrs.publicIP)
      if (e.type === 'removed') {
        if (fdb.delete(l.subnet)) log.info({ subnet: key, publicIP }, `peer removed from the ${WORDS[this.o.backend].table}`)
        this.undirect(l)
        this.unusable.delete(key)
        continue
      }
      const why = unusablePublicIP(l.attrs.publicIP) ?? this.o.unusable(l)
      if (why !== undefined) {
        fdb.delete(l.subnet)
        this.undirect(l)
        this.o.dataplane.stats[Drop.PEER_UNUSABLE]++
        if (!this.unusable.has(key)) log.warn({ subnet: key, publicIP, reason: why }, 'ignoring a peer this backend cannot reach')
        this.unusable.add(key)
        continue
      }
      if (l.attrs.publicIP === this.o.ownPublicIP) {
        log.warn({ subnet: key }, 'ignoring a lease that holds our own public IP (stale?)')
        continue
      }
      try {
        fdb.set(l.subnet, l.attrs.publicIP, this.o.macOf?.(l), undefined, this.o.remCsumOf?.(l) ?? false)
      } catch (err) {
        // A full peer table must not stop the node: anyone who can write a
        // lease could otherwise take every node down with one too many.
        // The peers already in the table keep working.
        if ((err as { code?: string }).code !== 'EFDBFULL') throw err
        this.o.dataplane.stats[Drop.PEER_UNUSABLE]++
        if (!this.unusable.has(key)) log.error({ subnet: key, publicIP, reason: (err as Error).message }, 'ignoring a peer: the peer table is full')
        this.unusable.add(key)
        continue
      }
      this.unusable.delete(key)
      const direct = this.o.direct !== undefined && directlyConnected(this.o.underlayName, l.attrs.publicIP)
      if (direct) {
        this.direct.add(key)
        void this.o.direct?.add(l.subnet, l.attrs.publicIP).then((ok) => { if (!ok) this.direct.delete(key) })
      } else {
        this.undirect(l)
      }
      const entry = fdb.entries().find((x) => x.subnet.ip === l.subnet.ip)
      const mac = entry?.mac
      log.info({ subnet: key, publicIP, ...(mac !== undefined ? { vtepMAC: mac } : {}), ...(entry?.remCsum === true ? { remoteChecksumOffload: true } : {}), path: direct ? 'direct' : 'tunnel' }, `peer added to the ${WORDS[this.o.backend].table}`)
    }
  }

  async setLease (lease: Lease): Promise<void> {
    this.lease = lease
    this.o.dataplane.setOwnSubnet(lease.subnet.ip, lease.subnet.prefixLen)
    this.o.onSubnet?.(lease)
    await this.o.device.setSubnet(lease.subnet)
  }

  status (): NetworkStatus {
    const { fdb, dataplane } = this.o
    return {
      backend: this.o.backend,
      device: this.o.device.name,
      mtu: this.mtu,
      peers: fdb.entries().map((e) => {
        const subnet = formatCidr(e.subnet)
        return {
          subnet,
          publicIP: ip4ToString(e.publicIP),
          ...(e.mac !== undefined ? { vtepMAC: e.mac } : {}),
          ...(e.remCsum ? { remoteChecksumOffload: true } : {}),
          path: this.direct.has(subnet) ? 'direct' : 'tunnel',
          insidePackets: dataplane.peerCounter(e.index, PeerCount.INSIDE_PACKETS),
          insideBytes: dataplane.peerCounter(e.index, PeerCount.INSIDE_BYTES),
          outsidePackets: dataplane.peerCounter(e.index, PeerCount.OUTSIDE_PACKETS),
          outsideBytes: dataplane.peerCounter(e.index, PeerCount.OUTSIDE_BYTES)
        }
      }),
      offloads: { ...this.o.device.offloads, gso: this.o.device.offloads.gso && !this.gsoRefused() },
      // what the kernel dropped before we could read it: the TUN queue was full
      tunQueueDrops: tunTxDropped(this.o.device.name),
      counters: { subnet: formatCidr(this.lease.subnet), ...dataplane.snapshot() }
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    await this.o.direct?.close()
    await this.o.dataplane.close() // the TUN fds close: the device and its route go with them
    await this.o.device.close()
  }

  /** A peer no longer routed directly: its kernel route goes (queued after any add). */
  private undirect (l: Lease): void {
    if (this.o.direct === undefined) return
    this.direct.delete(formatCidr(l.subnet))
    void this.o.direct.remove(l.subnet)
  }

  /** Did the kernel refuse UDP_SEGMENT (the addon then sends datagram by datagram)? */
  private gsoRefused (): boolean {
    const snap = this.o.dataplane.snapshot() as { sock?: Record<string, number> }
    return (snap.sock?.txGsoRefused ?? 0) > 0
  }

  private report (): void {
    if (!this.gsoRefusalLogged && this.gsoRefused()) {
      this.gsoRefusalLogged = true
      this.o.log.warn('the kernel refused UDP_SEGMENT (EIO: no checksum offload on the way out): sending segments one datagram each from now on')
    }
    const what = WORDS[this.o.backend].packets
    let dropped: number | undefined // summed over the pipelines once, and only if someone new is named
    for (const ring of this.o.dataplane.unknownRings()) {
      for (let i = 0; i < UNKNOWN_RING; i++) {
        const a = ring[i]
        if (a === 0 || this.reported.has(a)) continue
        this.reported.set(a, true)
        dropped ??= (this.o.dataplane.snapshot() as { drops: Record<string, number> }).drops.unknown_source ?? 0
        this.o.log.warn({ source: ip4ToString(a), dropped }, `dropping ${what} from an address that holds no lease`)
      }
    }
  }
}
