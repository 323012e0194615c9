// flannel's single-device Modes with both families (Mode ipv4 or ipv6 and
// EnableIPv6 on a dual-stack network): one device, `weft-wg` (flannel's
// flannel-wg), carries the IPv4 and the IPv6 pods to each peer over one
// endpoint, as flanneld's handleSubnetEvents sets it up in these Modes:
// 1. the IPv4 device (../tun/start.ts) with IPv6 turned on too: the lease's
//    IPv6 subnet address (/128) and IPv6Network routed into it
// 2. one socket on ListenPort, of the Mode's family (ipv4: UDP over IPv4 to
//    each peer's PublicIP; ipv6: over IPv6 to its PublicIPv6), the port the
//    peer's one device listens on (peer-key.ts singleDevicePeer)
// 3. each lease is one peer whose allowed IPs are both its subnets: the
//    IPv4 table's index is the peer's, and the IPv6 table beside it names
//    that index for each IPv6 subnet (inner6.peerOf), so the loops look a
//    packet up in its family's table and find one peer, one session
// Mode auto picks a family per peer in flannel (selectMode), which would
// need a socket of each family behind one device. weft picks one family for
// the node by the same rule (autoFamily: IPv6 when our PublicIP is RFC 1918
// and our PublicIPv6 is not fc00::/7, else IPv4), the same for every peer
// of a uniform cluster; a peer flannel would reach over the other family is
// still reached over this one, and named once.
import { Fdb6 } from '../../dataplane/fdb6'
import { openUdp4, openUdp6 } from '../../native'
import { formatCidr } from '../../packet/net'
import { formatCidr6, ip6ToString } from '../../packet/net6'
import type { Ip6Net } from '../../packet/net6'
import type { Lease } from '../../subnet/lease'
import { WeftError } from '../../errors'
import { addAddress, addRoute, delAddress, setSysctl } from '../../kernel/link'
import type { PeerEvent } from '../../lease/watcher'
import type { BackendContext, Network, NetworkStatus } from '../backend'
import { enableGro } from '../tun/offloads'
import { SOCKET_BUFFER, startTun, TUN_BATCH } from '../tun/start'
import { usablePublicIPv6 } from '../tun/network6'
import type { KeyPair } from '../../wireguard/keys'
import { OnceLog } from '../../util/log-once'
import { CONTROL_DESTS, WgLoops } from './loops'
import { singleDevicePeer } from './peer-key'

export interface SingleStart {
  ctx: BackendContext
  lease: Lease
  mtu: number
  device: string
  /** the family of every peer's endpoint (Mode ipv4, ipv6, or what autoFamily picked for auto) */
  mode: 'ipv4' | 'ipv6'
  /** Mode auto: name the peers flannel's selectMode would reach over the other family */
  auto?: boolean
  listenPort: number
  keys: KeyPair
  psk: Buffer | undefined
  persistentKeepalive: number
  capacity: number
}

/** The IPv4 device's network, with the device's IPv6 address following the lease too. */
class SingleNetwork implements Network {
  readonly mtu: number
  private address6: string

  constructor (private readonly inner: Network, private readonly device: string, address6: string, private readonly loops: WgLoops) {
    this.mtu = inner.mtu
    this.address6 = address6
  }

  handlePeers (events: readonly PeerEvent[]): void { this.inner.handlePeers(events) }

  async setLease (lease: Lease): Promise<void> {
    await this.inner.setLease(lease)
    const sn = lease.subnet6
    if (sn === undefined) return
    this.loops.setOwnSubnet6(sn)
    const next = `${ip6ToString(sn.ip)}/128`
    if (next === this.address6) return
    await delAddress(this.device, this.address6)
    await addAddress(this.device, next)
    this.address6 = next
  }

  status (): NetworkStatus { return this.inner.status() }

  async close (): Promise<void> { await this.inner.close() }
}

/** flannel's ip.IP4.IsPrivate: RFC 1918. */
function private4 (ip: number): boolean {
  const a = ip >>> 24
  const b = (ip >>> 16) & 255
  return a === 10 || (a === 172 && (b & 0xf0) === 16) || (a === 192 && b === 168)
}

/** flannel's ip.IP6.IsPrivate: fc00::/7. */
function private6 (ip: bigint): boolean {
  return (ip >> 121n) === 0x7en
}

/** flannel's selectMode for a peer, from our addresses and its lease's. */
export function selectMode (ours: { publicIP: number, publicIPv6: bigint | undefined }, peerIP: number, peerIPv6: bigint | undefined): 'ipv4' | 'ipv6' {
  if (peerIPv6 === undefined) return 'ipv4'
  if (!private4(peerIP) && ours.publicIP !== 0) return 'ipv4'
  if (!private6(peerIPv6) && ours.publicIPv6 !== undefined && !private6(ours.publicIPv6)) return 'ipv6'
  return 'ipv4'
}

/** Mode auto on one socket: the family selectMode picks for a peer like us (a uniform cluster's). */
export function autoFamily (ours: { publicIP: number, publicIPv6: bigint | undefined }): 'ipv4' | 'ipv6' {
  return selectMode(ours, ours.publicIP, ours.publicIPv6)
}

