// The lease manager: the control-plane loop under every backend.
//
// 1. acquire(): list the store, choose (allocate.ts), create; a lost race
//    (EEXIST) is retried with a fresh list, not surfaced (flannel gives up:
//    its retry checks for the wrong error)
// 2. run(): one watch from the revision the acquire saw
//    - the node's own key: a put refreshes its expiry; a delete is a
//      revocation: log it clearly, then re-acquire (default) or stop
//    - everyone else: LeaseWatcher turns changes into Added/Removed batches
// 3. renewal (renewer.ts): at expiry minus the margin, rewrite the lease
//    with a fresh TTL; a failure is retried every renewRetryMs; a
//    reservation (no TTL) is never renewed and stays a reservation
// 4. the store failing: forwarding goes on from the cached peers; the watch
//    retries with backoff and resumes (a compaction meanwhile brings a
//    snapshot, diffed against the cache); a store recreated empty gets our
//    lease back from memory, and peers get a grace period to do the same;
//    leasing again and putting back wait the store out (store/retry.ts)
// Every timer runs on the clock it is given, so tests move time by hand.
import { equal, formatCidr, overlaps } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { equal6, formatCidr6, overlaps6, parseIp6 } from '../packet/net6'
import type { Ip6Net } from '../packet/net6'
import type { Logger } from '../log'
import { WeftError } from '../errors'
import { StoreError, SUBNET_TTL_SECONDS } from '../store/store'
import type { Store, WatchBatch } from '../store/store'
import { StoreOutage } from '../store/outage'
import type { StoreOp } from '../store/outage'
import { untilStoreAnswers } from '../store/retry'
import { realClock } from '../util/clock'
import type { Clock, Timer } from '../util/clock'
import { fitsRange, fitsRange6, freeCandidates, freeCandidates6, hasRange4, leaseFits, NO_IP4, range6, subnetCount6, takenSubnets } from './allocate'
import { subnetCount } from '../subnet/config'
import type { SubnetRange } from './allocate'
import { describeSubnets, hasIPv4, sameSubnets } from '../subnet/lease'
import type { Lease, LeaseAttrs } from '../subnet/lease'
import { LeaseWatcher } from './watcher'
import { Renewer } from './renewer'
import { OnceLog } from '../util/log-once'
import type { PeerEvent } from './watcher'
import { ip4ToString } from '../packet/ip'

export interface LeaseManagerOptions {
  store: Store
  range: SubnetRange
  publicIP: number
  attrs: LeaseAttrs
  log: Logger
  ttlSeconds?: number
  /** renew this long before expiry (flannel's --subnet-lease-renew-margin, default 60 min) */
  renewMarginSeconds?: number
  renewRetryMs?: number
  /** FLANNEL_SUBNET from the previous subnet.env */
  previousSubnet?: Ip4Net
  /** FLANNEL_IPV6_SUBNET from the previous subnet.env */
  previousSubnet6?: Ip6Net
  /** what a revoked lease leads to; flannel exits, weft re-acquires unless told otherwise */
  onRevoked?: 'reacquire' | 'exit'
  random?: () => number
  /** store reachability, shared with whoever else talks to the store (the daemon's /readyz and metrics) */
  outage?: StoreOutage
  /** how long peers missing from a recreated store are kept, waiting for their holders to put them back */
  recreatedGraceMs?: number
  /** for renewal, the grace period and every retry's pause */
  clock?: Clock
}

export interface ManagerHandlers {
  onPeers: (events: PeerEvent[]) => void
  /** our lease was re-acquired as a different subnet */
  onLeaseChanged?: (lease: Lease, previous: Lease) => void
  /** our lease was revoked and onRevoked is 'exit': run() returns after this */
  onRevoked?: (lease: Lease) => void
  /** any lease was renewed or re-put (metrics) */
  onRenewed?: (lease: Lease) => void
  /** the store was recreated empty: put back anything else it should hold (the network config) */
  onStoreRecreated?: () => Promise<void>
}

const RACE_RETRIES = 32
/** Other nodes notice a recreated SQLite file within their poll (100 ms); this is generous. */
const RECREATED_GRACE_MS = 10_000

type PreferredSource = 'subnet.env' | 'revoked'

