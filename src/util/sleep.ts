// A pause that ends early, without an error, when its signal aborts: the
// retry loops wait with it and stop at once on shutdown.
import { realClock } from './clock'
import type { Clock } from './clock'

/** Resolves after `ms` on `clock`, or as soon as `signal` aborts; never rejects. */
export function sleep (ms: number, signal: AbortSignal, clock: Clock = realClock): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) { resolve(); return }
    const done = (): void => { clock.clearTimeout(t); signal.removeEventListener('abort', done); resolve() }
    const t = clock.setTimeout(done, ms)
    signal.addEventListener('abort', done, { once: true })
  })
}
