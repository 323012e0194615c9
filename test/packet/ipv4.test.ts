import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import * as p from '../../src/packet'
import { L4, ipv4Fields, ipv4Options, ipv4Packet, u32, u8, udpPacket } from './builders'

const { Reason } = p
const name = (r: number) => p.REASON_NAMES[r]

// A header from the wild (the classic Wikipedia example): 192.168.0.1 -> 192.168.0.199, UDP.
const KNOWN = Buffer.from('450000730000400040110000c0a80001c0a800c7', 'hex')

test('computes the checksum of a known header: 0xb861', () => {
  assert.equal(p.computeIpv4Checksum(KNOWN, 0), 0xb861)
  const buf = Buffer.from(KNOWN)
  p.setIpv4Checksum(buf, 0)
  assert.equal(buf.toString('hex'), '45000073000040004011b861c0a80001c0a800c7')
  assert.ok(p.verifyIpv4Checksum(buf, 0))
  assert.equal(p.ip4ToString(p.readIpv4Src(buf, 0)), '192.168.0.1')
  assert.equal(p.ip4ToString(p.readIpv4Dst(buf, 0)), '192.168.0.199')
  assert.equal(p.readIpv4FragField(buf, 0), p.IPV4_FLAG_DF)
})

test('computeIpv4Checksum ignores whatever is in the checksum field', () => {
  const buf = Buffer.from(KNOWN)
  buf.writeUInt16BE(0x1234, 10)
  assert.equal(p.computeIpv4Checksum(buf, 0), 0xb861)
  assert.equal(buf.readUInt16BE(10), 0x1234, 'not modified')
})

/** UDP, 10.0.0.1 -> 10.0.0.2, 12 bytes of payload. */
function header (): Buffer {
  return ipv4Packet({ tos: 0, id: 1, fragField: 0, ttl: 64, protocol: 17, src: 0x0a000001, dst: 0x0a000002 }, Buffer.alloc(12, 7))
}

test('a plain header validates; extra bytes after total length (Ethernet padding) are fine', () => {
  const pkt = header()
  assert.equal(name(p.validateIpv4(pkt, 0, pkt.length)), 'ok')
  const padded = Buffer.concat([pkt, Buffer.alloc(14)])
  assert.equal(name(p.validateIpv4(padded, 0, padded.length)), 'ok')
})

test('IHL > 5: options are covered by the checksum and skipped by the header length', () => {
  const options = Buffer.from('94040000' + '01010101', 'hex') // router alert, NOPs
  const pkt = ipv4Packet({ tos: 0, id: 9, fragField: 0, ttl: 1, protocol: 2, src: 1, dst: 2 }, Buffer.from('abcd', 'hex'), options)
  assert.equal(p.readIpv4Ihl(pkt, 0), 7)
  assert.equal(p.readIpv4HeaderLength(pkt, 0), 28)
  assert.equal(name(p.validateIpv4(pkt, 0, pkt.length)), 'ok')
  assert.equal(pkt.subarray(p.readIpv4HeaderLength(pkt, 0)).toString('hex'), 'abcd')
  // A corrupted option byte breaks the checksum...
  const bad = Buffer.from(pkt)
  bad[21] ^= 0x10
  assert.equal(name(p.validateIpv4(bad, 0, bad.length)), 'bad_ipv4_checksum')
  // ...and the incremental updates work with options present.
  const rw = Buffer.from(pkt)
  p.rewriteIpv4Dst(rw, 0, 0xc0a80101)
  p.rewriteIpv4Ttl(rw, 0, 200)
  assert.equal(name(p.validateIpv4(rw, 0, rw.length)), 'ok')
})

test('IHL larger than the bytes available is TRUNCATED; IHL < 5 is BAD_IHL', () => {
  const pkt = header()
  const big = Buffer.from(pkt.subarray(0, 20))
  big[0] = 0x46 // 24-byte header in 20 bytes
  assert.equal(name(p.validateIpv4(big, 0, 20)), 'truncated')
  for (const ihl of [0, 1, 4]) {
    const b = Buffer.from(pkt)
    b[0] = 0x40 | ihl
    assert.equal(name(p.validateIpv4(b, 0, b.length)), 'bad_ihl', `ihl ${ihl}`)
  }
})

test('version other than 4 is BAD_VERSION (an IPv6 packet, for instance)', () => {
  const v6 = Buffer.alloc(40)
  v6[0] = 0x60
  assert.equal(name(p.validateIpv4(v6, 0, 40)), 'bad_version')
})

test('total length larger than the buffer, or smaller than the header, is BAD_TOTAL_LENGTH', () => {
  const pkt = header()
  assert.equal(name(p.validateIpv4(pkt, 0, pkt.length - 1)), 'bad_total_length')
  const long = Buffer.from(pkt)
  p.writeIpv4TotalLength(long, 0, pkt.length + 1)
  p.setIpv4Checksum(long, 0)
  assert.equal(name(p.validateIpv4(long, 0, long.length)), 'bad_total_length')
  const short = Buffer.from(pkt)
  p.writeIpv4TotalLength(short, 0, 19)
  p.setIpv4Checksum(short, 0)
  assert.equal(name(p.validateIpv4(short, 0, short.length)), 'bad_total_length')
  // A 20-byte datagram with no payload is fine.
  const empty = ipv4Packet({ tos: 0, id: 0, fragField: 0, ttl: 1, protocol: 0, src: 0, dst: 0 }, Buffer.alloc(0))
  assert.equal(name(p.validateIpv4(empty, 0, 20)), 'ok')
})

