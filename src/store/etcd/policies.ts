// etcd3's fault handling, replaced. Its defaults are a circuit breaker per
// host (three failures close the host for 5 s: a restarted etcd would be
// refused for that long) and three immediate retries of any "recoverable"
// error, including deadline-exceeded and dropped connections, which can
// repeat a create that etcd already applied and turn our own success into
// EEXIST. etcd3 only ever calls execute() on these, so two small objects do
// instead of cockatiel (etcd3's dependency, not ours).
import { GRPCUnavailableError } from 'etcd3'
import type { IOptions } from 'etcd3'

type FaultHandling = NonNullable<IOptions['faultHandling']>
type Policy = NonNullable<FaultHandling['global']>

/** Runs the call once. */
export const passThrough = {
  async execute<T> (fn: () => T | Promise<T>): Promise<T> { return await fn() }
} as unknown as Policy

/** grpc's words for a call that never left: no connection to send it on. */
function neverSent (err: unknown): boolean {
  return err instanceof GRPCUnavailableError && /No connection established/i.test(err.message)
}

/**
 * Retries a call that found no connection, with a short doubling pause,
 * for up to budgetMs: this is the dial timeout, so an etcd that is
 * restarting (or one endpoint of several that is down; etcd3 picks another
 * host each attempt) costs a moment, and one that is gone fails after it.
 */
export function retryUntilConnected (budgetMs: number): Policy {
  return {
    async execute<T> (fn: () => T | Promise<T>): Promise<T> {
      const deadline = Date.now() + budgetMs
      for (let attempt = 0; ; attempt++) {
        try {
          return await fn()
        } catch (err) {
          const pause = Math.min(1000, 50 * 2 ** attempt)
          if (!neverSent(err) || Date.now() + pause >= deadline) throw err
          await new Promise((resolve) => setTimeout(resolve, pause))
        }
      }
    }
  } as unknown as Policy
}
