// Per-source rate limit on handshake messages, consulted only while the
// device is under load and only for messages whose mac2 proved their source
// address (so a spoofer cannot fill the table). wireguard-go's
// ratelimiter/ratelimiter.go: a token bucket per source IP address, 20
// messages a second, a burst of 5; entries idle for a second are forgotten.
//
// Tokens are milliseconds of credit: each message costs 50 ms, the bucket
// holds 250. wireguard-go allows a message while credit > cost, which with
// nanosecond clocks comes to 5 back to back; with whole milliseconds it would
// come to 4, so this allows while credit ≥ cost: exactly 5 at one instant.
//
// Addresses are IPv4 in host order (what the socket layer reports). check()
// allocates only for a source not seen in the last second; `maxEntries`
// bounds the table (a new source past it is refused until gc()).

const PER_SECOND = 20
const BURST = 5
const COST = 1000 / PER_SECOND
const MAX_TOKENS = COST * BURST
const IDLE_MS = 1000

interface Bucket { tokens: number, last: number }

export class HandshakeRateLimiter {
  private readonly table = new Map<number, Bucket>()

  constructor (private readonly maxEntries = 1 << 16) {}

  /** True if a handshake message from `addr` may be processed now (and charges it). */
  allow (addr: number, now: number): boolean {
    const e = this.table.get(addr)
    if (e === undefined) {
      if (this.table.size >= this.maxEntries) return false
      this.table.set(addr, { tokens: MAX_TOKENS - COST, last: now })
      return true
    }
    e.tokens = Math.min(MAX_TOKENS, e.tokens + Math.max(0, now - e.last))
    e.last = now
    if (e.tokens >= COST) {
      e.tokens -= COST
      return true
    }
    return false
  }

  /** Forgets sources idle for more than a second. */
  gc (now: number): void {
    for (const [addr, e] of this.table) if (now - e.last > IDLE_MS) this.table.delete(addr)
  }

  get size (): number {
    return this.table.size
  }
}
