// ICMPv6, RFC 4443: type, code, checksum over the IPv6 pseudo-header (next
// header 58) and the whole message, then the type's own bytes. Neighbour
// Discovery (RFC 4861) is ICMPv6 types 133..137; weft's tunnels carry none
// of it (a VTEP answers for its peers itself, as the kernel's flannel-v6
// device has its neighbour entries written by flanneld), so the dataplane
// drops any that arrives through one (Reason.NDP), as it drops ARP.

import { onesSum, finish, updateChecksum16 } from './checksum'
import { pseudoHeaderSum6At, NEXTHDR_ICMPV6 } from './ipv6'
import { Reason } from './reason'

export const ICMP6_HLEN = 8

export const ICMP6_DEST_UNREACH = 1
export const ICMP6_PACKET_TOO_BIG = 2
export const ICMP6_TIME_EXCEEDED = 3
export const ICMP6_PARAM_PROB = 4
export const ICMP6_ECHO_REQUEST = 128
export const ICMP6_ECHO_REPLY = 129
export const ND_ROUTER_SOLICIT = 133
export const ND_ROUTER_ADVERT = 134
export const ND_NEIGHBOR_SOLICIT = 135
export const ND_NEIGHBOR_ADVERT = 136
export const ND_REDIRECT = 137

/** Codes for ICMP6_DEST_UNREACH. */
export const ICMP6_NO_ROUTE = 0
export const ICMP6_ADDR_UNREACH = 3
export const ICMP6_PORT_UNREACH = 4

/** Neighbour Discovery or router signalling (RS, RA, NS, NA, redirect)? */
export function isNdpType (type: number): boolean {
  return type >= ND_ROUTER_SOLICIT && type <= ND_REDIRECT
}

export function readIcmp6Type (buf: Buffer, off: number): number {
  return buf[off]
}
export function readIcmp6Code (buf: Buffer, off: number): number {
  return buf[off + 1]
}
export function readIcmp6Checksum (buf: Buffer, off: number): number {
  return (buf[off + 2] << 8) | buf[off + 3]
}
export function writeIcmp6Checksum (buf: Buffer, off: number, csum: number): void {
  buf[off + 2] = csum >>> 8
  buf[off + 3] = csum
}

/**
 * Checksum of the `len`-byte message at buf[off], carried by the IPv6
 * header at buf[ipOff] (its addresses are the pseudo-header's), as if the
 * field were zero (it is not read).
 */
export function computeIcmp6Checksum (buf: Buffer, off: number, len: number, ipOff: number): number {
  const head = (buf[off] << 8) | buf[off + 1]
  return finish(onesSum(buf, off + 4, len - 4, head + pseudoHeaderSum6At(buf, ipOff, NEXTHDR_ICMPV6, len)))
}

export function setIcmp6Checksum (buf: Buffer, off: number, len: number, ipOff: number): void {
  writeIcmp6Checksum(buf, off, computeIcmp6Checksum(buf, off, len, ipOff))
}

export function verifyIcmp6Checksum (buf: Buffer, off: number, len: number, ipOff: number): boolean {
  return onesSum(buf, off, len, pseudoHeaderSum6At(buf, ipOff, NEXTHDR_ICMPV6, len)) === 0xffff
}

/** Check the `len`-byte ICMPv6 message at buf[off] (header at buf[ipOff]): long enough, checksum verifies. */
export function validateIcmp6 (buf: Buffer, off: number, len: number, ipOff: number): number {
  if (!(off >= 0) || !(len >= ICMP6_HLEN) || off + len > buf.length) return Reason.TRUNCATED
  if (!(ipOff >= 0) || ipOff + 40 > buf.length) return Reason.TRUNCATED
  if (!verifyIcmp6Checksum(buf, off, len, ipOff)) return Reason.BAD_ICMP_CHECKSUM
  return Reason.OK
}

/**
 * Turn an echo request into its reply in place (type 128 -> 129, checksum
 * fixed incrementally; swapping the IPv6 addresses moves no checksum).
 * Returns Reason.BAD_ICMP_TYPE, changing nothing, if it is not one.
 */
export function icmp6EchoRequestToReply (buf: Buffer, off: number): number {
  if (buf[off] !== ICMP6_ECHO_REQUEST || buf[off + 1] !== 0) return Reason.BAD_ICMP_TYPE
  buf[off] = ICMP6_ECHO_REPLY
  writeIcmp6Checksum(buf, off, updateChecksum16(readIcmp6Checksum(buf, off), ICMP6_ECHO_REQUEST << 8, ICMP6_ECHO_REPLY << 8))
  return Reason.OK
}
