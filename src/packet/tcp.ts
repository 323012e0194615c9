// TCP header, RFC 9293 (was RFC 793), minimal: ports, sequence and
// acknowledgement numbers, data offset, flags, window, checksum over an IPv4
// pseudo-header + the segment, urgent pointer. Options are skipped via the
// data offset, not parsed. TSO segmentation will build on this.
//
//   0..1 src port  2..3 dst port  4..7 seq  8..11 ack
//   12 data offset (high 4 bits, 32-bit words) | reserved | AE
//   13 flags (CWR ECE URG ACK PSH RST SYN FIN)  14..15 window
//   16..17 checksum  18..19 urgent pointer  20.. options

import { onesSum, finish, pseudoHeaderSum4At } from './checksum'
import { IPPROTO_TCP, IPV4_MIN_HLEN } from './ipv4'
import { Reason } from './reason'

export const TCP_MIN_HLEN = 20
export const TCP_MAX_HLEN = 60

export const TCP_FIN = 0x01
export const TCP_SYN = 0x02
export const TCP_RST = 0x04
export const TCP_PSH = 0x08
export const TCP_ACK = 0x10
export const TCP_URG = 0x20
export const TCP_ECE = 0x40
export const TCP_CWR = 0x80

export function readTcpSrcPort (buf: Buffer, off: number): number {
  return (buf[off] << 8) | buf[off + 1]
}
export function readTcpDstPort (buf: Buffer, off: number): number {
  return (buf[off + 2] << 8) | buf[off + 3]
}
export function readTcpSeq (buf: Buffer, off: number): number {
  return ((buf[off + 4] << 24) | (buf[off + 5] << 16) | (buf[off + 6] << 8) | buf[off + 7]) >>> 0
}
export function readTcpAck (buf: Buffer, off: number): number {
  return ((buf[off + 8] << 24) | (buf[off + 9] << 16) | (buf[off + 10] << 8) | buf[off + 11]) >>> 0
}
/** Data offset field: header length in 32-bit words (5..15). */
export function readTcpDataOffset (buf: Buffer, off: number): number {
  return buf[off + 12] >>> 4
}
/** Header length in bytes (data offset * 4). */
export function readTcpHeaderLength (buf: Buffer, off: number): number {
  return (buf[off + 12] >>> 4) << 2
}
/** The 8 flag bits of byte 13 (TCP_FIN .. TCP_CWR). */
export function readTcpFlags (buf: Buffer, off: number): number {
  return buf[off + 13]
}
export function readTcpWindow (buf: Buffer, off: number): number {
  return (buf[off + 14] << 8) | buf[off + 15]
}
export function readTcpChecksum (buf: Buffer, off: number): number {
  return (buf[off + 16] << 8) | buf[off + 17]
}
export function readTcpUrgent (buf: Buffer, off: number): number {
  return (buf[off + 18] << 8) | buf[off + 19]
}

export function writeTcpSrcPort (buf: Buffer, off: number, port: number): void {
  buf[off] = port >>> 8
  buf[off + 1] = port
}
export function writeTcpDstPort (buf: Buffer, off: number, port: number): void {
  buf[off + 2] = port >>> 8
  buf[off + 3] = port
}
export function writeTcpSeq (buf: Buffer, off: number, seq: number): void {
  buf[off + 4] = seq >>> 24
  buf[off + 5] = seq >>> 16
  buf[off + 6] = seq >>> 8
  buf[off + 7] = seq
}
export function writeTcpAck (buf: Buffer, off: number, ack: number): void {
  buf[off + 8] = ack >>> 24
  buf[off + 9] = ack >>> 16
  buf[off + 10] = ack >>> 8
  buf[off + 11] = ack
}
/** Set the data offset (words), keeping the reserved/AE bits of byte 12. */
export function writeTcpDataOffset (buf: Buffer, off: number, words: number): void {
  buf[off + 12] = ((words & 0x0f) << 4) | (buf[off + 12] & 0x0f)
}
export function writeTcpFlags (buf: Buffer, off: number, flags: number): void {
  buf[off + 13] = flags
}
export function writeTcpWindow (buf: Buffer, off: number, window: number): void {
  buf[off + 14] = window >>> 8
  buf[off + 15] = window
}
export function writeTcpChecksum (buf: Buffer, off: number, csum: number): void {
  buf[off + 16] = csum >>> 8
  buf[off + 17] = csum
}
export function writeTcpUrgent (buf: Buffer, off: number, urgent: number): void {
  buf[off + 18] = urgent >>> 8
  buf[off + 19] = urgent
}

/** Write a 20-byte header (no options, checksum and urgent pointer 0). Returns the payload offset. */
export function writeTcpHeader (
  buf: Buffer,
  off: number,
  srcPort: number,
  dstPort: number,
  seq: number,
  ack: number,
  flags: number,
  window: number
): number {
  writeTcpSrcPort(buf, off, srcPort)
  writeTcpDstPort(buf, off, dstPort)
  writeTcpSeq(buf, off, seq)
  writeTcpAck(buf, off, ack)
  buf[off + 12] = 5 << 4
  buf[off + 13] = flags
  writeTcpWindow(buf, off, window)
  buf[off + 16] = 0
  buf[off + 17] = 0
  buf[off + 18] = 0
  buf[off + 19] = 0
  return off + TCP_MIN_HLEN
}

// The checksum functions take `ipOff`, the offset of the IPv4 header carrying
// this segment in the same buffer, for the pseudo-header's addresses.

/** Checksum of the `len`-byte segment at buf[off] (header + data), as if the field were zero. */
export function computeTcp4Checksum (buf: Buffer, off: number, len: number, ipOff: number): number {
  const sum = onesSum(buf, off, 16, pseudoHeaderSum4At(buf, ipOff, IPPROTO_TCP, len))
  return finish(onesSum(buf, off + 18, len - 18, sum))
}

export function setTcp4Checksum (buf: Buffer, off: number, len: number, ipOff: number): void {
  writeTcpChecksum(buf, off, computeTcp4Checksum(buf, off, len, ipOff))
}

export function verifyTcp4Checksum (buf: Buffer, off: number, len: number, ipOff: number): boolean {
  return onesSum(buf, off, len, pseudoHeaderSum4At(buf, ipOff, IPPROTO_TCP, len)) === 0xffff
}

/** Check the `len`-byte segment at buf[off] (len = IPv4 total length - IHL*4 of the header at buf[ipOff]). */
export function validateTcp4 (buf: Buffer, off: number, len: number, ipOff: number): number {
  if (!(off >= 0) || !(len >= TCP_MIN_HLEN) || off + len > buf.length) return Reason.TRUNCATED
  if (!(ipOff >= 0) || ipOff + IPV4_MIN_HLEN > buf.length) return Reason.TRUNCATED
  const hlen = (buf[off + 12] >>> 4) << 2
  if (hlen < TCP_MIN_HLEN || hlen > len) return Reason.BAD_TCP_DATA_OFFSET
  if (!verifyTcp4Checksum(buf, off, len, ipOff)) return Reason.BAD_TCP_CHECKSUM
  return Reason.OK
}
