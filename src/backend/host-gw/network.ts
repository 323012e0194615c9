// The host-gw backend's run loop over lease events: a host-gw peer on our
// link becomes a kernel route (routes.ts); one that is not directly
// connected cannot be reached without a tunnel, so it is skipped and named
// in the log once. Nothing else to do per packet: the kernel forwards.
import { formatCidr } from '../../packet/net'
import { unusablePublicIP } from '../../subnet/lease'
import type { Lease } from '../../subnet/lease'
import type { PeerEvent } from '../../lease/watcher'
import { DEFAULT_RESYNC_MS, resyncEvery, type TrafficManager } from '../../kernel/traffic'
import type { Logger } from '../../log'
import { OnceLog } from '../../util/log-once'
import { ip4ToString } from '../../packet/ip'
import type { Underlay } from '../../kernel/iface'
import { otherBackend } from '../backend'
import type { Network, NetworkStatus } from '../backend'
import { directlyConnected } from '../../kernel/routes'
import type { PeerRoutes } from '../../kernel/routes'

export interface HostGwNetworkOptions {
  routes: PeerRoutes
  rules: Pick<TrafficManager, 'apply' | 'resync' | 'remove'> & { readonly kind?: TrafficManager['kind'] }
  makeRules: (subnet: Lease['subnet']) => HostGwNetworkOptions['rules']
  lease: Lease
  mtu: number
  underlay: Underlay
  /** --iptables-resync in ms: how often the rules are checked and repaired (default 5000) */
  resyncMs?: number
  log: Logger
}

interface Peer { lease: Lease, state: 'pending' | 'routed' | 'refused' | 'not directly connected' | 'unusable' }

export class HostGwNetwork implements Network {
  readonly mtu: number
  private lease: Lease
  private rules: HostGwNetworkOptions['rules']
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
    this.stopResync = resyncEvery(() => this.rules, o.resyncMs ?? DEFAULT_RESYNC_MS, o.log)
  }

  handlePeers (events: readonly PeerEvent[]): void {
    const { routes, underlay } = this.o
    for (const e of events) {
      const l = e.lease
      const key = formatCidr(l.subnet)
      const publicIP = ip4ToString(l.attrs.publicIP)
      if (e.type === 'removed') {
        this.peers.delete(key)
        this.forget(key)
        void routes.remove(l.subnet)
        continue
      }
      const noAddress = unusablePublicIP(l.attrs.publicIP)
      if (noAddress !== undefined) {
        this.skip(key, l, 'unusable', { publicIP, reason: noAddress }, 'ignoring a peer this backend cannot reach')
        continue
      }
      const other = otherBackend(l, 'host-gw')
      if (other !== undefined) {
        this.skip(key, l, 'unusable', { reason: other }, 'ignoring a peer this backend cannot reach')
        continue
      }
      if (l.attrs.publicIP === underlay.publicIP) {
        // named once: its holder's renewals (or a writer repeating it) say nothing new
        this.once('ignoring a lease that holds our own public IP (stale?)').warn(key, { subnet: key })
        continue
      }
      if (!directlyConnected(underlay.name, l.attrs.publicIP)) {
        this.skip(key, l, 'not directly connected', { publicIP, iface: underlay.name }, 'skipping a peer that is not on our link: host-gw cannot reach it (use vxlan, ipip or udp)')
        continue
      }
      const peer: Peer = { lease: l, state: 'pending' }
      this.peers.set(key, peer)
      this.forget(key)
      void routes.add(l.subnet, l.attrs.publicIP).then((ok) => { peer.state = ok ? 'routed' : 'refused' })
    }
  }

  async setLease (lease: Lease): Promise<void> {
    this.lease = lease
    // the old rules' resync must not put the old subnet back after this
    await this.stopResync?.()
    // apply() rewrites our rules in one transaction: no window without rules
    this.rules = this.o.makeRules(lease.subnet)
    try {
      await this.rules.apply()
    } finally {
      if (!this.closed) this.stopResync = resyncEvery(() => this.rules, this.o.resyncMs ?? DEFAULT_RESYNC_MS, this.o.log)
    }
  }

  status (): NetworkStatus {
    const { routes } = this.o
    return {
      backend: 'host-gw',
      device: this.o.underlay.name,
      mtu: this.mtu,
      peers: [...this.peers.values()].map((p) => ({ subnet: formatCidr(p.lease.subnet), publicIP: ip4ToString(p.lease.attrs.publicIP), route: p.state })),
      counters: { subnet: formatCidr(this.lease.subnet), drops: {}, counters: { routes: routes.size, routes_readded: routes.readded } }
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

  private skip (key: string, l: Lease, state: Peer['state'], fields: Record<string, unknown>, msg: string): void {
    // a peer that moved off our link (or changed backend) loses its old route
    // (queued after any add, so this holds whatever order the events came in)
    void this.o.routes.remove(l.subnet)
    this.peers.set(key, { lease: l, state })
    this.once(msg).warn(key, { subnet: key, ...fields })
  }

  private once (msg: string): OnceLog {
    let o = this.reported.get(msg)
    if (o === undefined) {
      o = new OnceLog(this.o.log, msg)
      this.reported.set(msg, o)
    }
    return o
  }

  private forget (key: string): void {
    for (const o of this.reported.values()) o.forget(key)
  }
}
