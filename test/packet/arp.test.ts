import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import * as p from '../../src/packet'
import { arpPacket, mac48, u32 } from './builders'

const name = (r: number) => p.REASON_NAMES[r]
const mac = (s: string) => p.parseMacNumber(s)
const ip = (s: string) => p.parseIp4(s)

test('a request as Linux sends it decodes field by field', () => {
  // who-has 10.244.1.1 tell 10.244.1.5, from 0a:58:0a:f4:01:05
  const req = Buffer.from('0001080006040001' + '0a580af40105' + '0af40105' + '000000000000' + '0af40101', 'hex')
  assert.equal(name(p.validateArp(req, 0, req.length)), 'ok')
  assert.equal(p.readArpOp(req, 0), p.ARPOP_REQUEST)
  assert.equal(p.readArpSha(req, 0), mac('0a:58:0a:f4:01:05'))
  assert.equal(p.readArpSpa(req, 0), ip('10.244.1.5'))
  assert.equal(p.readArpTha(req, 0), 0)
  assert.equal(p.readArpTpa(req, 0), ip('10.244.1.1'))
})

test('a request is answered in place: op 2, we are the sender, the requester the target', () => {
  const ours = mac('02:77:65:66:74:01')
  const req = arpPacket(p.ARPOP_REQUEST, mac('0a:58:0a:f4:01:05'), ip('10.244.1.5'), 0, ip('10.244.1.1'))
  assert.equal(name(p.arpRequestToReply(req, 0, ours)), 'ok')
  assert.deepEqual(req, arpPacket(p.ARPOP_REPLY, ours, ip('10.244.1.1'), mac('0a:58:0a:f4:01:05'), ip('10.244.1.5')))
  assert.equal(name(p.validateArp(req, 0, req.length)), 'ok')
  // A reply is not answered again.
  const before = Buffer.from(req)
  assert.equal(name(p.arpRequestToReply(req, 0, ours)), 'bad_arp_op')
  assert.deepEqual(req, before)
})

test('non-Ethernet/IPv4 ARP is BAD_ARP_FORMAT; an unknown op BAD_ARP_OP; short TRUNCATED; padding ignored', () => {
  const good = arpPacket(p.ARPOP_REQUEST, 1, 2, 3, 4)
  for (const [i, v] of [[1, 6], [0, 1], [2, 0x86], [4, 8], [5, 16]] as const) {
    const b = Buffer.from(good)
    b[i] = v
    assert.equal(name(p.validateArp(b, 0, b.length)), 'bad_arp_format', `byte ${i} = ${v}`)
  }
  for (const op of [0, 3, 0x0101]) {
    const b = Buffer.from(good)
    p.writeArpOp(b, 0, op)
    assert.equal(name(p.validateArp(b, 0, b.length)), 'bad_arp_op', `op ${op}`)
  }
  assert.equal(name(p.validateArp(good, 0, 27)), 'truncated')
  const padded = Buffer.concat([good, Buffer.alloc(18)]) // min Ethernet frame padding
  assert.equal(name(p.validateArp(padded, 0, padded.length)), 'ok')
})

test('property: answering any request gives the reply built from scratch', () => {
  fc.assert(
    fc.property(mac48, u32, mac48, u32, mac48, (sha, spa, tha, tpa, ours) => {
      const b = arpPacket(p.ARPOP_REQUEST, sha, spa, tha, tpa)
      assert.equal(p.arpRequestToReply(b, 0, ours), p.Reason.OK)
      assert.deepEqual(b, arpPacket(p.ARPOP_REPLY, ours, tpa, sha, spa))
    })
  )
})
