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
import { networkInterfaces } from 'node:os'
import { formatCidr } from '../../packet/net'
import { hasIPv4, unusablePublicIP } from '../../subnet/lease'
import type { Lease } from '../../subnet/lease'
import type { PeerEvent } from '../../lease/watcher'
import type { Logger } from '../../log'
import { OnceLog } from '../../util/log-once'
import { ParkedLeases } from './parked'
import { ip4ToString, parseIp4 } from '../../packet/ip'
import type { Fdb } from '../../dataplane/fdb'
import { PeerCount } from '../../dataplane/fdb'
import { MAX_LOCAL_ADDRESSES, UNKNOWN_RING } from '../../dataplane/outside'
import { Drop } from '../../dataplane/stats'
import type { Network, NetworkStatus } from '../backend'
import type { RulesScope, TunDevice } from './device'
import { directlyConnected } from '../../kernel/routes'
import type { PeerRoutes } from '../../kernel/routes'

/** What the network needs of a running dataplane (a Pipeline, or a WorkerGroup of them). */
export interface Dataplane {
  /** where the network counts the drops it decides (peer_unusable) */
  readonly stats: Float64Array
  setOwnSubnet: (ip: number, prefixLen: number) => void
  /** this node's addresses (uint32), which no peer may use as an inner source */
  setLocalAddresses: (addrs: readonly number[]) => void
  /** the rings of recent senders without a lease, one per pipeline (0 = empty slot) */
  unknownRings: () => Uint32Array[]
  /** the rings of recent lease holders that sent an inner source they do not hold */
  spoofRings: () => Uint32Array[]
  /** a PeerCount counter of the peer at `index`, over every pipeline */
  peerCounter: (index: number, which: number) => number
  snapshot: () => object
  /** closes the fds; resolves when every pipeline has stopped */
  close: () => void | Promise<void>
}

export interface TunNetworkOptions {
  backend: 'vxlan' | 'ipip' | 'udp' | 'wireguard'
  /** the TUN, its address, route and rules (device.ts, shared by the TUN backends) */
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
  /** the UDP port the peer listens on, if not the table's (wireguard: its BackendData's Port) */
  portOf?: (lease: Lease) => number
  /** a usable peer's lease went into the table at `index` (wireguard: its key), before any traffic can use it */
  peerSet?: (index: number, lease: Lease) => void
  /** the peer at `index` left the table (wireguard: its sessions end) */
  peerDeleted?: (index: number) => void
  /** what `weft status` shows of the peer at `index` beyond the table's (wireguard: endpoint, handshake) */
  peerStatus?: (index: number) => Record<string, unknown>
  /** the rules the device keeps for a lease (all the network's families), or undefined if it keeps none */
  rulesFor?: (lease: Lease) => RulesScope | undefined
  /** our lease moved: anything the backend keeps per subnet (the UDP backend's ICMP source) */
  onSubnet?: (lease: Lease) => void
  /** the network closed, its dataplane and device gone (the peer offload's programs) */
  onClose?: () => void
  log: Logger
}

const RESYNC_MS = 5000
/** subnets a conflict's warning lists */
const CONFLICT_SUBNETS_NAMED = 8

/** This host's IPv4 addresses (uint32), and `extra`. */
function localAddresses (extra: number): number[] {
  const out = new Set<number>([extra >>> 0])
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4') out.add(parseIp4(a.address) >>> 0)
  }
  // our public IP first: if there are more than the dataplane holds, it is kept
  return [...out]
}

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
  udp: { table: 'route table', packets: 'UDP-encapsulated packets' },
  wireguard: { table: 'peer table', packets: 'WireGuard messages' }
} as const

export class TunNetwork implements Network {
  readonly mtu: number
  private lease: Lease
  // What a store writer or a sender controls is named once each, in bounded
  // memory and at a bounded rate (OnceLog), and counted
  private readonly unknownSenders: OnceLog
  private readonly spoofers: OnceLog
  private readonly unusable: OnceLog
  private readonly parked = new ParkedLeases()
  private readonly tableFull: OnceLog
  private readonly ownIp: OnceLog
  private readonly conflicted: OnceLog
  private local = ''
  /** times a public IP came to be claimed by more than one lease */
  conflicts = 0
  /** subnets routed directly (DirectRouting) */
  private readonly direct = new Set<string>()
  private readonly timer: NodeJS.Timeout
  private closed = false
  private gsoRefusalLogged = false

