// IPv6 headers (src/packet/ipv6.ts) and ICMPv6 (icmp6.ts): fields, the
// pseudo-header sum against a plain reference, and validation, each bad
// packet refused with its own reason.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  IPV6_MAX_EXT_HEADERS, NEXTHDR_FRAGMENT, Reason, pseudoHeaderSum6At, readIpv6FlowLabel, readIpv6HopLimit, readIpv6NextHeader,
  readIpv6PayloadLength, readIpv6TrafficClass, readIpv6Version, validateIpv6, validateIpv6Unfragmented, walkIpv6, walkOffset, walkProtocol,
  computeIcmp6Checksum, icmp6EchoRequestToReply, isNdpType, validateIcmp6, verifyIcmp6Checksum, onesSum, finish, equalIpv6Addr
} from '../../src/packet'
import { finishChecksum6, finishPartialChecksum6 } from '../../src/packet/partial-checksum'
import { a6, icmp6Bytes, packet6, referenceChecksum6, tcpBytes, udpBytes } from './v6'

test('header fields read back as written', () => {
  const p = packet6({ nh: 17, l4: udpBytes(10), tc: 0xb8, flow: 0xabcde, hop: 63 })
  assert.equal(readIpv6Version(p, 0), 6)
  assert.equal(readIpv6TrafficClass(p, 0), 0xb8)
  assert.equal(readIpv6FlowLabel(p, 0), 0xabcde)
  assert.equal(readIpv6PayloadLength(p, 0), 18)
  assert.equal(readIpv6NextHeader(p, 0), 17)
  assert.equal(readIpv6HopLimit(p, 0), 63)
  assert.ok(equalIpv6Addr(p, 8, a6('fc00:0:0:2::3'), 0))
  assert.ok(equalIpv6Addr(p, 24, a6('fc00:0:0:1::2'), 0))
})

test('the pseudo-header sum gives the checksum the plain reference gives, for any addresses and lengths', () => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 3000 }), fc.constantFrom(6, 17, 58), (s, d, n, nh) => {
    const l4 = nh === 6 ? tcpBytes({ payload: n }) : nh === 17 ? udpBytes(n) : icmp6Bytes(128, 0, n)
    const p = packet6({ nh, l4, checksum: false })
    Buffer.from(s).copy(p, 8)
    Buffer.from(d).copy(p, 24)
    const ours = finish(onesSum(p, 40, l4.length, pseudoHeaderSum6At(p, 0, nh, l4.length)))
    assert.equal(ours, referenceChecksum6(Buffer.from(s), Buffer.from(d), nh, l4))
  }), { numRuns: 200 })
})

test('ICMPv6: checksum over the pseudo-header, verify, echo request to reply, NDP types', () => {
  const p = packet6({ nh: 58, l4: icmp6Bytes(128, 0, 56), checksum: true })
  assert.equal(computeIcmp6Checksum(p, 40, 64, 0), p.readUInt16BE(42))
  assert.ok(verifyIcmp6Checksum(p, 40, 64, 0))
  assert.equal(validateIcmp6(p, 40, 64, 0), Reason.OK)
  assert.equal(icmp6EchoRequestToReply(p, 40), Reason.OK)
  assert.equal(p[40], 129)
  assert.ok(verifyIcmp6Checksum(p, 40, 64, 0), 'the incremental fix verifies')
  assert.equal(icmp6EchoRequestToReply(p, 40), Reason.BAD_ICMP_TYPE)
  p[50] ^= 1
  assert.equal(validateIcmp6(p, 40, 64, 0), Reason.BAD_ICMP_CHECKSUM)
  assert.equal(validateIcmp6(p, 40, 7, 0), Reason.TRUNCATED)
  for (let t = 0; t < 256; t++) assert.equal(isNdpType(t), t >= 133 && t <= 137, `type ${t}`)
})

test('validateIpv6: a sound packet, with or without extension headers, and padding after it', () => {
  const tcp = tcpBytes({ payload: 100 })
  assert.equal(validateIpv6(packet6({ nh: 6, l4: tcp }), 0, 160), Reason.OK)
  const ext = packet6({ nh: 6, l4: tcp, ext: [{ type: 0 }, { type: 43, len: 24 }, { type: 60, len: 16 }] })
  assert.equal(validateIpv6(ext, 0, ext.length), Reason.OK)
  const w = walkIpv6(ext, 0, ext.length)
  assert.equal(walkProtocol(w), 6)
  assert.equal(walkOffset(w), 40 + 8 + 24 + 16)
  const padded = Buffer.concat([ext, Buffer.alloc(20)])
  assert.equal(validateIpv6(padded, 0, padded.length), Reason.OK)
  const none = packet6({ nh: 59, l4: Buffer.alloc(0) })
  assert.equal(validateIpv6(none, 0, 40), Reason.OK, 'no next header, no payload')
})

