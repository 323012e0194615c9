// The narrow interface every shared store implements (memory, SQLite, etcd).
// It knows keys, values, TTLs and revisions; which subnet to pick, when to
// renew and what a revocation means belong to src/lease.
//
// Revisions: every write gets a store-wide, increasing revision. A list
// returns the revision it saw; a watch from revision R delivers every change
// after R, in order. If R has been compacted away, the watch delivers a fresh
// snapshot instead, and carries on from there.
import { WeftError } from '../errors'
import type { Ip4Net } from '../packet/net'
import type { Ip6Net } from '../packet/net6'
import type { Lease, LeaseAttrs, Skipped } from '../subnet/lease'

export type StoreEvent =
  | { readonly type: 'put', readonly lease: Lease }
  /** flannel's store-level delete carries only the subnets (the key); the watcher adds the cached attrs */
  | { readonly type: 'delete', readonly subnet: Ip4Net, readonly subnet6?: Ip6Net, readonly revision: number }

/**
 * Why a watch handed over a snapshot instead of changes:
 * - compacted: the history from the watcher's revision is gone, the data is
 *   not; the snapshot is the whole truth, diff against it
 * - recreated: the store itself was lost and started again empty (a SQLite
 *   file deleted under us); leases missing from it may be about to be put
 *   back by their holders
 */
export type SnapshotReason = 'compacted' | 'recreated'

export interface WatchBatch {
  readonly events: readonly StoreEvent[]
  /** present after a compaction or a recreation: the whole current set, to replace what the caller knew */
  readonly snapshot?: readonly Lease[]
  /** present with snapshot */
  readonly reason?: SnapshotReason
  /** the revision this batch brings the caller up to */
  readonly revision: number
  /** values or keys met in this batch that are not valid leases */
  readonly skipped: readonly Skipped[]
}

export interface LeaseList {
  readonly leases: readonly Lease[]
  readonly revision: number
  readonly skipped: readonly Skipped[]
}

export interface WatchOptions {
  readonly signal: AbortSignal
  /** called for each failure while the store is unreachable; the watch keeps retrying with backoff */
  readonly onError?: (err: WeftError) => void
  /** called once the store answers again after errors */
  readonly onRecover?: () => void
}

export interface Store {
  readonly kind: 'memory' | 'sqlite' | 'etcd'
  /** The network config JSON text, or undefined if none has been set. */
  getConfig (): Promise<string | undefined>
  putConfig (text: string): Promise<void>
  listLeases (): Promise<LeaseList>
  /**
   * Create if absent. ttlSeconds 0 = a reservation (no expiry). Throws
   * StoreError EEXIST if the key is taken. A lease is named by its key,
   * flannel's MakeSubnetKey(subnet, subnet6): give subnet6 for a dual-stack
   * or IPv6-only lease (then subnet is 0.0.0.0/0). The embedded stores also
   * refuse (EEXIST) a lease whose subnet of either family overlaps another
   * key's: two nodes that picked the same IPv4 subnet with different IPv6
   * ones write different keys.
   */
  createLease (subnet: Ip4Net, attrs: LeaseAttrs, ttlSeconds: number, subnet6?: Ip6Net): Promise<Lease>
  /** Rewrite an existing lease with new attrs and a fresh TTL (0 = reservation). Throws StoreError ENOENT if it is gone. */
  renewLease (subnet: Ip4Net, attrs: LeaseAttrs, ttlSeconds: number, subnet6?: Ip6Net): Promise<Lease>
  /** Idempotent. */
  deleteLease (subnet: Ip4Net, subnet6?: Ip6Net): Promise<void>
  /** Batches of changes after fromRevision, until the signal aborts. Retries on store errors by itself. */
  watchLeases (fromRevision: number, opts: WatchOptions): AsyncIterable<WatchBatch>
  /** Idempotent. */
  close (): Promise<void>
}

/**
 * EUNAVAILABLE: the store did not answer, and may later (callers retry it).
 * ETLS: etcd and we disagree over a certificate; retrying cannot help until
 * someone changes one, so callers that wait out an outage do not wait on it.
 * EFORBIDDEN, EAUTH: the Kubernetes API refused a call (RBAC, or our
 * credentials); the message names the verb and the resource.
 */
export type StoreErrorCode = 'EEXIST' | 'ENOENT' | 'EUNAVAILABLE' | 'ETLS' | 'ECOMPACTED' | 'ESTORE' | 'EFORBIDDEN' | 'EAUTH'

export class StoreError extends WeftError {
  constructor (code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'StoreError'
  }
}

/** The lease TTL flannel uses for etcd (24 h). */
export const SUBNET_TTL_SECONDS = 24 * 60 * 60

export const BACKOFF_BASE_MS = 100
export const BACKOFF_MAX_MS = 5000

/**
 * The pause before retry number `attempt` (0-based) against a store that
 * failed: flannel's 100 ms doubling to 5 s, with "equal jitter" (a random
 * point in the upper half), so the nodes of a cluster that lost etcd at the
 * same moment do not all come back knocking at the same instants.
 */
export function backoffMs (attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(Math.max(0, attempt), 16))
  return Math.round(ceiling / 2 + random() * (ceiling / 2))
}
