// Counting garbage collections around a stretch of work, for the tests that
// assert the dataplane allocates nothing per packet (run node with
// --expose-gc; node:test passes execArgv on).
import { PerformanceObserver } from 'node:perf_hooks'

/** One turn of the event loop. */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** GC events seen since the last reset(); stops observing when the test ends. */
export function gcCounter (t: { after: (fn: () => void) => void }): { reset: () => void, readonly count: number } {
  let gcs = 0
  const obs = new PerformanceObserver((list) => { gcs += list.getEntries().length })
  obs.observe({ entryTypes: ['gc'] })
  t.after(() => obs.disconnect())
  return { reset: () => { gcs = 0 }, get count () { return gcs } }
}
