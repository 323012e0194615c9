// One place that knows whether the store answers. Every caller that talks to
// the store (reading the config, acquiring, watching, renewing) reports its
// failures and successes here, so an outage is logged once at warn when it
// starts, however many retries it takes and whichever loop notices first,
// and once at info when it ends, with how long it lasted; a TLS refusal
// (ETLS) once at error, as what it is. /readyz and /metrics read the same
// state.
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

/**
 * Said once when etcd refuses our TLS connection while we run. The daemon
 * keeps forwarding and the watch keeps trying, since a fix on etcd's side
 * (its certificate, the CA it trusts) needs no restart of ours; but nobody
 * should wait for it to pass. Exiting instead would take the pods' network
 * down with us, on every node at once when a shared certificate expires.
 */
export const TLS_REFUSED_MSG = 'etcd and weft disagree over a certificate, which waiting will not fix: forwarding continues from the cached peers, but no lease can be renewed until the certificates are fixed (weft reads its own only when it starts)'

export class StoreOutage {
  private downSince: number | undefined
  private errorsInOutage = 0
  private lastError: StoreError | undefined
  private tlsReported = false

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
    // an ETLS is named even in an outage that began otherwise (etcd came back with another certificate)
    const tls = err.code === 'ETLS' && !this.tlsReported
    if (tls) {
      this.tlsReported = true
      this.log.error({ err: err.message, code: err.code, op }, TLS_REFUSED_MSG)
    }
    if (this.downSince !== undefined) return
    this.downSince = this.now()
    if (!tls) this.log.warn({ err: err.message, code: err.code, op }, msg)
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
    this.tlsReported = false
    this.log.info({ outageMs, failedCalls: errors }, 'the store is back')
    this.hooks.onChange?.(true)
  }
}
