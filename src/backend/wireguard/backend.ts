// flannel's wireguard backend in userspace: WireGuard on the wire (UDP 51820),
// for kernels without the wireguard module; a weft node and a flanneld node
// on kernel WireGuard share one cluster.
// 1. the node's key pair from flannel's key file (/run/flannel/wgkey, or
//    WIREGUARD_KEY_FILE), made on first start as flannel makes it (0400) and kept across restarts;
//    the lease says BackendType "wireguard" and BackendData
//    {"PublicKey":"<base64>","Port":<ListenPort>}, exactly flannel's
// 2. a TUN device `weft-wg` (flannel's is `flannel-wg`), MTU = (Backend.MTU or
//    the underlay's) less 80, our subnet's address on it, the network routed
//    into it (the TUN backends' start, ../tun/start.ts)
// 3. a UDP socket on ListenPort, on every address as WireGuard binds it
// 4. its own loops (loops.ts): packets are sealed per session, in batches,
//    by the addon; handshakes, timers and cookies in TypeScript (../../wireguard)
// 5. every other node's lease is a peer whose allowed IPs are its subnet and
//    whose endpoint is its PublicIP and Port, updated live from the store; a
//    lease with a missing or bad key (or ours, or one another lease holds,
//    or a low-order point) is skipped with one warning and counted
//    (peer_unusable)
// 6. IPv6 (EnableIPv6), in flannel's default Mode "separate": a second
//    device `weft-wg-v6` (flannel's flannel-wg-v6) on ListenPortV6 (51821)
//    with the same key, carrying the IPv6 pods over the IPv6 underlay to
//    each peer's [PublicIPv6]:BackendV6Data.Port (start6.ts, network6.ts);
//    the lease has BackendData only with IPv4 on and BackendV6Data
//    {"PublicKey","Port":<ListenPortV6>} only with IPv6 on, as flannel's
//    newSubnetAttrs; an IPv6-only network (EnableIPv4 false) has that device
//    alone. The MTU keeps flannel's 80 less, which covers an IPv6 outer header.
// 7. flannel's single-device Modes with IPv6: `ipv4` and `ipv6` put both
//    families on `weft-wg` (ListenPort), each peer one endpoint of the
//    Mode's family (single.ts); IPv6-only, `ipv6` and `auto` are `weft-wg`
//    over IPv6 alone. In these Modes BackendV6Data's Port is ListenPort, the
//    port the one device listens on (flannel v0.28 writes ListenPortV6 there,
//    where nothing listens). `auto` on a dual-stack network: one family for
//    the node, by flannel's rule (single.ts autoFamily).
import type { Lease, LeaseAttrs } from '../../subnet/lease'
import { openUdp4 } from '../../native'
import type { WireguardBackendConfig } from '../../subnet/config'
import type { Backend, BackendContext, Network } from '../backend'
import { podMtu } from '../mtu'
import { enableGro } from '../tun/offloads'
import { SOCKET_BUFFER, startTun, TUN_BATCH } from '../tun/start'
import { loadOrCreateKeyFile, keyFilePath, parsePsk } from '../../wireguard/keys'
import type { KeyPair } from '../../wireguard/keys'
import { peerData } from './peer-key'
import { CONTROL_DESTS, WgLoops } from './loops'
import { startWg6 } from './start6'
import { autoFamily, startSingle } from './single'
import { ip6ToString } from '../../packet/net6'
import { WeftError } from '../../errors'
import { DualNetwork } from '../tun/dual'

export const WIREGUARD_DEVICE = 'weft-wg'
/** flannel's flannel-wg-v6 */
export const WIREGUARD_DEVICE_V6 = 'weft-wg-v6'
/** IPv6 peers the table holds */
const FDB6_CAPACITY = 4096

export class WireguardBackend implements Backend {
  readonly type = 'wireguard'
  private keys: KeyPair | undefined

  constructor (private readonly ctx: BackendContext, private readonly cfg: WireguardBackendConfig) {
    const { enableIPv4, enableIPv6 } = ctx.config
    if (enableIPv6 && !enableIPv4 && cfg.mode === 'ipv4') throw new WeftError('ECONFIG', 'Backend.Mode "ipv4" with EnableIPv4 false: an IPv6-only network has no IPv4 endpoints (use "separate", "auto" or "ipv6")')
    if (ctx.config.enableIPv6 && ctx.publicIPv6 === undefined) throw new WeftError('ECONFIG', 'EnableIPv6 is set but this node has no public IPv6 address (give one with --public-ipv6)')
  }

  /** The key pair, read (or made) once: the lease carries its public half. */
  keyPair (): KeyPair {
    this.keys ??= loadOrCreateKeyFile(keyFilePath(process.env))
    return this.keys
  }

  leaseAttrs (): LeaseAttrs {
    const { enableIPv4, enableIPv6 } = this.ctx.config
    const key = this.keyPair().publicKey.toString('base64')
    const v6 = enableIPv6 && this.ctx.publicIPv6 !== undefined
    return {
      publicIP: this.ctx.underlay.publicIP,
      publicIPv6: v6 ? ip6ToString(this.ctx.publicIPv6 as bigint) : null,
      backendType: 'wireguard',
      // flannel's newSubnetAttrs: BackendData only with IPv4 on, BackendV6Data
      // only with IPv6 on; field order PublicKey, Port
      ...(enableIPv4 ? { backendData: { PublicKey: key, Port: this.cfg.listenPort } } : {}),
      ...(enableIPv6 ? { backendV6Data: { PublicKey: key, Port: this.single() ? this.cfg.listenPort : this.cfg.listenPortV6 } } : {})
    }
  }

