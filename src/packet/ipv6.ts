// IPv6 header, RFC 8200, and the walk over its extension headers.
//
//   0..3    version (4 bits) | traffic class (8) | flow label (20)
//   4..5    payload length (bytes after this 40-byte header, extension headers included)
//   6       next header (the first extension header, or the upper layer)
//   7       hop limit
//   8..23   source address
//   24..39  destination address
//
// Addresses stay bytes in the packet: the dataplane compares and indexes
// them as four big-endian words (bytes.ts readU32), never as bigints.
//
// Extension headers (what weft does with them):
// hop-by-hop (0), routing (43) and destination options (60) are walked, at
// most IPV6_MAX_EXT_HEADERS of them, each checked to fit in the packet, a
// hop-by-hop header only first (RFC 8200 4.1), to find the upper layer. The
// packet then goes on whole: the receiving kernel acts on the headers as it
// would for a packet from any router. A fragment header (44) ends the walk:
// the caller sees "fragment" as the upper layer (a fragment's L4 header, if
// any, belongs to a datagram the kernel reassembles, so it is neither
// coalesced nor checksummed here). Anything else (TCP, UDP, ICMPv6, ESP, AH,
// no next header) is the upper layer.
// Accessors do no bounds checks: validate first. Nothing here throws or allocates.

import { onesSum } from './checksum'
import { Reason } from './reason'

export const IPV6_HLEN = 40
/** the largest payload length the 16-bit field holds (no jumbograms) */
export const IPV6_MAX_PAYLOAD = 0xffff

export const NEXTHDR_HOP = 0
export const NEXTHDR_TCP = 6
export const NEXTHDR_UDP = 17
export const NEXTHDR_ROUTING = 43
export const NEXTHDR_FRAGMENT = 44
export const NEXTHDR_ESP = 50
export const NEXTHDR_AH = 51
export const NEXTHDR_ICMPV6 = 58
export const NEXTHDR_NONE = 59
export const NEXTHDR_DEST = 60

/** extension headers walked before the upper layer; more is refused (Reason.BAD_EXTENSION_HEADER) */
export const IPV6_MAX_EXT_HEADERS = 8
/** the jumbo payload option's type (RFC 2675) */
export const IPV6_OPT_JUMBO = 0xc2
const OPT_PAD1 = 0

export function readIpv6Version (buf: Buffer, off: number): number {
  return buf[off] >>> 4
}
export function readIpv6TrafficClass (buf: Buffer, off: number): number {
  return ((buf[off] & 0x0f) << 4) | (buf[off + 1] >>> 4)
}
export function readIpv6FlowLabel (buf: Buffer, off: number): number {
  return ((buf[off + 1] & 0x0f) << 16) | (buf[off + 2] << 8) | buf[off + 3]
}
export function readIpv6PayloadLength (buf: Buffer, off: number): number {
  return (buf[off + 4] << 8) | buf[off + 5]
}
export function readIpv6NextHeader (buf: Buffer, off: number): number {
  return buf[off + 6]
}
export function readIpv6HopLimit (buf: Buffer, off: number): number {
  return buf[off + 7]
}

export function writeIpv6PayloadLength (buf: Buffer, off: number, length: number): void {
  buf[off + 4] = length >>> 8
  buf[off + 5] = length
}
export function writeIpv6NextHeader (buf: Buffer, off: number, nh: number): void {
  buf[off + 6] = nh
}
export function writeIpv6HopLimit (buf: Buffer, off: number, hops: number): void {
  buf[off + 7] = hops
}

/**
 * Write a 40-byte header; the addresses are copied from src[srcOff, +16)
 * and dst[dstOff, +16) (e.g. ip6Bytes(...) of net6.ts). Returns the offset
 * just past the header.
 */
export function writeIpv6Header (
  buf: Buffer,
  off: number,
  trafficClass: number,
  flowLabel: number,
  payloadLength: number,
  nextHeader: number,
  hopLimit: number,
  src: Uint8Array,
  srcOff: number,
  dst: Uint8Array,
  dstOff: number
): number {
  buf[off] = 0x60 | ((trafficClass >>> 4) & 0x0f)
  buf[off + 1] = ((trafficClass & 0x0f) << 4) | ((flowLabel >>> 16) & 0x0f)
  buf[off + 2] = flowLabel >>> 8
  buf[off + 3] = flowLabel
  writeIpv6PayloadLength(buf, off, payloadLength)
  buf[off + 6] = nextHeader
  buf[off + 7] = hopLimit
  for (let i = 0; i < 16; i++) {
    buf[off + 8 + i] = src[srcOff + i]
    buf[off + 24 + i] = dst[dstOff + i]
  }
  return off + IPV6_HLEN
}

