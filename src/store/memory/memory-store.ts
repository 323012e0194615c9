// An in-process store with the same semantics as the shared ones (revisions,
// TTLs, watches, compaction), for unit tests and for the conformance suite's
// reference behaviour. Values are kept as the same JSON text the other
// stores hold, so decoding and skipping work identically.
import { makeSubnetKey } from '../../packet/net'
import type { Ip4Net } from '../../packet/net'
import type { Ip6Net } from '../../packet/net6'
import { encodeLeaseAttrs } from '../../subnet/lease-json'
import { describeSubnets } from '../../subnet/lease'
import type { Lease, LeaseAttrs, Skipped } from '../../subnet/lease'
import { conflictingKey } from '../conflict'
import { deleteFromKey, isSkipped, leaseFromEntry } from '../decode'
import { StoreError } from '../store'
import type { LeaseList, Store, StoreEvent, WatchBatch, WatchOptions } from '../store'

interface Entry { value: string, expiration: number | null, revision: number }
interface LogRecord { revision: number, key: string, entry: Entry | null }

export interface MemoryStoreOptions {
  /** clock, for tests that move time by hand */
  now?: () => number
}

export class MemoryStore implements Store {
  readonly kind = 'memory' as const
  private readonly now: () => number
  private readonly entries = new Map<string, Entry>()
  private readonly log: LogRecord[] = []
  private revision = 0
  private compactedTo = 0
  private config: string | undefined
  private readonly waiters = new Set<() => void>()
  private closed = false

  constructor (opts: MemoryStoreOptions = {}) {
    this.now = opts.now ?? Date.now
  }

  async getConfig (): Promise<string | undefined> { return this.config }

  async putConfig (text: string): Promise<void> { this.config = text }

  async listLeases (): Promise<LeaseList> {
    this.expire()
    const leases: Lease[] = []
    const skipped: Skipped[] = []
    for (const [key, e] of this.entries) {
      const l = leaseFromEntry(key, e.value, e.expiration, e.revision)
      if (isSkipped(l)) skipped.push(l)
      else leases.push(l)
    }
    return { leases, revision: this.revision, skipped }
  }

  async createLease (subnet: Ip4Net, attrs: LeaseAttrs, ttlSeconds: number, subnet6?: Ip6Net): Promise<Lease> {
    this.expire()
    const taken = conflictingKey(this.entries.keys(), subnet, subnet6)
    if (taken !== undefined) throw new StoreError('EEXIST', `subnet ${describeSubnets(subnet, subnet6)} is already leased (key ${taken})`)
    return this.write(makeSubnetKey(subnet, subnet6), subnet, subnet6, attrs, ttlSeconds)
  }

  async renewLease (subnet: Ip4Net, attrs: LeaseAttrs, ttlSeconds: number, subnet6?: Ip6Net): Promise<Lease> {
    this.expire()
    const key = makeSubnetKey(subnet, subnet6)
    if (!this.entries.has(key)) throw new StoreError('ENOENT', `lease for ${describeSubnets(subnet, subnet6)} is gone`)
    return this.write(key, subnet, subnet6, attrs, ttlSeconds)
  }

  async deleteLease (subnet: Ip4Net, subnet6?: Ip6Net): Promise<void> {
    this.expire()
    const key = makeSubnetKey(subnet, subnet6)
    if (this.entries.delete(key)) this.append(key, null)
  }

  /** Test hook: store any key/value, as a hand-written etcdctl put would. */
  putRaw (key: string, value: string, ttlSeconds = 0): void {
    const entry = { value, expiration: ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 : null, revision: this.revision + 1 }
    this.entries.set(key, entry)
    this.append(key, entry)
  }

  /** Test hook: forget history up to and including `revision`, like an etcd compaction. */
  compact (revision = this.revision): void {
    this.compactedTo = Math.max(this.compactedTo, revision)
    while (this.log.length > 0 && this.log[0].revision <= this.compactedTo) this.log.shift()
  }

  async * watchLeases (fromRevision: number, opts: WatchOptions): AsyncIterable<WatchBatch> {
    let rev = fromRevision
    while (!opts.signal.aborted && !this.closed) {
      this.expire()
      if (rev < this.compactedTo) {
        const list = await this.listLeases()
        rev = list.revision
        yield { events: [], snapshot: list.leases, reason: 'compacted', revision: rev, skipped: list.skipped }
        continue
      }
      const events: StoreEvent[] = []
      const skipped: Skipped[] = []
      for (const r of this.log) {
        if (r.revision <= rev) continue
        if (r.entry === null) {
          const d = deleteFromKey(r.key, r.revision)
          if (isSkipped(d)) skipped.push(d)
          else events.push(d)
        } else {
          const l = leaseFromEntry(r.key, r.entry.value, r.entry.expiration, r.revision)
          if (isSkipped(l)) skipped.push(l)
          else events.push({ type: 'put', lease: l })
        }
      }
      if (this.revision > rev) {
        rev = this.revision
        yield { events, revision: rev, skipped }
        continue
      }
      await this.changed(opts.signal)
    }
  }

  async close (): Promise<void> {
    this.closed = true
    this.wake()
  }

  private write (key: string, subnet: Ip4Net, subnet6: Ip6Net | undefined, attrs: LeaseAttrs, ttlSeconds: number): Lease {
    const entry: Entry = {
      value: encodeLeaseAttrs(attrs),
      expiration: ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 : null,
      revision: this.revision + 1
    }
    this.entries.set(key, entry)
    this.append(key, entry)
    return { subnet, ...(subnet6 !== undefined ? { subnet6 } : {}), attrs, expiration: entry.expiration, revision: entry.revision }
  }

  private append (key: string, entry: Entry | null): void {
    this.revision++
    this.log.push({ revision: this.revision, key, entry })
    this.wake()
  }

  /** TTLs: an expired lease is deleted (and watchers told) the first time anyone looks. */
  private expire (): void {
    const now = this.now()
    for (const [key, e] of this.entries) {
      if (e.expiration !== null && e.expiration <= now) {
        this.entries.delete(key)
        this.append(key, null)
      }
    }
  }

  private wake (): void {
    for (const f of [...this.waiters]) f()
  }

  /** Resolves on the next write, the abort, or after a tick (so TTL expiry is noticed). */
  private changed (signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t)
        signal.removeEventListener('abort', done)
        this.waiters.delete(done)
        resolve()
      }
      const t = setTimeout(done, 100)
      signal.addEventListener('abort', done, { once: true })
      this.waiters.add(done)
    })
  }
}
