// The VXLAN backend's run loop over lease events: each peer's lease becomes
// an FDB entry (subnet -> VTEP MAC -> public IP) and goes again when the
// lease does. Applied between batches, so traffic never pauses for it.
import { LRUCache } from 'lru-cache'
import { formatCidr } from '../../ip/net'
import type { Lease } from '../../lease/lease'
import type { PeerEvent } from '../../lease/watcher'
import type { Logger } from '../../log'
import { ip4ToString } from '../../packet/ip'
import { parseMac } from '../../packet/mac'
import type { Fdb } from '../../dataplane/fdb'
import { PER_PEER, PeerCount } from '../../dataplane/fdb'
import type { Pipeline } from '../../dataplane/pipeline'
import { UNKNOWN_RING } from '../../dataplane/outside'
import { Drop } from '../../dataplane/stats'
import type { Network, NetworkStatus } from '../backend'
import type { TunDevice } from '../tun-device'

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/

/** The VTEP MAC from a vxlan lease's BackendData, or why it is unusable. */
export function peerMac (lease: Lease): string | { reason: string } {
  if (lease.attrs.backendType !== 'vxlan') return { reason: `its backend is ${lease.attrs.backendType === '' ? 'udp' : lease.attrs.backendType}, not vxlan` }
  const d = lease.attrs.backendData
  const mac = d !== null && typeof d === 'object' ? (d as Record<string, unknown>).VtepMAC : undefined
  if (typeof mac !== 'string' || !MAC_RE.test(mac)) return { reason: 'its BackendData has no valid VtepMAC' }
  return mac.toLowerCase()
}

export interface VxlanNetworkOptions {
  device: TunDevice
  pipeline: Pipeline
  fdb: Fdb
  lease: Lease
  mtu: number
  ownPublicIP: number
  log: Logger
}

export class VxlanNetwork implements Network {
  readonly mtu: number
  private lease: Lease
  private readonly reported = new LRUCache<number, true>({ max: 1024 })
  private readonly unusable = new Set<string>()
  private readonly timer: NodeJS.Timeout
  private closed = false

  constructor (private readonly o: VxlanNetworkOptions) {
    this.mtu = o.mtu
    this.lease = o.lease
    o.pipeline.outside.setOwnSubnet(o.lease.subnet.ip, o.lease.subnet.prefixLen)
    // Off the hot path: name each sender without a lease once, and resync the
    // rules as flannel does every few seconds.
    this.timer = setInterval(() => { this.report(); void o.device.resync().catch((err: Error) => o.log.warn({ err: err.message }, 'could not re-apply the iptables rules')) }, 5000)
    this.timer.unref()
  }

  handlePeers (events: readonly PeerEvent[]): void {
    const { fdb, log } = this.o
    for (const e of events) {
      const l = e.lease
      const key = formatCidr(l.subnet)
      if (e.type === 'removed') {
        if (fdb.delete(l.subnet)) log.info({ subnet: key, publicIP: ip4ToString(l.attrs.publicIP) }, 'peer removed from the FDB')
        this.unusable.delete(key)
        continue
      }
      const mac = peerMac(l)
      if (typeof mac !== 'string') {
        fdb.delete(l.subnet)
        this.o.pipeline.stats[Drop.PEER_UNUSABLE]++
        if (!this.unusable.has(key)) log.warn({ subnet: key, publicIP: ip4ToString(l.attrs.publicIP), reason: mac.reason }, 'ignoring a peer this backend cannot reach')
        this.unusable.add(key)
        continue
      }
      if (l.attrs.publicIP === this.o.ownPublicIP) {
        log.warn({ subnet: key }, 'ignoring a lease that holds our own public IP (stale?)')
        continue
      }
      fdb.set(l.subnet, l.attrs.publicIP, parseMac(mac))
      this.unusable.delete(key)
      log.info({ subnet: key, publicIP: ip4ToString(l.attrs.publicIP), vtepMAC: mac }, 'peer added to the FDB')
    }
  }

  async setLease (lease: Lease): Promise<void> {
    this.lease = lease
    this.o.pipeline.outside.setOwnSubnet(lease.subnet.ip, lease.subnet.prefixLen)
    await this.o.device.setSubnet(lease.subnet)
  }

  status (): NetworkStatus {
    const { fdb, pipeline } = this.o
    return {
      backend: 'vxlan',
      device: this.o.device.name,
      mtu: this.mtu,
      peers: fdb.entries().map((e) => ({
        subnet: formatCidr(e.subnet),
        publicIP: ip4ToString(e.publicIP),
        vtepMAC: e.mac,
        insidePackets: fdb.perPeer[e.index * PER_PEER + PeerCount.INSIDE_PACKETS],
        insideBytes: fdb.perPeer[e.index * PER_PEER + PeerCount.INSIDE_BYTES],
        outsidePackets: fdb.perPeer[e.index * PER_PEER + PeerCount.OUTSIDE_PACKETS],
        outsideBytes: fdb.perPeer[e.index * PER_PEER + PeerCount.OUTSIDE_BYTES]
      })),
      counters: { subnet: formatCidr(this.lease.subnet), ...pipeline.snapshot() }
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    this.o.pipeline.close() // the TUN fd closes: the device and its route go with it
    await this.o.device.close()
  }

  private report (): void {
    const ring = this.o.pipeline.outside.unknownSources
    for (let i = 0; i < UNKNOWN_RING; i++) {
      const a = ring[i]
      if (a === 0 || this.reported.has(a)) continue
      this.reported.set(a, true)
      this.o.log.warn({ source: ip4ToString(a), dropped: this.o.pipeline.stats[Drop.UNKNOWN_SOURCE] }, 'dropping VXLAN from an address that holds no lease')
    }
  }
}
