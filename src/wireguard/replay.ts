// The receive side's replay filter (whitepaper §5.4.6; RFC 6479; wireguard-go
// replay/replay.go): a ring of 128 blocks of 64 bits over the counters, the
// newest counter seen at the front. The block holding the newest counter is
// being filled, so 127 whole blocks behind it are always known: the window
// is 127 × 64 = 8128 counters. Moving the front forward clears the blocks it
// passes (at most the whole ring), never per counter.
//
// Hot path: one check per received packet, after it authenticated. Counters
// are numbers (exact below 2^53, see MAX_COUNTER in constants.ts; anything
// above, or negative, is refused); a 64-bit block is two 32-bit words of a
// Uint32Array. No allocation, no BigInt.
import { MAX_COUNTER } from './constants'

const BLOCK_BITS = 64
const RING_BLOCKS = 128
/** Counters behind the newest one that can still be accepted (once each). */
export const REPLAY_WINDOW = (RING_BLOCKS - 1) * BLOCK_BITS // 8128

export class ReplayWindow {
  /** 2 words per block: word 2b holds bits 0-31 of block b, word 2b+1 bits 32-63 */
  private readonly ring = new Uint32Array(RING_BLOCKS * 2)
  /** newest counter accepted */
  private last = 0

  /** Empties the window (a new keypair). */
  reset (): void {
    this.last = 0
    this.ring.fill(0)
  }

  /**
   * True, and the counter marked seen, if `counter` is new: ahead of the
   * newest, or within the 8128 behind it and not seen before. False for a
   * duplicate, one too old, or one past MAX_COUNTER (or negative, as
   * messages.transportCounter returns for ≥ 2^53).
   */
  check (counter: number): boolean {
    if (!(counter >= 0 && counter <= MAX_COUNTER)) return false
    const ring = this.ring
    // counter / 64 is exact for integers below 2^53, and `& mask` truncates
    // it (ToInt32 keeps the low 32 bits of the integer part).
    const block = Math.floor(counter / BLOCK_BITS)
    if (counter > this.last) {
      const current = Math.floor(this.last / BLOCK_BITS)
      const diff = Math.min(block - current, RING_BLOCKS)
      for (let i = 1; i <= diff; i++) {
        const b = ((current + i) & (RING_BLOCKS - 1)) * 2
        ring[b] = 0
        ring[b + 1] = 0
      }
      this.last = counter
    } else if (this.last - counter > REPLAY_WINDOW) {
      return false
    }
    const bit = counter & (BLOCK_BITS - 1)
    const w = (block & (RING_BLOCKS - 1)) * 2 + (bit >>> 5)
    const m = 1 << (bit & 31)
    const old = ring[w]!
    if ((old & m) !== 0) return false
    ring[w] = old | m
    return true
  }
}
