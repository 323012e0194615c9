// Test-side builders for the frames `weft capture` decodes: pod packets
// (IPv4 + ICMP/UDP/TCP) wrapped the three ways flannel tunnels them in the
// clear, all made with the codecs in src/packet so every length and checksum
// is right; and WireGuard messages, whose headers are built by hand from the
// whitepaper's layout (the rest stands in for ciphertext).
import {
  ETH_HLEN, ETHERTYPE_IPV4, IPPROTO_ICMP, IPPROTO_IPIP, IPPROTO_UDP, IPV4_MIN_HLEN, UDP_HLEN, VXLAN_HLEN,
  parseIp4, parseMacNumber, setUdp4Checksum, writeEthernet, writeIpv4Header, writeUdpHeader, writeVxlan
} from '../../src/packet'
import { icmpEcho, tcpPacket, udpPacket, type TcpFields } from '../packet/builders'

export const NODE1 = '198.18.0.1'
export const NODE2 = '198.18.0.2'
export const POD1 = '10.244.1.2'
export const POD2 = '10.244.2.3'
const MAC1 = parseMacNumber('02:00:c6:12:00:01')
const MAC2 = parseMacNumber('02:00:c6:12:00:02')
const VTEP1 = parseMacNumber('02:77:65:66:74:01')
const VTEP2 = parseMacNumber('02:77:65:66:74:02')

/** IPv4 + ICMP echo request/reply with `data` bytes of payload (ping -s). */
export function icmpPacket (src: string, dst: string, id: number, seq: number, data = 56, type = 8): Buffer {
  const msg = icmpEcho(type, id, seq, Buffer.alloc(data, 0x61))
  return ipv4(src, dst, IPPROTO_ICMP, msg)
}

export function tcpSegment (src: string, dst: string, f: TcpFields, payload: Uint8Array = new Uint8Array(0)): Buffer {
  return tcpPacket(parseIp4(src), parseIp4(dst), f, new Uint8Array(0), payload)
}

export function udpDatagram (src: string, dst: string, sport: number, dport: number, payload: Uint8Array): Buffer {
  return udpPacket(parseIp4(src), parseIp4(dst), sport, dport, payload)
}

/** A 20-byte IPv4 header (TTL 64, id 7, no DF) in front of `payload`. */
export function ipv4 (src: string, dst: string, proto: number, payload: Uint8Array): Buffer {
  const buf = Buffer.alloc(IPV4_MIN_HLEN + payload.length)
  buf.set(payload, IPV4_MIN_HLEN)
  writeIpv4Header(buf, 0, 0, buf.length, 7, 0, 64, proto, parseIp4(src), parseIp4(dst))
  return buf
}

export function ethernet (dst: number, src: number, payload: Uint8Array, type = ETHERTYPE_IPV4): Buffer {
  const buf = Buffer.alloc(ETH_HLEN + payload.length)
  writeEthernet(buf, 0, dst, src, type)
  buf.set(payload, ETH_HLEN)
  return buf
}

/** IPv4 + UDP (checksummed) around `payload`, outer addresses of a tunnel. */
export function outerUdp (src: string, dst: string, sport: number, dport: number, payload: Uint8Array): Buffer {
  const buf = Buffer.alloc(IPV4_MIN_HLEN + UDP_HLEN + payload.length)
  writeIpv4Header(buf, 0, 0, buf.length, 9, 0, 64, IPPROTO_UDP, parseIp4(src), parseIp4(dst))
  writeUdpHeader(buf, IPV4_MIN_HLEN, sport, dport, UDP_HLEN + payload.length)
  buf.set(payload, IPV4_MIN_HLEN + UDP_HLEN)
  setUdp4Checksum(buf, IPV4_MIN_HLEN, UDP_HLEN + payload.length, 0)
  return buf
}

/** The VXLAN payload: 8-byte header + inner Ethernet frame around the pod packet. */
export function vxlanPayload (vni: number, inner: Uint8Array): Buffer {
  const frame = ethernet(VTEP2, VTEP1, inner)
  const buf = Buffer.alloc(VXLAN_HLEN + frame.length)
  writeVxlan(buf, 0, vni)
  buf.set(frame, VXLAN_HLEN)
  return buf
}

/** A whole underlay Ethernet frame: node1 -> node2, VXLAN to `port`, carrying `inner` (an IPv4 packet). */
export function vxlanFrame (inner: Uint8Array, vni = 1, port = 8472, sport = 40000): Buffer {
  return ethernet(MAC2, MAC1, outerUdp(NODE1, NODE2, sport, port, vxlanPayload(vni, inner)))
}

export function ipipFrame (inner: Uint8Array): Buffer {
  return ethernet(MAC2, MAC1, ipv4(NODE1, NODE2, IPPROTO_IPIP, inner))
}

/** flannel's UDP backend: UDP 8285 -> 8285 whose payload is the bare IP packet. */
export function udpBackendFrame (inner: Uint8Array, port = 8285): Buffer {
  return ethernet(MAC2, MAC1, outerUdp(NODE1, NODE2, port, port, inner))
}

/** A WireGuard message: the type byte, three zero bytes, `size` bytes in all, filler after the header fields. */
function wgMessage (type: number, size: number): Buffer {
  const buf = Buffer.alloc(size, 0xa5)
  buf.writeUInt32LE(type, 0)
  return buf
}

/** Type 1, 148 bytes: sender index at 4. */
export function wgInitiation (sender: number): Buffer {
  const buf = wgMessage(1, 148)
  buf.writeUInt32LE(sender, 4)
  return buf
}

/** Type 2, 92 bytes: sender index at 4, receiver index at 8. */
export function wgResponse (sender: number, receiver: number): Buffer {
  const buf = wgMessage(2, 92)
  buf.writeUInt32LE(sender, 4)
  buf.writeUInt32LE(receiver, 8)
  return buf
}

/** Type 3, 64 bytes: receiver index at 4. */
export function wgCookieReply (receiver: number): Buffer {
  const buf = wgMessage(3, 64)
  buf.writeUInt32LE(receiver, 4)
  return buf
}

/** Type 4: receiver index at 4, 64-bit counter at 8, then `plaintext` bytes of "ciphertext" and the 16-byte tag (0: a keepalive). */
export function wgTransport (receiver: number, counter: bigint, plaintext: number): Buffer {
  const buf = wgMessage(4, 32 + plaintext)
  buf.writeUInt32LE(receiver, 4)
  buf.writeBigUInt64LE(counter, 8)
  return buf
}

/** A WireGuard message between the nodes' endpoints (51820 -> 51820, as flannel's nodes talk). */
export function wireguardFrame (msg: Uint8Array, sport = 51820, dport = 51820): Buffer {
  return ethernet(MAC2, MAC1, outerUdp(NODE1, NODE2, sport, dport, msg))
}