export class LeaseManager {
  private current: Lease | undefined
  private listRevision = 0
  private initial: Lease[] = []
  private readonly watcher = new LeaseWatcher(undefined)
  /** store entries that are not valid leases, named once each (bounded: a writer can invent keys without end) */
  private readonly invalid: OnceLog
  private readonly rewritten: OnceLog
  private readonly ttl: number
  private readonly margin: number
  private readonly retryMs: number
  private readonly random: () => number
  private readonly clock: Clock
  /** where acquire() tries first after "our public IP": subnet.env's, later the revoked one */
  private preferred: Ip4Net | undefined
  private preferred6: Ip6Net | undefined
  private preferredSource: PreferredSource = 'subnet.env'
  readonly outage: StoreOutage

  constructor (private readonly o: LeaseManagerOptions) {
    this.ttl = o.ttlSeconds ?? SUBNET_TTL_SECONDS
    this.margin = o.renewMarginSeconds ?? 3600
    this.retryMs = o.renewRetryMs ?? 60_000
    this.random = o.random ?? Math.random
    this.clock = o.clock ?? realClock
    this.preferred = o.previousSubnet
    this.preferred6 = o.previousSubnet6
    this.outage = o.outage ?? new StoreOutage(o.log)
    this.invalid = new OnceLog(o.log, 'ignoring a store entry that is not a valid lease')
    this.rewritten = new OnceLog(o.log, 'someone rewrote our lease with other attributes (BackendData: the VTEP MAC, the WireGuard key): writing ours back now')
    if (this.ttl > 0 && this.margin >= this.ttl) {
      throw new WeftError('ECONFIG', `--subnet-lease-renew-margin (${this.margin} s) must be shorter than the lease TTL (${this.ttl} s)`)
    }
  }

  get lease (): Lease {
    if (this.current === undefined) throw new WeftError('ENOLEASE', 'no lease acquired yet')
    return this.current
  }

  async acquire (): Promise<Lease> {
    const { store, range, log } = this.o
    for (let attempt = 0; attempt < RACE_RETRIES; attempt++) {
      const list = await store.listLeases()
      this.warnSkipped(list.skipped)
      const mine = list.leases.find((l) => this.isOurs(l.attrs))
      let lease: Lease | undefined
      try {
        if (mine !== undefined && leaseFits(mine, range)) {
          // A restart: take our lease back. A reservation stays one (flannel #1329).
          lease = await store.renewLease(mine.subnet, this.o.attrs, mine.expiration === null ? 0 : this.ttl, mine.subnet6)
          log.info({ ...subnetFields(lease), reservation: lease.expiration === null }, 'found the lease holding our public IP; reusing it')
        } else {
          if (mine !== undefined) {
            log.warn(subnetFields(mine), 'our old lease no longer fits the network config; deleting it')
            await store.deleteLease(mine.subnet, mine.subnet6)
          }
          lease = await this.createNew(list.leases.filter((l) => l !== mine), list.skipped)
        }
      } catch (err) {
        if (err instanceof StoreError && (err.code === 'EEXIST' || err.code === 'ENOENT')) {
          // Lost a race with another node: look again, after a little jitter.
          await new Promise<void>((resolve) => { this.clock.setTimeout(resolve, Math.floor(this.random() * 20 * (attempt + 1))) })
          continue
        }
        throw err
      }
      this.current = lease
      // Watch from what the list saw, not from our own write: another node may
      // have leased between our list and our create, and only the watch can
      // tell us (our own put comes back too, and is recognised as ours).
      this.listRevision = list.revision
      this.initial = list.leases.filter((l) => !sameSubnets(l, lease))
      this.watcher.setOwn(lease)
      return lease
    }
    throw new WeftError('ELEASERACE', `could not lease a subnet after ${RACE_RETRIES} attempts: every pick was taken by another node first`)
  }

