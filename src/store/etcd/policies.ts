// etcd3's fault handling, replaced. Its defaults are a circuit breaker per
// host (three failures close the host for 5 s: a restarted etcd would be
// refused for that long) and three retries of any "recoverable" error,
// including deadline-exceeded, which can repeat a create whose reply was
// lost and turn our own success into EEXIST. etcd3 only ever calls
// execute() on these, so two small objects do instead of cockatiel (which
// is etcd3's dependency, not ours).
import { GRPCUnavailableError } from 'etcd3'
import type { IOptions } from 'etcd3'

type FaultHandling = NonNullable<IOptions['faultHandling']>
type Policy = NonNullable<FaultHandling['global']>

/** Runs the call once. */
export const passThrough = {
  async execute<T> (fn: () => T | Promise<T>): Promise<T> { return await fn() }
} as unknown as Policy

/**
 * Retries a call that found no server (UNAVAILABLE: connection refused or
 * dropped) once per endpoint, so every endpoint gets a turn; etcd3 picks a
 * different host for each attempt.
 */
export function retryUnavailable (endpoints: number): Policy {
  return {
    async execute<T> (fn: () => T | Promise<T>): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        try {
          return await fn()
        } catch (err) {
          if (!(err instanceof GRPCUnavailableError) || attempt >= Math.max(2, endpoints)) throw err
        }
      }
    }
  } as unknown as Policy
}
