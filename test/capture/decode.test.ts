// `weft capture`'s decoder and line format, without root: frames the Linux
// kernel's vxlan driver really sent (test/packet/vectors) must print what
// tcpdump printed for them; IP-in-IP and UDP-backend frames built with the
// codecs; and broken input of every kind gives a line naming the problem,
// never an exception.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import {
  DEFAULT_DECODE, LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL, LINKTYPE_RAW, PLAIN_DECODE,
  decodePacket, podAddresses, tcpFlagString, type Decoded
} from '../../src/capture/decode'
import { describePacket, formatJson, formatLine, formatTime, isoTime } from '../../src/capture/format'
import { ETH_HLEN, IPPROTO_TCP, IPV4_MIN_HLEN, TCP_ACK, TCP_SYN, UDP_HLEN, setIcmpChecksum, setIpv4Checksum } from '../../src/packet'
import { KERNEL_VXLAN_FRAMES, KERNEL_VXLAN_FRAMES_CSUM_PARTIAL } from '../packet/vectors/kernel-vxlan'
import {
  NODE1, NODE2, POD1, POD2, icmpPacket, ipipFrame, ipv4, tcpSegment, udpBackendFrame, udpDatagram, vxlanFrame,
  wgInitiation, wgTransport, wireguardFrame
} from './frames'

// Lines carry local time of day; pin the zone so the expected text is fixed.
process.env.TZ = 'UTC'

const line = (buf: Buffer, linkType = LINKTYPE_ETHERNET, opts = DEFAULT_DECODE): string => describePacket(decodePacket(buf, linkType, opts))

/**
 * What our line should be, worked out from tcpdump's own text for the frame
 * (the vectors keep it): an independent decoder as the oracle. Throws on a
 * shape it does not know, so regenerated vectors cannot silently pass.
 */
function expectedFromTcpdump (summary: string): string {
  const [, outer, innerIp, inner] = summary.split(' | ')
  const o = /^(\d+\.\d+\.\d+\.\d+)\.\d+ > (\d+\.\d+\.\d+\.\d+)\.8472: OTV, flags \[I\] \(0x08\), overlay 0, instance (\d+)$/.exec(outer ?? '')
  const h = /^IP \(tos \S+, ttl \d+, id (\d+), offset (\d+), flags \[([^\]]*)\], proto \w+ \(\d+\), length (\d+)\)$/.exec(innerIp ?? '')
  assert.ok(o !== null && h !== null && inner !== undefined, `unknown tcpdump text: ${summary}`)
  const [, id, offset, flags, length] = h
  const frag = flags === '+' || offset !== '0' ? ` frag id ${id} off ${offset}${flags === '+' ? '+' : ''}` : ''
  let m: RegExpExecArray | null
  let tail: string
  if ((m = /^(\S+) > (\S+): ICMP echo (request|reply), id (\d+), seq (\d+), length \d+$/.exec(inner)) !== null) {
    tail = `${m[1]} > ${m[2]} ICMP echo ${m[3]} id ${m[4]} seq ${m[5]} len ${length}${frag}`
  } else if ((m = /^(\S+) > (\S+): ip-proto-1$/.exec(inner)) !== null) {
    tail = `${m[1]} > ${m[2]} ICMP${frag} len ${length}`
  } else if ((m = /^(\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): UDP, length (\d+)$/.exec(inner)) !== null) {
    tail = `${m[1]}:${m[2]} > ${m[3]}:${m[4]} UDP len ${m[5]}${frag}`
  } else if ((m = /^(\S+) > (\S+): ICMP (\S+) udp port (\d+) unreachable, length \d+$/.exec(inner)) !== null) {
    tail = `${m[1]} > ${m[2]} ICMP ${m[3]} udp port ${m[4]} unreachable len ${length}${frag}`
  } else {
    assert.fail(`unknown inner packet in tcpdump text: ${inner}`)
  }
  return `${o[1]} > ${o[2]} VXLAN vni ${o[3]} | ${tail}`
}

for (const [i, f] of KERNEL_VXLAN_FRAMES.entries()) {
  test(`kernel VXLAN frame ${i} decodes as tcpdump read it: ${expectedFromTcpdump(f.summary)}`, () => {
    assert.equal(line(Buffer.from(f.hex, 'hex')), expectedFromTcpdump(f.summary))
  })
}

test('frames with CHECKSUM_PARTIAL UDP checksums (TX offload) decode cleanly: no warning, nothing malformed', () => {
  for (const f of KERNEL_VXLAN_FRAMES_CSUM_PARTIAL) {
    assert.equal(line(Buffer.from(f.hex, 'hex')), expectedFromTcpdump(f.summary))
  }
})