  /**
   * Picks the subnets of each family the range has (the preferred ones if
   * they fit and are free, else a random free one) and creates the lease.
   */
  private async createNew (others: readonly Lease[], skipped: readonly { key: string, reason: string }[]): Promise<Lease> {
    const { store, range, log } = this.o
    const used = takenSubnets(others, skipped)
    const r6 = range6(range)
    const want4 = hasRange4(range)
    const prev = want4 && this.preferred !== undefined && fitsRange(this.preferred, range) ? this.preferred : undefined
    const prev6 = r6 !== undefined && this.preferred6 !== undefined && fitsRange6(this.preferred6, r6) ? this.preferred6 : undefined
    const free4 = prev !== undefined && !used.v4.some((u) => overlaps(u, prev)) ? prev : undefined
    const free6 = prev6 !== undefined && !used.v6.some((u) => overlaps6(u, prev6)) ? prev6 : undefined
    let subnet = NO_IP4
    let subnet6: Ip6Net | undefined
    if (want4) {
      subnet = free4 ?? this.pick(freeCandidates(range, used.v4), () =>
        `out of subnets: all ${subnetCount(range)} /${range.subnetLen} subnets of ${formatCidr(range.network)} are leased`)
    }
    if (r6 !== undefined) {
      subnet6 = free6 ?? this.pick(freeCandidates6(r6, used.v6), () =>
        `out of subnets: all ${subnetCount6(r6)} /${r6.subnetLen} IPv6 subnets of ${formatCidr6(r6.network)} are leased`)
    }
    const lease = await store.createLease(subnet, this.o.attrs, this.ttl, subnet6)
    if (want4 && subnet6 !== undefined) await this.checkNoTwin(lease)
    const hadPrev = prev !== undefined || prev6 !== undefined
    // every family that had a previous subnet got it back (a family without one, as IPv6 after a move to dual stack, is new, not lost)
    const gotPrev = (prev === undefined || free4 !== undefined) && (prev6 === undefined || free6 !== undefined)
    if (hadPrev && gotPrev) {
      log.info(subnetFields(lease), this.preferredSource === 'subnet.env' ? 'leased the subnet from the previous subnet.env' : 'leased our previous subnet again')
    } else if (!hadPrev) {
      log.info({ ...subnetFields(lease), ...this.publicFields() }, 'leased a new subnet')
    } else {
      // the node comes back to find its subnet given away (its lease
      // expired while it was down): say so, with both subnets
      const was = describeSubnets(prev ?? NO_IP4, prev6)
      const holder = others.find((l) => (prev !== undefined && hasIPv4(l) && overlaps(l.subnet, prev)) || (prev6 !== undefined && l.subnet6 !== undefined && overlaps6(l.subnet6, prev6)))
      log.warn({
        previous: was,
        ...subnetFields(lease),
        ...(holder !== undefined ? { heldBy: holder.attrs.publicIP !== 0 || holder.attrs.publicIPv6 === null ? ip4ToString(holder.attrs.publicIP) : holder.attrs.publicIPv6 } : {}),
        from: this.preferredSource
      }, `our previous subnet ${was} is held by another node; leased ${describeSubnets(lease.subnet, lease.subnet6)} instead`)
    }
    return lease
  }

  /**
   * A dual-stack key names two subnets, and etcd (like flannel) compares one
   * key per transaction: a node that raced us to the same IPv4 subnet with
   * another IPv6 one (or the other way round) wrote another key, and both
   * creates succeeded. Whoever wrote second gives way: it deletes its lease
   * and tries again (EEXIST). The embedded stores refuse such a create
   * already (store/conflict.ts); this is the same rule for every store.
   */
  private async checkNoTwin (lease: Lease): Promise<void> {
    const { store, log } = this.o
    const now = await store.listLeases()
    const twin = now.leases.find((l) => !sameSubnets(l, lease) && l.revision < lease.revision &&
      ((hasIPv4(l) && equal(l.subnet, lease.subnet)) || (l.subnet6 !== undefined && lease.subnet6 !== undefined && equal6(l.subnet6, lease.subnet6))))
    if (twin === undefined) return
    log.info({ ...subnetFields(lease), other: describeSubnets(twin.subnet, twin.subnet6) }, 'another node leased one of our subnets first; giving it way and trying again')
    await store.deleteLease(lease.subnet, lease.subnet6)
    throw new StoreError('EEXIST', `subnet ${describeSubnets(lease.subnet, lease.subnet6)} was leased by another node first`)
  }

  /** One of the free candidates, at random (racing nodes rarely pick the same); none: out of subnets. */
  private pick<T> (cands: readonly T[], outOf: () => string): T {
    if (cands.length === 0) throw new WeftError('EOUTOFSUBNETS', outOf())
    return cands[Math.floor(this.random() * cands.length)]
  }

  /**
   * Is a lease with these attributes ours? By PublicIP, as flannel's
   * findLeaseByIP; on an IPv6-only network by PublicIPv6 (flannel compares
   * PublicIP there too, which every IPv6-only node has as 0.0.0.0).
   */
  private isOurs (a: LeaseAttrs): boolean {
    if (hasRange4(this.o.range)) return a.publicIP === this.o.publicIP
    return sameIp6Text(a.publicIPv6, this.o.attrs.publicIPv6)
  }

