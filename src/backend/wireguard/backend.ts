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

export const WIREGUARD_DEVICE = 'weft-wg'

export class WireguardBackend implements Backend {
  readonly type = 'wireguard'
  private keys: KeyPair | undefined

  constructor (private readonly ctx: BackendContext, private readonly cfg: WireguardBackendConfig) {}

  /** The key pair, read (or made) once: the lease carries its public half. */
  keyPair (): KeyPair {
    this.keys ??= loadOrCreateKeyFile(keyFilePath(process.env))
    return this.keys
  }

  leaseAttrs (): LeaseAttrs {
    return {
      publicIP: this.ctx.underlay.publicIP,
      publicIPv6: null,
      backendType: 'wireguard',
      // flannel's field order: PublicKey, Port
      backendData: { PublicKey: this.keyPair().publicKey.toString('base64'), Port: this.cfg.listenPort }
    }
  }

  mtu (): number {
    return podMtu(this.cfg, this.ctx.underlay.mtu)
  }

  async start (lease: Lease): Promise<Network> {
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
        loops = new WgLoops({ ...parts, keys, psk, persistentKeepalive: this.cfg.persistentKeepalive, device: WIREGUARD_DEVICE, listenPort: this.cfg.listenPort, log })
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
