// The one loop that waits out an unreachable store, for the calls that
// cannot go on without an answer: the daemon reading the network config and
// taking its first lease, the lease manager leasing again after a
// revocation and putting back a lease a recreated store lost. Each store's
// watch has its own loop (it must resume from a revision), and renewal its
// own schedule; all of them report to the same StoreOutage, so an outage is
// logged once however many loops notice it.
import { realClock } from '../util/clock'
import type { Clock } from '../util/clock'
import { sleep } from '../util/sleep'
import { backoffMs, StoreError } from './store'
import type { StoreOutage, StoreOp } from './outage'

export interface RetryOptions {
  outage: StoreOutage
  /** which call this is, for the errors counter */
  op: StoreOp
  /** logged once, at warn, if this call is the first to find the store down */
  msg: string
  signal: AbortSignal
  /** the backoff's jitter */
  random?: () => number
  clock?: Clock
}

/**
 * fn, again and again while the store is unreachable (EUNAVAILABLE), with
 * backoff; undefined if the signal aborts first. Any other error is thrown,
 * ETLS included: a certificate etcd refuses (or we cannot verify) is refused
 * the same way on every retry.
 */
export async function untilStoreAnswers<T> (o: RetryOptions, fn: () => Promise<T>): Promise<T | undefined> {
  for (let attempt = 0; !o.signal.aborted; attempt++) {
    try {
      const v = await fn()
      o.outage.answered()
      return v
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 'EUNAVAILABLE')) throw err
      o.outage.failed(err, o.op, o.msg)
      await sleep(backoffMs(attempt, o.random), o.signal, o.clock ?? realClock)
    }
  }
  return undefined
}
