// Pacing UDP datagrams on their way into the TUN, so that a receiver with a
// default socket buffer gets them about as they came.
// Why: the underlay socket holds megabytes. Whenever the daemon is late to
// read it (its core was busy), what arrived meanwhile is read in one batch
// and, unpaced, written into the TUN at once: hundreds of datagrams in well
// under a millisecond, more than a 208 KiB receive buffer holds (about 80
// full-size datagrams) unless its reader happens to be running right then.
// Through kernel VXLAN each datagram reaches the receiver as its sender sends
// it. Measured (docs/performance.md): the loss was all in the receiving
// socket (UdpRcvbufErrors), at 1 Gbit/s some TUN sends carried 65 to 1358
// datagrams.
// How: a token bucket over what the receiving sockets are charged for the
// datagrams (their bytes and about 1 KiB of overhead each, as skb truesize).
// 1. a quiet bucket holds PACE_BURST: any batch up to that goes at once,
//    which is every batch of a flow the daemon keeps up with
// 2. it refills at PACE_FACTOR times the rate UDP arrived at over the last
//    few milliseconds (at least PACE_MIN_RATE): a backlog goes out at twice
//    the pace it came in, in chunks of about PACE_CHUNK, and is gone in
//    about the time it took to build up
// 3. TCP and everything else is never held by it (TCP has its own clock and
//    receive buffers that grow), though it keeps its place in the queue
// Times in µs, amounts in cost units (bytes); plain arithmetic, no clock of
// its own, so that tests drive it.

/** What a receiving socket is charged beyond a datagram's IP bytes (sk_buff, shared info, slab rounding). */
export const DATAGRAM_OVERHEAD = 1024
/** Cost a quiet pacer lets through at once: about 45% of a default 208 KiB receive buffer (39 full-size datagrams). */
export const PACE_BURST = 96 * 1024
/** A paced backlog goes out in pieces of about this much (a UDP super-packet that costs more goes whole, once this much is allowed). */
export const PACE_CHUNK = PACE_BURST / 2
/** Backlogs go out this many times faster than UDP arrived. */
export const PACE_FACTOR = 2
/** ... but never slower than this, cost units per µs (1 Gbit/s). */
export const PACE_MIN_RATE = 125
/** The arrival rate is measured over windows of at least this many µs (the first, of a flow starting from quiet, over FIRST_WINDOW_US). */
export const RATE_WINDOW_US = 2000
export const FIRST_WINDOW_US = 250
/** Waits between pieces: at least (below this, a timer costs more than it spreads) and at most. */
export const MIN_WAIT_US = 20
export const MAX_WAIT_US = 5000

export class UdpPacer {
  /** cost that may go now; may fall below 0 after a write larger than what was left */
  tokens = PACE_BURST
  /** smoothed arrival rate, cost units per µs */
  rate = 0
  private last = -1
  private windowStart = -1
  private windowCost = 0

  constructor (readonly factor = PACE_FACTOR) {}

  /** `cost` of UDP read from the socket at `now`: everything in it arrived since the previous read. */
  arrived (cost: number, now: number): void {
    if (this.windowStart < 0) {
      // what this first read holds arrived before anything was timed
      this.windowStart = now
      this.last = now
      return
    }
    this.windowCost += cost
    const span = now - this.windowStart
    if (span >= RATE_WINDOW_US || (this.rate === 0 && span >= FIRST_WINDOW_US)) {
      const r = this.windowCost / span
      this.rate = this.rate === 0 ? r : (this.rate + r) / 2
      this.windowStart = now
      this.windowCost = 0
    }
  }

  /** Cost units per µs the bucket refills at. */
  pace (): number {
    const p = this.factor * this.rate
    return p > PACE_MIN_RATE ? p : PACE_MIN_RATE
  }

  /** Tokens earned since the last refill. */
  refill (now: number): void {
    if (this.last >= 0 && now > this.last) {
      const t = this.tokens + (now - this.last) * this.pace()
      this.tokens = t < PACE_BURST ? t : PACE_BURST
    }
    this.last = now
  }

  /**
   * May a write of `cost` go after `used` of this round's? Yes while it fits
   * the tokens, and the round's first write also when the tokens reach a
   * chunk (a super-packet larger than what is left must not wait forever).
   */
  allows (used: number, cost: number): boolean {
    if (used + cost <= this.tokens) return true
    return used === 0 && this.tokens >= (cost < PACE_CHUNK ? cost : PACE_CHUNK)
  }

  spend (cost: number): void { this.tokens -= cost }

  /** µs until a write of `cost` may go (as a round's first). */
  waitFor (cost: number): number {
    const need = (cost < PACE_CHUNK ? cost : PACE_CHUNK) - this.tokens
    const us = Math.ceil(need / this.pace())
    return us < MIN_WAIT_US ? MIN_WAIT_US : us > MAX_WAIT_US ? MAX_WAIT_US : us
  }
}

/**
 * The pacing factor WEFT_UDP_PACING asks for: unset or empty the default,
 * "off" (or 0) none (every batch goes at once, as before), a number > 0 that
 * factor. Read once, when a pipeline is built.
 */
export function pacingFactor (env: string | undefined): number {
  if (env === undefined || env === '') return PACE_FACTOR
  if (env === 'off') return 0
  const f = Number(env)
  if (!Number.isFinite(f) || f < 0) throw new RangeError(`WEFT_UDP_PACING takes "off" or a factor > 0, got ${JSON.stringify(env)}`)
  return f
}
