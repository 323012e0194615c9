// Property tests for the validate* functions, which see whatever arrives off
// the wire: they must never throw, whatever the bytes, offset or length, and
// must reject (non-zero reason) every truncation and every single-byte
// corruption of a valid packet that the format can detect at all.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import * as p from '../../src/packet'
import {
  L4,
  arpPacket,
  bytes,
  embed,
  icmpMessage,
  ipv4Fields,
  ipv4Packet,
  mac48,
  tcpFields,
  tcpPacket,
  u16,
  u32,
  u8,
  udpPacket,
  vni,
  vxlanHeader,
} from './builders'

type Validator = (buf: Buffer, off: number, len: number) => number

// Every validator, with a fixed VNI where it takes one.
const SRC = 0x0af40100
const DST = 0x0af40200
const VALIDATORS: Record<string, Validator> = {
  validateIpv4: p.validateIpv4,
  validateIpv4Unfragmented: p.validateIpv4Unfragmented,
  // L4 validators read the pseudo-header from an IPv4 header 20 bytes earlier.
  validateUdp4: (b, o, l) => p.validateUdp4(b, o, l, o - L4),
  validateTcp4: (b, o, l) => p.validateTcp4(b, o, l, o - L4),
  validateIcmp: p.validateIcmp,
  validateVxlan: (b, o, l) => p.validateVxlan(b, o, l),
  'validateVxlan(vni)': (b, o, l) => p.validateVxlan(b, o, l, 1),
  validateArp: p.validateArp,
}

const isReason = (r: number) => Number.isInteger(r) && r >= 0 && r < p.REASON_COUNT

for (const [name, validate] of Object.entries(VALIDATORS)) {
  test(`property: ${name} never throws and returns a known reason, for any bytes, offset and length`, () => {
    fc.assert(
      fc.property(
        bytes(120),
        fc.integer({ min: -8, max: 130 }),
        fc.oneof(fc.integer({ min: -8, max: 140 }), fc.constantFrom(NaN, Infinity, -Infinity, 2 ** 31, 0.5)),
        (buf, off, len) => {
          const r = validate(buf, off, len)
          assert.ok(isReason(r), `reason ${r}`)
          // Claims beyond the buffer are truncation, never a read past it.
          if (!(off >= 0) || off + len > buf.length || !(len >= 0)) assert.notEqual(r, p.Reason.OK)
        }
      ),
      { numRuns: 1000 }
    )
  })

  test(`${name}: an empty buffer is TRUNCATED`, () => {
    assert.equal(validate(Buffer.alloc(0), 0, 0), p.Reason.TRUNCATED)
  })
}

/** A valid packet of each kind at offset `at` of a larger buffer, and its validator. */
interface Case {
  buf: Buffer;
  at: number;
  len: number;
  validate: Validator;
}

const placement = fc.integer({ min: 0, max: 9 })

const ipv4Case = fc.tuple(ipv4Fields, bytes(40), placement).map(([f, payload, at]): Case => {
  const pkt = ipv4Packet({ ...f, fragField: 0 }, payload)
  return { buf: embed(pkt, at), at, len: pkt.length, validate: p.validateIpv4 }
})
// UDP and TCP cases carry their IPv4 header; `at` is where the L4 header starts.
const udpCase = fc.tuple(u16, u16, bytes(40), placement).map(([sp, dp, payload, at]): Case => {
  const d = udpPacket(SRC, DST, sp, dp, payload)
  return { buf: embed(d, at), at: at + L4, len: d.length - L4, validate: VALIDATORS.validateUdp4! }
})
const tcpCase = fc.tuple(tcpFields, fc.integer({ min: 0, max: 10 }), bytes(40), placement)
  .map(([f, optWords, payload, at]): Case => {
    const s = tcpPacket(SRC, DST, f, Buffer.alloc(optWords * 4, 1), payload)
    return { buf: embed(s, at), at: at + L4, len: s.length - L4, validate: VALIDATORS.validateTcp4! }
  })
const icmpCase = fc.tuple(u8, u8, u32, bytes(40), placement).map(([type, code, rest, payload, at]): Case => {
  const m = icmpMessage(type, code, rest, payload)
  return { buf: embed(m, at), at, len: m.length, validate: p.validateIcmp }
})
const vxlanCase = fc.tuple(vni, bytes(20), placement).map(([v, payload, at]): Case => {
  const h = vxlanHeader(v, payload)
  return { buf: embed(h, at), at, len: h.length, validate: (b, o, l) => p.validateVxlan(b, o, l, v) }
})
const arpCase = fc.tuple(fc.constantFrom(1, 2), mac48, u32, mac48, u32, placement)
  .map(([op, sha, spa, tha, tpa, at]): Case => {
    const a = arpPacket(op, sha, spa, tha, tpa)
    return { buf: embed(a, at), at, len: a.length, validate: p.validateArp }
  })

test('property: the valid packets these tests mutate do validate', () => {
  for (const arb of [ipv4Case, udpCase, tcpCase, icmpCase, vxlanCase, arpCase]) {
    fc.assert(fc.property(arb, (c) => assert.equal(c.validate(c.buf, c.at, c.len), p.Reason.OK)))
  }
})

