// The kernel side of the TUN backends (vxlan, ipip, udp): the device and what
// the kernel needs to send pod traffic into it.
// 1. a TUN device (`weft.<VNI>`, `weft.ipip`, `weft0`; flannel's are
//    `flannel.<VNI>`, `flannel.ipip`, `flannel0`), MTU = underlay less the
//    encapsulation, our subnet's network address on it (/32, as flannel does),
//    opened with the offloads the kernel gives (offloads.ts). Its
//    gso_max_size stays the kernel's 64 KB, unlike a pod's interface
//    (kernel/gso.ts): the kernel takes a lower one on a TUN, and the node's
//    own TCP would then send super-packets of one UDP_SEGMENT message each,
//    but it also cuts up, before the TUN, every forwarded super-packet at
//    least that size (gso_features_check, since Linux 6.13): a pod attached
//    by another CNI plugin, or traffic GRO merged on the way in, then
//    reaches weft one segment per read. Measured head to head on 6.18
//    (bench/conditions.ts), weft at 62511: such a pod's TCP fell from 0.69x
//    kernel VXLAN to 0.42x (BBR) and from 0.44x to 0.32x (cubic), the
//    node's own did not measurably gain (0.72x/0.56x before, 0.62x/0.54x).
//    test/backend/tun-gso.test.ts holds the device to 64 KB.
// 2. one route: the whole cluster network into the device (our own subnet
//    is more specific, on the pods' bridge, so it stays local)
// 3. forwarding on, and flannel's forward accept rules (and --ip-masq rules),
//    iptables or nftables (kernel/traffic.ts), checked and repaired every
//    --iptables-resync seconds by the device itself
// A device carries one family, as flannel's flannel.<VNI> and
// flannel-v6.<VNI> do: an IPv6 device gets the lease's IPv6 subnet address
// as a /128 and IPv6Network routed into it. In a dual-stack network the
// rules of both families are kept by one device (the IPv4 one), so that
// they are applied, checked and removed together.
// The TUN fd itself belongs to the pipeline; when it closes, the device and
// its route disappear with it. close() removes the rules.
import { formatCidr } from '../../packet/net'
import type { Ip4Net } from '../../packet/net'
import { formatCidr6, ip6ToString } from '../../packet/net6'
import type { Ip6Net } from '../../packet/net6'
import { addAddress, addRoute, delAddress, enableForwarding, setSysctl } from '../../kernel/link'
import { run } from '../../kernel/exec'
import { createTrafficRules, DEFAULT_TRAFFIC_SETTINGS, removeOtherKind, resyncEvery, type TrafficManager, type TrafficSettings } from '../../kernel/traffic'
import type { Logger } from '../../log'
import { closeFd, openTunQueue, setLinkUp } from '../../native'
import type { Tun } from '../../native'
import { ip4ToString } from '../../packet/ip'
import { openTunWithOffloads } from './offloads'
import type { Offloads } from './offloads'

/** Which networks a device's rules cover (CIDR text), each family only if present. */
export interface RulesScope {
  readonly network?: string
  readonly podSubnet?: string
  readonly network6?: string
  readonly podSubnet6?: string
}

/** The device's own address (the lease's network address, /32 or /128, as flannel gives its devices) and the network routed into it. */
export interface DeviceAddressing {
  readonly family: 4 | 6
  readonly address: string
  readonly route: string
}

export function addressing4 (subnet: Ip4Net, network: Ip4Net): DeviceAddressing {
  return { family: 4, address: `${ip4ToString(subnet.ip)}/32`, route: formatCidr(network) }
}

export function addressing6 (subnet: Ip6Net, network: Ip6Net): DeviceAddressing {
  return { family: 6, address: `${ip6ToString(subnet.ip)}/128`, route: formatCidr6(network) }
}

/** The rules of every family the network has, for this lease (a dual-stack lease: both). */
export function rulesScope (lease: { subnet: Ip4Net, subnet6?: Ip6Net }, cfg: { enableIPv4: boolean, network: Ip4Net, enableIPv6?: boolean, ipv6Network?: Ip6Net }): RulesScope {
  return {
    ...(cfg.enableIPv4 ? { network: formatCidr(cfg.network), podSubnet: formatCidr(lease.subnet) } : {}),
    ...(cfg.enableIPv6 === true && cfg.ipv6Network !== undefined && lease.subnet6 !== undefined ? { network6: formatCidr6(cfg.ipv6Network), podSubnet6: formatCidr6(lease.subnet6) } : {})
  }
}

export interface VtepOptions {
  name: string
  mtu: number
  addressing: DeviceAddressing
  /** the rules this device keeps; undefined: none (another device of the network keeps them) */
  rules: RulesScope | undefined
  ipMasq: boolean
  batch: number
  /** TUN queues (IFF_MULTI_QUEUE when more than 1): one per dataplane worker */
  queues?: number
  /** iptables or nftables, which rules, how often they are checked (default: iptables, forward rules, 5 s) */
  traffic?: TrafficSettings
  log: Logger
}

