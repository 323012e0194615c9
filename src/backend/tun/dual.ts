// A dual-stack node's network: the IPv4 and the IPv6 halves of one backend
// side by side, as flanneld runs flannel.<VNI> and flannel-v6.<VNI> (each
// half its own device, socket, table and dataplane). Every lease event goes
// to both; each takes the half of the lease that is its own.
import type { PeerEvent } from '../../lease/watcher'
import type { Lease } from '../../subnet/lease'
import type { Network, NetworkStatus } from '../backend'

export class DualNetwork implements Network {
  /** the pods' MTU: the smaller of the two, so that a pod's packet fits either family's tunnel */
  readonly mtu: number

  constructor (private readonly v4: Network, private readonly v6: Network) {
    this.mtu = Math.min(v4.mtu, v6.mtu)
  }

  handlePeers (events: readonly PeerEvent[]): void {
    this.v4.handlePeers(events)
    this.v6.handlePeers(events)
  }

  async setLease (lease: Lease): Promise<void> {
    await Promise.all([this.v4.setLease(lease), this.v6.setLease(lease)])
  }

  /** The IPv4 half's status, with the IPv6 half's under `ipv6`. */
  status (): NetworkStatus & { ipv6: NetworkStatus } {
    return { ...this.v4.status(), mtu: this.mtu, ipv6: this.v6.status() }
  }

  async close (): Promise<void> {
    const results = await Promise.allSettled([this.v6.close(), this.v4.close()])
    for (const r of results) if (r.status === 'rejected') throw r.reason
  }
}
