// UDP header, RFC 768: source port, destination port, length (header +
// payload), checksum over an IPv4 pseudo-header + the datagram. Over IPv4 a
// zero checksum means "none" and is allowed; a computed 0 is sent as 0xffff.
// Linux's vxlan device fills it in by default; with TX checksum offload a tap
// sees only the pseudo-header seed there (test/packet/kernel-vxlan.test.ts).

import { onesSum, finish, pseudoHeaderSum4At } from './checksum'
import { IPPROTO_UDP, IPV4_MIN_HLEN } from './ipv4'
import { Reason } from './reason'

export const UDP_HLEN = 8

export function readUdpSrcPort (buf: Buffer, off: number): number {
  return (buf[off] << 8) | buf[off + 1]
}
export function readUdpDstPort (buf: Buffer, off: number): number {
  return (buf[off + 2] << 8) | buf[off + 3]
}
export function readUdpLength (buf: Buffer, off: number): number {
  return (buf[off + 4] << 8) | buf[off + 5]
}
export function readUdpChecksum (buf: Buffer, off: number): number {
  return (buf[off + 6] << 8) | buf[off + 7]
}

export function writeUdpSrcPort (buf: Buffer, off: number, port: number): void {
  buf[off] = port >>> 8
  buf[off + 1] = port
}
export function writeUdpDstPort (buf: Buffer, off: number, port: number): void {
  buf[off + 2] = port >>> 8
  buf[off + 3] = port
}
export function writeUdpLength (buf: Buffer, off: number, length: number): void {
  buf[off + 4] = length >>> 8
  buf[off + 5] = length
}
export function writeUdpChecksum (buf: Buffer, off: number, csum: number): void {
  buf[off + 6] = csum >>> 8
  buf[off + 7] = csum
}

/** Write the 8-byte header with checksum 0 ("none"). Returns the payload offset. */
export function writeUdpHeader (buf: Buffer, off: number, srcPort: number, dstPort: number, length: number): number {
  writeUdpSrcPort(buf, off, srcPort)
  writeUdpDstPort(buf, off, dstPort)
  writeUdpLength(buf, off, length)
  buf[off + 6] = 0
  buf[off + 7] = 0
  return off + UDP_HLEN
}

// The checksum functions take `ipOff`, the offset of the IPv4 header carrying
// this datagram in the same buffer, for the pseudo-header's addresses.

/**
 * The UDP checksum of the `length`-byte datagram at buf[off], carried by the
 * IPv4 header at buf[ipOff], computed as if the field were zero (it is not
 * read). Never 0: RFC 768 sends a computed 0 as 0xffff, 0 meaning "none".
 */
export function computeUdp4Checksum (buf: Buffer, off: number, length: number, ipOff: number): number {
  const head = ((buf[off] << 8) | buf[off + 1]) + ((buf[off + 2] << 8) | buf[off + 3]) + ((buf[off + 4] << 8) | buf[off + 5])
  const c = finish(onesSum(buf, off + UDP_HLEN, length - UDP_HLEN, head + pseudoHeaderSum4At(buf, ipOff, IPPROTO_UDP, length)))
  return c === 0 ? 0xffff : c
}

/** Compute and store the checksum of the `length`-byte datagram at buf[off]. */
export function setUdp4Checksum (buf: Buffer, off: number, length: number, ipOff: number): void {
  writeUdpChecksum(buf, off, computeUdp4Checksum(buf, off, length, ipOff))
}

/** True if the checksum field is 0 (none, allowed over IPv4) or verifies. */
export function verifyUdp4Checksum (buf: Buffer, off: number, length: number, ipOff: number): boolean {
  if (buf[off + 6] === 0 && buf[off + 7] === 0) return true
  return onesSum(buf, off, length, pseudoHeaderSum4At(buf, ipOff, IPPROTO_UDP, length)) === 0xffff
}

/**
 * Check the UDP datagram at buf[off] against the `len` bytes the IPv4 header
 * at buf[ipOff] says it carries (total length - IHL*4). The UDP length may be
 * shorter than that (the rest is ignored, as Linux does) but not longer, nor
 * below 8.
 */
export function validateUdp4 (buf: Buffer, off: number, len: number, ipOff: number): number {
  if (!(off >= 0) || !(len >= UDP_HLEN) || off + len > buf.length) return Reason.TRUNCATED
  if (!(ipOff >= 0) || ipOff + IPV4_MIN_HLEN > buf.length) return Reason.TRUNCATED
  const length = (buf[off + 4] << 8) | buf[off + 5]
  if (length < UDP_HLEN || length > len) return Reason.BAD_UDP_LENGTH
  if (!verifyUdp4Checksum(buf, off, length, ipOff)) return Reason.BAD_UDP_CHECKSUM
  return Reason.OK
}
