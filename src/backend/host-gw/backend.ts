// The host-gw backend, as flannel's: no tunnel and no userspace dataplane at
// all. Every peer's subnet is a kernel route `via <its public IP> dev
// <underlay>`, so the nodes must share an L2 network. Config and
// construction here; the peer routes and the rules in network.ts.
// flannel refuses to run behind NAT (a public IP that is not the interface's
// address): peers would route to an address the kernel cannot reach on the
// link. So does weft, before a lease is taken.
import { WeftError } from '../../errors'
import { formatCidr } from '../../packet/net'
import type { Lease, LeaseAttrs } from '../../subnet/lease'
import { enableForwarding } from '../../kernel/link'
import { createTrafficRules, removeOtherKind, type TrafficManager } from '../../kernel/traffic'
import { ip4ToString } from '../../packet/ip'
import type { HostGwBackendConfig } from '../../subnet/config'
import { trafficSettings, type Backend, type BackendContext, type Network } from '../backend'
import { podMtu } from '../mtu'
import { HostGwNetwork } from './network'
import { PeerRoutes } from '../../kernel/routes'

export class HostGwBackend implements Backend {
  readonly type = 'host-gw'

  constructor (private readonly ctx: BackendContext, private readonly cfg: HostGwBackendConfig) {
    const u = ctx.underlay
    if (u.publicIP !== u.ip) {
      throw new WeftError('EBACKEND', `the host-gw backend cannot run behind NAT: the public IP ${ip4ToString(u.publicIP)} is not the address ${ip4ToString(u.ip)} of ${u.name}, and host-gw routes peers' subnets via their public IPs on the link; drop --public-ip, or use vxlan, ipip or udp`)
    }
  }

  leaseAttrs (): LeaseAttrs {
    return { publicIP: this.ctx.underlay.publicIP, publicIPv6: null, backendType: 'host-gw' }
  }

  mtu (): number {
    return podMtu(this.cfg, this.ctx.underlay.mtu)
  }

  async start (lease: Lease): Promise<Network> {
    const { config, log, underlay } = this.ctx
    const traffic = trafficSettings(this.ctx)
    const rules = (subnet: Lease['subnet']): TrafficManager => createTrafficRules(traffic, { network: formatCidr(config.network), podSubnet: formatCidr(subnet), ipMasq: this.ctx.ipMasq, log })
    const first = rules(lease.subnet)
    await enableForwarding()
    await removeOtherKind(traffic, log)
    await first.apply()
    const routes = new PeerRoutes({ dev: underlay.name, log })
    log.info({ iface: underlay.name, mtu: this.mtu(), rules: first.kind }, 'host-gw: routing peers\' subnets via their public IPs')
    return new HostGwNetwork({ routes, rules: first, makeRules: rules, lease, mtu: this.mtu(), underlay, resyncMs: traffic.resyncMs, log })
  }
}
