// IPv4 header, RFC 791; incremental checksum updates per RFC 1624.
//
//   0       version (4 bits) | IHL (4 bits, header length in 32-bit words)
//   1       TOS (DSCP | ECN)
//   2..3    total length (header + payload, bytes)
//   4..5    identification
//   6..7    flags (reserved | DF | MF) | fragment offset (13 bits, 8-byte units)
//   8       TTL
//   9       protocol
//   10..11  header checksum (over the header only)
//   12..15  source address
//   16..19  destination address
//   20..    options, when IHL > 5
//
// Accessors do no bounds checks: validate first. Out of range, reads give
// garbage (undefined, or 0 once shifted) and writes are dropped (typed-array
// semantics); nothing throws.
// Plain write* setters do not touch the checksum; rewrite*/decrement* do.

import { onesSum, finish, updateChecksum16, updateChecksum32 } from './checksum'
import { Reason } from './reason'
import { readU32, writeU32 } from './bytes'

export const IPV4_MIN_HLEN = 20
export const IPV4_MAX_HLEN = 60
export const IPV4_MAX_TOTAL_LENGTH = 0xffff

export const IPPROTO_ICMP = 1
export const IPPROTO_IPIP = 4
export const IPPROTO_TCP = 6
export const IPPROTO_UDP = 17

/** Masks for the 16-bit flags + fragment offset field (readIpv4FragField). */
export const IPV4_FLAG_RESERVED = 0x8000
export const IPV4_FLAG_DF = 0x4000
export const IPV4_FLAG_MF = 0x2000
export const IPV4_FRAG_OFFSET_MASK = 0x1fff

export function readIpv4Version (buf: Buffer, off: number): number {
  return buf[off] >>> 4
}
/** IHL field: header length in 32-bit words (5..15). */
export function readIpv4Ihl (buf: Buffer, off: number): number {
  return buf[off] & 0x0f
}
/** Header length in bytes (IHL * 4). */
export function readIpv4HeaderLength (buf: Buffer, off: number): number {
  return (buf[off] & 0x0f) << 2
}
export function readIpv4Tos (buf: Buffer, off: number): number {
  return buf[off + 1]
}
export function readIpv4TotalLength (buf: Buffer, off: number): number {
  return (buf[off + 2] << 8) | buf[off + 3]
}
export function readIpv4Id (buf: Buffer, off: number): number {
  return (buf[off + 4] << 8) | buf[off + 5]
}
/** Raw flags + fragment offset field; test with IPV4_FLAG_* / IPV4_FRAG_OFFSET_MASK. */
export function readIpv4FragField (buf: Buffer, off: number): number {
  return (buf[off + 6] << 8) | buf[off + 7]
}
/** Fragment offset in bytes (the field counts 8-byte units). */
export function readIpv4FragmentOffset (buf: Buffer, off: number): number {
  return (((buf[off + 6] << 8) | buf[off + 7]) & IPV4_FRAG_OFFSET_MASK) << 3
}
/** True if this is any fragment of a larger datagram: MF set or offset non-zero. */
export function isIpv4Fragment (buf: Buffer, off: number): boolean {
  return (((buf[off + 6] << 8) | buf[off + 7]) & (IPV4_FLAG_MF | IPV4_FRAG_OFFSET_MASK)) !== 0
}
export function readIpv4Ttl (buf: Buffer, off: number): number {
  return buf[off + 8]
}
export function readIpv4Protocol (buf: Buffer, off: number): number {
  return buf[off + 9]
}
export function readIpv4Checksum (buf: Buffer, off: number): number {
  return (buf[off + 10] << 8) | buf[off + 11]
}
export function readIpv4Src (buf: Buffer, off: number): number {
  return readU32(buf, off + 12)
}
export function readIpv4Dst (buf: Buffer, off: number): number {
  return readU32(buf, off + 16)
}

/** Set version 4 and IHL (words, 5..15). */
export function writeIpv4VersionIhl (buf: Buffer, off: number, ihl: number): void {
  buf[off] = 0x40 | (ihl & 0x0f)
}
export function writeIpv4Tos (buf: Buffer, off: number, tos: number): void {
  buf[off + 1] = tos
}
export function writeIpv4TotalLength (buf: Buffer, off: number, length: number): void {
  buf[off + 2] = length >>> 8
  buf[off + 3] = length
}
export function writeIpv4Id (buf: Buffer, off: number, id: number): void {
  buf[off + 4] = id >>> 8
  buf[off + 5] = id
}
export function writeIpv4FragField (buf: Buffer, off: number, field: number): void {
  buf[off + 6] = field >>> 8
  buf[off + 7] = field
}
export function writeIpv4Ttl (buf: Buffer, off: number, ttl: number): void {
  buf[off + 8] = ttl
}
export function writeIpv4Protocol (buf: Buffer, off: number, protocol: number): void {
  buf[off + 9] = protocol
}
export function writeIpv4Checksum (buf: Buffer, off: number, csum: number): void {
  buf[off + 10] = csum >>> 8
  buf[off + 11] = csum
}
export function writeIpv4Src (buf: Buffer, off: number, ip: number): void {
  writeU32(buf, off + 12, ip)
}
export function writeIpv4Dst (buf: Buffer, off: number, ip: number): void {
  writeU32(buf, off + 16, ip)
}

/**
 * Write a 20-byte header (IHL 5, no options) including its checksum.
 * `fragField` is the raw flags + offset field, e.g. IPV4_FLAG_DF or 0.
 * Returns the offset just past the header.
 */
