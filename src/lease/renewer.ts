// One timer that keeps our lease alive: it renews at expiry minus the
// margin, retries a failed renewal every retryMs, and does nothing for a
// reservation (a lease with no TTL). Its failures are counted against the
// store but never start or end an outage: the watch alone decides that
// (StoreOutage.counted), so the state cannot flap between the two loops.
import type { Logger } from '../log'
import { StoreError } from '../store/store'
import type { StoreOp } from '../store/outage'
import { describeSubnets } from '../subnet/lease'
import type { Lease } from '../subnet/lease'
import type { Clock, Timer } from '../util/clock'

/** What the renewer needs from whoever holds the lease (the LeaseManager). */
export interface Renewable {
  /** the lease as last written */
  readonly lease: Lease
  /** rewrites the lease with a fresh TTL; rejects with StoreError ENOENT if it is gone */
  renew: () => Promise<Lease>
  countError: (err: StoreError, op: StoreOp) => void
}

export interface RenewerOptions {
  signal: AbortSignal
  retryMs: number
  marginS: number
  log: Logger
  clock: Clock
  onRenewed?: (lease: Lease) => void
}

export class Renewer {
  private timer: Timer | undefined
  private failing = false

  constructor (private readonly m: Renewable, private readonly o: RenewerOptions) {}

  /** (Re)arms the timer for the current lease, or for `delayMs` from now. */
  schedule (delayMs?: number): void {
    this.cancel()
    if (this.o.signal.aborted) return
    const l = this.m.lease
    if (l.expiration === null && delayMs === undefined) return
    const due = delayMs ?? Math.max(0, (l.expiration ?? 0) - this.o.marginS * 1000 - this.o.clock.now())
    // setTimeout takes at most 2^31-1 ms (24.8 days); a longer delay would fire at once
    this.timer = this.o.clock.setTimeout(() => { void this.fire() }, Math.min(due, 2 ** 31 - 1))
  }

  cancel (): void {
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer)
    this.timer = undefined
  }

  private async fire (): Promise<void> {
    const { log } = this.o
    try {
      const l = await this.m.renew()
      if (this.failing) log.info('lease renewal works again')
      this.failing = false
      log.info({ subnet: describeSubnets(l.subnet, l.subnet6), expiration: l.expiration }, 'renewed the lease')
      this.o.onRenewed?.(l)
      this.schedule()
    } catch (err) {
      if (this.o.signal.aborted) return
      if (err instanceof StoreError && err.code === 'ENOENT') return // the watch reports the revocation
      if (err instanceof StoreError) this.m.countError(err, 'renew')
      if (!this.failing) log.warn({ err: (err as Error).message }, `lease renewal failed; retrying every ${Math.round(this.o.retryMs / 1000)} s`)
      this.failing = true
      this.schedule(this.o.retryMs)
    }
  }
}
