// UDP, TCP and ICMP edge cases.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import * as p from '../../src/packet'
import { L4, icmpEcho, tcpPacket, udpPacket, u16 } from './builders'

const name = (r: number) => p.REASON_NAMES[r]
const SRC = p.parseIp4('10.244.1.5')
const DST = p.parseIp4('10.244.2.9')

// udpPacket / tcpPacket put an IPv4 header at 0 and the L4 header at L4 (20);
// the L4 functions read the pseudo-header addresses from that IPv4 header.
const udpLen = (pkt: Buffer) => pkt.length - L4

test('UDP: a zero checksum means "none" over IPv4 and is accepted', () => {
  const d = udpPacket(SRC, DST, 1000, 2000, Buffer.from('hello'))
  p.writeUdpChecksum(d, L4, 0)
  assert.ok(p.verifyUdp4Checksum(d, L4, udpLen(d), 0))
  assert.equal(name(p.validateUdp4(d, L4, udpLen(d), 0)), 'ok')
})

test('UDP: a checksum that computes to 0 is sent as 0xffff, and verifies', () => {
  // Choose the last payload word so that the data sums to 0xffff.
  const d = udpPacket(SRC, DST, 1000, 2000, Buffer.alloc(2))
  const c = p.computeUdp4Checksum(d, L4, udpLen(d), 0) // ~sum with the word 0
  d.writeUInt16BE(c, L4 + 8) // now the sum is 0xffff, so the checksum "is" 0
  assert.equal(p.computeUdp4Checksum(d, L4, udpLen(d), 0), 0xffff)
  p.setUdp4Checksum(d, L4, udpLen(d), 0)
  assert.equal(p.readUdpChecksum(d, L4), 0xffff)
  assert.equal(name(p.validateUdp4(d, L4, udpLen(d), 0)), 'ok')
})

test('UDP: odd-length payload checksums with a zero pad byte', () => {
  const d = udpPacket(SRC, DST, 53, 53, Buffer.from('abc'))
  assert.equal(udpLen(d), 11)
  assert.equal(name(p.validateUdp4(d, L4, udpLen(d), 0)), 'ok')
  // The pad is not a real byte: what follows in the buffer does not matter.
  const followed = Buffer.concat([d, Buffer.from([0x99])])
  assert.equal(name(p.validateUdp4(followed, L4, udpLen(d), 0)), 'ok')
})

test('UDP: length < 8 or beyond the IP payload is BAD_UDP_LENGTH; shorter than the IP payload is fine', () => {
  const d = udpPacket(SRC, DST, 1, 2, Buffer.from('payload!'))
  for (const bad of [0, 7, udpLen(d) + 1]) {
    const b = Buffer.from(d)
    p.writeUdpLength(b, L4, bad)
    assert.equal(name(p.validateUdp4(b, L4, udpLen(b), 0)), 'bad_udp_length', `length ${bad}`)
  }
  // IP payload longer than the UDP length (trailing bytes): Linux trims them.
  const trailing = Buffer.concat([d, Buffer.alloc(6, 0xaa)])
  assert.equal(name(p.validateUdp4(trailing, L4, udpLen(trailing), 0)), 'ok')
  assert.equal(name(p.validateUdp4(d, L4, 7, 0)), 'truncated')
})

test('UDP: the pseudo-header counts: other addresses are BAD_UDP_CHECKSUM, swapped ones are not', () => {
  const d = udpPacket(SRC, DST, 1, 2, Buffer.from('x'))
  p.swapIpv4Addresses(d, 0)
  assert.equal(name(p.validateUdp4(d, L4, udpLen(d), 0)), 'ok', 'swapping is invisible to the sum')
  p.writeIpv4Dst(d, 0, SRC + 1)
  assert.equal(name(p.validateUdp4(d, L4, udpLen(d), 0)), 'bad_udp_checksum')
  // The same sum as from the addresses themselves:
  assert.equal(
    p.pseudoHeaderSum4At(d, 0, p.IPPROTO_UDP, 9),
    p.fold(p.pseudoHeaderSum4(p.readIpv4Src(d, 0), p.readIpv4Dst(d, 0), p.IPPROTO_UDP, 9))
  )
})

test('UDP/TCP: an IPv4 header offset outside the buffer is TRUNCATED, not a read out of bounds', () => {
  const d = udpPacket(SRC, DST, 1, 2, Buffer.from('x'))
  assert.equal(name(p.validateUdp4(d, L4, udpLen(d), -1)), 'truncated')
  assert.equal(name(p.validateUdp4(d, L4, udpLen(d), d.length - 19)), 'truncated')
  const s = tcpPacket(SRC, DST, { sport: 1, dport: 2, seq: 3, ack: 4, flags: 0, window: 5 }, Buffer.alloc(0), Buffer.alloc(0))
  assert.equal(name(p.validateTcp4(s, L4, s.length - L4, NaN)), 'truncated')
})

