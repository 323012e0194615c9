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
