// Property tests: whatever field values are written, the same values read
// back, at any offset, and writing one field leaves its neighbours alone.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import * as p from '../../src/packet'
import { arpPacket, embed, ipv4Fields, mac48, tcpFields, u16, u32, u8, vni } from './builders'

const offset = fc.integer({ min: 0, max: 40 })

test('property: MAC numbers round-trip through bytes and strings', () => {
  fc.assert(
    fc.property(mac48, offset, (mac, off) => {
      const buf = Buffer.alloc(off + 6)
      p.writeMac(buf, off, mac)
      assert.equal(p.readMac(buf, off), mac)
      const s = p.macToString(buf, off)
      assert.match(s, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/)
      assert.equal(p.macNumberToString(mac), s)
      assert.equal(p.parseMacNumber(s), mac)
      assert.deepEqual(p.parseMac(s.toUpperCase().replaceAll(':', '-'), Buffer.alloc(off + 6), off), buf)
    })
  )
})

test('property: IPv4 addresses round-trip through strings', () => {
  fc.assert(
    fc.property(u32, (ip) => {
      assert.equal(p.parseIp4(p.ip4ToString(ip)), ip)
    })
  )
  fc.assert(
    fc.property(fc.ipV4(), (s) => {
      assert.equal(p.ip4ToString(p.parseIp4(s)), s)
    })
  )
})

test('property: Ethernet header fields round-trip', () => {
  fc.assert(
    fc.property(mac48, mac48, u16, offset, (dst, src, type, off) => {
      const buf = Buffer.alloc(off + p.ETH_HLEN)
      assert.equal(p.writeEthernet(buf, off, dst, src, type), off + p.ETH_HLEN)
      assert.equal(p.readEthDst(buf, off), dst)
      assert.equal(p.readEthSrc(buf, off), src)
      assert.equal(p.readEthType(buf, off), type)
      p.writeEthSrc(buf, off, dst)
      p.writeEthDst(buf, off, src)
      p.writeEthType(buf, off, type ^ 0xffff)
      assert.deepEqual([p.readEthDst(buf, off), p.readEthSrc(buf, off), p.readEthType(buf, off)], [src, dst, type ^ 0xffff])
    })
  )
})

test('property: IPv4 header fields round-trip, and a written header validates', () => {
  fc.assert(
    fc.property(ipv4Fields, u16, offset, (f, payloadLen, off) => {
      const total = p.IPV4_MIN_HLEN + (payloadLen % 100)
      const buf = Buffer.alloc(off + total)
      assert.equal(p.writeIpv4Header(buf, off, f.tos, total, f.id, f.fragField, f.ttl, f.protocol, f.src, f.dst), off + 20)
      assert.equal(p.readIpv4Version(buf, off), 4)
      assert.equal(p.readIpv4Ihl(buf, off), 5)
      assert.equal(p.readIpv4HeaderLength(buf, off), 20)
      assert.equal(p.readIpv4Tos(buf, off), f.tos)
      assert.equal(p.readIpv4TotalLength(buf, off), total)
      assert.equal(p.readIpv4Id(buf, off), f.id)
      assert.equal(p.readIpv4FragField(buf, off), f.fragField)
      assert.equal(p.readIpv4FragmentOffset(buf, off), (f.fragField & 0x1fff) * 8)
      assert.equal(p.isIpv4Fragment(buf, off), (f.fragField & 0x3fff) !== 0)
      assert.equal(p.readIpv4Ttl(buf, off), f.ttl)
      assert.equal(p.readIpv4Protocol(buf, off), f.protocol)
      assert.equal(p.readIpv4Src(buf, off), f.src)
      assert.equal(p.readIpv4Dst(buf, off), f.dst)
      assert.ok(p.verifyIpv4Checksum(buf, off))
      assert.equal(p.validateIpv4(buf, off, total), p.Reason.OK)
    })
  )
})