test('the kernel frames, field by field: outer UDP ports, VNI, inner MACs', () => {
  const d = decodePacket(Buffer.from(KERNEL_VXLAN_FRAMES[0]!.hex, 'hex'), LINKTYPE_ETHERNET)
  assert.equal(d.eth?.src, '02:00:c6:12:00:01')
  assert.equal(d.ip?.encap?.type, 'vxlan')
  assert.deepEqual(d.ip?.encap, { type: 'vxlan', srcPort: 34921, dstPort: 8472, flags: 8, vni: 1 })
  assert.equal(d.ip?.inner?.eth?.dst, '02:77:65:66:74:02')
  assert.deepEqual(podAddresses(d), { src: '10.244.1.0', dst: '10.244.2.0' })
})

test('a line starts with the local time of day in microseconds, like tcpdump', () => {
  const ts = Date.UTC(2026, 10, 23, 12, 1, 2) * 1000 + 123456
  assert.equal(formatTime(ts), '12:01:02.123456')
  assert.equal(formatTime(ts - 123456 + 7), '12:01:02.000007')
  assert.equal(isoTime(ts), '2026-11-23T12:01:02.123456Z')
  const buf = vxlanFrame(icmpPacket(POD1, POD2, 5, 1))
  assert.equal(formatLine(decodePacket(buf, LINKTYPE_ETHERNET), ts),
    '12:01:02.123456 198.18.0.1 > 198.18.0.2 VXLAN vni 1 | 10.244.1.2 > 10.244.2.3 ICMP echo request id 5 seq 1 len 84')
})

test('--json: one object with the time, every decoded field and the line', () => {
  const ts = Date.UTC(2026, 10, 23, 12, 1, 2) * 1000 + 5
  const o = JSON.parse(formatJson(decodePacket(vxlanFrame(icmpPacket(POD1, POD2, 5, 1), 42), LINKTYPE_ETHERNET), ts)) as Decoded & { time: string, summary: string }
  assert.equal(o.time, '2026-11-23T12:01:02.000005Z')
  assert.equal(o.linkType, LINKTYPE_ETHERNET)
  assert.deepEqual({ src: o.ip?.src, dst: o.ip?.dst, proto: o.ip?.proto }, { src: NODE1, dst: NODE2, proto: 17 })
  assert.deepEqual(o.ip?.encap, { type: 'vxlan', srcPort: 40000, dstPort: 8472, flags: 8, vni: 42 })
  assert.deepEqual(o.ip?.inner?.ip?.l4, { type: 'icmp', icmpType: 8, code: 0, id: 5, seq: 1 })
  assert.match(o.summary, /VXLAN vni 42 \| 10\.244\.1\.2 > 10\.244\.2\.3 ICMP echo request/)
})

const SYN = { sport: 40000, dport: 5201, seq: 123, ack: 0, flags: TCP_SYN, window: 64240 }
const SYNACK = { sport: 5201, dport: 40000, seq: 5, ack: 124, flags: TCP_SYN | TCP_ACK, window: 65160 }

test('VXLAN carrying TCP and UDP, on another port when asked', () => {
  assert.equal(line(vxlanFrame(tcpSegment(POD1, POD2, SYN))),
    '198.18.0.1 > 198.18.0.2 VXLAN vni 1 | 10.244.1.2:40000 > 10.244.2.3:5201 TCP [S] seq 123 len 0')
  assert.equal(line(vxlanFrame(tcpSegment(POD2, POD1, SYNACK, Buffer.from('hello')))),
    '198.18.0.1 > 198.18.0.2 VXLAN vni 1 | 10.244.2.3:5201 > 10.244.1.2:40000 TCP [S.] seq 5 ack 124 len 5')
  const v4789 = vxlanFrame(udpDatagram(POD1, POD2, 1234, 53, Buffer.alloc(30)), 7, 4789)
  assert.equal(line(v4789, LINKTYPE_ETHERNET, { ...DEFAULT_DECODE, vxlanPorts: [4789] }),
    '198.18.0.1 > 198.18.0.2 VXLAN vni 7 | 10.244.1.2:1234 > 10.244.2.3:53 UDP len 30')
  // Not a tunnel port: plain UDP, payload not looked into.
  assert.equal(line(v4789), '198.18.0.1:40000 > 198.18.0.2:4789 UDP len 80')
})

