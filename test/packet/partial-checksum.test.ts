// Finishing TCP/UDP checksums a kernel sender left partial (CHECKSUM_PARTIAL).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { finishPartialChecksum } from '../../src/packet/partial-checksum'
import { fold, pseudoHeaderSum4At } from '../../src/packet/checksum'
import { writeIpv4Header } from '../../src/packet/ipv4'
import { setUdp4Checksum, verifyUdp4Checksum } from '../../src/packet/udp'
import { setTcp4Checksum, verifyTcp4Checksum } from '../../src/packet/tcp'

function packet (proto: 6 | 17, payload: Uint8Array): Buffer {
  const l4h = proto === 6 ? 20 : 8
  const total = 20 + l4h + payload.length
  const b = Buffer.alloc(total)
  writeIpv4Header(b, 0, 0, total, 1, 0x4000, 64, proto, 0x0af40102, 0x0af40203)
  if (proto === 6) { b[20 + 12] = 5 << 4; b[20 + 13] = 0x18 } else b.writeUInt16BE(8 + payload.length, 24)
  b.set(payload, 20 + l4h)
  return b
}

function partial (b: Buffer, proto: 6 | 17): void {
  const field = 20 + (proto === 6 ? 16 : 6)
  b.writeUInt16BE(fold(pseudoHeaderSum4At(b, 0, proto, b.length - 20)), field)
}

test('a partial TCP or UDP checksum is finished to exactly what a full computation gives', () => {
  fc.assert(fc.property(fc.constantFrom<6 | 17>(6, 17), fc.uint8Array({ maxLength: 1400 }), (proto, payload) => {
    const want = packet(proto, payload)
    if (proto === 6) setTcp4Checksum(want, 20, want.length - 20, 0)
    else setUdp4Checksum(want, 20, want.length - 20, 0)
    const got = packet(proto, payload)
    partial(got, proto)
    const changed = finishPartialChecksum(got, 0, got.length)
    assert.ok(got.equals(want) || !changed)
    assert.ok(proto === 6 ? verifyTcp4Checksum(got, 20, got.length - 20, 0) : verifyUdp4Checksum(got, 20, got.length - 20, 0))
  }), { numRuns: 300 })
})

test('a finished checksum is never touched', () => {
  fc.assert(fc.property(fc.constantFrom<6 | 17>(6, 17), fc.uint8Array({ maxLength: 600 }), (proto, payload) => {
    const b = packet(proto, payload)
    if (proto === 6) setTcp4Checksum(b, 20, b.length - 20, 0)
    else setUdp4Checksum(b, 20, b.length - 20, 0)
    const before = Buffer.from(b)
    assert.equal(finishPartialChecksum(b, 0, b.length), false)
    assert.ok(b.equals(before))
  }), { numRuns: 300 })
})

test('UDP without a checksum, fragments, ICMP and short packets are left alone', () => {
  const u = packet(17, new Uint8Array(10))
  assert.equal(finishPartialChecksum(u, 0, u.length), false)
  const frag = packet(6, new Uint8Array(10))
  partial(frag, 6)
  frag[6] |= 0x20 // MF
  assert.equal(finishPartialChecksum(frag, 0, frag.length), false)
  const icmp = packet(6, new Uint8Array(4))
  icmp[9] = 1
  assert.equal(finishPartialChecksum(icmp, 0, icmp.length), false)
  const short = packet(6, new Uint8Array(0)).subarray(0, 30)
  assert.equal(finishPartialChecksum(short, 0, short.length), false)
})