  constructor (private readonly o: TunNetworkOptions) {
    this.mtu = o.mtu
    this.lease = o.lease
    const what = WORDS[o.backend].packets
    this.unknownSenders = new OnceLog(o.log, `dropping ${what} from an address that holds no lease`)
    this.spoofers = new OnceLog(o.log, `dropping ${what} whose inner source is not the sender's: not in a subnet its lease holds, or one of this node's addresses`)
    this.unusable = new OnceLog(o.log, 'ignoring a peer this backend cannot reach')
    this.tableFull = new OnceLog(o.log, 'ignoring a peer: the peer table is full', { level: 'error' })
    this.ownIp = new OnceLog(o.log, 'ignoring a lease that holds our own public IP (stale?)')
    this.conflicted = new OnceLog(o.log, 'more than one lease claims this public IP: traffic from it is taken for each of their subnets, and counted to the oldest; find the node that is misconfigured (or the writer that borrowed the address)')
    o.dataplane.setOwnSubnet(o.lease.subnet.ip, o.lease.subnet.prefixLen)
    this.refreshLocal()
    // Off the hot path: name each sender without a lease once, and follow
    // this host's addresses (the device resyncs its own rules, every
    // --iptables-resync seconds).
    this.timer = setInterval(() => {
      this.report()
      this.refreshLocal()
    }, RESYNC_MS)
    this.timer.unref()
  }

  handlePeers (events: readonly PeerEvent[]): void {
    this.apply(events)
    // a lease skipped for what another held (a WireGuard key) may be good now
    if (this.parked.size > 0) this.apply(this.parked.ready((l) => this.o.unusable(l) === undefined))
  }

  private apply (events: readonly PeerEvent[]): void {
    const { fdb, log } = this.o
    for (const e of events) {
      const l = e.lease
      // an IPv6-only peer of a dual-stack network is the IPv6 half's alone (network6.ts)
      if (!hasIPv4(l)) continue
      const key = formatCidr(l.subnet)
      const publicIP = ip4ToString(l.attrs.publicIP)
      this.parked.drop(key)
      if (e.type === 'removed') {
        if (fdb.claimants(l.attrs.publicIP) <= 2) this.conflicted.forget(String(l.attrs.publicIP >>> 0))
        if (this.remove(l)) log.info({ subnet: key, publicIP, ...(fdb.claimants(l.attrs.publicIP) > 0 ? { stillClaimedBy: fdb.claimants(l.attrs.publicIP) } : {}) }, `peer removed from the ${WORDS[this.o.backend].table}`)
        this.undirect(l)
        this.forget(key)
        continue
      }
      const badIp = unusablePublicIP(l.attrs.publicIP)
      const why = badIp ?? this.o.unusable(l)
      if (why !== undefined) {
        if (badIp === undefined) this.parked.park(key, l)
        this.remove(l)
        this.undirect(l)
        this.o.dataplane.stats[Drop.PEER_UNUSABLE]++
        this.unusable.warn(key, { subnet: key, publicIP, reason: why })
        continue
      }
      if (l.attrs.publicIP === this.o.ownPublicIP) {
        // a put of it again (its holder renewing, or a writer repeating it) says nothing new
        if (this.remove(l)) this.undirect(l)
        this.ownIp.warn(key, { subnet: key })
        continue
      }
      let index: number
      try {
        index = fdb.set(l.subnet, l.attrs.publicIP, this.o.macOf?.(l), this.o.portOf?.(l), this.o.remCsumOf?.(l) ?? false)
      } catch (err) {
        // A full peer table must not stop the node: anyone who can write a
        // lease could otherwise take every node down with one too many.
        // The peers already in the table keep working.
        if ((err as { code?: string }).code !== 'EFDBFULL') throw err
        this.o.dataplane.stats[Drop.PEER_UNUSABLE]++
        this.tableFull.warn(key, { subnet: key, publicIP, reason: (err as Error).message })
        continue
      }
      this.o.peerSet?.(index, l)
      this.forget(key)
      this.noteConflict(l.attrs.publicIP)
      const direct = this.o.direct !== undefined && directlyConnected(this.o.underlayName, l.attrs.publicIP)
      if (direct) {
        this.direct.add(key)
        void this.o.direct?.add(l.subnet, l.attrs.publicIP).then((ok) => { if (!ok) this.direct.delete(key) })
      } else {
        this.undirect(l)
      }
      const entry = fdb.entry(index)
      const mac = entry?.mac
      log.info({ subnet: key, publicIP, ...(mac !== undefined ? { vtepMAC: mac } : {}), ...(entry?.remCsum === true ? { remoteChecksumOffload: true } : {}), path: direct ? 'direct' : 'tunnel' }, `peer added to the ${WORDS[this.o.backend].table}`)
    }
  }

  async setLease (lease: Lease): Promise<void> {
    this.lease = lease
    this.o.dataplane.setOwnSubnet(lease.subnet.ip, lease.subnet.prefixLen)
    this.o.onSubnet?.(lease)
    await this.o.device.setSubnet(`${ip4ToString(lease.subnet.ip)}/32`, this.o.rulesFor?.(lease))
  }