test('VXLAN with remote checksum offload (what weft nodes speak to each other) decodes, marked rco', () => {
  const f = vxlanFrame(tcpSegment(POD1, POD2, SYN))
  const vx = ETH_HLEN + IPV4_MIN_HLEN + UDP_HLEN
  f[vx + 1] = 0x20 // R flag
  f[vx + 7] = (ETH_HLEN + IPV4_MIN_HLEN) >> 1 // TCP header 34 bytes into the inner frame
  assert.equal(line(f), '198.18.0.1 > 198.18.0.2 VXLAN vni 1 rco | 10.244.1.2:40000 > 10.244.2.3:5201 TCP [S] seq 123 len 0')
})

test('IP-in-IP: protocol 4, the payload is the pod packet', () => {
  assert.equal(line(ipipFrame(icmpPacket(POD1, POD2, 9, 3))),
    '198.18.0.1 > 198.18.0.2 IPIP | 10.244.1.2 > 10.244.2.3 ICMP echo request id 9 seq 3 len 84')
  assert.equal(line(ipipFrame(tcpSegment(POD1, POD2, SYN))),
    '198.18.0.1 > 198.18.0.2 IPIP | 10.244.1.2:40000 > 10.244.2.3:5201 TCP [S] seq 123 len 0')
  // --backend vxlan does not look inside IP-in-IP.
  assert.equal(line(ipipFrame(icmpPacket(POD1, POD2, 9, 3)), LINKTYPE_ETHERNET, { vxlanPorts: [8472], udpPorts: [], wireguardPorts: [], ipip: false }),
    '198.18.0.1 > 198.18.0.2 IPIP len 104')
})

test("flannel's UDP backend: UDP 8285 whose payload is the bare pod packet", () => {
  assert.equal(line(udpBackendFrame(icmpPacket(POD1, POD2, 5, 1, 56, 0))),
    '198.18.0.1 > 198.18.0.2 FLANNEL-UDP | 10.244.1.2 > 10.244.2.3 ICMP echo reply id 5 seq 1 len 84')
  assert.equal(line(udpBackendFrame(udpDatagram(POD1, POD2, 5000, 5001, Buffer.from('x')))),
    '198.18.0.1 > 198.18.0.2 FLANNEL-UDP | 10.244.1.2:5000 > 10.244.2.3:5001 UDP len 1')
})

test('on a VTEP: RAW and IPV4 link types (a TUN such as weft.1) carry the pod packets themselves', () => {
  const syn = tcpSegment(POD1, POD2, SYN)
  assert.equal(line(syn, LINKTYPE_RAW, PLAIN_DECODE), '10.244.1.2:40000 > 10.244.2.3:5201 TCP [S] seq 123 len 0')
  assert.equal(line(syn, LINKTYPE_IPV4, PLAIN_DECODE), '10.244.1.2:40000 > 10.244.2.3:5201 TCP [S] seq 123 len 0')
  // A pod sending UDP to 8472 on a VTEP is just that: no tunnel is looked for.
  assert.equal(line(udpDatagram(POD1, POD2, 1, 8472, Buffer.alloc(16)), LINKTYPE_RAW, PLAIN_DECODE), '10.244.1.2:1 > 10.244.2.3:8472 UDP len 16')
  // an IPv6 packet on a VTEP (weft-v6.1) is decoded too; these 48 bytes say "payload length 0, hop-by-hop next": a jumbogram
  const v6 = Buffer.alloc(48)
  v6[0] = 0x60
  assert.equal(line(v6, LINKTYPE_RAW), ':: > :: malformed ipv6: jumbogram (48 bytes)')
})

test("Linux cooked capture ('any' device): the SLL header, then the same decoding", () => {
  const frame = vxlanFrame(icmpPacket(POD1, POD2, 5, 1))
  const sll = Buffer.alloc(16 + frame.length - ETH_HLEN)
  sll.writeUInt16BE(4, 0) // outgoing
  sll.writeUInt16BE(1, 2)
  sll.writeUInt16BE(6, 4)
  sll.writeUInt16BE(0x0800, 14)
  frame.copy(sll, 16, ETH_HLEN)
  const d = decodePacket(sll, LINKTYPE_LINUX_SLL)
  assert.equal(d.direction, 'outgoing')
  assert.equal(describePacket(d), '198.18.0.1 > 198.18.0.2 VXLAN vni 1 | 10.244.1.2 > 10.244.2.3 ICMP echo request id 5 seq 1 len 84')
})