test('fewer than 20 bytes is TRUNCATED, as is a length running past the buffer', () => {
  const pkt = header()
  assert.equal(name(p.validateIpv4(pkt, 0, 19)), 'truncated')
  assert.equal(name(p.validateIpv4(pkt, 1, pkt.length)), 'truncated')
  assert.equal(name(p.validateIpv4(pkt, -1, 20)), 'truncated')
})

test('fragments: validateIpv4 accepts them, validateIpv4Unfragmented says FRAGMENT', () => {
  const cases: Array<[number, boolean]> = [
    [0, false],
    [p.IPV4_FLAG_DF, false],
    [p.IPV4_FLAG_MF, true], // first fragment
    [p.IPV4_FLAG_MF | 185, true], // middle (offset 1480)
    [185, true], // last
    [p.IPV4_FLAG_RESERVED, false], // the "evil bit" is not fragmentation
  ]
  for (const [fragField, isFrag] of cases) {
    const pkt = ipv4Packet({ tos: 0, id: 7, fragField, ttl: 64, protocol: 1, src: 1, dst: 2 }, Buffer.alloc(8))
    assert.equal(p.isIpv4Fragment(pkt, 0), isFrag, `frag field 0x${fragField.toString(16)}`)
    assert.equal(name(p.validateIpv4(pkt, 0, pkt.length)), 'ok')
    assert.equal(name(p.validateIpv4Unfragmented(pkt, 0, pkt.length)), isFrag ? 'fragment' : 'ok')
  }
  const last = ipv4Packet({ tos: 0, id: 7, fragField: 185, ttl: 64, protocol: 1, src: 1, dst: 2 }, Buffer.alloc(8))
  assert.equal(p.readIpv4FragmentOffset(last, 0), 1480)
  // A broken fragment reports what is wrong with it, not that it is a fragment.
  last[0] = 0x44
  assert.equal(name(p.validateIpv4Unfragmented(last, 0, last.length)), 'bad_ihl')
})

test('TTL decrement fixes the checksum; TTL 1 or 0 is TTL_EXCEEDED and leaves the packet alone', () => {
  const pkt = header()
  assert.equal(p.decrementIpv4Ttl(pkt, 0), Reason.OK)
  assert.equal(p.readIpv4Ttl(pkt, 0), 63)
  assert.ok(p.verifyIpv4Checksum(pkt, 0))
  for (const ttl of [1, 0]) {
    const b = ipv4Packet({ tos: 0, id: 1, fragField: 0, ttl, protocol: 17, src: 1, dst: 2 }, Buffer.alloc(0))
    const before = Buffer.from(b)
    assert.equal(name(p.decrementIpv4Ttl(b, 0)), 'ttl_exceeded')
    assert.deepEqual(b, before)
  }
})

test('swapping addresses keeps the header checksum valid', () => {
  const pkt = header()
  p.swapIpv4Addresses(pkt, 0)
  assert.equal(p.readIpv4Src(pkt, 0), 0x0a000002)
  assert.equal(p.readIpv4Dst(pkt, 0), 0x0a000001)
  assert.ok(p.verifyIpv4Checksum(pkt, 0))
})

test('property: incremental checksum after TTL decrement / rewrite equals a full recompute', () => {
  fc.assert(
    fc.property(ipv4Fields, ipv4Options, u8, (f, options, ttl) => {
      const pkt = ipv4Packet(f, Buffer.alloc(0), options)
      const dec = Buffer.from(pkt)
      if (p.decrementIpv4Ttl(dec, 0) === Reason.OK) {
        assert.equal(p.readIpv4Ttl(dec, 0), f.ttl - 1)
        assert.equal(p.readIpv4Checksum(dec, 0), p.computeIpv4Checksum(dec, 0))
      } else {
        assert.ok(f.ttl <= 1)
      }
      p.rewriteIpv4Ttl(pkt, 0, ttl)
      assert.equal(p.readIpv4Ttl(pkt, 0), ttl)
      assert.equal(p.readIpv4Checksum(pkt, 0), p.computeIpv4Checksum(pkt, 0))
    }),
    { numRuns: 500 }
  )
})

test('property: incremental checksum after address rewrites equals a full recompute', () => {
  fc.assert(
    fc.property(ipv4Fields, ipv4Options, u32, u32, (f, options, src, dst) => {
      const pkt = ipv4Packet(f, Buffer.alloc(4, 1), options)
      p.rewriteIpv4Src(pkt, 0, src)
      assert.equal(p.readIpv4Src(pkt, 0), src)
      assert.equal(p.readIpv4Checksum(pkt, 0), p.computeIpv4Checksum(pkt, 0))
      p.rewriteIpv4Dst(pkt, 0, dst)
      assert.equal(p.readIpv4Dst(pkt, 0), dst)
      assert.equal(p.readIpv4Checksum(pkt, 0), p.computeIpv4Checksum(pkt, 0))
      p.swapIpv4Addresses(pkt, 0)
      assert.equal(p.validateIpv4(pkt, 0, pkt.length), Reason.OK)
    }),
    { numRuns: 500 }
  )
})

test('property: after an address rewrite, updateChecksum32 fixes the UDP checksum too', () => {
  fc.assert(
    fc.property(u32, u32, u32, fc.uint8Array({ maxLength: 40 }), (src, dst, newDst, payload) => {
      const pkt = udpPacket(src, dst, 1234, 5678, payload)
      p.rewriteIpv4Dst(pkt, 0, newDst)
      const fixed = p.updateChecksum32(p.readUdpChecksum(pkt, L4), dst, newDst)
      p.writeUdpChecksum(pkt, L4, fixed === 0 ? 0xffff : fixed) // 0 would mean "no checksum"
      assert.equal(p.validateIpv4(pkt, 0, pkt.length), Reason.OK)
      assert.equal(p.validateUdp4(pkt, L4, pkt.length - L4, 0), Reason.OK)
    })
  )
})
