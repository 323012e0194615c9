// A subnet lease, as flannel's pkg/lease and pkg/subnet describe it: which
// node (public IP) holds which subnet, with what backend, until when.
import type { Ip4Net } from '../packet/net'

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

/**
 * Why a peer cannot be reached at the PublicIP its lease gives, or
 * undefined if it can. flannel's decoder turns a value with no PublicIP
 * ({}, or null) into 0.0.0.0, the same as the "0.0.0.0" it writes for an
 * unset one, and its backends would then route the peer's subnet to
 * 0.0.0.0, which Linux delivers to the local host: the peer's traffic would
 * loop back to us. weft decodes such a value as flannel does (it is still a
 * lease: its subnet is taken, and it is never rewritten or deleted) but no
 * backend routes to it. Multicast and the broadcast address are no single
 * peer's either.
 */
export function unusablePublicIP (ip: number): string | undefined {
  if (ip === 0) return 'its PublicIP is missing or 0.0.0.0'
  if (ip >>> 24 === 0) return 'its PublicIP is in 0.0.0.0/8, which is no host\'s address'
  if (ip >>> 28 === 0xe) return 'its PublicIP is a multicast address'
  if (ip >>> 0 === 0xffffffff) return 'its PublicIP is the broadcast address'
  return undefined
}