test('TCP flags in tcpdump notation', () => {
  assert.equal(tcpFlagString(0x02), 'S')
  assert.equal(tcpFlagString(0x12), 'S.')
  assert.equal(tcpFlagString(0x18), 'P.')
  assert.equal(tcpFlagString(0x11), 'F.')
  assert.equal(tcpFlagString(0x04), 'R')
  assert.equal(tcpFlagString(0), 'none')
})

// ---- malformed input: say what is wrong, in the validate* reason names ----

test('truncated and malformed frames name the layer and the reason', () => {
  const good = vxlanFrame(icmpPacket(POD1, POD2, 5, 1))
  assert.equal(line(Buffer.alloc(5)), 'malformed ethernet: truncated (5 bytes)')
  assert.equal(line(Buffer.alloc(0), LINKTYPE_RAW), 'malformed ip: truncated (0 bytes)')
  assert.equal(line(Buffer.from([0x45, 0, 0]), LINKTYPE_RAW), 'malformed ipv4: truncated (3 bytes)')
  assert.equal(line(Buffer.from([0x15, 0, 0]), LINKTYPE_RAW), 'malformed ip: bad_version (3 bytes)')
  assert.equal(line(Buffer.alloc(10), LINKTYPE_LINUX_SLL), 'malformed sll: truncated (10 bytes)')
  // Cut short (a snap length): the outer header claims more than there is.
  assert.equal(line(good.subarray(0, 60)), '198.18.0.1 > 198.18.0.2 malformed ipv4: bad_total_length (46 bytes)')

  const badIhl = Buffer.from(good)
  badIhl[ETH_HLEN] = 0x44
  assert.equal(line(badIhl), '198.18.0.1 > 198.18.0.2 malformed ipv4: bad_ihl (134 bytes)')

  const udpOff = ETH_HLEN + IPV4_MIN_HLEN
  const badUdpLen = Buffer.from(good)
  badUdpLen.writeUInt16BE(4, udpOff + 4)
  assert.equal(line(badUdpLen), '198.18.0.1 > 198.18.0.2 malformed udp: bad_udp_length (114 bytes)')

  const vxOff = udpOff + UDP_HLEN
  const noI = Buffer.from(good)
  noI[vxOff] = 0
  assert.equal(line(noI), '198.18.0.1 > 198.18.0.2 VXLAN vni 1 malformed vxlan: bad_vxlan_flags (106 bytes)')
  const reserved = Buffer.from(good)
  reserved[vxOff + 7] = 1
  assert.equal(line(reserved), '198.18.0.1 > 198.18.0.2 VXLAN vni 1 malformed vxlan: bad_vxlan_reserved (106 bytes)')
  const shortVx = vxlanFrame(Buffer.alloc(0)).subarray(0, ETH_HLEN + IPV4_MIN_HLEN + UDP_HLEN)
  shortVx.writeUInt16BE(IPV4_MIN_HLEN + UDP_HLEN, ETH_HLEN + 2)
  shortVx.writeUInt16BE(UDP_HLEN, udpOff + 4)
  shortVx.writeUInt16BE(0, ETH_HLEN + 10)
  setIpv4Checksum(shortVx, ETH_HLEN)
  shortVx.writeUInt16BE(0, udpOff + 6)
  assert.equal(line(shortVx), '198.18.0.1 > 198.18.0.2 VXLAN malformed vxlan: truncated (0 bytes)')

  // The inner packet claims 200 bytes but the tunnel carries 84.
  const inner = icmpPacket(POD1, POD2, 5, 1)
  inner.writeUInt16BE(200, 2)
  setIcmpChecksum(inner, IPV4_MIN_HLEN, inner.length - IPV4_MIN_HLEN)
  setIpv4Checksum(inner, 0)
  assert.equal(line(vxlanFrame(inner)), '198.18.0.1 > 198.18.0.2 VXLAN vni 1 | 10.244.1.2 > 10.244.2.3 malformed ipv4: bad_total_length (84 bytes)')

  // A TCP header whose data offset points past the segment.
  const seg = tcpSegment(POD1, POD2, SYN)
  seg[IPV4_MIN_HLEN + 12] = 0xf0
  assert.equal(line(ipipFrame(seg)), '198.18.0.1 > 198.18.0.2 IPIP | 10.244.1.2 > 10.244.2.3 malformed tcp: bad_tcp_data_offset (20 bytes)')

  // The UDP backend carrying something that is not IP.
  assert.equal(line(udpBackendFrame(Buffer.from('zzz'))), '198.18.0.1 > 198.18.0.2 FLANNEL-UDP | malformed ip: bad_version (3 bytes)')
})

