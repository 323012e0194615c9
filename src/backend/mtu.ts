// Which MTU each backend's pods get, as flannel's backends compute it
// (flannel.md sections 5-8): the underlay's less the encapsulation.
import { VXLAN_MTU_OVERHEAD } from '../packet/vxlan'
import type { BackendConfig } from '../subnet/config'

/** Bytes each encapsulation adds in front of the inner IP packet. */
export const OVERHEAD: Record<BackendConfig['type'], number> = {
  vxlan: VXLAN_MTU_OVERHEAD, // outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
  udp: 28, // outer IPv4 20 + UDP 8
  ipip: 20, // outer IPv4 20
  'host-gw': 0
}

/** The MTU pods get (FLANNEL_MTU): the underlay's (or Backend.MTU) less the overhead. */
export function podMtu (backend: BackendConfig, underlayMtu: number): number {
  const base = backend.type === 'vxlan' && backend.mtu > 0 ? backend.mtu : underlayMtu
  return base - OVERHEAD[backend.type]
}