/**
 * Packets the kernel may queue on the TUN for us to read before it drops
 * them (the device's tx_dropped). The default 500 overflows while the loop is
 * busy with a batch of super-packets or not scheduled: a burst of small
 * packets at line rate then turns into loss.
 */
const TUN_QUEUE = 4096

export class TunDevice {
  private rules: TrafficManager | undefined
  private address: string
  private readonly traffic: TrafficSettings
  /** stops the rules' resync loop (running from create() to close()) */
  private stopResync: (() => Promise<void>) | undefined

  /** queues 1.. of a multi-queue device (queue 0 is `tun`), as bare fds until takeQueues() hands them to the workers */
  private queueFds: number[] = []

  private constructor (readonly tun: Tun, readonly offloads: Offloads, private readonly o: VtepOptions) {
    this.address = o.addressing.address
    this.traffic = o.traffic ?? DEFAULT_TRAFFIC_SETTINGS
    this.rules = this.rulesFor(o.rules)
  }

  private rulesFor (scope: RulesScope | undefined): TrafficManager | undefined {
    if (scope === undefined) return undefined
    return createTrafficRules(this.traffic, { ...scope, ipMasq: this.o.ipMasq, log: this.o.log })
  }

  get family (): 4 | 6 { return this.o.addressing.family }

  static async create (o: VtepOptions): Promise<TunDevice> {
    const queues = o.queues ?? 1
    // up only once its IPv6 settings are made (below): a link that comes up
    // with a link-local address sends router solicitations and MLD reports
    const { tun, offloads } = openTunWithOffloads({ name: o.name, mtu: o.mtu, up: false, batch: o.batch, multiQueue: queues > 1, exclusive: queues > 1 }, o.log)
    const dev = new TunDevice(tun, offloads, o)
    try {
      // the offloads are the device's: every queue reads and writes the same vnet headers
      for (let q = 1; q < queues; q++) dev.queueFds.push(openTunQueue(tun.name, offloads.vnet))
      await run(['ip', 'link', 'set', 'dev', tun.name, 'txqueuelen', String(TUN_QUEUE)])
      // an IPv4 device carries no IPv6: without this its link-local
      // address sends router solicitations and MLD reports into it
      if (o.addressing.family === 4) await setSysctl(`net.ipv6.conf.${tun.name}.disable_ipv6`, 1).catch(() => {})
      if (o.addressing.family === 6) {
        // a TUN has no link-local address to need, and router solicitations
        // from it would only be dropped by the dataplane: no autoconfiguration
        await setSysctl(`net.ipv6.conf.${tun.name}.addr_gen_mode`, 1).catch(() => {})
        await setSysctl('net.ipv6.conf.all.forwarding', 1)
      }
      setLinkUp(tun.name, true)
      await addAddress(tun.name, o.addressing.address)
      await addRoute({ dst: o.addressing.route, dev: tun.name })
      if (o.addressing.family === 4) await enableForwarding()
      if (dev.rules !== undefined) {
        await removeOtherKind(dev.traffic, o.log)
        await dev.rules.apply()
      }
    } catch (err) {
      dev.closeQueues()
      throw err
    }
    if (dev.rules !== undefined) dev.stopResync = resyncEvery(() => dev.rules as TrafficManager, dev.traffic.resyncMs, o.log)
    o.log.info({ device: tun.name, mtu: o.mtu, route: o.addressing.route, ...(dev.rules !== undefined ? { rules: dev.rules.kind } : {}), tso: offloads.tso, uso: offloads.uso, ...(queues > 1 ? { queues } : {}) }, 'tunnel device up')
    return dev
  }

  get name (): string { return this.tun.name }

  /** Open what goes with the device (its underlay socket); if that fails, the device goes too. */
  async adopt<T> (open: () => T | Promise<T>): Promise<T> {
    try {
      return await open()
    } catch (err) {
      this.closeQueues()
      await this.close()
      throw err
    }
  }

  /** The extra queues' fds: whoever takes them closes them. */
  takeQueues (): number[] {
    return this.queueFds.splice(0)
  }

  /** Close queue 0 and the queues not taken (the device goes with the last). Idempotent. */
  closeQueues (): void {
    this.tun.io.close()
    for (const fd of this.takeQueues()) closeFd(fd)
  }

  /** Our lease moved: readdress the device (address: as DeviceAddressing's) and redo its rules, if it keeps any, for the new subnets. */
  async setSubnet (address: string, rules: RulesScope | undefined): Promise<void> {
    if (address !== this.address) {
      await delAddress(this.tun.name, this.address)
      await addAddress(this.tun.name, address)
      this.address = address
    }
    if (this.rules === undefined) return
    // the old rules' resync must not put the old subnet back after this
    const running = this.stopResync !== undefined
    await this.stopResync?.()
    // apply() rewrites our rules in one transaction: no window without rules
    const next = this.rulesFor(rules) as TrafficManager
    this.rules = next
    try {
      await next.apply()
    } finally {
      if (running) this.stopResync = resyncEvery(() => next, this.traffic.resyncMs, this.o.log)
    }
  }

  async close (): Promise<void> {
    const stop = this.stopResync
    this.stopResync = undefined
    await stop?.()
    await this.rules?.remove()
  }
}
