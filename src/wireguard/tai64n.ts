// TAI64N timestamps, the initiation's replay guard (whitepaper §5.1): 8 bytes
// of seconds (2^62 + 10 + Unix seconds, big-endian) and 4 of nanoseconds.
// Like wireguard-go (tai64n/tai64n.go) the nanoseconds are rounded down to a
// multiple of 2^24 (about 16.8 ms), so the timestamp does not tell an
// observer the sender's clock to the nanosecond.
export const TIMESTAMP_LEN = 12
const WHITENER = 0x100_0000

/** The TAI64N label of `ms` milliseconds since the epoch. */
export function tai64n (ms: number): Buffer {
  const t = Buffer.alloc(TIMESTAMP_LEN)
  const secs = Math.floor(ms / 1000) + 10
  t.writeUInt32BE(0x4000_0000 + Math.floor(secs / 0x1_0000_0000), 0)
  t.writeUInt32BE(secs >>> 0, 4)
  const nanos = Math.floor((ms - Math.floor(ms / 1000) * 1000) * 1e6)
  t.writeUInt32BE(nanos - (nanos % WHITENER), 8)
  return t
}

/** True if timestamp `a` is strictly later than `b`. */
export function isAfter (a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) > 0
}

/**
 * The smallest timestamp after `t`: one whitening step later (the
 * nanoseconds carry into the seconds). For a sender whose clock has not
 * moved past its last initiation's label.
 */
export function nextAfter (t: Uint8Array): Buffer {
  const n = Buffer.from(t)
  let nanos = n.readUInt32BE(8) + WHITENER
  let lo = n.readUInt32BE(4)
  let hi = n.readUInt32BE(0)
  if (nanos >= 1e9) {
    nanos = 0
    lo += 1
    if (lo > 0xffff_ffff) { lo = 0; hi += 1 }
  }
  n.writeUInt32BE(hi >>> 0, 0)
  n.writeUInt32BE(lo >>> 0, 4)
  n.writeUInt32BE(nanos, 8)
  return n
}
