// A node of the IPv6 WireGuard device (weft-wg-v6) for tests without
// privileges: the backend's real WgLoops over an Fdb6, an in-memory TUN (a
// SOCK_SEQPACKET pair) and a udp6 socket on ::1, its own subnet set, as
// ../dataplane/wireguard-helpers.ts makes IPv4 ones.
import { ip6Bytes, parseCidr6 } from '../../src/packet/net6'
import { Fdb6 } from '../../src/dataplane/fdb6'
import { openUdp6, packetPair, PacketBatch } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { NO_OFFLOADS } from '../../src/backend/tun/offloads'
import type { Offloads } from '../../src/backend/tun/offloads'
import { WgLoops } from '../../src/backend/wireguard/loops'
import type { KeyPair } from '../../src/wireguard/keys'
import type { Lease } from '../../src/subnet/lease'
import { createLogger } from '../../src/log'

export interface WgNode6 {
  loops: WgLoops
  fdb: Fdb6
  keys: KeyPair
  subnet6: string
  port: number
  wire: PacketIo
  wireRx: PacketBatch
  wireTx: PacketBatch
  close: () => Promise<void>
}

const silent = createLogger({ level: 'silent' })

export function wgNode6 (subnet6: string, keys: KeyPair, o: { mtu?: number, offloads?: Offloads } = {}): WgNode6 {
  const offloads = { ...(o.offloads ?? NO_OFFLOADS) }
  const [tun, wire] = packetPair(64)
  const udp = openUdp6({ addr: ip6Bytes(1n), port: 0, batch: 64, gro: offloads.gro, rcvbuf: 8 << 20, sndbuf: 4 << 20 })
  const fdb = new Fdb6({ network: parseCidr6('fc00::/48'), subnetLen: 64, port: 0, capacity: 16 })
  const loops = new WgLoops({ tun, sock: udp.io, fdb, mtu: o.mtu ?? 1420, offloads, keys, psk: undefined, persistentKeepalive: 0, device: 'weft-wg-v6-test', listenPort: udp.port, log: silent })
  loops.setOwnSubnet6(parseCidr6(subnet6))
  const slot = offloads.vnet ? 65600 : 2048
  const wireRx = new PacketBatch({ size: 64, slotSize: slot })
  const wireTx = new PacketBatch({ size: 32, slotSize: slot })
  wire.receiveInto(wireRx)
  wire.sendFrom(wireTx)
  loops.start()
  return { loops, fdb, keys, subnet6, port: udp.port, wire, wireRx, wireTx, close: async () => { await loops.close(); wire.close() } }
}

/** `peer` made known to `n` as its lease's IPv6 half would make it (../../src/backend/wireguard/network6.ts): its table index. */
export function addPeer6 (n: WgNode6, peer: WgNode6): number {
  const key = peer.keys.publicKey.toString('base64')
  const lease: Lease = { subnet: { ip: 0, prefixLen: 0 }, subnet6: parseCidr6(peer.subnet6), attrs: { publicIP: 0, publicIPv6: '::1', backendType: 'wireguard', backendV6Data: { PublicKey: key, Port: peer.port } }, expiration: null, revision: 1 }
  const index = n.fdb.set(parseCidr6(peer.subnet6), 1n, undefined, peer.port)
  n.loops.setPeer(index, { publicKey: peer.keys.publicKey, publicKeyText: key, port: peer.port }, lease)
  return index
}
