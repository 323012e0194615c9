// Which MTU each backend's pods get, as flannel's backends compute it
// (flannel.md sections 5-8): the underlay's less the encapsulation.
import { VXLAN_MTU_OVERHEAD } from '../packet/vxlan'
import { WIREGUARD_MTU_OVERHEAD } from '../subnet/config'
import type { BackendConfig } from '../subnet/config'

/** Bytes each encapsulation adds in front of the inner IP packet. */
export const OVERHEAD: Record<BackendConfig['type'], number> = {
  vxlan: VXLAN_MTU_OVERHEAD, // outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
  udp: 28, // outer IPv4 20 + UDP 8
  ipip: 20, // outer IPv4 20
  'host-gw': 0,
  wireguard: WIREGUARD_MTU_OVERHEAD // flannel's 80: outer IPv6 40 + UDP 8 + WireGuard 32 (IPv4 needs 60, plus up to 15 of padding)
}

/** The MTU pods get (FLANNEL_MTU): the underlay's (or Backend.MTU) less the overhead. */
export function podMtu (backend: BackendConfig, underlayMtu: number): number {
  const base = (backend.type === 'vxlan' || backend.type === 'wireguard') && backend.mtu > 0 ? backend.mtu : underlayMtu
  return base - OVERHEAD[backend.type]
}

/** VXLAN over an IPv6 underlay: the outer header is 40 bytes, not 20. */
export const VXLAN6_OVERHEAD = OVERHEAD.vxlan + 20

/**
 * The IPv6 VXLAN device's MTU (weft-v6.<VNI>): the underlay's less 70.
 * flanneld gives flannel-v6.<VNI> the IPv4 device's 50 less, so its
 * full-size IPv6 packets do not fit the underlay (the kernel's vxlan then
 * drops them with a Packet Too Big); weft does not copy that.
 */
export function vxlan6Mtu (backend: { mtu: number }, underlayMtu: number): number {
  return (backend.mtu > 0 ? backend.mtu : underlayMtu) - VXLAN6_OVERHEAD
}
