// 48-bit IEEE 802 MAC addresses. On the hot path a MAC is a plain number
// (0 .. 2^48-1, exact in a double), so it can key a Map or be compared with
// === without allocating; the string helpers are for config, logs and tests.

import { AddressParseError } from './errors'

export const ETH_ALEN = 6
export const MAC_BROADCAST = 0xffffffffffff

/** The MAC at buf[off, off+6) as a number. */
export function readMac (buf: Buffer, off: number): number {
  // hi 16 bits * 2^32 + lo 32 bits: a bitwise OR would truncate to 32 bits.
  return ((buf[off] << 8) | buf[off + 1]) * 0x100000000 +
    (((buf[off + 2] << 24) | (buf[off + 3] << 16) | (buf[off + 4] << 8) | buf[off + 5]) >>> 0)
}

/** Write MAC number `mac` to buf[off, off+6). */
export function writeMac (buf: Buffer, off: number, mac: number): void {
  const hi = Math.floor(mac / 0x100000000)
  const lo = mac >>> 0
  buf[off] = hi >>> 8
  buf[off + 1] = hi
  buf[off + 2] = lo >>> 24
  buf[off + 3] = lo >>> 16
  buf[off + 4] = lo >>> 8
  buf[off + 5] = lo
}

/** Copy 6 MAC bytes from src[srcOff] to dst[dstOff] (no number round trip). */
export function copyMac (dst: Buffer, dstOff: number, src: Buffer, srcOff: number): void {
  dst[dstOff] = src[srcOff]
  dst[dstOff + 1] = src[srcOff + 1]
  dst[dstOff + 2] = src[srcOff + 2]
  dst[dstOff + 3] = src[srcOff + 3]
  dst[dstOff + 4] = src[srcOff + 4]
  dst[dstOff + 5] = src[srcOff + 5]
}

/**
 * Compare two MACs in place. Prefer this to readMac(a) === readMac(b) on the
 * hot path: MAC numbers are above 2^32, so V8 boxes one into a HeapNumber
 * whenever it crosses a call that is not inlined (or keys a Map).
 */
export function macEquals (a: Buffer, aOff: number, b: Buffer, bOff: number): boolean {
  return (
    a[aOff] === b[bOff] && a[aOff + 1] === b[bOff + 1] && a[aOff + 2] === b[bOff + 2] &&
    a[aOff + 3] === b[bOff + 3] && a[aOff + 4] === b[bOff + 4] && a[aOff + 5] === b[bOff + 5]
  )
}

/** True for group (multicast and broadcast) addresses: I/G bit of the first octet. */
export function isMulticastMac (buf: Buffer, off: number): boolean {
  return (buf[off] & 1) === 1
}

// ---- off the hot path ----

const HEX = '0123456789abcdef'

/** "aa:bb:cc:dd:ee:ff" (lower case) for the MAC at buf[off]. */
export function macToString (buf: Buffer, off: number): string {
  let s = ''
  for (let i = 0; i < ETH_ALEN; i++) {
    const b = buf[off + i]
    if (i > 0) s += ':'
    s += HEX[b >>> 4] + HEX[b & 15]
  }
  return s
}

/** As macToString for a MAC number. */
export function macNumberToString (mac: number): string {
  const b = Buffer.allocUnsafe(ETH_ALEN)
  writeMac(b, 0, mac)
  return macToString(b, 0)
}

const MAC_RE = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i

/**
 * Parse "aa:bb:cc:dd:ee:ff" (or with '-') into out[off, off+6) and return out.
 * Throws AddressParseError for anything else.
 */
export function parseMac (str: string, out: Buffer = Buffer.alloc(ETH_ALEN), off: number = 0): Buffer {
  const m = MAC_RE.exec(str)
  if (m === null) throw new AddressParseError('mac', str)
  for (let i = 0; i < ETH_ALEN; i++) out[off + i] = parseInt(m[i + 1], 16)
  return out
}

/** Parse a MAC string to a MAC number. */
export function parseMacNumber (str: string): number {
  return readMac(parseMac(str), 0)
}
