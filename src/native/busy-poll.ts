// BusyPoll: after each light batch a PacketIo reads (a few small packets),
// this thread's event loop keeps polling for a window instead of sleeping;
// heavy batches (bulk traffic) stop it for a while. The decisions are in
// native/src/busy.c, which says why: a sleeping loop's wake-up costs each hop
// of a round trip time that the kernel's own tunnels never pay.
//
// One per event loop (the main thread's pipeline, each worker's): polling
// the loop polls every fd on it, so every PacketIo of the loop kicks the same
// poller.
import { WeftError } from '../errors'
import { native } from './binding'
import type { NativeBusyPoll } from './binding'

/** The longest window, 1 s: a longer one is a core given away for good. */
const BUSY_POLL_MAX_US = 1_000_000

/** Slots of a BusyPoll's counters (enum weft_busy_counter in native/src/weft.h). */
export const BusyCounter = {
  /** ns spent polling and finding nothing */
  NS: native.constants.BUSY_NS,
  /** light batches read while polling: each found the loop awake */
  CAUGHT: native.constants.BUSY_CAUGHT,
  /** times heavy traffic began and held polling off (polling or not at the time) */
  SUSPENDED: native.constants.BUSY_SUSPENDED
} as const

export interface BusyPollOptions {
  /**
   * Tests only: the poller's time is clock[0], in ns, instead of the real
   * clock, so that a test moves time itself and checks the rules without
   * sleeping. The loop still turns for real: only what each turn reads as
   * "now" is the test's.
   */
  clock?: Float64Array
}

export class BusyPoll {
  /** for PacketIo.busyPoll only */
  readonly handle: NativeBusyPoll
  private closed = false

  /**
   * counters: constants.BUSY_COUNTERS slots (ns polling with nothing found,
   * light batches caught while polling, times heavy traffic held it off),
   * e.g. a subarray of the pipeline's stats.
   */
  constructor (counters: Float64Array, windowUs: number, opts: BusyPollOptions = {}) {
    if (!(Number.isInteger(windowUs) && windowUs >= 0 && windowUs <= BUSY_POLL_MAX_US)) throw new WeftError('ERR_BUSY_POLL', `busy poll window must be a whole number of µs from 0 to ${BUSY_POLL_MAX_US}, not ${windowUs}`)
    if (counters.length < native.constants.BUSY_COUNTERS) throw new WeftError('ERR_BUSY_POLL', `busy poll counters need ${native.constants.BUSY_COUNTERS} slots`)
    this.handle = new native.BusyPoll({ counters, windowUs, clock: opts.clock })
  }

  /** Idempotent: the loop sleeps between batches again. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.handle.close()
  }
}
