// Bounded polling: tests wait for conditions, never for fixed sleeps, and
// never forever. The loop is capped both by time and by iteration count.

import { sleep } from './proc'

export interface WaitForOptions {
  /** Give up after this long; default 5000. */
  timeoutMs?: number;
  /** Pause between attempts; default 50. */
  intervalMs?: number;
  /** What is being waited for, for the error message ("h2 to answer ping"). */
  what: string;
}

/**
 * Calls `predicate` until it returns a truthy value and resolves with it.
 * A throwing predicate counts as "not yet"; its last error is quoted if the
 * wait times out.
 */
export async function waitFor<T> (predicate: () => T | Promise<T>, opts: WaitForOptions): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 5000
  const intervalMs = Math.max(1, opts.intervalMs ?? 50)
  const deadline = Date.now() + timeoutMs
  const maxAttempts = Math.ceil(timeoutMs / intervalMs) + 1
  let lastError: unknown
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    try {
      const v = await predicate()
      if (v) return v as NonNullable<T>
      lastError = undefined
    } catch (e) {
      lastError = e
    }
    const left = deadline - Date.now()
    if (left <= 0) break
    await sleep(Math.min(intervalMs, left))
  }
  const why = lastError === undefined ? '' : `; last error: ${(lastError as Error).message ?? String(lastError)}`
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${opts.what}${why}`)
}
