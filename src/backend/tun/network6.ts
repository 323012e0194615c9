// The run loop over lease events for an IPv6 TUN network (vxlan's
// weft-v6.<VNI>, flannel's flannel-v6.<VNI>): each usable peer's lease
// becomes an entry in the IPv6 table (Fdb6: the lease's IPv6 subnet -> the
// peer's PublicIPv6 and its BackendV6Data VTEP MAC). The IPv4 half of the
// same leases is TunNetwork's (network.ts); a dual-stack node runs both
// (dual.ts), as flanneld runs both devices.
// A lease without an IPv6 subnet is no peer of this network (a node of a
// dual-stack cluster that runs IPv4 only): passed over without a word, as
// flannel does. One with an IPv6 subnet but no usable PublicIPv6 or VTEP
// MAC is skipped, named once and counted (peer_unusable).
import { networkInterfaces } from 'node:os'
import { formatCidr6, ip6FromWords, ip6ToString, parseIp6 } from '../../packet/net6'
import type { Ip6Net } from '../../packet/net6'
import type { Lease } from '../../subnet/lease'
import type { PeerEvent } from '../../lease/watcher'
import type { Logger } from '../../log'
import { OnceLog } from '../../util/log-once'
import type { Fdb6 } from '../../dataplane/fdb6'
import { PeerCount } from '../../dataplane/fdb'
import { Drop } from '../../dataplane/stats'
import type { Network, NetworkStatus } from '../backend'
import type { TunDevice, RulesScope } from './device'
import type { Dataplane } from './network'
import { MAX_LOCAL_ADDRESSES, UNKNOWN_RING } from '../../dataplane/outside-limits'

/** What the IPv6 network needs of its pipeline beyond a Dataplane's (src/dataplane/pipeline.ts). */
export interface Dataplane6 extends Dataplane {
  setOwnSubnet6: (subnet: Ip6Net) => void
  setLocalAddresses6: (addrs: readonly bigint[]) => void
  /** four words per address, 0s = an empty slot */
  unknownRings6: () => Uint32Array[]
  spoofRings6: () => Uint32Array[]
}

const RESYNC_MS = 5000

/** This host's IPv6 addresses, and our public one first (kept if there are more than the dataplane holds). */
function localAddresses6 (own: bigint): bigint[] {
  const out = new Set<bigint>([own])
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family !== 'IPv6') continue
      try { out.add(parseIp6(a.address.split('%')[0])) } catch { /* a form we do not read: skipped */ }
    }
  }
  return [...out]
}

export interface TunNetwork6Options {
  backend: 'vxlan'
  device: TunDevice
  dataplane: Dataplane6
  fdb: Fdb6
  lease: Lease
  mtu: number
  /** our PublicIPv6: a lease naming it is ours (stale), not a peer */
  ownPublicIPv6: bigint
  /** why this backend cannot use a peer's lease (another backend type, no v6 VTEP MAC), or undefined */
  unusable: (lease: Lease) => string | undefined
  macOf: (lease: Lease) => Buffer | undefined
  remCsumOf?: (lease: Lease) => boolean
  /** the rules this network's device keeps for a lease (IPv6-only: this device keeps them), or undefined */
  rulesFor?: (lease: Lease) => RulesScope | undefined
  log: Logger
}

/** A lease's PublicIPv6 as a number, or why no peer can be reached at it. */
export function usablePublicIPv6 (text: string | null): bigint | string {
  if (text === null || text === '') return 'its lease has no PublicIPv6'
  let ip: bigint
  try {
    ip = parseIp6(text)
  } catch {
    return `its PublicIPv6 ${JSON.stringify(text.slice(0, 64))} is not an IPv6 address`
  }
  if (ip === 0n) return 'its PublicIPv6 is ::'
  if (ip === 1n) return 'its PublicIPv6 is the loopback address'
  if (ip >> 120n === 0xffn) return 'its PublicIPv6 is a multicast address'
  if (ip >> 32n === 0xffffn) return 'its PublicIPv6 is an IPv4-mapped address'
  return ip
}

export class TunNetwork6 implements Network {
  readonly mtu: number
  private lease: Lease
  private readonly unusable: OnceLog
  private readonly tableFull: OnceLog
  private readonly ownIp: OnceLog
  private readonly unknownSenders: OnceLog
  private readonly spoofers: OnceLog
  private local = ''
  private readonly timer: NodeJS.Timeout
  private closed = false

  constructor (private readonly o: TunNetwork6Options) {
    this.mtu = o.mtu
    this.lease = o.lease
    this.unusable = new OnceLog(o.log, 'ignoring a peer this backend cannot reach over IPv6')
    this.tableFull = new OnceLog(o.log, 'ignoring a peer: the IPv6 peer table is full', { level: 'error' })
    this.ownIp = new OnceLog(o.log, 'ignoring a lease that holds our own public IPv6 (stale?)')
    this.unknownSenders = new OnceLog(o.log, 'dropping VXLAN over IPv6 from an address that holds no lease')
    this.spoofers = new OnceLog(o.log, 'dropping VXLAN over IPv6 whose inner source is not the sender\'s: not in a subnet its lease holds, or one of this node\'s addresses')
    this.ownSubnet(o.lease)
    this.refreshLocal()
    // off the hot path, as network.ts: name new senders once, follow this host's addresses
    this.timer = setInterval(() => {
      this.name(o.dataplane.unknownRings6(), this.unknownSenders, 'unknown_source')
      this.name(o.dataplane.spoofRings6(), this.spoofers, 'spoofed_source')
      this.refreshLocal()
    }, RESYNC_MS)
    this.timer.unref()
  }

