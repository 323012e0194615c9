// The host-gw backend, as flannel's: no tunnel and no userspace dataplane at
// all. Every peer's subnet is a kernel route `via <its public IP> dev
// <underlay>`, so the nodes must share an L2 network. Config and
// construction here; the peer routes and the rules in network.ts.
// flannel refuses to run behind NAT (a public IP that is not the interface's
// address): peers would route to an address the kernel cannot reach on the
// link. So does weft, before a lease is taken.
// With EnableIPv6 the lease carries our public IPv6 (PublicIPv6) and peers'
// IPv6 subnets are routed via theirs on the same link; with EnableIPv4 off,
// only those. The rules cover each family the network has.
import { WeftError } from '../../errors'
import { formatCidr } from '../../packet/net'
import { formatCidr6, ip6ToString } from '../../packet/net6'
import type { Lease, LeaseAttrs } from '../../subnet/lease'
import { enableForwarding, setSysctl } from '../../kernel/link'
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
    if (ctx.config.enableIPv6 && ctx.publicIPv6 === undefined) {
      throw new WeftError('EBACKEND', `the host-gw backend needs this node's public IPv6 for an IPv6 network: ${u.name} has no global IPv6 address; give --public-ipv6, or add one`)
    }
    if (ctx.config.enableIPv4 && u.publicIP !== u.ip) {
      throw new WeftError('EBACKEND', `the host-gw backend cannot run behind NAT: the public IP ${ip4ToString(u.publicIP)} is not the address ${ip4ToString(u.ip)} of ${u.name}, and host-gw routes peers' subnets via their public IPs on the link; drop --public-ip, or use vxlan, ipip or udp`)
    }
  }

  leaseAttrs (): LeaseAttrs {
    const { config, underlay, publicIPv6 } = this.ctx
    // flannel leaves PublicIP unset (0.0.0.0) when EnableIPv4 is off, and PublicIPv6 null without IPv6
    return {
      publicIP: config.enableIPv4 ? underlay.publicIP : 0,
      publicIPv6: config.enableIPv6 && publicIPv6 !== undefined ? ip6ToString(publicIPv6) : null,
      backendType: 'host-gw'
    }
  }

  mtu (): number {
    return podMtu(this.cfg, this.ctx.underlay.mtu)
  }

  async start (lease: Lease): Promise<Network> {
    const { config, log, underlay } = this.ctx
    const traffic = trafficSettings(this.ctx)
    const ipv6 = config.enableIPv6 && config.ipv6Network !== undefined
    const rules = (l: Lease): TrafficManager => createTrafficRules(traffic, {
      ...(config.enableIPv4 ? { network: formatCidr(config.network), podSubnet: formatCidr(l.subnet) } : {}),
      ...(ipv6 && config.ipv6Network !== undefined && l.subnet6 !== undefined ? { network6: formatCidr6(config.ipv6Network), podSubnet6: formatCidr6(l.subnet6) } : {}),
      ipMasq: this.ctx.ipMasq,
      log
    })
    const first = rules(lease)
    if (config.enableIPv4) await enableForwarding()
    if (ipv6) await setSysctl('net.ipv6.conf.all.forwarding', 1)
    await removeOtherKind(traffic, log)
    await first.apply()
    const routes = new PeerRoutes({ dev: underlay.name, log })
    log.info({ iface: underlay.name, mtu: this.mtu(), rules: first.kind, ipv4: config.enableIPv4, ipv6 }, 'host-gw: routing peers\' subnets via their public IPs')
    return new HostGwNetwork({
      routes,
      rules: first,
      makeRules: rules,
      lease,
      mtu: this.mtu(),
      underlay,
      ipv4: config.enableIPv4,
      ipv6,
      ...(this.ctx.publicIPv6 !== undefined ? { publicIPv6: this.ctx.publicIPv6 } : {}),
      resyncMs: traffic.resyncMs,
      log
    })
  }
}
