// The virtio_net_hdr a TUN opened with IFF_VNET_HDR puts in front of every
// packet, both ways (include/uapi/linux/virtio_net.h); its one home on the
// JS side. The numbers come from the addon (WEFT_VNET_* and WEFT_GSO_* in
// native/src/weft.h, which tun_io.c holds to the kernel's header when it
// compiles), so C and JS cannot disagree. Fields are host-endian
// (little-endian here); 10 bytes without num_buffers.
//   0 flags  1 gso_type  2 hdr_len  4 gso_size  6 csum_start  8 csum_offset
import { constants } from './binding'

export const VNET_HDR_LEN: number = constants.VNET_HDR_LEN

export const VNET_F_NEEDS_CSUM: number = constants.VNET_F_NEEDS_CSUM
export const VNET_F_DATA_VALID: number = constants.VNET_F_DATA_VALID

export const GSO_NONE: number = constants.GSO_NONE
export const GSO_TCPV4: number = constants.GSO_TCPV4
export const GSO_TCPV6: number = constants.GSO_TCPV6
export const GSO_UDP_L4: number = constants.GSO_UDP_L4

/** gso_size of the header at buf[at] */
export function vnetGsoSize (buf: Buffer, at: number): number {
  return buf[at + 4] | (buf[at + 5] << 8)
}

/** Write a whole header at buf[at]. Byte by byte: no allocation. */
export function writeVnetHdr (buf: Buffer, at: number, flags: number, gsoType: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number): void {
  buf[at] = flags
  buf[at + 1] = gsoType
  buf[at + 2] = hdrLen & 255
  buf[at + 3] = hdrLen >> 8
  buf[at + 4] = gsoSize & 255
  buf[at + 5] = gsoSize >> 8
  buf[at + 6] = csumStart & 255
  buf[at + 7] = csumStart >> 8
  buf[at + 8] = csumOffset & 255
  buf[at + 9] = csumOffset >> 8
}
