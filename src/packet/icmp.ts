// ICMPv4, RFC 792: type, code, checksum (over the whole ICMP message, no
// pseudo-header), then 4 type-specific bytes; for echo request/reply those
// are identifier and sequence number, followed by the echoed data.

import { onesSum, finish, updateChecksum16 } from './checksum'
import { Reason } from './reason'

/** Every ICMP message starts with 8 bytes: type, code, checksum, 4 more. */
export const ICMP_HLEN = 8

export const ICMP_ECHO_REPLY = 0
export const ICMP_DEST_UNREACH = 3
export const ICMP_ECHO_REQUEST = 8
export const ICMP_TIME_EXCEEDED = 11

/** Codes for ICMP_DEST_UNREACH. */
export const ICMP_PORT_UNREACH = 3
export const ICMP_FRAG_NEEDED = 4

export function readIcmpType (buf: Buffer, off: number): number {
  return buf[off]
}
export function readIcmpCode (buf: Buffer, off: number): number {
  return buf[off + 1]
}
export function readIcmpChecksum (buf: Buffer, off: number): number {
  return (buf[off + 2] << 8) | buf[off + 3]
}
export function readIcmpEchoId (buf: Buffer, off: number): number {
  return (buf[off + 4] << 8) | buf[off + 5]
}
export function readIcmpEchoSeq (buf: Buffer, off: number): number {
  return (buf[off + 6] << 8) | buf[off + 7]
}

export function writeIcmpType (buf: Buffer, off: number, type: number): void {
  buf[off] = type
}
export function writeIcmpCode (buf: Buffer, off: number, code: number): void {
  buf[off + 1] = code
}
export function writeIcmpChecksum (buf: Buffer, off: number, csum: number): void {
  buf[off + 2] = csum >>> 8
  buf[off + 3] = csum
}
export function writeIcmpEchoId (buf: Buffer, off: number, id: number): void {
  buf[off + 4] = id >>> 8
  buf[off + 5] = id
}
export function writeIcmpEchoSeq (buf: Buffer, off: number, seq: number): void {
  buf[off + 6] = seq >>> 8
  buf[off + 7] = seq
}

/** Checksum of the `len`-byte message at buf[off], as if the field were zero (it is not read). */
export function computeIcmpChecksum (buf: Buffer, off: number, len: number): number {
  return finish(onesSum(buf, off + 4, len - 4, (buf[off] << 8) | buf[off + 1]))
}

export function setIcmpChecksum (buf: Buffer, off: number, len: number): void {
  writeIcmpChecksum(buf, off, computeIcmpChecksum(buf, off, len))
}

export function verifyIcmpChecksum (buf: Buffer, off: number, len: number): boolean {
  return onesSum(buf, off, len) === 0xffff
}

/**
 * Write an echo header (type ICMP_ECHO_REQUEST or ICMP_ECHO_REPLY, code 0)
 * in front of data already at buf[off+8, off+len), and its checksum over all
 * `len` bytes. Returns the offset just past the message.
 */
export function writeIcmpEcho (buf: Buffer, off: number, type: number, id: number, seq: number, len: number): number {
  buf[off] = type
  buf[off + 1] = 0
  writeIcmpEchoId(buf, off, id)
  writeIcmpEchoSeq(buf, off, seq)
  setIcmpChecksum(buf, off, len)
  return off + len
}

/** Check the `len`-byte ICMP message at buf[off]: long enough, checksum verifies. */
export function validateIcmp (buf: Buffer, off: number, len: number): number {
  if (!(off >= 0) || !(len >= ICMP_HLEN) || off + len > buf.length) return Reason.TRUNCATED
  if (onesSum(buf, off, len) !== 0xffff) return Reason.BAD_ICMP_CHECKSUM
  return Reason.OK
}

/**
 * Turn an echo request into its reply in place: type 8 -> 0 with an
 * incremental checksum fix; id, seq and data stay. The IPv4 addresses must be
 * swapped separately (swapIpv4Addresses). Returns Reason.BAD_ICMP_TYPE,
 * changing nothing, if the message is not an echo request (code 0).
 */
export function icmpEchoRequestToReply (buf: Buffer, off: number): number {
  if (buf[off] !== ICMP_ECHO_REQUEST || buf[off + 1] !== 0) return Reason.BAD_ICMP_TYPE
  buf[off] = ICMP_ECHO_REPLY
  writeIcmpChecksum(buf, off, updateChecksum16(readIcmpChecksum(buf, off), ICMP_ECHO_REQUEST << 8, ICMP_ECHO_REPLY << 8))
  return Reason.OK
}