test('TCP: options and payload validate; data offset < 5 or beyond the segment is BAD_TCP_DATA_OFFSET', () => {
  const f = { sport: 443, dport: 50000, seq: 0xfffffff0, ack: 7, flags: p.TCP_SYN | p.TCP_ACK, window: 65535 }
  const mss = Buffer.from('020405b4', 'hex')
  const s = tcpPacket(SRC, DST, f, mss, Buffer.from('odd'))
  const len = s.length - L4
  assert.equal(p.readTcpHeaderLength(s, L4), 24)
  assert.equal(p.readTcpFlags(s, L4), 0x12)
  assert.equal(name(p.validateTcp4(s, L4, len, 0)), 'ok')
  for (const words of [0, 4, 15]) {
    const b = Buffer.from(s)
    p.writeTcpDataOffset(b, L4, words)
    assert.equal(name(p.validateTcp4(b, L4, len, 0)), 'bad_tcp_data_offset', `offset ${words}`)
  }
  const b = Buffer.from(s)
  b[b.length - 1] ^= 1
  assert.equal(name(p.validateTcp4(b, L4, len, 0)), 'bad_tcp_checksum')
  assert.equal(name(p.validateTcp4(s, L4, 19, 0)), 'truncated')
})

test('TCP: a zero checksum is not "none" (unlike UDP)', () => {
  const s = tcpPacket(SRC, DST, { sport: 1, dport: 2, seq: 3, ack: 4, flags: 0, window: 5 }, Buffer.alloc(0), Buffer.alloc(0))
  p.writeTcpChecksum(s, L4, 0)
  assert.equal(name(p.validateTcp4(s, L4, s.length - L4, 0)), 'bad_tcp_checksum')
})

test('ICMP: an echo request becomes a valid reply in place; only type and checksum change', () => {
  const req = icmpEcho(p.ICMP_ECHO_REQUEST, 0x1234, 7, Buffer.from('0123456789abcdef0'))
  assert.equal(req.length % 2, 1, 'odd length on purpose')
  const reply = Buffer.from(req)
  assert.equal(name(p.icmpEchoRequestToReply(reply, 0)), 'ok')
  assert.equal(p.readIcmpType(reply, 0), p.ICMP_ECHO_REPLY)
  assert.equal(p.readIcmpEchoId(reply, 0), 0x1234)
  assert.equal(p.readIcmpEchoSeq(reply, 0), 7)
  assert.deepEqual(reply.subarray(4), req.subarray(4))
  assert.equal(name(p.validateIcmp(reply, 0, reply.length)), 'ok')
  assert.equal(p.readIcmpChecksum(reply, 0), p.computeIcmpChecksum(reply, 0, reply.length))
})

test('ICMP: turning a non-request into a reply is BAD_ICMP_TYPE and changes nothing', () => {
  for (const [type, code] of [[p.ICMP_ECHO_REPLY, 0], [p.ICMP_DEST_UNREACH, 3], [p.ICMP_ECHO_REQUEST, 1]] as const) {
    const m = icmpEcho(p.ICMP_ECHO_REQUEST, 1, 1, Buffer.alloc(4))
    m[0] = type
    m[1] = code
    p.setIcmpChecksum(m, 0, m.length)
    const before = Buffer.from(m)
    assert.equal(name(p.icmpEchoRequestToReply(m, 0)), 'bad_icmp_type')
    assert.deepEqual(m, before)
  }
})

test('ICMP: corrupt message is BAD_ICMP_CHECKSUM, short one TRUNCATED', () => {
  const m = icmpEcho(p.ICMP_ECHO_REQUEST, 1, 2, Buffer.from('data'))
  assert.equal(name(p.validateIcmp(m, 0, 7)), 'truncated')
  m[9] ^= 0x40
  assert.equal(name(p.validateIcmp(m, 0, m.length)), 'bad_icmp_checksum')
})

test('property: request -> reply equals building the reply from scratch, for any id, seq and data', () => {
  fc.assert(
    fc.property(u16, u16, fc.uint8Array({ maxLength: 100 }), (id, seq, data) => {
      // All-zero id, seq and data is the one case RFC 1624 eqn. 3 answers
      // with 0x0000 instead of 0xffff; ping never sends it (id is never 0).
      fc.pre(id !== 0)
      const reply = icmpEcho(p.ICMP_ECHO_REQUEST, id, seq, data)
      assert.equal(p.icmpEchoRequestToReply(reply, 0), p.Reason.OK)
      assert.deepEqual(reply, icmpEcho(p.ICMP_ECHO_REPLY, id, seq, data))
    })
  )
})
