// `weft capture` over IPv6: VXLAN on an IPv6 underlay carrying inner IPv6
// (TCP, UDP, ICMPv6 with Neighbour Discovery), inner IPv6 over an IPv4
// underlay, extension headers and fragments named, a TUN's bare IPv6
// packets, broken IPv6 named by its reason; and the filters with IPv6
// addresses and networks (--pod/--node fc00::1, fc00::/48; ip6 on a VTEP).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { PcapWriter } from '../../src/capture/pcap-writer'
import { toolSkipReason } from '../../lab/skip'
import { tcpdumpRead } from './tcpdump'
import { DEFAULT_DECODE, LINKTYPE_ETHERNET, LINKTYPE_IPV6, LINKTYPE_RAW, PLAIN_DECODE, decodePacket } from '../../src/capture/decode'
import { describePacket } from '../../src/capture/format'
import { buildFilter, matchesPods, parseAddressOrNet, type FilterOptions } from '../../src/capture/filter'
import { ETHERTYPE_IPV6, parseMacNumber, writeEthernet, writeVxlan } from '../../src/packet'
import { icmp6Bytes, packet6, tcpBytes, udpBytes } from '../packet/v6'
import { ethernet, icmpPacket, POD1, POD2, vxlanFrame } from './frames'

const line = (buf: Buffer, linkType = LINKTYPE_ETHERNET, opts = DEFAULT_DECODE): string => describePacket(decodePacket(buf, linkType, opts))
const PODA = 'fc00:0:0:1::2'
const PODB = 'fc00:0:0:2::3'

/** Inner Ethernet (EtherType 86DD) behind a VXLAN header, the pod packet inside. */
function vxlanPayload6 (inner: Buffer, vni = 1): Buffer {
  const f = Buffer.alloc(8 + 14 + inner.length)
  writeVxlan(f, 0, vni)
  writeEthernet(f, 8, parseMacNumber('02:77:00:00:00:02'), parseMacNumber('02:77:00:00:00:01'), ETHERTYPE_IPV6)
  inner.copy(f, 22)
  return f
}

/** The whole underlay frame: IPv6 2001:2::1 -> 2001:2::2, UDP to 8472, VXLAN, the pod packet. */
function vxlan6Frame (inner: Buffer): Buffer {
  const payload = vxlanPayload6(inner)
  const udp = Buffer.concat([Buffer.alloc(8), payload])
  udp.writeUInt16BE(40000, 0)
  udp.writeUInt16BE(8472, 2)
  udp.writeUInt16BE(udp.length, 4)
  const outer = packet6({ src: '2001:2::1', dst: '2001:2::2', nh: 17, l4: udp, checksum: true })
  return ethernet(parseMacNumber('02:00:00:00:00:02'), parseMacNumber('02:00:00:00:00:01'), outer, ETHERTYPE_IPV6)
}

test('VXLAN over an IPv6 underlay: outer and inner IPv6 decoded, TCP, UDP and ICMPv6 inside', () => {
  const tcp = packet6({ src: PODA, dst: PODB, nh: 6, l4: tcpBytes({ seq: 123, flags: 0x02 }), checksum: true })
  assert.equal(line(vxlan6Frame(tcp)), '2001:2::1 > 2001:2::2 VXLAN vni 1 | [fc00:0:0:1::2]:40000 > [fc00:0:0:2::3]:5201 TCP [S] seq 123 len 0')
  const udp = packet6({ src: PODA, dst: PODB, nh: 17, l4: udpBytes(16), checksum: true })
  assert.equal(line(vxlan6Frame(udp)), '2001:2::1 > 2001:2::2 VXLAN vni 1 | [fc00:0:0:1::2]:40000 > [fc00:0:0:2::3]:7000 UDP len 16')
  const ping = icmp6Bytes(128, 0, 56)
  ping.writeUInt16BE(5, 4)
  ping.writeUInt16BE(1, 6)
  const echo = packet6({ src: PODA, dst: PODB, nh: 58, l4: ping, checksum: true })
  assert.equal(line(vxlan6Frame(echo)), '2001:2::1 > 2001:2::2 VXLAN vni 1 | fc00:0:0:1::2 > fc00:0:0:2::3 ICMP6 echo request id 5 seq 1 len 104')
  const d = decodePacket(vxlan6Frame(echo), LINKTYPE_ETHERNET)
  assert.equal(d.ip?.version, 6)
  assert.equal(d.ip?.inner?.ip?.version, 6)
  assert.equal(d.ip?.inner?.ip?.ttl, 64, 'the hop limit')
})

