// One place that knows whether the store answers. Every caller that talks to
// the store (reading the config, acquiring, watching, renewing) reports its
// failures and successes here, so an outage is logged once at warn when it
// starts, however many retries it takes and whichever loop notices first,
// and once at info when it ends, with how long it lasted. /readyz and
// /metrics read the same state.
import type { Logger } from '../log'
import type { StoreError } from './store'

/** Which kind of store call failed, for the errors counter. */
export type StoreOp = 'config' | 'acquire' | 'watch' | 'renew' | 'restore'

export interface OutageHooks {
  /** every failed call (each is retried) */
  onError?: (err: StoreError, op: StoreOp) => void
  /** the store went down (up false) or came back (up true) */
  onChange?: (up: boolean, err?: StoreError) => void
}

export class StoreOutage {
  private downSince: number | undefined
  private errorsInOutage = 0
  private lastError: StoreError | undefined

  constructor (private readonly log: Logger, private readonly hooks: OutageHooks = {}, private readonly now: () => number = Date.now) {}

  get up (): boolean { return this.downSince === undefined }

  /** How long the current outage has lasted, 0 while the store answers. */
  get downForMs (): number { return this.downSince === undefined ? 0 : this.now() - this.downSince }

  /** The error that is keeping the store down, for /readyz. */
  get reason (): string | undefined { return this.downSince === undefined ? undefined : this.lastError?.message }

  /**
   * A store call failed and will be retried. The first failure of an outage
   * is logged at warn with `msg`; the rest only counted.
   */
  failed (err: StoreError, op: StoreOp, msg: string): void {
    this.lastError = err
    this.errorsInOutage++
    this.hooks.onError?.(err, op)
    if (this.downSince !== undefined) return
    this.downSince = this.now()
    this.log.warn({ err: err.message, code: err.code, op }, msg)
    this.hooks.onChange?.(false, err)
  }

  /**
   * A failed call whose loop keeps its own account (a renewal, retried on
   * its own schedule): counted, but it neither starts nor ends an outage,
   * so the watch alone decides, and the state cannot flap between the two.
   */
  counted (err: StoreError, op: StoreOp): void {
    this.hooks.onError?.(err, op)
  }

  /** A store call worked: ends an outage if there was one. */
  answered (): void {
    if (this.downSince === undefined) return
    const outageMs = this.now() - this.downSince
    const errors = this.errorsInOutage
    this.downSince = undefined
    this.errorsInOutage = 0
    this.lastError = undefined
    this.log.info({ outageMs, failedCalls: errors }, 'the store is back')
    this.hooks.onChange?.(true)
  }
}