/**
 * Truncation. A length field (IPv4 total length, UDP length) makes every cut
 * detectable; VXLAN (8) and ARP (28) have fixed sizes, and whatever follows
 * a VXLAN header is the inner frame's business. ICMP and TCP carry no
 * length: a cut past their header can only be caught by the checksum (and
 * cutting trailing zero bytes does not even change that), so for them the
 * IPv4 total length is the authority; they are checked through IPv4 below,
 * as the dataplane does it, and on their own only for cuts into the header.
 */
test('property: every truncation that the format can see is rejected', () => {
  const cases = fc.oneof(
    ipv4Case.map((c) => ({ ...c, mustHave: c.len })),
    udpCase.map((c) => ({ ...c, mustHave: c.len })),
    vxlanCase.map((c) => ({ ...c, mustHave: p.VXLAN_HLEN })),
    arpCase.map((c) => ({ ...c, mustHave: p.ARP_HLEN })),
    icmpCase.map((c) => ({ ...c, mustHave: p.ICMP_HLEN })),
    tcpCase.map((c) => ({ ...c, mustHave: p.readTcpHeaderLength(c.buf, c.at) }))
  )
  fc.assert(
    fc.property(cases, fc.nat(), (c, cut) => {
      const len = cut % c.mustHave // 0 .. mustHave-1
      assert.notEqual(c.validate(c.buf, c.at, len), p.Reason.OK, `len ${len} of ${c.len}`)
      // Also when the buffer really ends there, whatever length is claimed.
      const short = c.buf.subarray(0, c.at + len)
      assert.notEqual(c.validate(short, c.at, c.len), p.Reason.OK)
    }),
    { numRuns: 1000 }
  )
})

test('property: IPv4 carrying ICMP/TCP/UDP, truncated anywhere, is rejected at the IPv4 layer', () => {
  const l4 = fc.oneof(
    udpCase.map((c) => ({ proto: p.IPPROTO_UDP, body: c.buf.subarray(c.at, c.at + c.len) })),
    tcpCase.map((c) => ({ proto: p.IPPROTO_TCP, body: c.buf.subarray(c.at, c.at + c.len) })),
    icmpCase.map((c) => ({ proto: p.IPPROTO_ICMP, body: c.buf.subarray(c.at, c.at + c.len) }))
  )
  fc.assert(
    fc.property(ipv4Fields, l4, fc.nat(), (f, { proto, body }, cut) => {
      const pkt = ipv4Packet({ ...f, protocol: proto, src: SRC, dst: DST, fragField: 0 }, body)
      assert.equal(p.validateIpv4(pkt, 0, pkt.length), p.Reason.OK)
      const len = cut % pkt.length
      assert.notEqual(p.validateIpv4(pkt.subarray(0, len), 0, len), p.Reason.OK)
    })
  )
})

/**
 * Single-byte corruption (XOR with a non-zero byte) anywhere the format can
 * notice it. Ones-complement sums catch every such change: the sum moves by
 * d or d*256 with 0 < |d| < 256, never a multiple of 0xffff. Positions left
 * out, and why:
 *  - IPv4: the payload (the header checksum does not cover it); so headers
 *    carry no payload here, else a changed IHL could move the checksummed
 *    range onto payload bytes that happen to balance it.
 *  - UDP: the length (its own tests) and the checksum field (a corrupted
 *    checksum that becomes 0 means "no checksum", which is legal).
 *  - ARP: the addresses (no integrity check exists) and the low op byte
 *    (request <-> reply is a different valid packet).
 */
test('property: single-byte corruption of a valid packet is rejected wherever detectable', () => {
  const ipv4Header = fc.tuple(ipv4Fields, placement).map(([f, at]): Case & { positions: number[] } => {
    const pkt = ipv4Packet({ ...f, fragField: 0 }, Buffer.alloc(0))
    return { buf: embed(pkt, at), at, len: pkt.length, validate: p.validateIpv4, positions: range(0, 20) }
  })
  const all = (arb: fc.Arbitrary<Case>) => arb.map((c) => ({ ...c, positions: range(0, c.len) }))
  const cases = fc.oneof(
    ipv4Header,
    udpCase.map((c) => ({ ...c, positions: range(0, c.len).filter((i) => i < 4 || i >= 8) })),
    all(tcpCase),
    all(icmpCase),
    vxlanCase.map((c) => ({ ...c, positions: range(0, 8) })),
    arpCase.map((c) => ({ ...c, positions: range(0, 7) }))
  )
  fc.assert(
    fc.property(cases, fc.nat(), fc.integer({ min: 1, max: 255 }), (c, which, x) => {
      const i = c.positions[which % c.positions.length]!
      const buf = Buffer.from(c.buf) // fast-check may reuse generated values
      buf[c.at + i] ^= x
      assert.notEqual(c.validate(buf, c.at, c.len), p.Reason.OK, `byte ${i} ^= ${x}`)
    }),
    { numRuns: 2000 }
  )
})

function range (from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, k) => from + k)
}
