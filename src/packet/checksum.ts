// The Internet checksum (RFC 1071): 16-bit ones-complement sum of a byte
// range, folded and complemented, plus RFC 1624 incremental updates.
//
// Partial sums are returned folded to 16 bits (not complemented), so they
// chain (pass one as the next call's `initial`) and add up with plain +.
// Folding before returning is deliberate: V8 keeps integers up to 2^31-1
// unboxed (Smis); a larger number passed to or returned from a function that
// is not inlined becomes a heap-allocated HeapNumber, i.e. garbage per packet.

/**
 * Ones-complement partial sum of buf[off, off+len) as big-endian 16-bit words,
 * an odd trailing byte padded with a zero low byte (RFC 1071), plus `initial`
 * (any non-negative number below 2^53), folded to [0, 0xffff]. 0 only if
 * everything was zero. finish() turns it into a checksum field value.
 *
 * Why the loop looks like this: 8 bytes per iteration, added as four 16-bit
 * words into one accumulator, carries folded once at the end (ones-complement
 * addition is associative, and end-around carries can be deferred; RFC 1071
 * section 2). Even 64 KiB of 0xff bytes sums to just under 2^31, so for any
 * IPv4 datagram V8 keeps the accumulator an untagged int32 (were it ever to
 * overflow, JS stays exact; V8 just switches to doubles).
 * We deliberately do not read 32-bit words: their sum leaves int32 range
 * after one word, so the accumulator becomes a double, and when this
 * function is inlined into some callers (seen in an OSR'd loop) V8 boxed it
 * into a fresh HeapNumber every iteration: ~1.3 KB of garbage per 1 KB
 * packet. Measured on Node 20, this loop is as fast as the 32-bit one (~0.6
 * ns/byte), ~1.5x a 2-bytes-per-iteration loop and ~4x Buffer#readUInt32BE
 * (which also throws out of range). Plain indexing never throws.
 */
export function onesSum (buf: Buffer, off: number, len: number, initial: number = 0): number {
  let sum = initial
  let i = off
  const end = off + len
  const end8 = off + (len & ~7)
  for (; i < end8; i += 8) {
    sum +=
      ((buf[i] << 8) | buf[i + 1]) +
      ((buf[i + 2] << 8) | buf[i + 3]) +
      ((buf[i + 4] << 8) | buf[i + 5]) +
      ((buf[i + 6] << 8) | buf[i + 7])
  }
  for (; i + 1 < end; i += 2) sum += (buf[i] << 8) | buf[i + 1]
  if (i < end) sum += buf[i] << 8
  return fold(sum)
}

/**
 * Fold a sum to 16 bits with end-around carry. Result is in [0, 0xffff], 0
 * only for 0. For adding up several onesSum results or other 16-bit words.
 */
export function fold (sum: number): number {
  // Bit operators truncate to 32 bits, and the sum may be larger than that.
  while (sum > 0xffffffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000)
  sum = (sum & 0xffff) + (sum >>> 16)
  sum = (sum & 0xffff) + (sum >>> 16)
  return sum
}

/** Fold and complement: the value to put in a checksum field. */
export function finish (sum: number): number {
  return ~fold(sum) & 0xffff
}

/**
 * Checksum of buf[off, off+len) (field assumed zeroed, or use verify: a range
 * that includes a correct checksum sums to 0xffff, so checksum() returns 0).
 */
export function checksum (buf: Buffer, off: number, len: number, initial: number = 0): number {
  return finish(onesSum(buf, off, len, initial))
}

/**
 * RFC 1624 eqn. 3: new checksum after one 16-bit word of the covered data
 * changes from oldWord to newWord: HC' = ~(~HC + ~m + m'). Equation 3, not
 * eqn. 2 (HC - m + m'), whose -0 can turn a correct 0xffff into 0x0000.
 * Equals a full recompute except when all covered data ends up zero (the
 * recompute gives 0xffff, this 0x0000); an IPv4 header never is.
 */
export function updateChecksum16 (csum: number, oldWord: number, newWord: number): number {
  return ~fold((~csum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff
}

/** As updateChecksum16 for a 32-bit value (e.g. an IPv4 address) that changed. */
export function updateChecksum32 (csum: number, oldValue: number, newValue: number): number {
  return (
    ~fold(
      (~csum & 0xffff) +
        (~(oldValue >>> 16) & 0xffff) +
        (~oldValue & 0xffff) +
        (newValue >>> 16) +
        (newValue & 0xffff)
    ) & 0xffff
  )
}

/**
 * Sum (not folded, at most ~0x5_0000) of the IPv4 pseudo-header (RFC 768 /
 * RFC 9293): source and destination address as uint32, protocol, L4 length.
 */
export function pseudoHeaderSum4 (src: number, dst: number, protocol: number, l4Length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + l4Length
}

/**
 * As pseudoHeaderSum4, taking the addresses from the IPv4 header at
 * buf[ipOff]. This is what the L4 checksum functions use: the addresses are
 * summed as 16-bit words and never become uint32 numbers (which, above
 * 127.255.255.255, would be HeapNumbers when passed around; see top).
 */
export function pseudoHeaderSum4At (buf: Buffer, ipOff: number, protocol: number, l4Length: number): number {
  return onesSum(buf, ipOff + 12, 8, protocol + l4Length)
}
