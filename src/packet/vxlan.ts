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

import { ETH_HLEN } from './ethernet';
import { IPV4_MIN_HLEN } from './ipv4';
import { UDP_HLEN } from './udp';
import { Reason } from './reason';

export const VXLAN_HLEN = 8;
export const VXLAN_FLAG_I = 0x08;
export const VXLAN_VNI_MAX = 0xffffff;
/** UDP port flannel (and Linux's vxlan driver) use by default: the pre-IANA one. */
export const VXLAN_PORT_FLANNEL = 8472;
/** IANA-assigned VXLAN port (RFC 7348). */
export const VXLAN_PORT_IANA = 4789;

/**
 * Bytes VXLAN adds to an inner IPv4 packet, as counted against the underlay
 * MTU (which is an IP-level size, so the outer Ethernet header is not in it):
 * outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14 = 50. flannel sets
 * flannel.1's MTU to underlay MTU - 50, e.g. 1500 -> 1450.
 */
export const VXLAN_MTU_OVERHEAD = IPV4_MIN_HLEN + UDP_HLEN + VXLAN_HLEN + ETH_HLEN;

/**
 * Offset of the inner Ethernet frame within an outer Ethernet frame (no IPv4
 * options): outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8. Also 50, but a
 * different 50: this is headroom to reserve in front of an inner frame.
 */
export const VXLAN_ENCAP_HEADROOM = ETH_HLEN + IPV4_MIN_HLEN + UDP_HLEN + VXLAN_HLEN;

/** Write a header with only the I flag set and the given 24-bit VNI. Returns the payload offset. */
export function writeVxlan(buf: Buffer, off: number, vni: number): number {
  buf[off] = VXLAN_FLAG_I;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = vni >>> 16;
  buf[off + 5] = vni >>> 8;
  buf[off + 6] = vni;
  buf[off + 7] = 0;
  return off + VXLAN_HLEN;
}

export function readVxlanFlags(buf: Buffer, off: number): number {
  return buf[off];
}

export function readVni(buf: Buffer, off: number): number {
  return (buf[off + 4] << 16) | (buf[off + 5] << 8) | buf[off + 6];
}

/**
 * Check the VXLAN header at buf[off] (`len` bytes available, header and
 * payload). With expectedVni >= 0, also Reason.WRONG_VNI unless it matches.
 */
export function validateVxlan(buf: Buffer, off: number, len: number, expectedVni: number = -1): number {
  if (!(off >= 0) || !(len >= VXLAN_HLEN) || off + len > buf.length) return Reason.TRUNCATED;
  const flags = buf[off];
  if ((flags & VXLAN_FLAG_I) === 0) return Reason.BAD_VXLAN_FLAGS;
  if ((flags & ~VXLAN_FLAG_I) !== 0 || (buf[off + 1] | buf[off + 2] | buf[off + 3] | buf[off + 7]) !== 0) {
    return Reason.BAD_VXLAN_RESERVED;
  }
  if (expectedVni >= 0 && ((buf[off + 4] << 16) | (buf[off + 5] << 8) | buf[off + 6]) !== expectedVni) {
    return Reason.WRONG_VNI;
  }
  return Reason.OK;
}