test('inner IPv6 over an IPv4 underlay, and Neighbour Discovery named as tcpdump names it', () => {
  const ns = icmp6Bytes(135, 0, 16)
  Buffer.from('fc000000000000020000000000000003', 'hex').copy(ns, 8)
  const nsPkt = packet6({ src: PODA, dst: 'ff02::1:ff00:3', nh: 58, l4: ns, hop: 255, checksum: true })
  // vxlanFrame's inner Ethernet says IPv4: rewrite it to 86DD
  const f = vxlanFrame(nsPkt)
  f.writeUInt16BE(ETHERTYPE_IPV6, 14 + 20 + 8 + 8 + 12)
  assert.equal(line(f), '198.18.0.1 > 198.18.0.2 VXLAN vni 1 | fc00:0:0:1::2 > ff02::1:ff00:3 ICMP6 neighbor solicitation who has fc00:0:0:2::3 len 64')
  const na = icmp6Bytes(136, 0, 16)
  Buffer.from('fc000000000000020000000000000003', 'hex').copy(na, 8)
  assert.equal(line(packet6({ src: PODB, dst: PODA, nh: 58, l4: na, hop: 255, checksum: true }), LINKTYPE_RAW, PLAIN_DECODE),
    'fc00:0:0:2::3 > fc00:0:0:1::2 ICMP6 neighbor advertisement tgt is fc00:0:0:2::3 len 64')
  assert.equal(line(packet6({ src: PODB, dst: 'ff02::2', nh: 58, l4: icmp6Bytes(133, 0, 8), hop: 255, checksum: true }), LINKTYPE_RAW, PLAIN_DECODE),
    'fc00:0:0:2::3 > ff02::2 ICMP6 router solicitation len 56')
  const bad = packet6({ src: PODB, dst: PODA, nh: 58, l4: icmp6Bytes(129, 0, 8), checksum: true })
  bad[50] ^= 1
  assert.match(line(bad, LINKTYPE_IPV6, PLAIN_DECODE), /ICMP6 echo reply id \d+ seq \d+ len 56 \[bad_icmp_checksum\]$/)
})

test('extension headers are named, fragments shown as IPv4 ones are', () => {
  const hbh = packet6({ src: PODA, dst: PODB, nh: 17, l4: udpBytes(8), ext: [{ type: 0 }, { type: 60 }], checksum: true })
  assert.equal(line(hbh, LINKTYPE_RAW, PLAIN_DECODE), '[fc00:0:0:1::2]:40000 > [fc00:0:0:2::3]:7000 UDP len 8 ext hop-by-hop,dstopts')
  const first = packet6({ src: PODA, dst: PODB, nh: 17, l4: udpBytes(100), ext: [{ type: 44, more: true }] })
  assert.equal(line(first, LINKTYPE_RAW, PLAIN_DECODE), '[fc00:0:0:1::2]:40000 > [fc00:0:0:2::3]:7000 UDP len 100 frag id 4660 off 0+ ext fragment')
  const later = packet6({ src: PODA, dst: PODB, nh: 17, l4: Buffer.alloc(64), ext: [{ type: 44, fragOffset: 14 }] })
  assert.equal(line(later, LINKTYPE_RAW, PLAIN_DECODE), 'fc00:0:0:1::2 > fc00:0:0:2::3 UDP frag id 4660 off 112 len 112 ext fragment')
})

test('broken IPv6 is named by its reason, never an exception', () => {
  const good = packet6({ src: PODA, dst: PODB, nh: 17, l4: udpBytes(20) })
  assert.equal(line(good.subarray(0, 30), LINKTYPE_RAW), 'malformed ipv6: truncated (30 bytes)')
  assert.equal(line(good.subarray(0, 60), LINKTYPE_RAW), 'fc00:0:0:1::2 > fc00:0:0:2::3 malformed ipv6: bad_payload_length (60 bytes)')
  const many = packet6({ src: PODA, dst: PODB, nh: 6, l4: tcpBytes({}), ext: Array.from({ length: 9 }, () => ({ type: 60 })) })
  assert.match(line(many, LINKTYPE_RAW), /malformed ipv6: bad_extension_header/)
  const badUdp = Buffer.from(good)
  badUdp.writeUInt16BE(200, 44)
  assert.match(line(badUdp, LINKTYPE_RAW), /malformed udp: bad_udp_length/)
  fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (b) => {
    const buf = Buffer.from(b)
    if (buf.length > 0) buf[0] = (buf[0] & 15) | 0x60
    for (const lt of [LINKTYPE_RAW, LINKTYPE_IPV6]) {
      const d = decodePacket(buf, lt)
      assert.ok(d.malformed === undefined || !d.malformed.reason.startsWith('decoder_error'), JSON.stringify(d))
      describePacket(d)
    }
  }), { numRuns: 2000 })
})

