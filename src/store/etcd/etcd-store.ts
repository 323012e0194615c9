// The etcd store, in flannel's exact layout so flanneld and weft can share
// one etcd: config at <prefix>/config, leases at <prefix>/subnets/<key>
// holding flannel's lease JSON byte for byte, each attached to its own etcd
// lease (Grant + Put, no KeepAlive; renewal grants a new lease and re-puts,
// as flannel's updateSubnet does).
import { Etcd3 } from 'etcd3'
import type { IEvent, IKeyValue } from 'etcd3'
import { makeSubnetKey } from '../../packet/net'
import type { Ip4Net } from '../../packet/net'
import type { Ip6Net } from '../../packet/net6'
import { encodeLeaseAttrs } from '../../subnet/lease-json'
import { describeSubnets } from '../../subnet/lease'
import type { Lease, LeaseAttrs, Skipped } from '../../subnet/lease'
import { deleteFromKey, isSkipped, leaseFromEntry } from '../decode'
import { StoreError } from '../store'
import type { LeaseList, Store, StoreEvent, WatchBatch, WatchOptions } from '../store'
import { toStoreError } from './errors'
import type { ErrorContext } from './errors'
import { clientOptions, DEFAULT_DIAL_TIMEOUT_MS, DEFAULT_ETCD_PREFIX, normalizeEndpoints, normalizePrefix, under } from './options'
import type { EtcdStoreOptions } from './options'
import { Expirations } from './ttl'
import { watchLeases } from './watch'

export { CONFIG_NOT_FOUND_HINT, DEFAULT_ETCD_ENDPOINTS, DEFAULT_ETCD_PREFIX } from './options'
export type { EtcdStoreOptions } from './options'

// etcd3 takes these enums by number; its typings name them
const EQUAL = 0
const GREATER = 1
const VERSION = 0

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd (prefix: Buffer): Buffer {
  const end = Buffer.from(prefix)
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++
      return end.subarray(0, i + 1)
    }
  }
  return Buffer.from([0]) // all 0xff: to the end of the keyspace
}

export class EtcdStore implements Store {
  readonly kind = 'etcd' as const
  readonly endpoints: readonly string[]
  readonly prefix: string
  private readonly client: Etcd3
  private readonly errors: ErrorContext
  private readonly dialTimeoutMs: number
  private readonly closing = new AbortController()
  private readonly subnets: Buffer

  /** Throws StoreError ESTORE for an unusable TLS setup; connects lazily. */
  constructor (opts: EtcdStoreOptions = {}) {
    this.endpoints = normalizeEndpoints(opts.endpoints)
    this.prefix = normalizePrefix(opts.prefix ?? DEFAULT_ETCD_PREFIX)
    this.subnets = Buffer.from(under(this.prefix, 'subnets/'))
    this.dialTimeoutMs = opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS
    this.errors = { where: this.endpoints.join(','), tls: (opts.keyFile ?? '') !== '' }
    try {
      this.client = new Etcd3(clientOptions(opts, this.endpoints, this.dialTimeoutMs, opts.requestTimeoutMs ?? this.dialTimeoutMs * 2))
    } catch (err) {
      throw this.fail(err)
    }
  }

  /** Undefined if there is none; callers can show CONFIG_NOT_FOUND_HINT, as flanneld does. */
  async getConfig (): Promise<string | undefined> {
    const text = await this.call(() => this.client.get(under(this.prefix, 'config')).string())
    return text ?? undefined
  }

  async putConfig (text: string): Promise<void> {
    await this.call(() => this.client.put(under(this.prefix, 'config')).value(text).exec())
  }

  async listLeases (): Promise<LeaseList> {
    return await this.call(async () => {
      const res = await this.client.kv.range({ key: this.subnets, range_end: prefixEnd(this.subnets) })
      const { leases, skipped } = await this.decodeList(res.kvs)
      return { leases, skipped, revision: Number(res.header.revision) }
    })
  }

  /** flannel's create: Grant, then If(Version(key)==0) Then(Put(key, value, lease)). ttlSeconds 0 = a reservation, a key with no etcd lease. */
  async createLease (subnet: Ip4Net, attrs: LeaseAttrs, ttlSeconds: number, subnet6?: Ip6Net): Promise<Lease> {
    return await this.write(subnet, subnet6, attrs, ttlSeconds, EQUAL,
      () => new StoreError('EEXIST', `subnet ${describeSubnets(subnet, subnet6)} is already leased`))
  }

  /**
   * flannel's renew: grant a fresh lease and re-put, but only while the key
   * still exists (Version > 0), so an expired or revoked lease is not brought
   * back. The previous etcd lease is left to expire, as flannel leaves it:
   * revoking it would also delete any other key an operator attached to it.
   *
   * ttlSeconds 0 keeps a reservation a reservation (a put with no lease).
   * flannel does not: TimeToLive answers -1 for a lease-less key, so its
   * reservation check (zero Expiration) never matches and the reservation
   * comes back as a 24 h lease, bug #1329. Here callers keep the 0 they saw
   * as a null expiration.
   */
  async renewLease (subnet: Ip4Net, attrs: LeaseAttrs, ttlSeconds: number, subnet6?: Ip6Net): Promise<Lease> {
    return await this.write(subnet, subnet6, attrs, ttlSeconds, GREATER,
      () => new StoreError('ENOENT', `lease for ${describeSubnets(subnet, subnet6)} is gone`))
  }

