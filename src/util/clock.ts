// Time, handed in rather than read from the globals, so the loops that wait
// on it (lease renewal, waiting out a store outage) can be tested on a fake
// clock that the test moves by hand, in no real time
// (test/helpers/fake-clock.ts). Everyone else gets realClock by default.

/** A pending timer, opaque: only the clock that made it can clear it. */
export type Timer = object

export interface Clock {
  /** milliseconds since the epoch, like Date.now() */
  now: () => number
  setTimeout: (fn: () => void, ms: number) => Timer
  clearTimeout: (t: Timer | undefined) => void
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => { clearTimeout(t as NodeJS.Timeout | undefined) }
}
