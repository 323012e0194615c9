// What each backend asks of the kernel's permission checks (see
// src/kernel/privileges.ts), so `weft run` can check it before leasing.
import type { BackendConfig } from '../subnet/config'
import type { PrivilegeNeeds } from '../kernel/privileges'

export function backendNeeds (b: BackendConfig): PrivilegeNeeds {
  switch (b.type) {
    case 'vxlan': return { tun: true, rawSocket: false, udpPort: b.port }
    case 'udp': return { tun: true, rawSocket: false, udpPort: b.port }
    case 'ipip': return { tun: true, rawSocket: true }
    case 'host-gw': return { tun: false, rawSocket: false }
    case 'wireguard': return { tun: true, rawSocket: false, udpPort: b.listenPort }
  }
}