export async function startSingle (o: SingleStart): Promise<{ network: Network, loops: WgLoops }> {
  const { ctx, lease, mode } = o
  const { config, log } = ctx
  const network6 = config.ipv6Network
  const subnet6 = lease.subnet6
  if (network6 === undefined || subnet6 === undefined) throw new WeftError('ECONFIG', 'IPv6 is enabled but the lease has no IPv6 subnet')
  const fdb6 = new Fdb6({ network: network6, subnetLen: config.ipv6SubnetLen, port: o.listenPort, capacity: o.capacity })
  // the IPv6 table's entries -> the peer (IPv4 table) index; and back, to take them out
  const peerOf = new Int32Array(fdb6.capacity).fill(-1)
  const subnet6Of = new Map<number, Ip6Net>()
  let loops: WgLoops | undefined
  const ours = { publicIP: ctx.underlay.publicIP, publicIPv6: ctx.publicIPv6 }
  const otherFamily = new OnceLog(log, 'Mode auto: flannel would reach this peer over the other family; weft\'s one device reaches every peer over the family it picked for the node')
  const setInner6 = (index: number, l: Lease): void => {
    const old = subnet6Of.get(index)
    const sn = l.subnet6
    if (old !== undefined && (sn === undefined || formatCidr6(old) !== formatCidr6(sn))) dropInner6(index)
    if (sn === undefined) return
    const pub = usablePublicIPv6(l.attrs.publicIPv6)
    const k = fdb6.set(sn, typeof pub === 'string' ? 0n : pub, undefined, 0, false)
    peerOf[k] = index
    subnet6Of.set(index, sn)
  }
  const dropInner6 = (index: number): void => {
    const sn = subnet6Of.get(index)
    if (sn === undefined) return
    subnet6Of.delete(index)
    const e = fdb6.entries().find((x) => formatCidr6(x.subnet) === formatCidr6(sn))
    if (e !== undefined) peerOf[e.index] = -1
    fdb6.delete(sn)
  }
  const unusable = (l: Lease): string | undefined => {
    const d = singleDevicePeer(l, o.listenPort)
    if ('reason' in d) return d.reason
    const pub6 = usablePublicIPv6(l.attrs.publicIPv6)
    if (mode === 'ipv6' && typeof pub6 === 'string') return `Mode ipv6: ${pub6}`
    if (o.auto === true && selectMode(ours, l.attrs.publicIP, typeof pub6 === 'string' ? undefined : pub6) !== mode) {
      otherFamily.warn(formatCidr(l.subnet), { subnet: formatCidr(l.subnet), publicIPv6: l.attrs.publicIPv6, family: mode })
    }
    return loops?.unusableKey(l, d.publicKey)
  }
  const { network, device } = await startTun<WgLoops>({
    backend: 'wireguard',
    ctx,
    lease,
    mtu: o.mtu,
    device: o.device,
    socket: (dev) => {
      const opts = { port: o.listenPort, batch: TUN_BATCH, rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER }
      const sock = mode === 'ipv6' ? openUdp6({ addr: Buffer.alloc(16), ...opts }) : openUdp4({ addr: 0, ...opts })
      enableGro(sock.io, dev.offloads, log)
      return { io: sock.io, close: () => sock.io.close() }
    },
    port: o.listenPort,
    capacity: o.capacity,
    spareAddrs: CONTROL_DESTS,
    loops: (parts) => {
      loops = new WgLoops({ ...parts, inner6: { fdb: fdb6, peerOf }, endpoints: mode === 'ipv6' ? 6 : 4, keys: o.keys, psk: o.psk, persistentKeepalive: o.persistentKeepalive, device: o.device, listenPort: o.listenPort, log, busyPollUs: ctx.busyPoll ?? 0 })
      return loops
    },
    peers: (l) => ({
      unusable,
      portOf: (lease) => { const d = singleDevicePeer(lease, o.listenPort); return 'reason' in d ? 0 : d.port },
      peerSet: (index, lease) => {
        const d = singleDevicePeer(lease, o.listenPort)
        if ('reason' in d) return
        setInner6(index, lease)
        l.setPeer(index, d, lease)
      },
      peerDeleted: (index) => { dropInner6(index); l.deletePeer(index) },
      peerStatus: (index) => {
        const sn = subnet6Of.get(index)
        return { ...(sn !== undefined ? { subnet6: formatCidr6(sn) } : {}), ...l.peerStatus(index) }
      }
    })
  })
  const running = loops as WgLoops
  // the IPv4 device's start turned IPv6 off on it (an IPv4 device's link-local
  // address would only send solicitations into it): on again, without
  // autoconfiguration, with the IPv6 subnet's address and IPv6Network
  const address6 = `${ip6ToString(subnet6.ip)}/128`
  try {
    await setSysctl(`net.ipv6.conf.${o.device}.addr_gen_mode`, 1).catch(() => {})
    await setSysctl(`net.ipv6.conf.${o.device}.disable_ipv6`, 0)
    await setSysctl('net.ipv6.conf.all.forwarding', 1)
    await addAddress(o.device, address6)
    await addRoute({ dst: formatCidr6(network6), dev: o.device })
  } catch (err) {
    await network.close()
    throw err
  }
  running.setOwnSubnet6(subnet6)
  log.info({ device: device.name, mode, address6, route6: formatCidr6(network6) }, 'WireGuard device carries both families')
  return { network: new SingleNetwork(network, o.device, address6, running), loops: running }
}
