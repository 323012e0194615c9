// The lease events of the IPv6 WireGuard device (weft-wg-v6, flannel's
// flannel-wg-v6 in its "separate" Mode): each usable lease's IPv6 half is a
// peer whose allowed IPs are its IPv6 subnet and whose endpoint is
// [PublicIPv6]:BackendV6Data.Port, as flannel's handleSubnetEvents adds it.
// The IPv4 half of the same leases is the IPv4 device's (../tun/network.ts);
// a dual-stack node runs both (../tun/dual.ts).
// A lease without an IPv6 subnet is no peer here (passed over without a
// word, as flannel does); one with an IPv6 subnet but no usable PublicIPv6
// or BackendV6Data (or a key another lease holds, or ours) is skipped, named
// once and counted (peer_unusable).
import { formatCidr6, ip6ToString } from '../../packet/net6'
import type { Lease } from '../../subnet/lease'
import type { PeerEvent } from '../../lease/watcher'
import type { Logger } from '../../log'
import { OnceLog } from '../../util/log-once'
import type { Fdb6 } from '../../dataplane/fdb6'
import { PeerCount } from '../../dataplane/fdb'
import { Drop } from '../../dataplane/stats'
import type { Network, NetworkStatus } from '../backend'
import type { RulesScope, TunDevice } from '../tun/device'
import { usablePublicIPv6 } from '../tun/network6'
import { ParkedLeases } from '../tun/parked'
import type { WgLoops } from './loops'
import { peerData } from './peer-key'

export interface WgNetwork6Options {
  device: TunDevice
  loops: WgLoops
  fdb: Fdb6
  lease: Lease
  mtu: number
  /** our ListenPortV6: a peer whose BackendV6Data has no Port listens on it, as flannel reads it */
  listenPort: number
  /** our PublicIPv6: a lease naming it is ours (stale), not a peer */
  ownPublicIPv6: bigint
  /** the rules this device keeps for a lease (an IPv6-only node), or undefined */
  rulesFor?: (lease: Lease) => RulesScope | undefined
  log: Logger
}

export class WgNetwork6 implements Network {
  readonly mtu: number
  private lease: Lease
  /** subnet6 text -> table index, for the peers this network set */
  private readonly indexOf = new Map<string, number>()
  private readonly unusable: OnceLog
  private readonly parked = new ParkedLeases()
  private readonly tableFull: OnceLog
  private readonly ownIp: OnceLog
  private closed = false

  constructor (private readonly o: WgNetwork6Options) {
    this.mtu = o.mtu
    this.lease = o.lease
    this.unusable = new OnceLog(o.log, 'ignoring a peer this backend cannot reach over IPv6')
    this.tableFull = new OnceLog(o.log, 'ignoring a peer: the IPv6 peer table is full', { level: 'error' })
    this.ownIp = new OnceLog(o.log, 'ignoring a lease that holds our own public IPv6 (stale?)')
    if (o.lease.subnet6 !== undefined) o.loops.setOwnSubnet6(o.lease.subnet6)
  }

  handlePeers (events: readonly PeerEvent[]): void {
    this.apply(events)
    // a lease skipped for a key another peer held may be good now (../tun/parked.ts)
    if (this.parked.size > 0) {
      this.apply(this.parked.ready((l) => {
        const d = peerData(l, this.o.listenPort, 6)
        return !('reason' in d) && this.o.loops.unusableKey(l, d.publicKey) === undefined
      }))
    }
  }

  private apply (events: readonly PeerEvent[]): void {
    const { fdb, loops, log } = this.o
    for (const e of events) {
      const l = e.lease
      const sn = l.subnet6
      if (sn === undefined) continue
      const key = formatCidr6(sn)
      this.parked.drop(key)
      if (e.type === 'removed') {
        if (this.remove(key)) log.info({ subnet6: key, publicIPv6: l.attrs.publicIPv6 }, 'WireGuard IPv6 peer removed')
        this.forget(key)
        continue
      }
      const pub = usablePublicIPv6(l.attrs.publicIPv6)
      const d = peerData(l, this.o.listenPort, 6)
      const keyWhy = typeof pub === 'string' || 'reason' in d ? undefined : loops.unusableKey(l, d.publicKey)
      const why = typeof pub === 'string' ? pub : 'reason' in d ? d.reason : keyWhy
      if (why !== undefined || typeof pub === 'string' || 'reason' in d) {
        if (keyWhy !== undefined) this.parked.park(key, l)
        this.remove(key)
        loops.stats[Drop.PEER_UNUSABLE]++
        this.unusable.warn(key, { subnet6: key, publicIPv6: l.attrs.publicIPv6, reason: why })
        continue
      }
      if (pub === this.o.ownPublicIPv6) {
        this.remove(key)
        this.ownIp.warn(key, { subnet6: key })
        continue
      }
      let index: number
      try {
        index = fdb.set(sn, pub, undefined, d.port, false)
      } catch (err) {
        // as in ../tun/network.ts: a full table must not stop the node
        if ((err as { code?: string }).code !== 'EFDBFULL') throw err
        loops.stats[Drop.PEER_UNUSABLE]++
        this.tableFull.warn(key, { subnet6: key, reason: (err as Error).message })
        continue
      }
      this.indexOf.set(key, index)
      loops.setPeer(index, d, l)
      this.forget(key)
      log.info({ subnet6: key, endpoint: `[${ip6ToString(pub)}]:${d.port}`, publicKey: d.publicKeyText }, 'WireGuard IPv6 peer added')
    }
  }

  async setLease (lease: Lease): Promise<void> {
    this.lease = lease
    const sn = lease.subnet6
    if (sn === undefined) return
    this.o.loops.setOwnSubnet6(sn)
    await this.o.device.setSubnet(`${ip6ToString(sn.ip)}/128`, this.o.rulesFor?.(lease))
  }

  status (): NetworkStatus {
    const { fdb, loops } = this.o
    return {
      backend: 'wireguard',
      device: this.o.device.name,
      mtu: this.mtu,
      peers: fdb.entries().map((e) => ({
        subnet6: formatCidr6(e.subnet),
        publicIPv6: ip6ToString(e.publicIP),
        insidePackets: loops.peerCounter(e.index, PeerCount.INSIDE_PACKETS),
        insideBytes: loops.peerCounter(e.index, PeerCount.INSIDE_BYTES),
        outsidePackets: loops.peerCounter(e.index, PeerCount.OUTSIDE_PACKETS),
        outsideBytes: loops.peerCounter(e.index, PeerCount.OUTSIDE_BYTES),
        ...loops.peerStatus(e.index)
      })),
      offloads: { ...this.o.device.offloads },
      counters: { subnet6: this.lease.subnet6 !== undefined ? formatCidr6(this.lease.subnet6) : null, ...loops.snapshot() }
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.o.loops.close()
    await this.o.device.close()
  }

  /** Take a subnet's peer out of the table and the protocol; whether there was one. */
  private remove (key: string): boolean {
    const index = this.indexOf.get(key)
    if (index === undefined) return false
    this.indexOf.delete(key)
    const e = this.o.fdb.entry(index)
    if (e !== undefined) this.o.fdb.delete(e.subnet)
    this.o.loops.deletePeer(index)
    return true
  }

  private forget (key: string): void {
    this.unusable.forget(key)
    this.tableFull.forget(key)
    this.ownIp.forget(key)
  }
}
