// Building blocks for tests of the WireGuard backend's loops without
// privileges: a "node" is the backend's real WgLoops (inside and outside
// loops, the protocol, the addon's batch cipher) over an in-memory TUN (a
// SOCK_SEQPACKET pair, as helpers.ts) and a socket the test gives it: a real
// loopback UDP socket, or a stand-in that hands the outside loop batches
// directly (test/fuzz/wireguard-drive.ts).
import { parseCidr } from '../../src/packet/net'
import { Fdb } from '../../src/dataplane/fdb'
import { packetPair, PacketBatch } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { NO_OFFLOADS } from '../../src/backend/tun/offloads'
import type { Offloads } from '../../src/backend/tun/offloads'
import { CONTROL_DESTS, WgLoops } from '../../src/backend/wireguard/loops'
import { generateKeyPair } from '../../src/wireguard/keys'
import type { KeyPair } from '../../src/wireguard/keys'
import type { Lease } from '../../src/subnet/lease'
import { createLogger } from '../../src/log'
import { GSO_TCPV4, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from '../../src/native/vnet'
import { fold, pseudoHeaderSum4At } from '../../src/packet/checksum'
import { IPPROTO_TCP, IPV4_FLAG_DF, writeIpv4Header } from '../../src/packet/ipv4'
import { parseIp4 } from '../../src/packet/ip'
import { TCP_ACK, TCP_PSH, writeTcpHeader } from '../../src/packet/tcp'

export const WG_NETWORK = '10.244.0.0/16'

export interface WgTestNode {
  loops: WgLoops
  fdb: Fdb
  keys: KeyPair
  subnet: string
  /** the port its socket listens on */
  port: number
  /** the test's end of the in-memory TUN */
  wire: PacketIo
  wireRx: PacketBatch
  wireTx: PacketBatch
  close: () => Promise<void>
}

export interface WgNodeOptions {
  /** the node's socket (it takes ownership), and the port it listens on */
  sock: PacketIo
  port: number
  keys?: KeyPair
  mtu?: number
  offloads?: Offloads
  /** slot size of the test's wire batches (super-packets need 64 KB) */
  wireSlot?: number
  wireTxSize?: number
  /** peers the table holds (WgLoops keeps three key slots for each) */
  capacity?: number
}

const silent = createLogger({ level: 'silent' })

/** A WireGuard node over an in-memory TUN and `o.sock`, started, its own subnet set. */
export function wgNode (subnet: string, o: WgNodeOptions): WgTestNode {
  const [tun, wire] = packetPair(64)
  const fdb = new Fdb({ network: parseCidr(WG_NETWORK), subnetLen: 24, port: 0, capacity: o.capacity ?? 16, spareAddrs: CONTROL_DESTS })
  const keys = o.keys ?? generateKeyPair()
  const offloads = { ...(o.offloads ?? NO_OFFLOADS) }
  const loops = new WgLoops({ tun, sock: o.sock, fdb, mtu: o.mtu ?? 1420, offloads, keys, psk: undefined, persistentKeepalive: 0, device: 'weft-wg-test', listenPort: o.port, log: silent })
  const own = parseCidr(subnet)
  loops.setOwnSubnet(own.ip, own.prefixLen)
  const wireRx = new PacketBatch({ size: 64, slotSize: o.wireSlot ?? 2048 })
  const wireTx = new PacketBatch({ size: o.wireTxSize ?? 64, slotSize: o.wireSlot ?? 2048 })
  wire.receiveInto(wireRx)
  wire.sendFrom(wireTx)
  loops.start()
  return {
    loops,
    fdb,
    keys,
    subnet,
    port: o.port,
    wire,
    wireRx,
    wireTx,
    close: async () => { await loops.close(); wire.close() }
  }
}

/** A lease as the store would hand it over: `publicIP` and flannel's wireguard BackendData. */
export function wgLease (subnet: string, publicIP: number, keys: { publicKey: Buffer }, port: number): Lease {
  return {
    subnet: parseCidr(subnet),
    attrs: { publicIP: publicIP >>> 0, publicIPv6: null, backendType: 'wireguard', backendData: { PublicKey: keys.publicKey.toString('base64'), Port: port } },
    expiration: null,
    revision: 1
  }
}

/** Make the peer (its subnet, key, address and port) known to `n`, as a lease event would: its table index. */
export function addWgPeer (n: WgTestNode, peer: { subnet: string, keys: { publicKey: Buffer }, port: number }, addr: number): number {
  const lease = wgLease(peer.subnet, addr, peer.keys, peer.port)
  const index = n.fdb.set(lease.subnet, addr, undefined, peer.port)
  n.loops.setPeer(index, { publicKey: peer.keys.publicKey, publicKeyText: peer.keys.publicKey.toString('base64'), port: peer.port }, lease)
  return index
}

/** Two key pairs, the first's public key the higher (it starts the handshake: loops.ts). */
export function orderedKeyPairs (): [KeyPair, KeyPair] {
  const a = generateKeyPair()
  const b = generateKeyPair()
  return Buffer.compare(a.publicKey, b.publicKey) > 0 ? [a, b] : [b, a]
}

/**
 * [vnet header asking for TSO at `mss`][IPv4 + TCP with timestamps +
 * `payload` bytes], the TCP checksum partial, as a TUN with TSO hands a
 * super-packet over.
 */
export function tsoSuperPacket (src: string, dst: string, payload: number, mss: number, sport = 40001): Buffer {
  const total = 52 + payload
  const b = Buffer.alloc(VNET_HDR_LEN + total)
  writeVnetHdr(b, 0, VNET_F_NEEDS_CSUM, GSO_TCPV4, 52, mss, 20, 16)
  const ip = VNET_HDR_LEN
  writeIpv4Header(b, ip, 0, total, 1, IPV4_FLAG_DF, 64, IPPROTO_TCP, parseIp4(src), parseIp4(dst))
  writeTcpHeader(b, ip + 20, sport, 5201, 1000, 1, TCP_ACK | TCP_PSH, 501)
  b[ip + 32] = 8 << 4
  Buffer.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]).copy(b, ip + 40)
  for (let i = 0; i < payload; i++) b[ip + 52 + i] = (i * 7 + sport) & 255
  const p = fold(pseudoHeaderSum4At(b, ip, IPPROTO_TCP, 32 + payload))
  b[ip + 36] = p >> 8
  b[ip + 37] = p & 255
  return b
}
