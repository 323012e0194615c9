import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import {
  checksum,
  finish,
  fold,
  onesSum,
  pseudoHeaderSum4,
  updateChecksum16,
  updateChecksum32,
} from '../../src/packet'
import { bytes, referenceSum, u16, u32 } from './builders'

test('RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2', () => {
  const buf = Buffer.from('0001f203f4f5f6f7', 'hex')
  assert.equal(fold(onesSum(buf, 0, buf.length)), 0xddf2)
  assert.equal(checksum(buf, 0, buf.length), ~0xddf2 & 0xffff)
})

test('an odd trailing byte counts as the high byte of a zero-padded word', () => {
  const odd = Buffer.from('0102030405', 'hex')
  const padded = Buffer.from('010203040500', 'hex')
  assert.equal(fold(onesSum(odd, 0, 5)), fold(onesSum(padded, 0, 6)))
  assert.equal(fold(onesSum(odd, 0, 5)), 0x0102 + 0x0304 + 0x0500)
  // Only the range counts, not the byte after it.
  const withNext = Buffer.from('0102030405ff', 'hex')
  assert.equal(fold(onesSum(withNext, 0, 5)), 0x0102 + 0x0304 + 0x0500)
})

test('a single byte, and the empty range', () => {
  assert.equal(onesSum(Buffer.from([0xab]), 0, 1), 0xab00)
  assert.equal(onesSum(Buffer.alloc(4), 2, 0), 0)
  assert.equal(checksum(Buffer.alloc(0), 0, 0), 0xffff)
})

test('words are relative to the range start, not the buffer: odd offsets work', () => {
  const buf = Buffer.from('ff0102030405', 'hex')
  assert.equal(fold(onesSum(buf, 1, 4)), 0x0102 + 0x0304)
})

test('fold handles the end-around carry, including sums beyond 32 bits', () => {
  assert.equal(fold(0), 0)
  assert.equal(fold(0xffff), 0xffff)
  assert.equal(fold(0x10000), 1)
  assert.equal(fold(0x1fffe), 0xffff)
  assert.equal(fold(0xffffffff), 0xffff)
  assert.equal(fold(0x100000000), 1)
  assert.equal(fold(2 ** 52 + 5), fold(referenceFoldOf(2 ** 52 + 5)))
  assert.equal(finish(0x1fffe), 0)
})

function referenceFoldOf (n: number): number {
  // n mod 0xffff, with 0 mapped to 0xffff for non-zero n (ones-complement -0).
  const r = n % 0xffff
  return r === 0 && n !== 0 ? 0xffff : r
}

test('a 64 KiB buffer of 0xff, and an initial sum, stay exact', () => {
  const buf = Buffer.alloc(65536, 0xff)
  assert.equal(fold(onesSum(buf, 0, buf.length)), 0xffff)
  assert.equal(fold(onesSum(buf, 0, buf.length, 2 ** 40)), fold(referenceSum(buf, referenceFoldOf(2 ** 40))))
})

test('property: the 8-bytes-per-step sum equals a 16-bit reference for any data, offset and length', () => {
  fc.assert(
    fc.property(bytes(300), fc.nat(), fc.nat(), u32, (data, a, b, initial) => {
      const off = data.length === 0 ? 0 : a % (data.length + 1)
      const len = (data.length - off === 0) ? 0 : b % (data.length - off + 1)
      const got = fold(onesSum(data, off, len, initial))
      const want = fold(referenceSum(data.subarray(off, off + len), fold(initial)))
      assert.equal(got, want)
    }),
    { numRuns: 500 }
  )
})

test('property: data with its checksum inserted verifies (sums to 0xffff)', () => {
  fc.assert(
    fc.property(bytes(200, 2), fc.nat(), (data, at) => {
      const slot = (at % (data.length >> 1)) * 2 // checksum fields sit on 16-bit boundaries
      data[slot] = 0
      data[slot + 1] = 0
      const c = checksum(data, 0, data.length)
      data.writeUInt16BE(c, slot)
      assert.equal(fold(onesSum(data, 0, data.length)), 0xffff)
      assert.equal(checksum(data, 0, data.length), 0)
    })
  )
})

test('property: RFC 1624 update of one word equals a full recompute (unless all covered data is zero)', () => {
  fc.assert(
    fc.property(bytes(100, 4), fc.nat(), u16, (data, at, newWord) => {
      const words = data.length >> 1
      const slot = 0 // checksum in the first word
      const w = 1 + (at % (words - 1)) // the word that changes
      data.writeUInt16BE(0, slot)
      const before = checksum(data, 0, data.length)
      const oldWord = data.readUInt16BE(w * 2)
      data.writeUInt16BE(newWord, w * 2)
      // All-zero data has checksum 0xffff, which eqn. 3 can only give as 0x0000
      // (the two zeros of ones-complement); real headers are never all zero.
      fc.pre(data.some((b) => b !== 0))
      assert.equal(updateChecksum16(before, oldWord, newWord), checksum(data, 0, data.length))
    }),
    { numRuns: 500 }
  )
})

test('property: RFC 1624 update of a 32-bit value equals a full recompute', () => {
  fc.assert(
    fc.property(bytes(60, 8), u32, (data, newValue) => {
      data.writeUInt16BE(0, 0)
      const before = checksum(data, 0, data.length)
      const oldValue = data.readUInt32BE(4)
      data.writeUInt32BE(newValue, 4)
      fc.pre(data.some((b) => b !== 0))
      assert.equal(updateChecksum32(before, oldValue, newValue), checksum(data, 0, data.length))
    }),
    { numRuns: 500 }
  )
})

test('the IPv4 pseudo-header sum is the sum of its 12 bytes', () => {
  fc.assert(
    fc.property(u32, u32, fc.integer({ min: 0, max: 255 }), u16, (src, dst, proto, len) => {
      const ph = Buffer.alloc(12)
      ph.writeUInt32BE(src, 0)
      ph.writeUInt32BE(dst, 4)
      ph[9] = proto
      ph.writeUInt16BE(len, 10)
      assert.equal(fold(pseudoHeaderSum4(src, dst, proto, len)), fold(referenceSum(ph)))
    })
  )
})