test('validateIpv6: each malformed packet with its reason', () => {
  const good = packet6({ nh: 17, l4: udpBytes(20) })
  assert.equal(validateIpv6(good, 0, 39), Reason.TRUNCATED)
  assert.equal(validateIpv6(good, 0, good.length + 1), Reason.TRUNCATED, 'more than the buffer')
  assert.equal(validateIpv6(good, -1, 40), Reason.TRUNCATED)
  assert.equal(validateIpv6(good, NaN, 40), Reason.TRUNCATED)
  const v4 = Buffer.from(good)
  v4[0] = 0x45
  assert.equal(validateIpv6(v4, 0, v4.length), Reason.BAD_VERSION)
  assert.equal(validateIpv6(good, 0, good.length - 1), Reason.BAD_PAYLOAD_LENGTH, 'payload length past the bytes given')
  // a jumbogram: payload length 0 with a hop-by-hop header carrying the jumbo option
  const jumbo = packet6({ nh: 17, l4: udpBytes(20), ext: [{ type: 0, options: [0xc2, 4, 0, 1, 0, 0] }] })
  const j0 = Buffer.from(jumbo)
  j0.writeUInt16BE(0, 4)
  assert.equal(validateIpv6(j0, 0, j0.length), Reason.JUMBOGRAM)
  assert.equal(validateIpv6(jumbo, 0, jumbo.length), Reason.JUMBOGRAM, 'the jumbo option with a non-zero payload length')
  const notFirst = packet6({ nh: 6, l4: tcpBytes({}), ext: [{ type: 60 }, { type: 0 }] })
  assert.equal(validateIpv6(notFirst, 0, notFirst.length), Reason.BAD_EXTENSION_HEADER, 'hop-by-hop not first')
  const many = packet6({ nh: 6, l4: tcpBytes({}), ext: Array.from({ length: IPV6_MAX_EXT_HEADERS + 1 }, () => ({ type: 60 })) })
  assert.equal(validateIpv6(many, 0, many.length), Reason.BAD_EXTENSION_HEADER, 'too many')
  const enough = packet6({ nh: 6, l4: tcpBytes({}), ext: Array.from({ length: IPV6_MAX_EXT_HEADERS }, () => ({ type: 60 })) })
  assert.equal(validateIpv6(enough, 0, enough.length), Reason.OK, 'exactly the limit')
  const long = packet6({ nh: 6, l4: tcpBytes({}), ext: [{ type: 43, len: 16 }] })
  long[41] = 200 // says 1608 bytes
  assert.equal(validateIpv6(long, 0, long.length), Reason.BAD_EXTENSION_HEADER, 'runs past the packet')
  const cut = packet6({ nh: 60, l4: Buffer.alloc(4) })
  assert.equal(validateIpv6(cut, 0, cut.length), Reason.BAD_EXTENSION_HEADER, 'shorter than 8 bytes')
})

test('fragments: whole-packet checks pass, validateIpv6Unfragmented names them, a short fragment header is refused', () => {
  const first = packet6({ nh: 6, l4: tcpBytes({ payload: 64 }), ext: [{ type: 44, more: true }] })
  assert.equal(validateIpv6(first, 0, first.length), Reason.OK)
  assert.equal(walkProtocol(walkIpv6(first, 0, first.length)), NEXTHDR_FRAGMENT)
  assert.equal(walkOffset(walkIpv6(first, 0, first.length)), 40)
  assert.equal(validateIpv6Unfragmented(first, 0, first.length), Reason.IPV6_FRAGMENT)
  const later = packet6({ nh: 6, l4: Buffer.alloc(24), ext: [{ type: 60 }, { type: 44, fragOffset: 100 }] })
  assert.equal(validateIpv6Unfragmented(later, 0, later.length), Reason.IPV6_FRAGMENT)
  const short = Buffer.alloc(44)
  packet6({ nh: 44, l4: Buffer.alloc(4) }).copy(short)
  assert.equal(validateIpv6(short, 0, 44), Reason.BAD_EXTENSION_HEADER)
  assert.equal(validateIpv6Unfragmented(packet6({ nh: 17, l4: udpBytes(8) }), 0, 56), Reason.OK)
})

test('validateIpv6 never throws and never reads past len, on any bytes', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 210 }), (bytes, len) => {
    const b = Buffer.from(bytes)
    if (b.length > 0) b[0] = (b[0] & 0x0f) | 0x60
    const r = validateIpv6(b, 0, len)
    assert.ok(r >= 0 && r < 30)
    if (len > b.length || len < 40) assert.equal(r, Reason.TRUNCATED)
  }), { numRuns: 2000 })
})

test('partial checksums over IPv6: finished where the field holds the pseudo-header sum, left alone otherwise', () => {
  for (const nh of [6, 17]) {
    const l4 = nh === 6 ? tcpBytes({ payload: 333 }) : udpBytes(333)
    const good = packet6({ nh, l4, checksum: true })
    const at = 40 + (nh === 6 ? 16 : 6)
    const want = good.readUInt16BE(at)
    const partial = Buffer.from(good)
    const ps = pseudoHeaderSum6At(partial, 0, nh, l4.length)
    partial.writeUInt16BE(ps, at)
    assert.equal(finishPartialChecksum6(partial, 0, partial.length), true)
    assert.equal(partial.readUInt16BE(at), want)
    assert.equal(finishPartialChecksum6(good, 0, good.length), false, 'a finished one stays')
    const again = Buffer.from(good)
    again.writeUInt16BE(ps, at)
    finishChecksum6(again, 0, again.length)
    assert.equal(again.readUInt16BE(at), want)
  }
  const behind = packet6({ nh: 6, l4: tcpBytes({ payload: 10 }), ext: [{ type: 60 }] })
  assert.equal(finishPartialChecksum6(behind, 0, behind.length), false, 'behind an extension header: left to the kernel')
})
