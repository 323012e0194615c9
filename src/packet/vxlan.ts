// VXLAN header, RFC 7348 section 5 (8 bytes, after the outer UDP header):
//
//   0      flags: R R R R I R R R  (I = 0x08: "VNI is valid", must be set)
//   1..3   reserved (0)
//   4..6   VNI, 24 bits
//   7      reserved (0)
//
// RFC 7348 says receivers ignore reserved bits; Linux instead drops a packet
// with any reserved bit set (vxlan_rcv: "treat this as a malformed packet",
// SKB_DROP_REASON_VXLAN_INVALID_HDR) unless an extension such as GBP claims
// them. flannel.1 is a Linux vxlan device without extensions, so weft accepts
// exactly what a flannel.1 peer would accept.
//
// The one extension weft speaks is remote checksum offload (RCO,
// draft-herbert-vxlan-rco; Linux's `remcsumtx`/`remcsumrx`), and only with
// peers whose lease asks for it:
//   1      0x20: the R flag (bit 21 of the flags word, Linux's VXLAN_HF_RCO)
//   7      bit 7: the inner checksum is UDP's (offset 6), else TCP's (16);
//          bits 0-6: where the inner TCP/UDP header starts, counted from the
//          inner Ethernet header, divided by 2
// The inner checksum field then holds only the pseudo-header sum, and the
// outer UDP checksum, which covers the whole inner frame, guards the data.

import { ETH_HLEN } from './ethernet'
import { IPV4_MIN_HLEN } from './ipv4'
import { UDP_HLEN } from './udp'
import { Reason } from './reason'

export const VXLAN_HLEN = 8
export const VXLAN_FLAG_I = 0x08
export const VXLAN_VNI_MAX = 0xffffff
/** RCO: the R flag, in byte 1 of the header. */
export const VXLAN_FLAG_RCO = 0x20
/** RCO, byte 7: the inner checksum is UDP's (offset 6 in its header), not TCP's (16). */
export const VXLAN_RCO_UDP = 0x80
const VXLAN_RCO_START_MASK = 0x7f
/** UDP port flannel (and Linux's vxlan driver) use by default: the pre-IANA one. */
export const VXLAN_PORT_FLANNEL = 8472
/** IANA-assigned VXLAN port (RFC 7348). */
export const VXLAN_PORT_IANA = 4789

/**
 * Bytes VXLAN adds to an inner IPv4 packet, as counted against the underlay
 * MTU (which is an IP-level size, so the outer Ethernet header is not in it):
 * outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 = 50. flannel sets
 * flannel.1's MTU to underlay MTU - 50, e.g. 1500 -> 1450.
 */
export const VXLAN_MTU_OVERHEAD = IPV4_MIN_HLEN + UDP_HLEN + VXLAN_HLEN + ETH_HLEN

/**
 * Offset of the inner Ethernet frame within an outer Ethernet frame (no IPv4
 * options): outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8. Also 50, but a
 * different 50: this is headroom to reserve in front of an inner frame.
 */
export const VXLAN_ENCAP_HEADROOM = ETH_HLEN + IPV4_MIN_HLEN + UDP_HLEN + VXLAN_HLEN

/** Write a header with only the I flag set and the given 24-bit VNI. Returns the payload offset. */
export function writeVxlan (buf: Buffer, off: number, vni: number): number {
  buf[off] = VXLAN_FLAG_I
  buf[off + 1] = 0
  buf[off + 2] = 0
  buf[off + 3] = 0
  buf[off + 4] = vni >>> 16
  buf[off + 5] = vni >>> 8
  buf[off + 6] = vni
  buf[off + 7] = 0
  return off + VXLAN_HLEN
}

export function readVxlanFlags (buf: Buffer, off: number): number {
  return buf[off]
}

export function readVni (buf: Buffer, off: number): number {
  return (buf[off + 4] << 16) | (buf[off + 5] << 8) | buf[off + 6]
}

/**
 * Check the VXLAN header at buf[off] (`len` bytes available, header and
 * payload). With expectedVni >= 0, also Reason.WRONG_VNI unless it matches.
 * With allowRco, the R flag and the byte it gives meaning to may be set
 * (whether they describe the packet is the caller's to check).
 */
export function validateVxlan (buf: Buffer, off: number, len: number, expectedVni: number = -1, allowRco: boolean = false): number {
  if (!(off >= 0) || !(len >= VXLAN_HLEN) || off + len > buf.length) return Reason.TRUNCATED
  const flags = buf[off]
  if ((flags & VXLAN_FLAG_I) === 0) return Reason.BAD_VXLAN_FLAGS
  const rco = allowRco && buf[off + 1] === VXLAN_FLAG_RCO
  if ((flags & ~VXLAN_FLAG_I) !== 0 || (buf[off + 2] | buf[off + 3]) !== 0 || (!rco && (buf[off + 1] | buf[off + 7]) !== 0)) {
    return Reason.BAD_VXLAN_RESERVED
  }
  if (expectedVni >= 0 && ((buf[off + 4] << 16) | (buf[off + 5] << 8) | buf[off + 6]) !== expectedVni) {
    return Reason.WRONG_VNI
  }
  return Reason.OK
}

/** Does the (valid) header at buf[off] carry the RCO flag? */
export function hasRco (buf: Buffer, off: number): boolean {
  return (buf[off + 1] & VXLAN_FLAG_RCO) !== 0
}

/** RCO: where the inner TCP/UDP header starts, from the inner Ethernet header. */
export function rcoStart (buf: Buffer, off: number): number {
  return (buf[off + 7] & VXLAN_RCO_START_MASK) << 1
}

/** RCO: the inner L4 protocol whose checksum it describes (6 TCP, 17 UDP). */
export function rcoProtocol (buf: Buffer, off: number): number {
  return (buf[off + 7] & VXLAN_RCO_UDP) !== 0 ? 17 : 6
}

/**
 * Set RCO in the header at buf[off]: the inner TCP (proto 6) or UDP (17)
 * header starts `start` bytes after the inner Ethernet header (even, < 256).
 */
export function writeRco (buf: Buffer, off: number, start: number, proto: number): void {
  buf[off + 1] = VXLAN_FLAG_RCO
  buf[off + 7] = (start >> 1) | (proto === 17 ? VXLAN_RCO_UDP : 0)
}
