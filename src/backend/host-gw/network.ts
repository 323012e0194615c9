// The host-gw backend's run loop over lease events: a host-gw peer on our
// link becomes a kernel route (routes.ts), one per family the network has,
// as flannel's RouteNetwork adds `<subnet> via <PublicIP>` and `<subnet6>
// via <PublicIPv6>`; a peer that is not directly connected cannot be reached
// without a tunnel, so it is skipped and named in the log once, and so is a
// peer whose lease has an IPv6 subnet but no usable PublicIPv6 (flannel
// would route it to "::" or fail). Nothing else to do per packet: the
// kernel forwards.
import { formatCidr } from '../../packet/net'
import { contains6, formatCidr6, ip6ToString, parseIp6 } from '../../packet/net6'
import { hasIPv4, leaseKey, unusablePublicIP } from '../../subnet/lease'
import type { Lease } from '../../subnet/lease'
import type { PeerEvent } from '../../lease/watcher'
import { DEFAULT_RESYNC_MS, resyncEvery, type TrafficManager } from '../../kernel/traffic'
import type { Logger } from '../../log'
import { OnceLog } from '../../util/log-once'
import { ip4ToString } from '../../packet/ip'
import type { Underlay } from '../../kernel/iface'
import { otherBackend } from '../backend'
import type { Network, NetworkStatus } from '../backend'
import { directlyConnected, directlyConnected6 } from '../../kernel/routes'
import type { PeerRoutes } from '../../kernel/routes'

export interface HostGwNetworkOptions {
  routes: PeerRoutes
  rules: Pick<TrafficManager, 'apply' | 'resync' | 'remove'> & { readonly kind?: TrafficManager['kind'] }
  makeRules: (lease: Lease) => HostGwNetworkOptions['rules']
  lease: Lease
  mtu: number
  underlay: Underlay
  /** route peers' IPv4 subnets (the network's EnableIPv4; default true) */
  ipv4?: boolean
  /** route peers' IPv6 subnets (the network's EnableIPv6; default false) */
  ipv6?: boolean
  /** our own public IPv6, to tell a stale lease holding it */
  publicIPv6?: bigint
  /** --iptables-resync in ms: how often the rules are checked and repaired (default 5000) */
  resyncMs?: number
  log: Logger
}

type RouteState = 'pending' | 'routed' | 'refused' | 'not directly connected' | 'unusable'

interface Peer {
  lease: Lease
  /** the IPv4 route's state; undefined when the peer has no IPv4 route to make */
  state: RouteState | undefined
  /** the IPv6 route's state; undefined when the peer has no IPv6 route to make */
  state6: RouteState | undefined
}

/**
 * Why a peer cannot be routed to at the PublicIPv6 its lease gives, or
 * undefined (and the address) if it can: flannel writes null without IPv6,
 * and its decoder would give "::", which a route cannot go via.
 */
export function unusablePublicIPv6 (text: string | null): { reason: string } | { ip: bigint } {
  if (text === null || text === '') return { reason: 'its PublicIPv6 is missing' }
  let ip: bigint
  try {
    ip = parseIp6(text)
  } catch {
    return { reason: 'its PublicIPv6 is not an IPv6 address' }
  }
  if (ip === 0n) return { reason: 'its PublicIPv6 is ::' }
  if (ip === 1n) return { reason: 'its PublicIPv6 is the loopback address' }
  if (contains6({ ip: 0xffn << 120n, prefixLen: 8 }, ip)) return { reason: 'its PublicIPv6 is a multicast address' }
  if (contains6({ ip: 0xffffn << 32n, prefixLen: 96 }, ip)) return { reason: 'its PublicIPv6 is an IPv4-mapped address' }
  return { ip }
}