export function writeIpv4Header (
  buf: Buffer,
  off: number,
  tos: number,
  totalLength: number,
  id: number,
  fragField: number,
  ttl: number,
  protocol: number,
  src: number,
  dst: number
): number {
  buf[off] = 0x45
  buf[off + 1] = tos
  writeIpv4TotalLength(buf, off, totalLength)
  writeIpv4Id(buf, off, id)
  writeIpv4FragField(buf, off, fragField)
  buf[off + 8] = ttl
  buf[off + 9] = protocol
  writeU32(buf, off + 12, src)
  writeU32(buf, off + 16, dst)
  setIpv4Checksum(buf, off)
  return off + IPV4_MIN_HLEN
}

/** The correct header checksum, computed as if the checksum field were zero (the field is not read or changed). */
export function computeIpv4Checksum (buf: Buffer, off: number): number {
  const hlen = (buf[off] & 0x0f) << 2
  return finish(onesSum(buf, off + 12, hlen - 12, onesSum(buf, off, 10)))
}

/** Compute and store the header checksum. */
export function setIpv4Checksum (buf: Buffer, off: number): void {
  writeIpv4Checksum(buf, off, computeIpv4Checksum(buf, off))
}

/** True if the header (IHL * 4 bytes, checksum included) sums to 0xffff. */
export function verifyIpv4Checksum (buf: Buffer, off: number): boolean {
  return onesSum(buf, off, (buf[off] & 0x0f) << 2) === 0xffff
}

/**
 * Check the header at buf[off] against the `len` bytes available there.
 * Accepts fragments (see validateIpv4Unfragmented) and options. On OK the
 * datagram is buf[off, off + total length); bytes past it (Ethernet padding)
 * are not part of it.
 */
export function validateIpv4 (buf: Buffer, off: number, len: number): number {
  // Written as !(x >= y) so NaN / negative arguments also fail, instead of indexing garbage.
  if (!(off >= 0) || !(len >= IPV4_MIN_HLEN) || off + len > buf.length) return Reason.TRUNCATED
  const b0 = buf[off]
  if (b0 >>> 4 !== 4) return Reason.BAD_VERSION
  const hlen = (b0 & 0x0f) << 2
  if (hlen < IPV4_MIN_HLEN) return Reason.BAD_IHL
  if (hlen > len) return Reason.TRUNCATED
  const total = (buf[off + 2] << 8) | buf[off + 3]
  // Shorter than its own header, or claims bytes we were not given (Linux
  // counts the latter as InTruncatedPkts; either way the header is lying).
  if (total < hlen || total > len) return Reason.BAD_TOTAL_LENGTH
  if (onesSum(buf, off, hlen) !== 0xffff) return Reason.BAD_IPV4_CHECKSUM
  return Reason.OK
}

/**
 * validateIpv4, then Reason.FRAGMENT for any fragment. For paths that must
 * see a whole datagram, e.g. the outer packet of a tunnel (a non-first
 * fragment has no UDP header to demultiplex on).
 */
export function validateIpv4Unfragmented (buf: Buffer, off: number, len: number): number {
  const r = validateIpv4(buf, off, len)
  if (r !== Reason.OK) return r
  return isIpv4Fragment(buf, off) ? Reason.FRAGMENT : Reason.OK
}

/**
 * Forwarding TTL decrement with incremental checksum fix. Returns
 * Reason.TTL_EXCEEDED (and leaves the packet unchanged) if TTL <= 1, since a
 * router must not forward a packet whose TTL reaches 0 (RFC 1812 5.3.1).
 */
export function decrementIpv4Ttl (buf: Buffer, off: number): number {
  const ttl = buf[off + 8]
  if (ttl <= 1) return Reason.TTL_EXCEEDED
  rewriteIpv4Ttl(buf, off, ttl - 1)
  return Reason.OK
}

/** Set TTL and fix the header checksum incrementally (TTL shares a 16-bit word with protocol). */
export function rewriteIpv4Ttl (buf: Buffer, off: number, ttl: number): void {
  const proto = buf[off + 9]
  const oldWord = (buf[off + 8] << 8) | proto
  buf[off + 8] = ttl
  const newWord = ((ttl & 0xff) << 8) | proto
  writeIpv4Checksum(buf, off, updateChecksum16(readIpv4Checksum(buf, off), oldWord, newWord))
}

/**
 * Set the source address and fix the header checksum incrementally. An L4
 * checksum covering the pseudo-header (UDP, TCP) must be fixed by the caller
 * with updateChecksum32(l4csum, old, new) as well (UDP: only if non-zero).
 */
export function rewriteIpv4Src (buf: Buffer, off: number, ip: number): void {
  const old = readIpv4Src(buf, off)
  writeU32(buf, off + 12, ip)
  writeIpv4Checksum(buf, off, updateChecksum32(readIpv4Checksum(buf, off), old, ip >>> 0))
}

/** As rewriteIpv4Src for the destination address. */
export function rewriteIpv4Dst (buf: Buffer, off: number, ip: number): void {
  const old = readIpv4Dst(buf, off)
  writeU32(buf, off + 16, ip)
  writeIpv4Checksum(buf, off, updateChecksum32(readIpv4Checksum(buf, off), old, ip >>> 0))
}

/**
 * Swap source and destination (e.g. to answer an echo request). No checksum
 * changes: ones-complement addition is commutative, so neither the header
 * checksum nor any pseudo-header checksum moves.
 */
export function swapIpv4Addresses (buf: Buffer, off: number): void {
  const src = readIpv4Src(buf, off)
  writeU32(buf, off + 12, readIpv4Dst(buf, off))
  writeU32(buf, off + 16, src)
}