  private publicFields (): Record<string, string> {
    const v6 = this.o.attrs.publicIPv6
    return {
      ...(hasRange4(this.o.range) ? { publicIP: ip4ToString(this.o.publicIP) } : {}),
      ...(v6 !== null ? { publicIPv6: v6 } : {})
    }
  }

  /** Watch and renew until the signal aborts (or the lease is revoked with onRevoked 'exit'). */
  async run (signal: AbortSignal, h: ManagerHandlers): Promise<void> {
    const stop = new AbortController()
    const all = AbortSignal.any([signal, stop.signal])
    const renewer = new Renewer(this, { signal: all, retryMs: this.retryMs, marginS: this.margin, log: this.o.log, clock: this.clock, onRenewed: (l) => h.onRenewed?.(l) })
    const first = this.watcher.reset(this.initial)
    if (first.length > 0) h.onPeers(first)
    renewer.schedule()
    let grace: Timer | undefined
    try {
      for await (const batch of this.o.store.watchLeases(this.listRevision, {
        signal: all,
        onError: (err) => this.outage.failed(err, 'watch', 'lost the store; forwarding continues from the cached peers, retrying'),
        onRecover: () => this.outage.answered()
      })) {
        const { lost, recreated } = this.apply(batch, h, renewer)
        if (recreated) {
          this.clock.clearTimeout(grace)
          grace = this.clock.setTimeout(() => this.dropUnconfirmed(h), this.o.recreatedGraceMs ?? RECREATED_GRACE_MS)
          await h.onStoreRecreated?.().catch((err: Error) => this.o.log.warn({ err: err.message }, 'could not restore the store after it was recreated'))
          if (lost !== undefined && await this.restore(lost, all, h, renewer)) continue
        }
        if (lost === undefined) continue
        this.o.log.warn(subnetFields(lost), 'lease has been revoked')
        if (this.o.onRevoked === 'exit') {
          h.onRevoked?.(lost)
          stop.abort()
          break
        }
        const next = await this.retrying('acquire', 'cannot reach the store to lease a subnet again; retrying', all, async () => await this.acquireAfterRevocation(lost))
        if (next === undefined) break
        if (!sameSubnets(next, lost)) {
          const ev = this.watcher.setOwn(next)
          if (ev.length > 0) h.onPeers(ev)
          h.onLeaseChanged?.(next, lost)
        }
        renewer.schedule()
      }
    } finally {
      this.clock.clearTimeout(grace)
      renewer.cancel()
    }
  }

  /** Renewal, called by the Renewer. */
  async renew (): Promise<Lease> {
    const l = this.lease
    const next = await this.o.store.renewLease(l.subnet, this.o.attrs, l.expiration === null ? 0 : this.ttl, l.subnet6)
    this.current = next
    return next
  }

  /** How many store entries were skipped as not valid leases (each once). */
  get skipped (): number { return this.invalid.total }

  /** Counts a failed store call that is retried by its own loop (renewal) without changing the outage state. */
  countError (err: StoreError, op: StoreOp): void {
    this.outage.counted(err, op)
  }

  /** Ask for the revoked subnet back first; take another if it is gone. */
  private async acquireAfterRevocation (old: Lease): Promise<Lease> {
    this.preferred = hasIPv4(old) ? old.subnet : undefined
    this.preferred6 = old.subnet6
    this.preferredSource = 'revoked'
    return await this.acquire()
  }

  /**
   * The store came back empty (a SQLite file deleted under us): put our lease
   * back as we hold it, with a fresh TTL. Returns false if another node
   * holds our subnet in the new store (then it is a revocation).
   */
  private async restore (own: Lease, signal: AbortSignal, h: ManagerHandlers, renewer: Renewer): Promise<boolean> {
    this.o.log.warn(subnetFields(own), 'the store was recreated without our lease; putting it back from memory')
    try {
      const l = await this.retrying('restore', 'cannot reach the store to put our lease back; retrying', signal,
        async () => await this.o.store.createLease(own.subnet, this.o.attrs, own.expiration === null ? 0 : this.ttl, own.subnet6))
      if (l === undefined) return true // stopping
      this.current = l
      h.onRenewed?.(l)
      renewer.schedule()
      return true
    } catch (err) {
      if (err instanceof StoreError && err.code === 'EEXIST') return false
      throw err
    }
  }