export class HostGwNetwork implements Network {
  readonly mtu: number
  private lease: Lease
  private rules: HostGwNetworkOptions['rules']
  private readonly ipv4: boolean
  private readonly ipv6: boolean
  private readonly peers = new Map<string, Peer>()
  /** subnets named in the log as unreachable or unusable, or holding our own address: once each, bounded (a store writer controls them) */
  private readonly reported = new Map<string, OnceLog>()
  /** stops the rules' resync loop */
  private stopResync: (() => Promise<void>) | undefined
  private closed = false

  constructor (private readonly o: HostGwNetworkOptions) {
    this.mtu = o.mtu
    this.lease = o.lease
    this.rules = o.rules
    this.ipv4 = o.ipv4 ?? true
    this.ipv6 = o.ipv6 ?? false
    this.stopResync = resyncEvery(() => this.rules, o.resyncMs ?? DEFAULT_RESYNC_MS, o.log)
  }

  handlePeers (events: readonly PeerEvent[]): void {
    const { routes } = this.o
    for (const e of events) {
      const l = e.lease
      const key = leaseKey(l)
      if (e.type === 'removed') {
        this.peers.delete(key)
        this.forget(key)
        this.forget(`${key} v6`)
        if (this.ipv4 && hasIPv4(l)) void routes.remove(l.subnet)
        if (this.ipv6 && l.subnet6 !== undefined) void routes.remove6(l.subnet6)
        continue
      }
      const peer: Peer = { lease: l, state: undefined, state6: undefined }
      const other = otherBackend(l, 'host-gw')
      if (other !== undefined) {
        // not ours to route in either family
        this.unroute(l)
        peer.state = this.ipv4 && hasIPv4(l) ? 'unusable' : undefined
        peer.state6 = this.ipv6 && l.subnet6 !== undefined ? 'unusable' : undefined
        if (peer.state === undefined && peer.state6 === undefined) peer.state = 'unusable'
        this.peers.set(key, peer)
        this.once('ignoring a peer this backend cannot reach').warn(key, { subnet: this.describe(l), reason: other })
        continue
      }
      if (this.ipv4 && hasIPv4(l)) peer.state = this.route4(key, l, peer)
      if (this.ipv6 && l.subnet6 !== undefined) peer.state6 = this.route6(key, l, peer)
      // a lease holding our own address (in every family it has) is not a peer
      if (peer.state === undefined && peer.state6 === undefined) continue
      this.peers.set(key, peer)
    }
  }

  /** The IPv4 route to the peer, as weft has always made it; undefined when the lease holds our own public IP. */
  private route4 (key: string, l: Lease, peer: Peer): RouteState | undefined {
    const { routes, underlay } = this.o
    const name = formatCidr(l.subnet)
    const publicIP = ip4ToString(l.attrs.publicIP)
    const noAddress = unusablePublicIP(l.attrs.publicIP)
    if (noAddress !== undefined) {
      void routes.remove(l.subnet)
      this.once('ignoring a peer this backend cannot reach').warn(key, { subnet: name, publicIP, reason: noAddress })
      return 'unusable'
    }
    if (l.attrs.publicIP === underlay.publicIP) {
      // named once: its holder's renewals (or a writer repeating it) say nothing new
      this.once('ignoring a lease that holds our own public IP (stale?)').warn(key, { subnet: name })
      return undefined
    }
    if (!directlyConnected(underlay.name, l.attrs.publicIP)) {
      // a peer that moved off our link loses its old route (queued after any add)
      void routes.remove(l.subnet)
      this.once('skipping a peer that is not on our link: host-gw cannot reach it (use vxlan, ipip or udp)').warn(key, { subnet: name, publicIP, iface: underlay.name })
      return 'not directly connected'
    }
    this.forget(key)
    void routes.add(l.subnet, l.attrs.publicIP).then((ok) => { peer.state = ok ? 'routed' : 'refused' })
    return 'pending'
  }

