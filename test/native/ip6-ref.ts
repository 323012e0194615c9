// A pure-JS reference for inner IPv6 packets in the addon's tests: build
// IPv6 + TCP/UDP packets and compute, verify or leave partial their
// checksums over the IPv6 pseudo-header (RFC 8200 §8.1), written out here
// plainly, so that nothing of the addon's checks itself.
import { ip6Bytes, parseIp6 } from '../../src/packet/net6'

export const IPPROTO_TCP = 6
export const IPPROTO_UDP = 17
export const SRC6 = 'fd00:244:1::2'
export const DST6 = 'fd00:244:2::3'

/** The one's complement sum of buf[off, off + len) as 16-bit big-endian words, folded to 16 bits. */
function sum16 (buf: Buffer, off: number, len: number, initial = 0): number {
  let s = initial
  for (let i = 0; i + 1 < len; i += 2) s += (buf[off + i] << 8) | buf[off + i + 1]
  if (len % 2 === 1) s += buf[off + len - 1] << 8
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000)
  return s
}

/** The pseudo-header's sum: source, destination, 32-bit upper-layer length, 3 zero bytes, next header. */
export function pseudoSum6 (ip: Buffer, l4len: number, proto: number): number {
  const p = Buffer.alloc(40)
  ip.copy(p, 0, 8, 40)
  p.writeUInt32BE(l4len, 32)
  p[39] = proto
  return sum16(p, 0, 40)
}

/** Where the L4 checksum of an IPv6 packet without extension headers is. */
function field (ip: Buffer): number {
  return 40 + (ip[6] === IPPROTO_TCP ? 16 : 6)
}

/** The checksum an IPv6 TCP/UDP packet must carry (UDP's 0 sent as 0xffff). */
export function l4Checksum6 (ip: Buffer): number {
  const l4len = ip.length - 40
  const f = field(ip)
  const copy = Buffer.from(ip)
  copy[f] = 0
  copy[f + 1] = 0
  const c = (~sum16(copy, 40, l4len, pseudoSum6(ip, l4len, ip[6]))) & 0xffff
  return ip[6] === IPPROTO_UDP && c === 0 ? 0xffff : c
}

export function setL4Checksum6 (ip: Buffer): void {
  ip.writeUInt16BE(l4Checksum6(ip), field(ip))
}

export function verifyL4Checksum6 (ip: Buffer): boolean {
  return ip.readUInt16BE(field(ip)) === l4Checksum6(ip)
}

/** What a CHECKSUM_PARTIAL sender leaves in the field: the folded pseudo-header sum. */
export function partialChecksum6 (ip: Buffer): number {
  return pseudoSum6(ip, ip.length - 40, ip[6])
}

export function makePartial6 (ip: Buffer): void {
  ip.writeUInt16BE(partialChecksum6(ip), field(ip))
}

function header6 (b: Buffer, payloadLen: number, next: number, src: string, dst: string): void {
  b.writeUInt32BE(0x60012345, 0) // version 6, a flow label
  b.writeUInt16BE(payloadLen, 4)
  b[6] = next
  b[7] = 64
  ip6Bytes(parseIp6(src)).copy(b, 8)
  ip6Bytes(parseIp6(dst)).copy(b, 24)
}

export interface Tcp6Options {
  payload: Buffer
  seq?: number
  ack?: number
  flags?: number
  /** TCP timestamps option (12 bytes with two NOPs); default on */
  timestamps?: boolean
  sport?: number
  src?: string
  dst?: string
}

/** An IPv6 + TCP packet [SRC6]:40000 -> [DST6]:5201, checksum valid. */
export function tcp6Packet (o: Tcp6Options): Buffer {
  const thl = o.timestamps === false ? 20 : 32
  const l4len = thl + o.payload.length
  const b = Buffer.alloc(40 + l4len)
  header6(b, Math.min(l4len, 0xffff), IPPROTO_TCP, o.src ?? SRC6, o.dst ?? DST6)
  b.writeUInt16BE(o.sport ?? 40000, 40)
  b.writeUInt16BE(5201, 42)
  b.writeUInt32BE((o.seq ?? 1000) >>> 0, 44)
  b.writeUInt32BE(o.ack ?? 777, 48)
  b[52] = (thl / 4) << 4
  b[53] = o.flags ?? 0x10
  b.writeUInt16BE(501, 54)
  if (thl === 32) Buffer.from([1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78]).copy(b, 60)
  o.payload.copy(b, 40 + thl)
  setL4Checksum6(b)
  return b
}

/** An IPv6 + UDP packet [SRC6]:40000 -> [DST6]:7000, checksum valid. */
export function udp6Packet (payload: Buffer): Buffer {
  const l4len = 8 + payload.length
  const b = Buffer.alloc(40 + l4len)
  header6(b, l4len, IPPROTO_UDP, SRC6, DST6)
  b.writeUInt16BE(40000, 40)
  b.writeUInt16BE(7000, 42)
  b.writeUInt16BE(l4len, 44)
  payload.copy(b, 48)
  setL4Checksum6(b)
  return b
}

/** An IPv6 packet whose TCP segment follows a hop-by-hop options header (8 bytes). */
export function tcp6WithHopByHop (payload: Buffer): Buffer {
  const tcp = tcp6Packet({ payload, timestamps: false })
  const b = Buffer.alloc(tcp.length + 8)
  tcp.copy(b, 0, 0, 40)
  b[6] = 0 // hop-by-hop
  b.writeUInt16BE(tcp.length - 40 + 8, 4)
  b[40] = IPPROTO_TCP // its next header; length 0 (8 bytes), PadN after
  b[42] = 1
  b[43] = 4
  tcp.copy(b, 48, 40)
  return b
}

export const TCP_FIN = 0x01
export const TCP_PSH = 0x08
export const TCP_ACK = 0x10
export const TCP_CWR = 0x80
