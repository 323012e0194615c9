import { test } from 'node:test'
import assert from 'node:assert/strict'

import * as p from '../../src/packet'
import { vxlanHeader } from './builders'

const name = (r: number) => p.REASON_NAMES[r]

test('writeVxlan writes RFC 7348 section 5 exactly: flags 0x08, zeros, VNI, zero', () => {
  const buf = Buffer.alloc(8, 0xff)
  assert.equal(p.writeVxlan(buf, 0, 0x123456), 8)
  assert.equal(buf.toString('hex'), '0800000012345600')
  assert.equal(p.readVni(buf, 0), 0x123456)
  assert.equal(p.readVxlanFlags(buf, 0), p.VXLAN_FLAG_I)
})

test('flannel VNI 1 on port 8472', () => {
  assert.equal(vxlanHeader(1).toString('hex'), '0800000000000100')
  assert.equal(p.VXLAN_PORT_FLANNEL, 8472)
  assert.equal(p.VXLAN_PORT_IANA, 4789)
})

test('I flag clear is BAD_VXLAN_FLAGS', () => {
  const h = vxlanHeader(1)
  h[0] = 0x00
  assert.equal(name(p.validateVxlan(h, 0, 8)), 'bad_vxlan_flags')
  h[0] = 0x80 // some other bit instead: the I flag is still missing
  assert.equal(name(p.validateVxlan(h, 0, 8)), 'bad_vxlan_flags')
})

test('any reserved bit set is BAD_VXLAN_RESERVED, as Linux drops it (the RFC would ignore it)', () => {
  for (const [byte, value] of [[0, 0x0c], [0, 0x88], [0, 0x09], [1, 0x01], [2, 0x80], [3, 0x10], [7, 0x01]] as const) {
    const h = vxlanHeader(1)
    h[byte] = value
    assert.equal(name(p.validateVxlan(h, 0, 8)), 'bad_vxlan_reserved', `byte ${byte} = 0x${value.toString(16)}`)
  }
  // GBP extension layout (G bit 0x80 with a policy id) is not accepted either:
  // flannel.1 is created without the gbp option.
  const gbp = Buffer.from('8800001200000100', 'hex')
  assert.equal(name(p.validateVxlan(gbp, 0, 8)), 'bad_vxlan_reserved')
})

test('a VNI other than the expected one is WRONG_VNI; without an expectation any VNI is fine', () => {
  const h = vxlanHeader(2)
  assert.equal(name(p.validateVxlan(h, 0, 8, 1)), 'wrong_vni')
  assert.equal(name(p.validateVxlan(h, 0, 8, 2)), 'ok')
  assert.equal(name(p.validateVxlan(h, 0, 8)), 'ok')
  assert.equal(name(p.validateVxlan(vxlanHeader(0xffffff), 0, 8, 0xffffff)), 'ok')
  assert.equal(name(p.validateVxlan(vxlanHeader(0), 0, 8, 0)), 'ok')
})

test('fewer than 8 bytes is TRUNCATED; a header at an offset validates there', () => {
  const h = vxlanHeader(1)
  assert.equal(name(p.validateVxlan(h, 0, 7)), 'truncated')
  assert.equal(name(p.validateVxlan(h.subarray(0, 7), 0, 8)), 'truncated')
  const framed = Buffer.concat([Buffer.alloc(42, 0xee), h, Buffer.alloc(14)])
  assert.equal(name(p.validateVxlan(framed, 42, 22, 1)), 'ok')
})

test('writeVxlan keeps only the low 24 bits of the VNI', () => {
  const buf = Buffer.alloc(8)
  p.writeVxlan(buf, 0, 0x1abcdef)
  assert.equal(p.readVni(buf, 0), 0xabcdef)
  assert.equal(buf[0], 0x08)
})

test('overhead: flannel.1 MTU = underlay MTU - 50, and the inner frame starts 50 bytes into the outer one', () => {
  assert.equal(p.VXLAN_MTU_OVERHEAD, 20 + 8 + 8 + 14)
  assert.equal(1500 - p.VXLAN_MTU_OVERHEAD, 1450)
  assert.equal(p.VXLAN_ENCAP_HEADROOM, 14 + 20 + 8 + 8)
})

test('remote checksum offload: writeRco sets the R flag and byte 7 as Linux reads them; validateVxlan takes them only when allowed', () => {
  const h = vxlanHeader(1)
  p.writeRco(h, 0, 34, 6)
  assert.equal(h.toString('hex'), '0820000000000111', 'R = 0x20 in byte 1; TCP header 34 bytes in: 34 >> 1 = 0x11')
  assert.ok(p.hasRco(h, 0))
  assert.equal(p.rcoStart(h, 0), 34)
  assert.equal(p.rcoProtocol(h, 0), 6)
  assert.equal(name(p.validateVxlan(h, 0, 8, 1, true)), 'ok')
  assert.equal(name(p.validateVxlan(h, 0, 8, 1)), 'bad_vxlan_reserved', 'not allowed: a reserved bit, as Linux without remcsumrx')
  const u = vxlanHeader(1)
  p.writeRco(u, 0, 38, 17)
  assert.equal(u[7], 0x80 | 19, 'UDP: bit 7 set')
  assert.equal(p.rcoProtocol(u, 0), 17)
  assert.equal(p.rcoStart(u, 0), 38)
  // any other reserved bit still spoils it
  for (const [byte, value] of [[1, 0x21], [1, 0x10], [2, 0x01], [0, 0x0a]] as const) {
    const x = Buffer.from(h)
    x[byte] = value
    assert.equal(name(p.validateVxlan(x, 0, 8, 1, true)), 'bad_vxlan_reserved', `byte ${byte} = 0x${value.toString(16)}`)
  }
  // byte 7 means something only with the R flag
  const noR = vxlanHeader(1)
  noR[7] = 0x11
  assert.equal(name(p.validateVxlan(noR, 0, 8, 1, true)), 'bad_vxlan_reserved')
})