test('filters with IPv6: --pod and --node as host/net, ip6 on a VTEP, --pod matched on inner IPv6 addresses', () => {
  const nets = (...s: string[]) => s.map((x) => parseAddressOrNet(x, '--x'))
  assert.deepEqual(parseAddressOrNet('fc00::1', '--pod'), { ip: 0xfc00n << 112n | 1n, prefixLen: 128 })
  assert.deepEqual(parseAddressOrNet('fc00::/48', '--pod'), { ip: 0xfc00n << 112n, prefixLen: 48 })
  assert.throws(() => parseAddressOrNet('fc00::/129', '--pod'), { code: 'EFLAG' })
  assert.throws(() => parseAddressOrNet('fc00:::1', '--pod'), { code: 'EFLAG' })
  const base: FilterOptions = { backend: 'vxlan', nodes: [], pods: [], kind: 'underlay' }
  assert.equal(buildFilter({ ...base, nodes: nets('2001:2::2', '2001:2::7/64') }), 'udp port 8472 and (host 2001:2::2 or net 2001:2::/64)')
  const vtep: FilterOptions = { ...base, kind: 'vtep' }
  assert.equal(buildFilter({ ...vtep, pods: nets('fc00::1') }), 'ip6 and host fc00::1')
  assert.equal(buildFilter({ ...vtep, pods: nets('fc00::1:2/48') }), 'ip6 and net fc00::/48')
  assert.equal(buildFilter({ ...vtep, pods: nets('fc00::1', '10.244.1.2') }), '(ip or ip6) and (host fc00::1 or host 10.244.1.2)')
  assert.equal(buildFilter({ ...vtep, pods: nets('10.244.1.2') }), 'ip and host 10.244.1.2')
  const d = decodePacket(vxlan6Frame(packet6({ src: PODA, dst: PODB, nh: 17, l4: udpBytes(4), checksum: true })), LINKTYPE_ETHERNET)
  assert.equal(matchesPods(d, nets('fc00:0:0:2::/64')), true)
  assert.equal(matchesPods(d, nets('fc00:0:0:1::2')), true)
  assert.equal(matchesPods(d, nets('fc00:0:0:9::/64', '10.244.0.0/16')), false)
  assert.equal(matchesPods(d, nets('2001:2::/48')), false, 'outer addresses are nodes, not pods')
  const v4 = decodePacket(vxlanFrame(icmpPacket(POD1, POD2, 1, 1)), LINKTYPE_ETHERNET)
  assert.equal(matchesPods(v4, nets('fc00::/16')), false, 'an IPv6 net never matches an IPv4 pod')
  assert.equal(matchesPods(v4, nets('fc00::/16', POD1)), true)
})

test('tcpdump, reading the same IPv6 packets from a pcap file, sees the addresses, protocols and ICMPv6 types our lines show', { skip: toolSkipReason('tcpdump') }, (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-pcap6-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'v6.pcap')
  const ns = icmp6Bytes(135, 0, 16)
  Buffer.from('fc000000000000020000000000000003', 'hex').copy(ns, 8)
  const packets = [
    packet6({ src: PODA, dst: PODB, nh: 17, l4: udpBytes(16, { dport: 9999 }), checksum: true }),
    packet6({ src: PODA, dst: PODB, nh: 6, l4: tcpBytes({ seq: 123, flags: 0x02 }), checksum: true }),
    packet6({ src: PODA, dst: 'ff02::1:ff00:3', nh: 58, l4: ns, hop: 255, checksum: true }),
    packet6({ src: PODB, dst: PODA, nh: 58, l4: icmp6Bytes(129, 0, 8), checksum: true }),
    packet6({ src: PODA, dst: PODB, nh: 17, l4: udpBytes(100, { dport: 9999 }), ext: [{ type: 44, more: true }] })
  ]
  const w = PcapWriter.create(file, LINKTYPE_RAW)
  packets.forEach((p, i) => w.write(1_700_000_000_000_000 + i, p))
  w.close()
  const read = tcpdumpRead(file)
  assert.equal(read.packets.length, packets.length)
  const ours = packets.map((p) => line(p, LINKTYPE_RAW, PLAIN_DECODE))
  // tcpdump writes an address.port pair with a dot, ours [address]:port
  const expect = [
    [`IP6 ${PODA}.40000 > ${PODB}.9999: UDP, length 16`, `[${PODA}]:40000 > [${PODB}]:9999 UDP len 16`],
    [`IP6 ${PODA}.40000 > ${PODB}.5201: Flags [S], seq 123`, `[${PODA}]:40000 > [${PODB}]:5201 TCP [S] seq 123 len 0`],
    [`IP6 ${PODA} > ff02::1:ff00:3: ICMP6, neighbor solicitation, who has fc00:0:0:2::3`, `${PODA} > ff02::1:ff00:3 ICMP6 neighbor solicitation who has fc00:0:0:2::3 len 64`],
    [`IP6 ${PODB} > ${PODA}: ICMP6, echo reply`, `${PODB} > ${PODA} ICMP6 echo reply id 0 seq 0 len 56`],
    [`IP6 ${PODA} > ${PODB}: frag (0|`, `[${PODA}]:40000 > [${PODB}]:9999 UDP len 100 frag id 4660 off 0+ ext fragment`]
  ]
  expect.forEach(([theirs, mine], i) => {
    assert.ok(read.packets[i].text.startsWith(theirs), `tcpdump: ${read.packets[i].text}`)
    assert.equal(ours[i], mine)
  })
})