test('checksum errors are flagged but decoding goes on (IPv4 header, ICMP); UDP/TCP ones are not (offload seeds)', () => {
  const frame = vxlanFrame(icmpPacket(POD1, POD2, 5, 1))
  const badIcmp = Buffer.from(frame)
  badIcmp[badIcmp.length - 1] ^= 0xff
  assert.equal(line(badIcmp), '198.18.0.1 > 198.18.0.2 VXLAN vni 1 | 10.244.1.2 > 10.244.2.3 ICMP echo request id 5 seq 1 len 84 [bad_icmp_checksum]')
  const badOuter = Buffer.from(frame)
  badOuter[ETH_HLEN + 8] = 3 // TTL, checksum not fixed
  assert.equal(line(badOuter), '198.18.0.1 > 198.18.0.2 VXLAN vni 1 [bad_ipv4_checksum] | 10.244.1.2 > 10.244.2.3 ICMP echo request id 5 seq 1 len 84')
  const badTcp = tcpSegment(POD1, POD2, SYN)
  badTcp[IPV4_MIN_HLEN + 16] ^= 0xff
  assert.equal(line(badTcp, LINKTYPE_RAW, PLAIN_DECODE), '10.244.1.2:40000 > 10.244.2.3:5201 TCP [S] seq 123 len 0')
})

test('non-IP frames and protocols are named, not decoded', () => {
  const arp = Buffer.alloc(ETH_HLEN + 28)
  arp.writeUInt16BE(0x0806, 12)
  arp.set([0, 1, 8, 0, 6, 4, 0, 1], ETH_HLEN)
  arp.set([10, 244, 1, 0], ETH_HLEN + 14)
  arp.set([10, 244, 2, 0], ETH_HLEN + 24)
  assert.equal(line(arp), 'ARP request who-has 10.244.2.0 tell 10.244.1.0')
  const lldp = Buffer.alloc(60)
  lldp.writeUInt16BE(0x88cc, 12)
  assert.equal(line(lldp), 'ethertype 0x88cc, not decoded (46 bytes)')
  assert.equal(line(ipv4(POD1, POD2, 47, Buffer.alloc(12)), LINKTYPE_RAW), '10.244.1.2 > 10.244.2.3 proto 47 len 32')
  assert.equal(line(ipv4(POD1, POD2, IPPROTO_TCP, Buffer.alloc(4)), LINKTYPE_RAW), '10.244.1.2 > 10.244.2.3 malformed tcp: truncated (4 bytes)')
  assert.equal(line(Buffer.alloc(10), 147), 'link type 147')
})

// ---- never throw, whatever the bytes ----

const LINK_TYPES = [LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL]

function checkNeverThrows (buf: Buffer, linkType: number): void {
  const d = decodePacket(buf, linkType)
  const s = describePacket(d)
  assert.ok(s.length > 0)
  assert.doesNotMatch(s, /decoder_error|undefined|NaN/)
  JSON.parse(formatJson(d, 0))
}

test('random bytes: a line for every input, never an exception', () => {
  fc.assert(fc.property(
    fc.uint8Array({ maxLength: 200 }), fc.constantFrom(...LINK_TYPES),
    (bytes, lt) => checkNeverThrows(Buffer.from(bytes), lt)
  ), { numRuns: 5000 })
})

// Random bytes rarely get past the first header; damaging valid tunnel
// frames reaches every layer.
const VALID_FRAMES = [
  ...KERNEL_VXLAN_FRAMES.map((f) => Buffer.from(f.hex, 'hex')),
  vxlanFrame(tcpSegment(POD1, POD2, SYN)),
  ipipFrame(icmpPacket(POD1, POD2, 1, 1)),
  udpBackendFrame(udpDatagram(POD1, POD2, 1, 2, Buffer.alloc(8))),
  wireguardFrame(wgInitiation(0x1a2b3c4d)),
  wireguardFrame(wgTransport(0x1a2b3c4d, 17n, 100))
]

test('valid frames cut short or with bytes changed: a line for every one, never an exception', () => {
  fc.assert(fc.property(
    fc.constantFrom(...VALID_FRAMES),
    fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    (frame, cut, edits) => {
      const buf = Buffer.from(frame.subarray(0, frame.length - (cut % Math.min(frame.length, 200))))
      for (const [at, v] of edits) if (buf.length > 0) buf[at % buf.length] = v
      checkNeverThrows(buf, LINKTYPE_ETHERNET)
    }
  ), { numRuns: 5000 })
})