/** Do the 16-byte addresses at a[aOff] and b[bOff] match? */
export function equalIpv6Addr (a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): boolean {
  for (let i = 0; i < 16; i++) if (a[aOff + i] !== b[bOff + i]) return false
  return true
}

/**
 * Folded sum of the IPv6 pseudo-header (RFC 8200 8.1): both addresses of
 * the header at buf[ipOff], the upper-layer length (32 bits) and next
 * header value `protocol`. Chain it into onesSum as `initial`.
 */
export function pseudoHeaderSum6At (buf: Buffer, ipOff: number, protocol: number, l4Length: number): number {
  return onesSum(buf, ipOff + 8, 32, protocol + (l4Length >>> 16) + (l4Length & 0xffff))
}

/** walkIpv6's result: the upper layer's protocol (NEXTHDR_FRAGMENT for a fragment) */
export function walkProtocol (walked: number): number {
  return walked >>> 17
}
/** walkIpv6's result: bytes from the IPv6 header to the upper layer (or the fragment header) */
export function walkOffset (walked: number): number {
  return walked & 0x1ffff
}

/**
 * Walk the extension headers of the IPv6 packet at buf[off] whose `total`
 * bytes (40 + payload length) are all present. Returns protocol << 17 |
 * offset of the upper layer (read with walkProtocol / walkOffset), or
 * -Reason.BAD_EXTENSION_HEADER / -Reason.JUMBOGRAM. A fragment header must
 * fit whole (8 bytes).
 */
export function walkIpv6 (buf: Buffer, off: number, total: number): number {
  let nh = buf[off + 6]
  let at = IPV6_HLEN
  for (let n = 0; ; n++) {
    if (nh === NEXTHDR_FRAGMENT) {
      if (at + 8 > total) return -Reason.BAD_EXTENSION_HEADER
      return (nh << 17) | at
    }
    if (nh !== NEXTHDR_HOP && nh !== NEXTHDR_ROUTING && nh !== NEXTHDR_DEST) return (nh << 17) | at
    if (n >= IPV6_MAX_EXT_HEADERS || (nh === NEXTHDR_HOP && n !== 0)) return -Reason.BAD_EXTENSION_HEADER
    if (at + 8 > total) return -Reason.BAD_EXTENSION_HEADER
    const hlen = (buf[off + at + 1] + 1) << 3
    if (at + hlen > total) return -Reason.BAD_EXTENSION_HEADER
    if (nh === NEXTHDR_HOP && hasJumboOption(buf, off + at, hlen)) return -Reason.JUMBOGRAM
    nh = buf[off + at]
    at += hlen
  }
}

/** Does the options header at buf[h] (hlen bytes) carry a jumbo payload option? */
function hasJumboOption (buf: Buffer, h: number, hlen: number): boolean {
  let i = 2
  while (i < hlen) {
    const type = buf[h + i]
    if (type === IPV6_OPT_JUMBO) return true
    if (type === OPT_PAD1) { i++; continue }
    if (i + 1 >= hlen) return false
    i += 2 + buf[h + i + 1]
  }
  return false
}

/**
 * Check the IPv6 packet at buf[off] against the `len` bytes available there:
 * version 6, the header, the payload length (a jumbogram's 0 with a
 * hop-by-hop header is Reason.JUMBOGRAM), and the extension headers
 * (walkIpv6). Accepts fragments (see validateIpv6Unfragmented). On OK the
 * packet is buf[off, off + 40 + payload length); bytes past it are padding.
 */
export function validateIpv6 (buf: Buffer, off: number, len: number): number {
  if (!(off >= 0) || !(len >= IPV6_HLEN) || off + len > buf.length) return Reason.TRUNCATED
  if (buf[off] >>> 4 !== 6) return Reason.BAD_VERSION
  const plen = (buf[off + 4] << 8) | buf[off + 5]
  if (plen === 0 && buf[off + 6] === NEXTHDR_HOP) return Reason.JUMBOGRAM
  if (IPV6_HLEN + plen > len) return Reason.BAD_PAYLOAD_LENGTH
  const w = walkIpv6(buf, off, IPV6_HLEN + plen)
  return w < 0 ? -w : Reason.OK
}

/** validateIpv6, then Reason.IPV6_FRAGMENT for any fragment: for paths that must see a whole datagram. */
export function validateIpv6Unfragmented (buf: Buffer, off: number, len: number): number {
  const r = validateIpv6(buf, off, len)
  if (r !== Reason.OK) return r
  return walkProtocol(walkIpv6(buf, off, IPV6_HLEN + ((buf[off + 4] << 8) | buf[off + 5]))) === NEXTHDR_FRAGMENT ? Reason.IPV6_FRAGMENT : Reason.OK
}
