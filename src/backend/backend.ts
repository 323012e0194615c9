// The two narrow interfaces every backend implements, in flannel's shape:
// a Backend knows its config and what it publishes in its lease; started on
// a lease it becomes a Network, the running thing that follows peer changes.
// Backends are listed in one explicit table (table.ts), not registered by
// import side effects.
import type { Lease, LeaseAttrs } from '../subnet/lease'
import type { PeerEvent } from '../lease/watcher'
import type { Logger } from '../log'
import type { NetworkConfig } from '../subnet/config'
import type { Underlay } from '../kernel/iface'
import { DEFAULT_TRAFFIC_SETTINGS, type TrafficSettings } from '../kernel/traffic'

export interface BackendContext {
  readonly config: NetworkConfig
  readonly underlay: Underlay
  /** the node's public IPv6 (--public-ipv6, or the underlay's global address) when the network has IPv6 */
  readonly publicIPv6?: bigint
  readonly stateDir: string
  readonly ipMasq: boolean
  /** dataplane threads (vxlan; 1 = the main thread only) */
  readonly workers?: number
  /** µs each dataplane loop keeps polling after a light batch (0 or absent: sleeps at once) */
  readonly busyPoll?: number
  /** drop decapsulated packets whose inner source the sender does not hold (default on) */
  readonly sourceCheck?: boolean
  /**
   * flanneld's rule flags: --iptables-forward-rules (forwardRules, default
   * true), --ip-masq-fully-random-disable (randomFully false), --iptables-resync
   * (resyncSeconds, default 5). iptables or nftables is the config's EnableNFTables.
   */
  readonly rules?: { readonly forwardRules?: boolean, readonly randomFully?: boolean, readonly resyncSeconds?: number }
  readonly log: Logger
}

/** How this backend's traffic rules are made and kept (traffic.ts), from the context. */
export function trafficSettings (ctx: Pick<BackendContext, 'config' | 'rules'>): TrafficSettings {
  const d = DEFAULT_TRAFFIC_SETTINGS
  const r = ctx.rules ?? {}
  return {
    nftables: ctx.config.enableNFTables,
    forwardRules: r.forwardRules ?? d.forwardRules,
    randomFully: r.randomFully ?? d.randomFully,
    resyncMs: r.resyncSeconds !== undefined ? r.resyncSeconds * 1000 : d.resyncMs
  }
}

export interface NetworkStatus {
  readonly backend: string
  readonly device: string
  readonly mtu: number
  readonly peers: ReadonlyArray<Record<string, unknown>>
  /** kernel offloads in use (TUN backends): tso, uso, gro, gso */
  readonly offloads?: Record<string, boolean>
  /** packets the kernel dropped because the TUN queue was full (TUN backends) */
  readonly tunQueueDrops?: number
  /** public IPs more than one lease claims (TUN backends), oldest claimant's subnet first */
  readonly conflicts?: ReadonlyArray<{ publicIP: string, subnets: string[] }>
  readonly counters: Record<string, unknown>
}

export interface Network {
  /** the pods' MTU (FLANNEL_MTU) */
  readonly mtu: number
  /** apply peer changes; called between batches, never concurrently */
  handlePeers (events: readonly PeerEvent[]): void
  /** our lease moved to another subnet (re-acquired after a revocation) */
  setLease (lease: Lease): Promise<void>
  status (): NetworkStatus
  /** remove the device, routes and rules; the lease is kept. Idempotent. */
  close (): Promise<void>
}

export interface Backend {
  readonly type: string
  /** what goes in our lease (before it is acquired) */
  leaseAttrs (): LeaseAttrs
  /** the pods' MTU for this config and underlay */
  mtu (): number
  start (lease: Lease): Promise<Network>
}

/** Why a backend cannot use a peer whose lease is of another type, or undefined. */
export function otherBackend (lease: Lease, ours: string): string | undefined {
  const theirs = lease.attrs.backendType === '' ? 'udp' : lease.attrs.backendType
  return theirs === ours ? undefined : `its backend is ${theirs}, not ${ours}`
}
