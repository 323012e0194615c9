// A clock that moves only when a test moves it, for code that takes a Clock
// (src/util/clock.ts): a 24 h lease renewed at its margin is tested in no
// real time.
//
// Why not node:test's mock.timers: it replaces the global timers, so the
// store's own polling and waitFor's pauses would stop too; and its tick()
// runs what falls due synchronously, so a timer whose callback awaits the
// store before setting the next one (the renewer) is not followed within
// one tick. advance() lets each callback's promises settle before it looks
// for the next timer.
import type { Clock, Timer } from '../../src/util/clock'

interface Pending { readonly id: number, readonly at: number, readonly fn: () => void }

export class FakeClock implements Clock {
  private t: number
  private seq = 0
  private readonly pending = new Map<number, Pending>()

  constructor (start = Date.now()) {
    this.t = start
  }

  // arrow functions: a test hands `clock.now` on its own (MemoryStore's `now`)
  readonly now = (): number => this.t

  readonly setTimeout = (fn: () => void, ms: number): Timer => {
    const p = { id: ++this.seq, at: this.t + Math.max(0, ms), fn }
    this.pending.set(p.id, p)
    return { id: p.id }
  }

  readonly clearTimeout = (t: Timer | undefined): void => {
    if (t !== undefined) this.pending.delete((t as { id: number }).id)
  }

  /** Timers set and not yet fired or cleared. */
  get timers (): number {
    return this.pending.size
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the
   * way, in order, each at its own time, and letting the promises each one
   * starts settle (microtasks, not I/O) before the next.
   */
  async advance (ms: number): Promise<void> {
    const end = this.t + ms
    for (;;) {
      await settle()
      let next: Pending | undefined
      for (const p of this.pending.values()) if (p.at <= end && (next === undefined || p.at < next.at)) next = p
      if (next === undefined) break
      this.pending.delete(next.id)
      this.t = next.at
      next.fn()
    }
    this.t = end
    await settle()
  }
}

/** One turn of the event loop: the microtasks queued so far have run. */
async function settle (): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
}
