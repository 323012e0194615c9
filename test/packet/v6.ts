// Test-side builders for IPv6 packets (allocation is fine here): a packet
// from field values, its TCP/UDP/ICMPv6 checksum computed the plain way (the
// pseudo-header written out as bytes, summed by referenceSum), and
// extension headers to put in front of the upper layer.
import { ip6Bytes, parseIp6 } from '../../src/packet/net6'
import { writeIpv6Header } from '../../src/packet/ipv6'
import { referenceSum } from './builders'

export function a6 (text: string): Buffer {
  return ip6Bytes(parseIp6(text))
}

/** The checksum over the RFC 8200 pseudo-header and `l4` (its checksum field already zero), done the obvious way. */
export function referenceChecksum6 (src: Buffer, dst: Buffer, nh: number, l4: Buffer): number {
  const ph = Buffer.alloc(40)
  src.copy(ph, 0)
  dst.copy(ph, 16)
  ph.writeUInt32BE(l4.length, 32)
  ph[39] = nh
  const sum = referenceSum(Buffer.concat([ph, l4]))
  return ~sum & 0xffff
}

export interface Ext {
  /** next header value of this extension header: 0 hop-by-hop, 43 routing, 60 destination options, 44 fragment */
  type: number
  /** bytes of the header (a multiple of 8; a fragment header is 8) */
  len?: number
  /** raw option bytes after the first two (hop-by-hop / destination options) */
  options?: number[]
  /** a fragment header's offset (8-byte units) and M flag */
  fragOffset?: number
  more?: boolean
}

export interface V6 {
  src?: string
  dst?: string
  /** the upper layer's protocol */
  nh: number
  /** the upper-layer bytes (checksum field zero, or as they should stay) */
  l4: Buffer
  hop?: number
  tc?: number
  flow?: number
  ext?: Ext[]
  /** fill in the TCP (6), UDP (17) or ICMPv6 (58) checksum */
  checksum?: boolean
}

/** A whole IPv6 packet. */
export function packet6 (p: V6): Buffer {
  const src = a6(p.src ?? 'fc00:0:0:2::3')
  const dst = a6(p.dst ?? 'fc00:0:0:1::2')
  const l4 = Buffer.from(p.l4)
  if (p.checksum === true) {
    const at = p.nh === 6 ? 16 : p.nh === 17 ? 6 : 2
    l4.writeUInt16BE(0, at)
    let c = referenceChecksum6(src, dst, p.nh, l4)
    if (p.nh === 17 && c === 0) c = 0xffff
    l4.writeUInt16BE(c, at)
  }
  const exts = p.ext ?? []
  const parts: Buffer[] = []
  for (let i = 0; i < exts.length; i++) {
    const e = exts[i]
    const next = i + 1 < exts.length ? exts[i + 1].type : p.nh
    const len = e.type === 44 ? 8 : (e.len ?? 8)
    const h = Buffer.alloc(len)
    h[0] = next
    if (e.type === 44) {
      h.writeUInt16BE(((e.fragOffset ?? 0) << 3) | (e.more === true ? 1 : 0), 2)
      h.writeUInt32BE(0x1234, 4)
    } else {
      h[1] = len / 8 - 1
      const opts = e.options ?? [1, len - 4] // one PadN filling the rest
      Buffer.from(opts).copy(h, 2)
    }
    parts.push(h)
  }
  const payload = Buffer.concat([...parts, l4])
  const b = Buffer.alloc(40 + payload.length)
  writeIpv6Header(b, 0, p.tc ?? 0, p.flow ?? 0, payload.length, exts.length > 0 ? exts[0].type : p.nh, p.hop ?? 64, src, 0, dst, 0)
  payload.copy(b, 40)
  return b
}

/** A TCP segment's bytes: 20-byte header (+ options), flags, payload of `len` patterned bytes. */
export function tcpBytes (o: { sport?: number, dport?: number, seq?: number, ack?: number, flags?: number, window?: number, options?: Buffer, payload?: number, tag?: number, doff?: number }): Buffer {
  const opts = o.options ?? Buffer.alloc(0)
  const thl = 20 + opts.length
  const n = o.payload ?? 0
  const b = Buffer.alloc(thl + n)
  b.writeUInt16BE(o.sport ?? 40000, 0)
  b.writeUInt16BE(o.dport ?? 5201, 2)
  b.writeUInt32BE((o.seq ?? 1000) >>> 0, 4)
  b.writeUInt32BE((o.ack ?? 777) >>> 0, 8)
  b[12] = (o.doff ?? thl / 4) << 4
  b[13] = o.flags ?? 0x10
  b.writeUInt16BE(o.window ?? 501, 14)
  opts.copy(b, 20)
  for (let i = 0; i < n; i++) b[thl + i] = (i * 7 + (o.tag ?? 3)) & 255
  return b
}

/** A UDP datagram's bytes (length field set, checksum zero). */
export function udpBytes (payload: number, o: { sport?: number, dport?: number, tag?: number } = {}): Buffer {
  const b = Buffer.alloc(8 + payload)
  b.writeUInt16BE(o.sport ?? 40000, 0)
  b.writeUInt16BE(o.dport ?? 7000, 2)
  b.writeUInt16BE(8 + payload, 4)
  for (let i = 0; i < payload; i++) b[8 + i] = (i * 5 + (o.tag ?? 1)) & 255
  return b
}

/** An ICMPv6 message: type, code, 4 bytes of body and `data` bytes. */
export function icmp6Bytes (type: number, code = 0, data = 8): Buffer {
  const b = Buffer.alloc(8 + data)
  b[0] = type
  b[1] = code
  for (let i = 0; i < data; i++) b[8 + i] = i & 255
  return b
}
