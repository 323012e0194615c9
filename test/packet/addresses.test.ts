import { test } from 'node:test'
import assert from 'node:assert/strict'

import * as p from '../../src/packet'

test('IPv4 addresses are host-order uint32 numbers, never negative', () => {
  assert.equal(p.parseIp4('10.244.1.0'), 0x0af40100)
  assert.equal(p.parseIp4('255.255.255.255'), 0xffffffff)
  assert.equal(p.parseIp4('0.0.0.0'), 0)
  assert.equal(p.ip4(192, 168, 0, 1), 0xc0a80001)
  assert.ok(p.parseIp4('200.0.0.0') > 0, 'high bit set, still positive')
  assert.equal(p.ip4ToString(0xc0a800c7), '192.168.0.199')
  assert.equal(p.ip4ToString(0xffffffff), '255.255.255.255')
})

test('parseIp4 throws AddressParseError for anything but a strict dotted quad', () => {
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.-4', 'a.b.c.d', '1..2.3', '0x1.2.3.4']) {
    assert.throws(() => p.parseIp4(bad), (e: unknown) => {
      assert.ok(e instanceof p.AddressParseError)
      assert.equal(e.kind, 'ipv4')
      assert.equal(e.input, bad)
      return true
    }, JSON.stringify(bad))
  }
})

test('MACs: parse with ":" or "-", any case; print lower case with ":"', () => {
  const out = Buffer.alloc(10, 0xee)
  assert.equal(p.parseMac('02:77:65:66:74:01', out, 2), out)
  assert.equal(out.toString('hex'), 'eeee027765667401eeee')
  assert.equal(p.macToString(out, 2), '02:77:65:66:74:01')
  assert.equal(p.parseMac('0A-58-0A-F4-01-05').toString('hex'), '0a580af40105')
  assert.equal(p.parseMacNumber('ff:ff:ff:ff:ff:ff'), p.MAC_BROADCAST)
  assert.equal(p.macNumberToString(p.MAC_BROADCAST), 'ff:ff:ff:ff:ff:ff')
  assert.equal(p.macNumberToString(0), '00:00:00:00:00:00')
})

test('parseMac throws AddressParseError for malformed input', () => {
  for (const bad of ['', '02:77:65:66:74', '02:77:65:66:74:01:02', '2:77:65:66:74:01', '02:77:65:66:74:0g', '027765667401']) {
    assert.throws(() => p.parseMac(bad), p.AddressParseError, JSON.stringify(bad))
  }
})

test('multicast MACs have the I/G bit set', () => {
  assert.ok(p.isMulticastMac(p.parseMac('01:00:5e:00:00:01'), 0))
  assert.ok(p.isMulticastMac(p.parseMac('ff:ff:ff:ff:ff:ff'), 0))
  assert.ok(!p.isMulticastMac(p.parseMac('02:77:65:66:74:01'), 0))
})

test('copyMac copies 6 bytes between buffers and offsets', () => {
  const src = p.parseMac('02:77:65:66:74:02')
  const dst = Buffer.alloc(8)
  p.copyMac(dst, 1, src, 0)
  assert.equal(dst.toString('hex'), '0002776566740200')
})
