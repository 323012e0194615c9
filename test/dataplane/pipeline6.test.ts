// An IPv6 pipeline end to end without privileges: pods' IPv6 packets written
// into node A's in-memory TUN come out of node B's, through A's inside loop
// (Fdb6 lookup, VXLAN with inner EtherType 86DD), a udp6 socket on ::1 and
// B's outside loop (sender by its four words, inner IPv6 checks, our subnet,
// the source check); what must not cross is dropped with its reason.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Count, Drop } from '../../src/dataplane/stats'
import { Reason } from '../../src/packet/reason'
import { PER_PEER, PeerCount } from '../../src/dataplane/fdb'
import { ip6Words, parseCidr6 } from '../../src/packet/net6'
import { collect, inject, link, node, udpPacket } from './helpers'
import { link6, node6, LOOPBACK6 } from './helpers6'
import { icmp6Bytes, packet6, tcpBytes, udpBytes } from '../packet/v6'

const A = 'fc00:0:0:1::/64'
const B = 'fc00:0:0:2::/64'

function udp6 (src: string, dst: string, n: number, tag = 1): Buffer {
  return packet6({ src, dst, nh: 17, l4: udpBytes(n, { tag }), checksum: true })
}

test('IPv6 packets cross from A\'s TUN to B\'s unchanged, both ways; counters and per-peer counters count them', async (t) => {
  const a = node6(A, '02:00:00:00:00:0a', { checkSource: true })
  const b = node6(B, '02:00:00:00:00:0b', { checkSource: true })
  t.after(() => { a.close(); b.close() })
  link6(a, b)
  const sent = [udp6('fc00:0:0:1::2', 'fc00:0:0:2::3', 100, 1), packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::3', nh: 6, l4: tcpBytes({ payload: 500, flags: 0x18 }), checksum: true }), packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::3', nh: 58, l4: icmp6Bytes(128, 0, 56), checksum: true })]
  inject(a, sent)
  const got = await collect(b, 3)
  assert.deepEqual(got, sent)
  const back = udp6('fc00:0:0:2::3', 'fc00:0:0:1::2', 1000, 9)
  inject(b, [back])
  assert.deepEqual(await collect(a, 1), [back])
  assert.equal(a.pipeline.stats[Count.INSIDE_PACKETS], 3)
  assert.equal(b.pipeline.stats[Count.OUTSIDE_PACKETS], 3)
  const peer = b.fdb.sourceWords(Uint32Array.from(ip6Words(LOOPBACK6)), 0)
  assert.equal(b.fdb.perPeer[peer * PER_PEER + PeerCount.OUTSIDE_PACKETS], 3)
})

test('the inside drops: no route, not IPv6, truncated, too big', async (t) => {
  const a = node6(A, '02:00:00:00:00:0a')
  const b = node6(B, '02:00:00:00:00:0b')
  t.after(() => { a.close(); b.close() })
  link6(a, b)
  const v4 = Buffer.alloc(60)
  v4[0] = 0x45
  inject(a, [udp6('fc00:0:0:1::2', 'fc00:0:0:9::3', 10), v4, Buffer.alloc(30, 0x60), udp6('fc00:0:0:1::2', 'fc00:0:0:2::3', 1385)])
  assert.deepEqual(await collect(b, 1, 200), [])
  const s = a.pipeline.stats
  assert.deepEqual([s[Drop.NO_ROUTE], s[Drop.NOT_IPV6], s[Reason.TRUNCATED], s[Drop.TOO_BIG]], [1, 1, 1, 1])
})

test('the outside drops, each with its reason: not for us, spoofed source, NDP, extension headers, jumbogram; fragments pass whole', async (t) => {
  const a = node6(A, '02:00:00:00:00:0a')
  const b = node6(B, '02:00:00:00:00:0b', { checkSource: true })
  t.after(() => { a.close(); b.close() })
  link6(a, b)
  // A's table routes fc00:0:0:3::/64 to B too, so that A sends what B must refuse
  a.fdb.set(parseCidr6('fc00:0:0:3::/64'), LOOPBACK6, b.mac, b.port)
  const src = 'fc00:0:0:1::2'
  const dst = 'fc00:0:0:2::3'
  const frag = packet6({ src, dst, nh: 17, l4: udpBytes(200), ext: [{ type: 44, more: true }] })
  const hbh = packet6({ src, dst, nh: 6, l4: tcpBytes({ payload: 10 }), ext: [{ type: 0 }], checksum: true })
  const jumbo = packet6({ src, dst, nh: 17, l4: udpBytes(20), ext: [{ type: 0, options: [0xc2, 4, 0, 1, 0, 0] }] })
  inject(a, [
    udp6(src, 'fc00:0:0:3::1', 10), // not for B
    udp6('fc00:0:0:2::9', dst, 10), // B's own subnet as the source
    udp6('fc00:0:0:7::9', dst, 10), // a subnet A does not hold
    packet6({ src, dst, nh: 58, l4: icmp6Bytes(135, 0, 16), hop: 255, checksum: true }), // neighbour solicitation
    packet6({ src, dst, nh: 58, l4: icmp6Bytes(134, 0, 16), hop: 255, checksum: true }), // a router advertisement
    packet6({ src, dst, nh: 6, l4: tcpBytes({}), ext: [{ type: 60 }, { type: 0 }] }), // hop-by-hop not first
    jumbo,
    frag,
    hbh
  ])
  const got = await collect(b, 2, 500)
  assert.deepEqual(got, [frag, hbh], 'a fragment and a packet behind a sound hop-by-hop header pass whole')
  const s = b.pipeline.stats
  assert.equal(s[Drop.NOT_FOR_US], 1)
  assert.equal(s[Drop.SPOOFED_SOURCE], 2)
  assert.equal(s[Reason.NDP], 2)
  assert.equal(s[Reason.BAD_EXTENSION_HEADER], 1)
  assert.equal(s[Reason.JUMBOGRAM], 1)
  assert.equal(s[Count.OUTSIDE_IPV6_FRAGMENTS], 1)
  assert.deepEqual([...b.pipeline.spoofRings6()[0].subarray(0, 4)], ip6Words(LOOPBACK6), 'the spoofer, remembered by its four words')
})

test('a sender that holds no lease is dropped as unknown_source and remembered', async (t) => {
  const a = node6(A, '02:00:00:00:00:0a')
  const b = node6(B, '02:00:00:00:00:0b')
  t.after(() => { a.close(); b.close() })
  a.fdb.set(parseCidr6(B), LOOPBACK6, b.mac, b.port)
  inject(a, [udp6('fc00:0:0:1::2', 'fc00:0:0:2::3', 10)])
  assert.deepEqual(await collect(b, 1, 200), [])
  assert.equal(b.pipeline.stats[Drop.UNKNOWN_SOURCE], 1)
  assert.deepEqual([...b.pipeline.unknownRings6()[0].subarray(0, 4)], ip6Words(LOOPBACK6))
})

test('an IPv4 pipeline beside it is untouched: its rings and onBatch are its own', async () => {
  const a = node('10.244.1.0/24', '02:00:00:00:00:0a')
  const b = node('10.244.2.0/24', '02:00:00:00:00:0b')
  try {
    link(a, b)
    const p = udpPacket('10.244.1.2', '10.244.2.3', 100)
    inject(a, [p])
    assert.deepEqual(await collect(b, 1), [p])
    assert.equal(b.pipeline.unknownRings6()[0].length, 0)
  } finally { a.close(); b.close() }
})