test('property: IPv4 single-field setters change only their field', () => {
  fc.assert(
    fc.property(ipv4Fields, ipv4Fields, (a, b) => {
      const buf = Buffer.alloc(20)
      p.writeIpv4Header(buf, 0, a.tos, 20, a.id, a.fragField, a.ttl, a.protocol, a.src, a.dst)
      p.writeIpv4Tos(buf, 0, b.tos)
      p.writeIpv4Id(buf, 0, b.id)
      p.writeIpv4FragField(buf, 0, b.fragField)
      p.writeIpv4Ttl(buf, 0, b.ttl)
      p.writeIpv4Protocol(buf, 0, b.protocol)
      p.writeIpv4Src(buf, 0, b.src)
      p.writeIpv4Dst(buf, 0, b.dst)
      p.writeIpv4TotalLength(buf, 0, 20)
      p.setIpv4Checksum(buf, 0)
      const want = Buffer.alloc(20)
      p.writeIpv4Header(want, 0, b.tos, 20, b.id, b.fragField, b.ttl, b.protocol, b.src, b.dst)
      assert.deepEqual(buf, want)
      p.writeIpv4Checksum(buf, 0, 0xbeef)
      assert.equal(p.readIpv4Checksum(buf, 0), 0xbeef)
    })
  )
})

test('property: UDP header fields round-trip', () => {
  fc.assert(
    fc.property(u16, u16, u16, u16, offset, (sport, dport, len, csum, off) => {
      const buf = Buffer.alloc(off + 8, 0x77)
      assert.equal(p.writeUdpHeader(buf, off, sport, dport, len), off + 8)
      assert.deepEqual(
        [p.readUdpSrcPort(buf, off), p.readUdpDstPort(buf, off), p.readUdpLength(buf, off), p.readUdpChecksum(buf, off)],
        [sport, dport, len, 0]
      )
      p.writeUdpChecksum(buf, off, csum)
      p.writeUdpSrcPort(buf, off, dport)
      p.writeUdpDstPort(buf, off, sport)
      p.writeUdpLength(buf, off, len ^ 1)
      assert.deepEqual(
        [p.readUdpSrcPort(buf, off), p.readUdpDstPort(buf, off), p.readUdpLength(buf, off), p.readUdpChecksum(buf, off)],
        [dport, sport, len ^ 1, csum]
      )
    })
  )
})

test('property: TCP header fields round-trip', () => {
  fc.assert(
    fc.property(tcpFields, fc.integer({ min: 5, max: 15 }), u16, u16, offset, (f, words, csum, urg, off) => {
      const buf = Buffer.alloc(off + 60)
      assert.equal(p.writeTcpHeader(buf, off, f.sport, f.dport, f.seq, f.ack, f.flags, f.window), off + 20)
      assert.equal(p.readTcpDataOffset(buf, off), 5)
      buf[off + 12] |= 0x0f // reserved + AE bits: kept by writeTcpDataOffset
      p.writeTcpDataOffset(buf, off, words)
      p.writeTcpChecksum(buf, off, csum)
      p.writeTcpUrgent(buf, off, urg)
      assert.deepEqual(
        [
          p.readTcpSrcPort(buf, off), p.readTcpDstPort(buf, off), p.readTcpSeq(buf, off), p.readTcpAck(buf, off),
          p.readTcpDataOffset(buf, off), p.readTcpHeaderLength(buf, off), buf[off + 12]! & 0x0f,
          p.readTcpFlags(buf, off), p.readTcpWindow(buf, off), p.readTcpChecksum(buf, off), p.readTcpUrgent(buf, off),
        ],
        [f.sport, f.dport, f.seq, f.ack, words, words * 4, 0x0f, f.flags, f.window, csum, urg]
      )
      p.writeTcpSrcPort(buf, off, f.dport)
      p.writeTcpDstPort(buf, off, f.sport)
      p.writeTcpSeq(buf, off, f.ack)
      p.writeTcpAck(buf, off, f.seq)
      p.writeTcpFlags(buf, off, f.flags ^ 0xff)
      p.writeTcpWindow(buf, off, f.window ^ 0xffff)
      assert.deepEqual(
        [p.readTcpSrcPort(buf, off), p.readTcpDstPort(buf, off), p.readTcpSeq(buf, off), p.readTcpAck(buf, off),
          p.readTcpFlags(buf, off), p.readTcpWindow(buf, off)],
        [f.dport, f.sport, f.ack, f.seq, f.flags ^ 0xff, f.window ^ 0xffff]
      )
    })
  )
})