  /** The IPv6 route `<subnet6> via <PublicIPv6> dev <underlay>`; undefined when the lease holds our own public IPv6. */
  private route6 (key: string, l: Lease, peer: Peer): RouteState | undefined {
    const { routes, underlay } = this.o
    const subnet6 = l.subnet6
    if (subnet6 === undefined) return undefined
    const name = formatCidr6(subnet6)
    const k6 = `${key} v6`
    const pub = unusablePublicIPv6(l.attrs.publicIPv6)
    if ('reason' in pub) {
      void routes.remove6(subnet6)
      this.once('ignoring a peer\'s IPv6 subnet: no usable PublicIPv6 to route it via').warn(k6, { subnet6: name, publicIPv6: l.attrs.publicIPv6, reason: pub.reason })
      return 'unusable'
    }
    if (this.o.publicIPv6 !== undefined && pub.ip === this.o.publicIPv6) {
      this.once('ignoring a lease that holds our own public IPv6 (stale?)').warn(k6, { subnet6: name })
      return undefined
    }
    const publicIPv6 = ip6ToString(pub.ip)
    if (!directlyConnected6(underlay.name, pub.ip)) {
      void routes.remove6(subnet6)
      this.once('skipping a peer that is not on our link: host-gw cannot reach it (use vxlan, ipip or udp)').warn(k6, { subnet6: name, publicIPv6, iface: underlay.name })
      return 'not directly connected'
    }
    this.forget(k6)
    void routes.add6(subnet6, pub.ip).then((ok) => { peer.state6 = ok ? 'routed' : 'refused' })
    return 'pending'
  }

  async setLease (lease: Lease): Promise<void> {
    this.lease = lease
    // the old rules' resync must not put the old subnet back after this
    await this.stopResync?.()
    // apply() rewrites our rules in one transaction: no window without rules
    this.rules = this.o.makeRules(lease)
    try {
      await this.rules.apply()
    } finally {
      if (!this.closed) this.stopResync = resyncEvery(() => this.rules, this.o.resyncMs ?? DEFAULT_RESYNC_MS, this.o.log)
    }
  }

  status (): NetworkStatus {
    const { routes } = this.o
    const own = this.lease
    return {
      backend: 'host-gw',
      device: this.o.underlay.name,
      mtu: this.mtu,
      peers: [...this.peers.values()].map((p) => {
        const l = p.lease
        return {
          ...(p.state !== undefined ? { subnet: formatCidr(l.subnet), publicIP: ip4ToString(l.attrs.publicIP), route: p.state } : {}),
          ...(p.state6 !== undefined && l.subnet6 !== undefined ? { subnet6: formatCidr6(l.subnet6), publicIPv6: l.attrs.publicIPv6, route6: p.state6 } : {})
        }
      }),
      counters: {
        ...(this.ipv4 ? { subnet: formatCidr(own.subnet) } : {}),
        ...(own.subnet6 !== undefined ? { subnet6: formatCidr6(own.subnet6) } : {}),
        drops: {},
        counters: { routes: routes.size, routes_readded: routes.readded }
      }
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    const stop = this.stopResync
    this.stopResync = undefined
    await stop?.()
    await this.o.routes.close()
    await this.rules.remove()
  }

  /** Remove whatever route we had to the lease's subnets (a peer that changed backend). */
  private unroute (l: Lease): void {
    if (this.ipv4 && hasIPv4(l)) void this.o.routes.remove(l.subnet)
    if (this.ipv6 && l.subnet6 !== undefined) void this.o.routes.remove6(l.subnet6)
  }

  private describe (l: Lease): string {
    if (l.subnet6 === undefined) return formatCidr(l.subnet)
    return hasIPv4(l) ? `${formatCidr(l.subnet)} ${formatCidr6(l.subnet6)}` : formatCidr6(l.subnet6)
  }

  private once (msg: string): OnceLog {
    let o = this.reported.get(msg)
    if (o === undefined) {
      o = new OnceLog(this.o.log, msg)
      this.reported.set(msg, o)
    }
    return o
  }

  /** Name the peer (`key`, or `key v6` for its IPv6 side) again if it goes wrong again. */
  private forget (key: string): void {
    for (const o of this.reported.values()) o.forget(key)
  }
}