  status (): NetworkStatus {
    const { fdb, dataplane } = this.o
    return {
      backend: this.o.backend,
      device: this.o.device.name,
      mtu: this.mtu,
      peers: fdb.entries().map((e) => {
        const subnet = formatCidr(e.subnet)
        const extra = this.o.peerStatus?.(e.index)
        // what the kernel carried for us (the peer offload) counts as sent to or received from the peer, and is also shown apart
        const offloaded = (k: string): number => Number(extra?.[k] ?? 0)
        return {
          subnet,
          publicIP: ip4ToString(e.publicIP),
          ...(e.mac !== undefined ? { vtepMAC: e.mac } : {}),
          ...(e.remCsum ? { remoteChecksumOffload: true } : {}),
          path: this.direct.has(subnet) ? 'direct' : 'tunnel',
          insidePackets: dataplane.peerCounter(e.index, PeerCount.INSIDE_PACKETS) + offloaded('offloadPackets'),
          insideBytes: dataplane.peerCounter(e.index, PeerCount.INSIDE_BYTES) + offloaded('offloadBytes'),
          outsidePackets: dataplane.peerCounter(e.index, PeerCount.OUTSIDE_PACKETS) + offloaded('offloadInPackets'),
          outsideBytes: dataplane.peerCounter(e.index, PeerCount.OUTSIDE_BYTES) + offloaded('offloadInBytes'),
          ...extra
        }
      }),
      offloads: { ...this.o.device.offloads, gso: this.o.device.offloads.gso && !this.gsoRefused() },
      // what the kernel dropped before we could read it: the TUN queue was full
      tunQueueDrops: tunTxDropped(this.o.device.name),
      conflicts: fdb.conflicts().map((c) => ({ publicIP: ip4ToString(c.publicIP), subnets: c.subnets.map(formatCidr) })),
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
    this.o.onClose?.()
  }

  /**
   * More than one lease names this public IP: say so once, until it is
   * down to one again. Traffic from the address is taken for all of their subnets
   * (Fdb), so nobody is cut off; the operator should find out which is real.
   */
  private noteConflict (publicIP: number): void {
    const { fdb } = this.o
    const n = fdb.claimants(publicIP)
    const name = String(publicIP >>> 0)
    if (n < 2 || this.conflicted.has(name)) return
    this.conflicts++
    // a writer may pile thousands of leases on one address: name a few
    this.conflicted.warn(name, { publicIP: ip4ToString(publicIP), claimants: n, subnets: fdb.claimantsOf(publicIP, CONFLICT_SUBNETS_NAMED).map(formatCidr) })
  }

  /** Take the lease's subnet out of the table (telling the backend); whether it was there. */
  private remove (l: Lease): boolean {
    const index = this.o.peerDeleted !== undefined ? this.o.fdb.lookup(l.subnet.ip | 0) : -1
    if (!this.o.fdb.delete(l.subnet)) return false
    if (index >= 0 && this.o.fdb.lookup(l.subnet.ip | 0) < 0) this.o.peerDeleted?.(index)
    return true
  }

  /** A lease that went, or came good: name it again if it turns bad again. */
  private forget (key: string): void {
    this.unusable.forget(key)
    this.tableFull.forget(key)
    this.ownIp.forget(key)
  }

  /** This host's addresses, to the dataplane when they change. */
  private refreshLocal (): void {
    const addrs = localAddresses(this.o.ownPublicIP)
    const key = addrs.join(',')
    if (key === this.local) return
    this.local = key
    if (addrs.length > MAX_LOCAL_ADDRESSES) this.o.log.warn({ addresses: addrs.length, checked: MAX_LOCAL_ADDRESSES }, 'this host has more IPv4 addresses than the source check holds: packets from a peer claiming one of the others as their source are not refused for it')
    this.o.dataplane.setLocalAddresses(addrs)
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
    this.name(this.o.dataplane.unknownRings(), this.unknownSenders, 'unknown_source')
    this.name(this.o.dataplane.spoofRings(), this.spoofers, 'spoofed_source')
  }

  /** Senders the rings hold that `once` has not named yet, named with the drop count so far. */
  private name (rings: Uint32Array[], once: OnceLog, drop: string): void {
    let dropped: number | undefined // summed over the pipelines once, and only if someone new is named
    for (const ring of rings) {
      for (let i = 0; i < UNKNOWN_RING; i++) {
        const a = ring[i]
        if (a === 0 || once.has(String(a))) continue
        dropped ??= (this.o.dataplane.snapshot() as { drops: Record<string, number> }).drops[drop] ?? 0
        once.warn(String(a), { source: ip4ToString(a), dropped })
      }
    }
  }
}