test('property: ICMP echo fields round-trip and the checksum verifies', () => {
  fc.assert(
    fc.property(fc.constantFrom(p.ICMP_ECHO_REQUEST, p.ICMP_ECHO_REPLY), u16, u16, fc.nat({ max: 64 }), offset,
      (type, id, seq, dataLen, off) => {
        const len = p.ICMP_HLEN + dataLen
        const buf = embed(Buffer.alloc(len, 0x5a), off)
        assert.equal(p.writeIcmpEcho(buf, off, type, id, seq, len), off + len)
        assert.deepEqual(
          [p.readIcmpType(buf, off), p.readIcmpCode(buf, off), p.readIcmpEchoId(buf, off), p.readIcmpEchoSeq(buf, off)],
          [type, 0, id, seq]
        )
        assert.ok(p.verifyIcmpChecksum(buf, off, len))
        assert.equal(p.validateIcmp(buf, off, len), p.Reason.OK)
        p.writeIcmpType(buf, off, 3)
        p.writeIcmpCode(buf, off, 4)
        p.writeIcmpEchoId(buf, off, seq)
        p.writeIcmpEchoSeq(buf, off, id)
        assert.deepEqual(
          [p.readIcmpType(buf, off), p.readIcmpCode(buf, off), p.readIcmpEchoId(buf, off), p.readIcmpEchoSeq(buf, off)],
          [3, 4, seq, id]
        )
      })
  )
})

test('property: VXLAN VNI round-trips for all 24-bit values', () => {
  fc.assert(
    fc.property(vni, offset, (v, off) => {
      const buf = Buffer.alloc(off + 8, 0xff)
      assert.equal(p.writeVxlan(buf, off, v), off + 8)
      assert.equal(p.readVni(buf, off), v)
      assert.equal(p.readVxlanFlags(buf, off), p.VXLAN_FLAG_I)
      assert.equal(p.validateVxlan(buf, off, 8), p.Reason.OK)
      assert.equal(p.validateVxlan(buf, off, 8, v), p.Reason.OK)
    })
  )
})

test('property: ARP fields round-trip', () => {
  fc.assert(
    fc.property(fc.constantFrom(p.ARPOP_REQUEST, p.ARPOP_REPLY), mac48, u32, mac48, u32, (op, sha, spa, tha, tpa) => {
      const buf = arpPacket(op, sha, spa, tha, tpa)
      assert.deepEqual(
        [p.readArpHtype(buf, 0), p.readArpPtype(buf, 0), p.readArpHlen(buf, 0), p.readArpPlen(buf, 0),
          p.readArpOp(buf, 0), p.readArpSha(buf, 0), p.readArpSpa(buf, 0), p.readArpTha(buf, 0), p.readArpTpa(buf, 0)],
        [1, 0x0800, 6, 4, op, sha, spa, tha, tpa]
      )
      assert.equal(p.validateArp(buf, 0, buf.length), p.Reason.OK)
      p.writeArpOp(buf, 0, 3 - op)
      p.writeArpSha(buf, 0, tha)
      p.writeArpSpa(buf, 0, tpa)
      p.writeArpTha(buf, 0, sha)
      p.writeArpTpa(buf, 0, spa)
      assert.deepEqual(
        [p.readArpOp(buf, 0), p.readArpSha(buf, 0), p.readArpSpa(buf, 0), p.readArpTha(buf, 0), p.readArpTpa(buf, 0)],
        [3 - op, tha, tpa, sha, spa]
      )
    })
  )
})

test('property: big-endian byte helpers agree with Buffer#readUInt*BE', () => {
  fc.assert(
    fc.property(u32, u8, (v, off) => {
      const buf = Buffer.alloc(off + 4)
      p.writeU32(buf, off, v)
      assert.equal(buf.readUInt32BE(off), v)
      assert.equal(p.readU32(buf, off), v)
      p.writeU16(buf, off, v & 0xffff)
      assert.equal(p.readU16(buf, off), buf.readUInt16BE(off))
    })
  )
})
