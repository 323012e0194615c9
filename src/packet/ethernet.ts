// Ethernet II header (IEEE 802.3 / RFC 894): dst MAC (6), src MAC (6),
// EtherType (2) = 14 bytes. No 802.1Q tags: flannel's VXLAN inner frames and
// the veth/TAP frames weft handles are untagged.

import { readMac, writeMac } from './mac'

export const ETH_HLEN = 14
export const ETH_DST_OFF = 0
export const ETH_SRC_OFF = 6
export const ETH_TYPE_OFF = 12

export const ETHERTYPE_IPV4 = 0x0800
export const ETHERTYPE_ARP = 0x0806
export const ETHERTYPE_VLAN = 0x8100
export const ETHERTYPE_IPV6 = 0x86dd

export function readEthDst (buf: Buffer, off: number): number {
  return readMac(buf, off)
}
export function readEthSrc (buf: Buffer, off: number): number {
  return readMac(buf, off + ETH_SRC_OFF)
}
export function readEthType (buf: Buffer, off: number): number {
  return (buf[off + 12] << 8) | buf[off + 13]
}

export function writeEthDst (buf: Buffer, off: number, mac: number): void {
  writeMac(buf, off, mac)
}
export function writeEthSrc (buf: Buffer, off: number, mac: number): void {
  writeMac(buf, off + ETH_SRC_OFF, mac)
}
export function writeEthType (buf: Buffer, off: number, type: number): void {
  buf[off + 12] = type >>> 8
  buf[off + 13] = type
}

/** Write a whole 14-byte header. Returns the offset just past it (the payload). */
export function writeEthernet (buf: Buffer, off: number, dst: number, src: number, type: number): number {
  writeMac(buf, off, dst)
  writeMac(buf, off + ETH_SRC_OFF, src)
  writeEthType(buf, off, type)
  return off + ETH_HLEN
}