  async deleteLease (subnet: Ip4Net, subnet6?: Ip6Net): Promise<void> {
    await this.call(() => this.client.kv.deleteRange({ key: this.key(subnet, subnet6) }))
  }

  watchLeases (fromRevision: number, opts: WatchOptions): AsyncIterable<WatchBatch> {
    return watchLeases({
      watchClient: this.client.watchClient,
      key: this.subnets,
      rangeEnd: prefixEnd(this.subnets),
      where: this.errors.where,
      dialTimeoutMs: this.dialTimeoutMs,
      closing: this.closing.signal,
      list: () => this.listLeases(),
      decode: (events) => this.decodeEvents(events),
      toStoreError: (err) => this.fail(err),
      // the cheapest unary call: etcd3 re-authenticates when it is refused
      refreshAuth: async () => { await this.client.kv.range({ key: this.subnets, count_only: true }).catch(() => undefined) }
    }, fromRevision, opts)
  }

  async close (): Promise<void> {
    if (this.closing.signal.aborted) return
    // stops every watch first, so their streams are cancelled, not orphaned
    this.closing.abort()
    this.client.close()
  }

  private key (subnet: Ip4Net, subnet6?: Ip6Net): Buffer {
    return Buffer.from(under(this.prefix, `subnets/${makeSubnetKey(subnet, subnet6)}`))
  }

  /** Grant (unless a reservation), then put if Version(key) compares to 0 as `cmp` says. */
  private async write (subnet: Ip4Net, subnet6: Ip6Net | undefined, attrs: LeaseAttrs, ttlSeconds: number, cmp: number, lost: () => StoreError): Promise<Lease> {
    const key = this.key(subnet, subnet6)
    const value = Buffer.from(encodeLeaseAttrs(attrs))
    return await this.call(async () => {
      let leaseId = '0'
      let expiration: number | null = null
      if (ttlSeconds > 0) {
        const asked = Date.now()
        const g = await this.client.leaseClient.leaseGrant({ TTL: ttlSeconds })
        leaseId = g.ID
        // etcd raises a TTL below its minimum (2 s by default); trust its answer
        expiration = asked + Number(g.TTL) * 1000
      }
      let ok = false
      try {
        const res = await this.client.kv.txn({
          compare: [{ key, target: VERSION, result: cmp, version: 0 }],
          success: [{ request_put: { key, value, lease: leaseId } }]
        })
        if (!res.succeeded) throw lost()
        ok = true
        return { subnet, ...(subnet6 !== undefined ? { subnet6 } : {}), attrs, expiration, revision: Number(res.header.revision) }
      } finally {
        // an unused grant would otherwise live on for its whole TTL
        if (!ok && leaseId !== '0') await this.client.leaseClient.leaseRevoke({ ID: leaseId }).catch(() => undefined)
      }
    })
  }

  /** In order; TTLs looked up once per etcd lease ID. */
  private async decodeKvs (kvs: readonly IKeyValue[]): Promise<Array<Lease | Skipped>> {
    const ttl = new Expirations(this.client.leaseClient)
    return await Promise.all(kvs.map(async (kv) => {
      const l = leaseFromEntry(this.relative(kv.key), kv.value.toString(), null, Number(kv.mod_revision))
      return isSkipped(l) ? l : { ...l, expiration: await ttl.of(kv.lease) }
    }))
  }

  private async decodeList (kvs: readonly IKeyValue[]): Promise<{ leases: Lease[], skipped: Skipped[] }> {
    const leases: Lease[] = []
    const skipped: Skipped[] = []
    for (const l of await this.decodeKvs(kvs)) {
      if (isSkipped(l)) skipped.push(l)
      else leases.push(l)
    }
    return { leases, skipped }
  }

  private async decodeEvents (events: readonly IEvent[]): Promise<{ events: StoreEvent[], skipped: Skipped[] }> {
    const puts = events.filter((e) => !isDelete(e))
    const decoded = await this.decodeKvs(puts.map((e) => e.kv))
    const out: StoreEvent[] = []
    const skipped: Skipped[] = []
    let i = 0
    for (const e of events) {
      if (!isDelete(e)) {
        const l = decoded[i++]
        if (isSkipped(l)) skipped.push(l)
        else out.push({ type: 'put', lease: l })
        continue
      }
      // flannel's EventRemoved carries only the subnets
      const d = deleteFromKey(this.relative(e.kv.key), Number(e.kv.mod_revision))
      if (isSkipped(d)) skipped.push(d)
      else out.push(d)
    }
    return { events: out, skipped }
  }

  private relative (key: Buffer): string {
    return key.subarray(this.subnets.length).toString()
  }

  private fail (err: unknown): StoreError {
    return toStoreError(err, this.errors)
  }

  /** Every etcd call goes through here, so every failure is a StoreError that names the endpoints. */
  private async call<T> (fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw this.fail(err)
    }
  }
}

function isDelete (e: IEvent): boolean {
  return String(e.type).toLowerCase() === 'delete'
}
