// A subnet lease, as flannel's pkg/lease and pkg/subnet describe it: which
// node (public IP) holds which subnet, with what backend, until when.
import type { Ip4Net } from '../ip/net'

export interface LeaseAttrs {
  /** flannel "PublicIP": the node's underlay address (uint32, host order) */
  readonly publicIP: number
  /** flannel "PublicIPv6": always written (null without IPv6), kept as read */
  readonly publicIPv6: string | null
  /** flannel "BackendType": "" for udp and alloc, which omit the key */
  readonly backendType: string
  /** flannel "BackendData": backend-specific JSON (vxlan: {"VNI":1,"VtepMAC":"..."}) */
  readonly backendData?: unknown
  readonly backendV6Data?: unknown
}

export interface Lease {
  readonly subnet: Ip4Net
  readonly attrs: LeaseAttrs
  /** ms since the epoch; null for a reservation, which never expires */
  readonly expiration: number | null
  /** store revision of the write that produced this value */
  readonly revision: number
}

/** A key or value the store holds that is not a valid lease: skipped, reported once. */
export interface Skipped {
  readonly key: string
  readonly reason: string
}
