// IPv6 endpoints as small numbers, for the IPv6 device (weft-wg-v6).
// The protocol (../../wireguard) keeps an endpoint, a handshake's sender, a
// cookie's and the rate limiter's source as one number (an IPv4 address in
// host order). Over IPv6 the same code runs on handles: each address seen is
// given a number here, and the send path reads the address back by handle.
// So the protocol stays one code for both families, and the per-packet path
// never makes a bigint or a string: a transport from the peer's current
// endpoint is matched word by word (matches), and only a new source (a
// handshake, a roaming peer) is interned.
// Bounded: a flood of handshakes from many sources must not grow it without
// end. Past MAX_HANDLES it keeps only the handles peers hold as endpoints;
// a dropped handle's rate-limiter history and cookies go with it (the
// sender gets a new cookie, as after the secret's renewal).
import { ip6FromWords, ip6ToString, ip6Words } from '../../packet/net6'

/** Addresses remembered at once (peers' endpoints and recent handshake senders). */
export const MAX_HANDLES = 4096

export class Endpoints6 {
  private readonly byKey = new Map<string, number>()
  private readonly words = new Map<number, Uint32Array>()
  /** handles are never reused (a stale one reads as unknown), and 0 is none */
  private next = 1

  /** The handle of the address in w[at..at+3] (new if unseen); `keep` names the handles to keep when full. */
  intern (w: ArrayLike<number>, at: number, keep: () => Iterable<number>): number {
    const a = w[at] >>> 0
    const b = w[at + 1] >>> 0
    const c = w[at + 2] >>> 0
    const d = w[at + 3] >>> 0
    const key = `${a}.${b}.${c}.${d}`
    const known = this.byKey.get(key)
    if (known !== undefined) return known
    if (this.words.size >= MAX_HANDLES) this.sweep(new Set(keep()))
    // past 2^31 the protocol's `>>> 0` would still hold it, but wrap well before
    if (this.next >= 0x7fffffff) this.next = 1
    const h = this.next++
    this.byKey.set(key, h)
    this.words.set(h, Uint32Array.of(a, b, c, d))
    return h
  }

  /** The handle of a bigint address (lease endpoints: off the packet path). */
  internIp (ip: bigint, keep: () => Iterable<number>): number {
    return this.intern(ip6Words(ip), 0, keep)
  }

  /** The address's four words, or undefined for a handle no longer known. */
  wordsOf (h: number): Uint32Array | undefined {
    return this.words.get(h)
  }

  /** Hot path: whether handle h is the address in w[at..at+3] (no allocation). */
  matches (h: number, w: Uint32Array, at: number): boolean {
    const x = this.words.get(h)
    return x !== undefined && x[0] === w[at] && x[1] === w[at + 1] && x[2] === w[at + 2] && x[3] === w[at + 3]
  }

  /** The address as text (Go's form), or undefined. */
  text (h: number): string | undefined {
    const x = this.words.get(h)
    return x === undefined ? undefined : ip6ToString(ip6FromWords(x))
  }

  get size (): number { return this.words.size }

  private sweep (keep: Set<number>): void {
    for (const [key, h] of this.byKey) {
      if (keep.has(h)) continue
      this.byKey.delete(key)
      this.words.delete(h)
    }
  }
}