  mtu (): number {
    return podMtu(this.cfg, this.ctx.underlay.mtu)
  }

  /** One device for both families (flannel's Modes auto, ipv4, ipv6), with IPv6 on. */
  private single (): boolean {
    return this.ctx.config.enableIPv6 && this.cfg.mode !== 'separate'
  }

  async start (lease: Lease): Promise<Network> {
    const { enableIPv4, enableIPv6 } = this.ctx.config
    if (!enableIPv6) return await this.start4(lease)
    if (!enableIPv4) return await this.start6(lease, this.single())
    if (this.single()) return await this.startSingle(lease)
    const v4 = await this.start4(lease)
    try {
      return new DualNetwork(v4, await this.start6(lease))
    } catch (err) {
      await v4.close()
      throw err
    }
  }

  /** Both families on weft-wg (Modes ipv4, ipv6), one endpoint per peer. */
  private async startSingle (lease: Lease): Promise<Network> {
    const { log } = this.ctx
    const keys = this.keyPair()
    const auto = this.cfg.mode === 'auto'
    const mode = auto ? autoFamily({ publicIP: this.ctx.underlay.publicIP, publicIPv6: this.ctx.publicIPv6 }) : this.cfg.mode === 'ipv6' ? 'ipv6' : 'ipv4'
    const { network, loops } = await startSingle({ ctx: this.ctx, lease, mtu: this.mtu(), device: WIREGUARD_DEVICE, mode, auto, listenPort: this.cfg.listenPort, keys, psk: this.cfg.psk === '' ? undefined : parsePsk(this.cfg.psk), persistentKeepalive: this.cfg.persistentKeepalive, capacity: FDB6_CAPACITY })
    await loops.startUapi().catch((err: Error) => log.warn({ err: err.message }, '`wg show` will not see this node: the UAPI socket could not be made'))
    log.info({ mode: this.cfg.mode, family: mode, port: this.cfg.listenPort, publicKey: keys.publicKey.toString('base64'), uapi: loops.uapiPath }, 'WireGuard dataplane running, both families on one device')
    return network
  }

  /** weft-wg-v6: the IPv6 pods over the IPv6 underlay, on ListenPortV6; IPv6-only in a single-device Mode: weft-wg on ListenPort. */
  private async start6 (lease: Lease, single = false): Promise<Network> {
    const { log } = this.ctx
    const keys = this.keyPair()
    const name = single ? WIREGUARD_DEVICE : WIREGUARD_DEVICE_V6
    const port = single ? this.cfg.listenPort : this.cfg.listenPortV6
    const { network, loops, device } = await startWg6({
      ctx: this.ctx,
      lease,
      mtu: this.mtu(),
      device: name,
      keepsRules: !this.ctx.config.enableIPv4,
      listenPort: port,
      keys,
      psk: this.cfg.psk === '' ? undefined : parsePsk(this.cfg.psk),
      persistentKeepalive: this.cfg.persistentKeepalive,
      capacity: FDB6_CAPACITY
    })
    await loops.startUapi().catch((err: Error) => log.warn({ err: err.message, device: name }, '`wg show` will not see this device: the UAPI socket could not be made'))
    log.info({ port, publicKey: keys.publicKey.toString('base64'), publicIPv6: ip6ToString(this.ctx.publicIPv6 as bigint), offloads: device.offloads, uapi: loops.uapiPath }, 'WireGuard IPv6 dataplane running')
    return network
  }

  /** weft-wg: the IPv4 pods over the IPv4 underlay, on ListenPort. */
  private async start4 (lease: Lease): Promise<Network> {
    const { log } = this.ctx
    const keys = this.keyPair()
    const psk = this.cfg.psk === '' ? undefined : parsePsk(this.cfg.psk)
    let loops: WgLoops | undefined
    const { network, device } = await startTun<WgLoops>({
      backend: 'wireguard',
      ctx: this.ctx,
      lease,
      mtu: this.mtu(),
      device: WIREGUARD_DEVICE,
      socket: (device) => {
        // every address, as WireGuard listens: a peer may reach us on any
        const sock = openUdp4({ addr: 0, port: this.cfg.listenPort, batch: TUN_BATCH, rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER })
        enableGro(sock.io, device.offloads, log)
        return { io: sock.io, close: () => sock.io.close() }
      },
      port: this.cfg.listenPort,
      spareAddrs: CONTROL_DESTS,
      loops: (parts) => {
        loops = new WgLoops({ ...parts, keys, psk, persistentKeepalive: this.cfg.persistentKeepalive, device: WIREGUARD_DEVICE, listenPort: this.cfg.listenPort, log, busyPollUs: this.ctx.busyPoll ?? 0 })
        return loops
      },
      peers: (l) => ({
        unusable: (lease) => { const d = peerData(lease, this.cfg.listenPort); return 'reason' in d ? d.reason : l.unusableKey(lease, d.publicKey) },
        portOf: (lease) => { const d = peerData(lease, this.cfg.listenPort); return 'reason' in d ? 0 : d.port },
        peerSet: (index, lease) => { const d = peerData(lease, this.cfg.listenPort); if (!('reason' in d)) l.setPeer(index, d, lease) },
        peerDeleted: (index) => l.deletePeer(index),
        peerStatus: (index) => l.peerStatus(index)
      })
    })
    await loops?.startUapi().catch((err: Error) => log.warn({ err: err.message }, '`wg show` will not see this node: the UAPI socket could not be made'))
    log.info({ port: this.cfg.listenPort, publicKey: keys.publicKey.toString('base64'), offloads: device.offloads, uapi: loops?.uapiPath }, 'WireGuard dataplane running')
    return network
  }
}