  /** Runs fn until it succeeds, waiting out an unreachable store with backoff. Undefined if the signal aborts first. */
  private async retrying<T> (op: StoreOp, msg: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T | undefined> {
    return await untilStoreAnswers({ outage: this.outage, op, msg, signal, random: this.random, clock: this.clock }, fn)
  }

  private dropUnconfirmed (h: ManagerHandlers): void {
    const gone = this.watcher.dropUnconfirmed()
    if (gone.length === 0) return
    this.o.log.info({ subnets: gone.map((e) => describeSubnets(e.lease.subnet, e.lease.subnet6)) }, 'peers whose leases did not come back after the store was recreated are removed')
    h.onPeers(gone)
  }

  /** Applies a batch; `lost` is our lease if the batch took it away. */
  private apply (b: WatchBatch, h: ManagerHandlers, renewer: Renewer): { lost: Lease | undefined, recreated: boolean } {
    this.warnSkipped(b.skipped)
    const own = this.current
    let lost: Lease | undefined
    let peers: PeerEvent[]
    const recreated = b.snapshot !== undefined && b.reason === 'recreated'
    if (b.snapshot !== undefined) {
      const mine = own === undefined ? undefined : b.snapshot.find((l) => sameSubnets(l, own))
      if (own !== undefined && mine === undefined) lost = own
      else if (mine !== undefined) {
        if (this.isOurs(mine.attrs)) this.adopt(mine, renewer)
        else lost = own
      }
      peers = recreated ? this.watcher.merge(b.snapshot) : this.watcher.reset(b.snapshot)
      if (b.reason === 'compacted') {
        this.o.log.info({ leases: b.snapshot.length, added: peers.filter((e) => e.type === 'added').length, removed: peers.filter((e) => e.type === 'removed').length },
          'the store compacted the history our watch needed; listed it again and applied the difference')
      }
    } else {
      for (const e of b.events) {
        if (own === undefined) break
        if (e.type === 'put' && sameSubnets(e.lease, own)) {
          if (this.isOurs(e.lease.attrs)) this.adopt(e.lease, renewer)
          else lost = own
        } else if (e.type === 'delete' && sameSubnets(e, own)) lost = own
      }
      peers = this.watcher.update(b.events)
    }
    if (peers.length > 0) h.onPeers(peers)
    return { lost, recreated }
  }

  /**
   * Our lease as the store now has it. If a writer changed what we publish
   * in it (a forged WireGuard key or VTEP MAC would send our peers' traffic
   * astray, and our own renewals would only put ours back a day later), it
   * is renewed with ours at once.
   */
  private adopt (l: Lease, renewer: Renewer): void {
    this.current = l
    if (sameAttrs(l.attrs, this.o.attrs)) { renewer.schedule(); return }
    this.rewritten.warn(describeSubnets(l.subnet, l.subnet6), subnetFields(l))
    renewer.schedule(0)
  }

  private warnSkipped (skipped: readonly { key: string, reason: string }[]): void {
    for (const s of skipped) this.invalid.warn(`${clip(s.key)}\u0000${clip(s.reason)}`, { key: clip(s.key), reason: clip(s.reason) })
  }
}

/** Do two leases publish the same: type, IPv6 address and backend data (as JSON)? */
function sameAttrs (a: LeaseAttrs, b: LeaseAttrs): boolean {
  return a.backendType === b.backendType && a.publicIPv6 === b.publicIPv6 &&
    JSON.stringify(a.backendData ?? null) === JSON.stringify(b.backendData ?? null) &&
    JSON.stringify(a.backendV6Data ?? null) === JSON.stringify(b.backendV6Data ?? null)
}

/** A lease's subnets as log fields: subnet (IPv4, absent on an IPv6-only lease) and subnet6. */
function subnetFields (l: { readonly subnet: Ip4Net, readonly subnet6?: Ip6Net }): Record<string, string> {
  return {
    ...(hasIPv4(l) ? { subnet: formatCidr(l.subnet) } : {}),
    ...(l.subnet6 !== undefined ? { subnet6: formatCidr6(l.subnet6) } : {})
  }
}

/** Do two PublicIPv6 texts name the same address (either may be written in another form)? */
function sameIp6Text (a: string | null, b: string | null): boolean {
  if (a === null || b === null) return false
  try {
    return parseIp6(a) === parseIp6(b)
  } catch {
    return false
  }
}

/** A store writer's text, cut to a length a log line can carry. */
function clip (s: string): string {
  return s.length > 256 ? `${s.slice(0, 256)}...` : s
}
