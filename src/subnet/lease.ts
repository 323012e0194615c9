// A subnet lease, as flannel's pkg/lease and pkg/subnet describe it: which
// node (public IP) holds which subnet, with what backend, until when.
import { formatCidr, makeSubnetKey } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { formatCidr6 } from '../packet/net6'
import type { Ip6Net } from '../packet/net6'

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
  /** the IPv4 subnet; 0.0.0.0/0 for an IPv6-only lease, as in flannel */
  readonly subnet: Ip4Net
  /** the IPv6 subnet; absent when the lease has none */
  readonly subnet6?: Ip6Net
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

/**
 * The lease's store key (flannel's MakeSubnetKey), which identifies it:
 * maps of leases are keyed by it, never by the IPv4 subnet alone, which
 * every IPv6-only lease shares (0.0.0.0/0).
 */
export function leaseKey (l: { readonly subnet: Ip4Net, readonly subnet6?: Ip6Net }): string {
  return makeSubnetKey(l.subnet, l.subnet6)
}

/** Does the lease hold an IPv4 subnet (false for an IPv6-only one, whose subnet is 0.0.0.0/0)? */
export function hasIPv4 (l: { readonly subnet: Ip4Net, readonly subnet6?: Ip6Net }): boolean {
  return !(l.subnet6 !== undefined && l.subnet.ip === 0 && l.subnet.prefixLen === 0)
}

/** The lease's subnets for people and logs: "10.244.1.0/24", "10.244.1.0/24 and fc00:0:0:1::/64", "fc00:0:0:1::/64". */
export function describeSubnets (subnet: Ip4Net, subnet6?: Ip6Net): string {
  if (subnet6 === undefined) return formatCidr(subnet)
  if (!hasIPv4({ subnet, subnet6 })) return formatCidr6(subnet6)
  return `${formatCidr(subnet)} and ${formatCidr6(subnet6)}`
}

/** Do two leases name the same subnets (flannel's sameSubnet: both families)? */
export function sameSubnets (a: { readonly subnet: Ip4Net, readonly subnet6?: Ip6Net }, b: { readonly subnet: Ip4Net, readonly subnet6?: Ip6Net }): boolean {
  return leaseKey(a) === leaseKey(b)
}
