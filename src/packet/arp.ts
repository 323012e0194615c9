// ARP, RFC 826, for Ethernet hardware and IPv4 protocol addresses only:
//
//   0..1 htype (1 = Ethernet)   2..3 ptype (0x0800)   4 hlen (6)   5 plen (4)
//   6..7 op (1 request, 2 reply)
//   8..13 sender MAC  14..17 sender IPv4  18..23 target MAC  24..27 target IPv4
//
// MACs are numbers (see mac.ts), IPv4 addresses uint32 (see ip.ts).

import { readMac, writeMac } from './mac'
import { ETHERTYPE_IPV4 } from './ethernet'
import { Reason } from './reason'
import { readU32, writeU32 } from './bytes'

export const ARP_HLEN = 28
export const ARPHRD_ETHER = 1
export const ARPOP_REQUEST = 1
export const ARPOP_REPLY = 2

export function readArpHtype (buf: Buffer, off: number): number {
  return (buf[off] << 8) | buf[off + 1]
}
export function readArpPtype (buf: Buffer, off: number): number {
  return (buf[off + 2] << 8) | buf[off + 3]
}
export function readArpHlen (buf: Buffer, off: number): number {
  return buf[off + 4]
}
export function readArpPlen (buf: Buffer, off: number): number {
  return buf[off + 5]
}
export function readArpOp (buf: Buffer, off: number): number {
  return (buf[off + 6] << 8) | buf[off + 7]
}
/** Sender hardware address. */
export function readArpSha (buf: Buffer, off: number): number {
  return readMac(buf, off + 8)
}
/** Sender protocol (IPv4) address. */
export function readArpSpa (buf: Buffer, off: number): number {
  return readU32(buf, off + 14)
}
/** Target hardware address. */
export function readArpTha (buf: Buffer, off: number): number {
  return readMac(buf, off + 18)
}
/** Target protocol (IPv4) address. */
export function readArpTpa (buf: Buffer, off: number): number {
  return readU32(buf, off + 24)
}

export function writeArpOp (buf: Buffer, off: number, op: number): void {
  buf[off + 6] = op >>> 8
  buf[off + 7] = op
}
export function writeArpSha (buf: Buffer, off: number, mac: number): void {
  writeMac(buf, off + 8, mac)
}
export function writeArpSpa (buf: Buffer, off: number, ip: number): void {
  writeU32(buf, off + 14, ip)
}
export function writeArpTha (buf: Buffer, off: number, mac: number): void {
  writeMac(buf, off + 18, mac)
}
export function writeArpTpa (buf: Buffer, off: number, ip: number): void {
  writeU32(buf, off + 24, ip)
}

/** Write a whole Ethernet/IPv4 ARP packet. Returns the offset just past it. */
export function writeArp (buf: Buffer, off: number, op: number, sha: number, spa: number, tha: number, tpa: number): number {
  buf[off] = 0
  buf[off + 1] = ARPHRD_ETHER
  buf[off + 2] = ETHERTYPE_IPV4 >>> 8
  buf[off + 3] = ETHERTYPE_IPV4 & 0xff
  buf[off + 4] = 6
  buf[off + 5] = 4
  writeArpOp(buf, off, op)
  writeMac(buf, off + 8, sha)
  writeU32(buf, off + 14, spa)
  writeMac(buf, off + 18, tha)
  writeU32(buf, off + 24, tpa)
  return off + ARP_HLEN
}

/** Ethernet/IPv4 ARP request or reply? (Bytes past the 28 are padding and ignored.) */
export function validateArp (buf: Buffer, off: number, len: number): number {
  if (!(off >= 0) || !(len >= ARP_HLEN) || off + len > buf.length) return Reason.TRUNCATED
  if (
    buf[off] !== 0 || buf[off + 1] !== ARPHRD_ETHER ||
    buf[off + 2] !== ETHERTYPE_IPV4 >>> 8 || buf[off + 3] !== (ETHERTYPE_IPV4 & 0xff) ||
    buf[off + 4] !== 6 || buf[off + 5] !== 4
  ) {
    return Reason.BAD_ARP_FORMAT
  }
  const op = (buf[off + 6] << 8) | buf[off + 7]
  if (op !== ARPOP_REQUEST && op !== ARPOP_REPLY) return Reason.BAD_ARP_OP
  return Reason.OK
}

/**
 * Answer a (validated) request in place, claiming its target address for `mac`:
 * op = reply, target = the requester, sender = (mac, the address asked about).
 * The enclosing Ethernet header (dst = requester, src = mac) is the caller's.
 * Returns Reason.BAD_ARP_OP, changing nothing, if it is not a request.
 */
export function arpRequestToReply (buf: Buffer, off: number, mac: number): number {
  if (((buf[off + 6] << 8) | buf[off + 7]) !== ARPOP_REQUEST) return Reason.BAD_ARP_OP
  const requesterMac = readMac(buf, off + 8)
  const requesterIp = readU32(buf, off + 14)
  const askedIp = readU32(buf, off + 24)
  writeArpOp(buf, off, ARPOP_REPLY)
  writeMac(buf, off + 8, mac)
  writeU32(buf, off + 14, askedIp)
  writeMac(buf, off + 18, requesterMac)
  writeU32(buf, off + 24, requesterIp)
  return Reason.OK
}
