// Test-side builders: valid packets from field values (using the codecs),
// fast-check arbitraries for those values, and a plain reference checksum to
// compare the fast one against. Allocation is fine here; this is not hot path.
import fc from 'fast-check'

import {
  ARP_HLEN,
  ICMP_HLEN,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_FLAG_DF,
  IPV4_MIN_HLEN,
  TCP_MIN_HLEN,
  UDP_HLEN,
  VXLAN_HLEN,
  setIcmpChecksum,
  setIpv4Checksum,
  setTcp4Checksum,
  setUdp4Checksum,
  writeArp,
  writeIcmpEcho,
  writeIpv4Header,
  writeIpv4TotalLength,
  writeIpv4VersionIhl,
  writeTcpDataOffset,
  writeTcpHeader,
  writeUdpHeader,
  writeVxlan,
} from '../../src/packet'

/** RFC 1071 done the obvious way, 16 bits at a time, folding as it goes. */
export function referenceSum (data: Uint8Array, initial = 0): number {
  let sum = initial
  for (let i = 0; i < data.length; i += 2) {
    sum += (data[i]! << 8) | (i + 1 < data.length ? data[i + 1]! : 0)
    sum = (sum & 0xffff) + Math.floor(sum / 0x10000)
  }
  return sum
}

export const u8 = fc.integer({ min: 0, max: 0xff })
export const u16 = fc.integer({ min: 0, max: 0xffff })
export const u32 = fc.integer({ min: 0, max: 0xffffffff })
export const mac48 = fc.integer({ min: 0, max: 0xffffffffffff })
export const vni = fc.integer({ min: 0, max: 0xffffff })
export const bytes = (maxLength: number, minLength = 0) =>
  fc.uint8Array({ minLength, maxLength }).map((a) => Buffer.from(a))

export interface Ipv4Fields {
  tos: number;
  id: number;
  fragField: number;
  ttl: number;
  protocol: number;
  src: number;
  dst: number;
}

export const ipv4Fields: fc.Arbitrary<Ipv4Fields> = fc.record({
  tos: u8,
  id: u16,
  fragField: u16,
  ttl: u8,
  protocol: u8,
  src: u32,
  dst: u32,
})

/** A valid IPv4 packet: header with `options` (length a multiple of 4, <= 40), then payload. */
export function ipv4Packet (f: Ipv4Fields, payload: Uint8Array, options: Uint8Array = new Uint8Array(0)): Buffer {
  const hlen = IPV4_MIN_HLEN + options.length
  const buf = Buffer.alloc(hlen + payload.length)
  writeIpv4Header(buf, 0, f.tos, hlen + payload.length, f.id, f.fragField, f.ttl, f.protocol, f.src, f.dst)
  writeIpv4VersionIhl(buf, 0, hlen >> 2)
  buf.set(options, IPV4_MIN_HLEN)
  buf.set(payload, hlen)
  writeIpv4TotalLength(buf, 0, buf.length)
  setIpv4Checksum(buf, 0)
  return buf
}

/** IPv4 options: 0..10 words of arbitrary bytes (validation does not parse options). */
export const ipv4Options = fc.integer({ min: 0, max: 10 }).chain((w) => bytes(w * 4, w * 4))

/** Where the L4 header starts in udpPacket / tcpPacket: after a 20-byte IPv4 header at 0. */
export const L4 = IPV4_MIN_HLEN

function ipv4Header (buf: Buffer, protocol: number, src: number, dst: number): void {
  writeIpv4Header(buf, 0, 0, buf.length, 0x1234, IPV4_FLAG_DF, 64, protocol, src, dst)
}

/** IPv4 (src -> dst) + UDP datagram with its checksum set; the UDP header is at L4. */
export function udpPacket (src: number, dst: number, sport: number, dport: number, payload: Uint8Array): Buffer {
  const buf = Buffer.alloc(L4 + UDP_HLEN + payload.length)
  ipv4Header(buf, IPPROTO_UDP, src, dst)
  buf.set(payload, L4 + UDP_HLEN)
  writeUdpHeader(buf, L4, sport, dport, buf.length - L4)
  setUdp4Checksum(buf, L4, buf.length - L4, 0)
  return buf
}

export function icmpEcho (type: number, id: number, seq: number, payload: Uint8Array): Buffer {
  const buf = Buffer.alloc(ICMP_HLEN + payload.length)
  buf.set(payload, ICMP_HLEN)
  writeIcmpEcho(buf, 0, type, id, seq, buf.length)
  return buf
}

/** An ICMP message of any type/code: 8-byte header (last 4 arbitrary) + payload. */
export function icmpMessage (type: number, code: number, rest: number, payload: Uint8Array): Buffer {
  const buf = Buffer.alloc(ICMP_HLEN + payload.length)
  buf[0] = type
  buf[1] = code
  buf.writeUInt32BE(rest, 4)
  buf.set(payload, ICMP_HLEN)
  setIcmpChecksum(buf, 0, buf.length)
  return buf
}

export interface TcpFields {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
}

export const tcpFields: fc.Arbitrary<TcpFields> = fc.record({
  sport: u16,
  dport: u16,
  seq: u32,
  ack: u32,
  flags: u8,
  window: u16,
})

/** IPv4 (src -> dst) + TCP segment with its checksum set; the TCP header is at L4. */
export function tcpPacket (src: number, dst: number, f: TcpFields, options: Uint8Array, payload: Uint8Array): Buffer {
  const hlen = TCP_MIN_HLEN + options.length
  const buf = Buffer.alloc(L4 + hlen + payload.length)
  ipv4Header(buf, IPPROTO_TCP, src, dst)
  writeTcpHeader(buf, L4, f.sport, f.dport, f.seq, f.ack, f.flags, f.window)
  writeTcpDataOffset(buf, L4, hlen >> 2)
  buf.set(options, L4 + TCP_MIN_HLEN)
  buf.set(payload, L4 + hlen)
  setTcp4Checksum(buf, L4, buf.length - L4, 0)
  return buf
}

export function vxlanHeader (v: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const buf = Buffer.alloc(VXLAN_HLEN + payload.length)
  writeVxlan(buf, 0, v)
  buf.set(payload, VXLAN_HLEN)
  return buf
}

export function arpPacket (op: number, sha: number, spa: number, tha: number, tpa: number): Buffer {
  const buf = Buffer.alloc(ARP_HLEN)
  writeArp(buf, 0, op, sha, spa, tha, tpa)
  return buf
}

/** `buf` copied into a larger buffer at `at`, with junk around it, so offsets are exercised. */
export function embed (buf: Uint8Array, at: number, trailing = 3): Buffer {
  const out = Buffer.alloc(at + buf.length + trailing, 0xee)
  out.set(buf, at)
  return out
}