  handlePeers (events: readonly PeerEvent[]): void {
    const { fdb, log } = this.o
    for (const e of events) {
      const l = e.lease
      const sn = l.subnet6
      if (sn === undefined) continue
      const key = formatCidr6(sn)
      if (e.type === 'removed') {
        if (fdb.delete(sn)) log.info({ subnet6: key, publicIPv6: l.attrs.publicIPv6 }, 'peer removed from the IPv6 FDB')
        this.forget(key)
        continue
      }
      const pub = usablePublicIPv6(l.attrs.publicIPv6)
      const why = typeof pub === 'string' ? pub : this.o.unusable(l)
      if (why !== undefined || typeof pub === 'string') {
        fdb.delete(sn)
        this.o.dataplane.stats[Drop.PEER_UNUSABLE]++
        this.unusable.warn(key, { subnet6: key, publicIPv6: l.attrs.publicIPv6, reason: why })
        continue
      }
      if (pub === this.o.ownPublicIPv6) {
        fdb.delete(sn)
        this.ownIp.warn(key, { subnet6: key })
        continue
      }
      try {
        fdb.set(sn, pub, this.o.macOf(l), 0, this.o.remCsumOf?.(l) ?? false)
      } catch (err) {
        // as in network.ts: a full table must not stop the node
        if ((err as { code?: string }).code !== 'EFDBFULL') throw err
        this.o.dataplane.stats[Drop.PEER_UNUSABLE]++
        this.tableFull.warn(key, { subnet6: key, reason: (err as Error).message })
        continue
      }
      this.forget(key)
      log.info({ subnet6: key, publicIPv6: ip6ToString(pub), vtepMAC: macText(this.o.macOf(l)) }, 'peer added to the IPv6 FDB')
    }
  }

  async setLease (lease: Lease): Promise<void> {
    this.lease = lease
    this.ownSubnet(lease)
    const sn = lease.subnet6
    if (sn === undefined) return
    await this.o.device.setSubnet(`${ip6ToString(sn.ip)}/128`, this.o.rulesFor?.(lease))
  }

  status (): NetworkStatus {
    const { fdb, dataplane } = this.o
    return {
      backend: this.o.backend,
      device: this.o.device.name,
      mtu: this.mtu,
      peers: fdb.entries().map((e) => ({
        subnet6: formatCidr6(e.subnet),
        publicIPv6: ip6ToString(e.publicIP),
        ...(e.mac !== undefined ? { vtepMAC: e.mac } : {}),
        ...(e.remCsum ? { remoteChecksumOffload: true } : {}),
        insidePackets: dataplane.peerCounter(e.index, PeerCount.INSIDE_PACKETS),
        insideBytes: dataplane.peerCounter(e.index, PeerCount.INSIDE_BYTES),
        outsidePackets: dataplane.peerCounter(e.index, PeerCount.OUTSIDE_PACKETS),
        outsideBytes: dataplane.peerCounter(e.index, PeerCount.OUTSIDE_BYTES)
      })),
      offloads: { ...this.o.device.offloads },
      counters: { subnet6: this.lease.subnet6 !== undefined ? formatCidr6(this.lease.subnet6) : null, ...dataplane.snapshot() }
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    await this.o.dataplane.close()
    await this.o.device.close()
  }

  /** The dataplane's own subnet (what the outside path delivers to). */
  private ownSubnet (lease: Lease): void {
    const sn: Ip6Net | undefined = lease.subnet6
    if (sn !== undefined) this.o.dataplane.setOwnSubnet6(sn)
  }

  /** This host's IPv6 addresses, to the dataplane when they change. */
  private refreshLocal (): void {
    const addrs = localAddresses6(this.o.ownPublicIPv6)
    const key = addrs.join(',')
    if (key === this.local) return
    this.local = key
    if (addrs.length > MAX_LOCAL_ADDRESSES) this.o.log.warn({ addresses: addrs.length, checked: MAX_LOCAL_ADDRESSES }, 'this host has more IPv6 addresses than the source check holds')
    this.o.dataplane.setLocalAddresses6(addrs.slice(0, MAX_LOCAL_ADDRESSES))
  }

  /** Senders the rings hold that `once` has not named yet, named with the drop count so far. */
  private name (rings: Uint32Array[], once: OnceLog, drop: string): void {
    let dropped: number | undefined
    for (const ring of rings) {
      for (let i = 0; i < UNKNOWN_RING; i++) {
        const w = i * 4
        if ((ring[w] | ring[w + 1] | ring[w + 2] | ring[w + 3]) === 0) continue
        const text = ip6ToString(ip6FromWords(ring, w))
        if (once.has(text)) continue
        dropped ??= (this.o.dataplane.snapshot() as { drops: Record<string, number> }).drops[drop] ?? 0
        once.warn(text, { source: text, dropped })
      }
    }
  }

  private forget (key: string): void {
    this.unusable.forget(key)
    this.tableFull.forget(key)
    this.ownIp.forget(key)
  }
}

function macText (mac: Buffer | undefined): string | undefined {
  return mac === undefined ? undefined : [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':')
}
