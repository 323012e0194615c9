// The VXLAN pipeline end to end without privileges: two nodes on loopback,
// each a real Pipeline over an in-memory TUN and a real UDP socket.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { parseCidr } from '../../src/packet/net'
import { Drop, Count } from '../../src/dataplane/stats'
import { Reason } from '../../src/packet/reason'
import { parseMac } from '../../src/packet/mac'
import { parseIp4 } from '../../src/packet/ip'
import { fold, pseudoHeaderSum4At } from '../../src/packet/checksum'
import { IPPROTO_UDP, setIpv4Checksum } from '../../src/packet/ipv4'
import { collect, inject, link, node, udpPacket, LOOPBACK } from './helpers'
import type { TestNode } from './helpers'
import { waitFor } from '../../lab/wait'

const MAC_A = '02:00:00:00:00:0a'
const MAC_B = '02:00:00:00:00:0b'

test('a packet from a pod on A reaches B\'s TUN byte for byte, and back', async (t) => {
  const a = node('10.244.1.0/24', MAC_A)
  const b = node('10.244.2.0/24', MAC_B)
  t.after(() => { a.close(); b.close() })
  link(a, b)
  const there = [udpPacket('10.244.1.2', '10.244.2.3', 100, 1), udpPacket('10.244.1.2', '10.244.2.4', 1422, 2)]
  inject(a, there)
  const got = await collect(b, 2)
  assert.equal(got.length, 2)
  assert.ok(got[0].equals(there[0]))
  assert.ok(got[1].equals(there[1]))
  const back = udpPacket('10.244.2.3', '10.244.1.2', 64, 3)
  inject(b, [back])
  const gotBack = await collect(a, 1)
  assert.ok(gotBack[0].equals(back))
  assert.equal(a.pipeline.stats[Count.INSIDE_PACKETS], 2)
  assert.equal(b.pipeline.stats[Count.OUTSIDE_PACKETS], 2)
  assert.equal(a.fdb.perPeer[0], 2, 'per-peer inside packets')
})

test('on the wire: VXLAN flags 0x08, VNI 1, inner Ethernet from our VTEP MAC to the peer\'s, then the IP packet', async (t) => {
  const a = node('10.244.1.0/24', MAC_A)
  t.after(() => a.close())
  const sniff = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => sniff.bind(0, '127.0.0.1', resolve))
  t.after(() => sniff.close())
  a.fdb.set(parseCidr('10.244.2.0/24'), LOOPBACK, parseMac(MAC_B), sniff.address().port)
  const got = new Promise<Buffer>((resolve) => sniff.once('message', resolve))
  const p = udpPacket('10.244.1.2', '10.244.2.3', 32, 9)
  inject(a, [p])
  const d = await got
  assert.deepEqual([...d.subarray(0, 8)], [0x08, 0, 0, 0, 0, 0, 1, 0])
  assert.ok(d.subarray(8, 14).equals(parseMac(MAC_B)))
  assert.ok(d.subarray(14, 20).equals(parseMac(MAC_A)))
  assert.deepEqual([...d.subarray(20, 22)], [0x08, 0x00])
  assert.ok(d.subarray(22).equals(p))
})

test('inside drops, each counted by reason: no route, not IPv4, truncated; good traffic passes alongside', async (t) => {
  const a = node('10.244.1.0/24', MAC_A)
  const b = node('10.244.2.0/24', MAC_B)
  t.after(() => { a.close(); b.close() })
  link(a, b)
  const v6 = Buffer.alloc(60)
  v6[0] = 0x60
  inject(a, [udpPacket('10.244.1.2', '10.244.9.9', 10), v6, Buffer.from([0x45, 0, 0]), udpPacket('10.244.1.2', '10.244.2.3', 10, 4)])
  const got = await collect(b, 1)
  assert.equal(got.length, 1)
  const s = a.pipeline.stats
  assert.equal(s[Drop.NO_ROUTE], 1)
  assert.equal(s[Drop.NOT_IPV4], 1)
  assert.equal(s[Reason.TRUNCATED], 1)
})

test('outside drops, each counted by reason, while good frames still pass', async (t) => {
  const b = node('10.244.2.0/24', MAC_B)
  t.after(() => b.close())
  const good = dgram.createSocket('udp4')
  const stranger = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => good.bind(0, '127.0.0.1', resolve))
  await new Promise<void>((resolve) => stranger.bind(0, '127.0.0.2', resolve))
  t.after(() => { good.close(); stranger.close() })
  b.fdb.set(parseCidr('10.244.1.0/24'), LOOPBACK, parseMac(MAC_A), good.address().port)

  const frame = (opts: { flags?: number, vni?: number, dstMac?: string, etherType?: number, inner?: Buffer } = {}): Buffer => {
    const inner = opts.inner ?? udpPacket('10.244.1.2', '10.244.2.3', 20, 5)
    const f = Buffer.alloc(22 + inner.length)
    f[0] = opts.flags ?? 0x08
    const vni = opts.vni ?? 1
    f[4] = vni >> 16; f[5] = (vni >> 8) & 255; f[6] = vni & 255
    parseMac(opts.dstMac ?? MAC_B).copy(f, 8)
    parseMac(MAC_A).copy(f, 14)
    f.writeUInt16BE(opts.etherType ?? 0x0800, 20)
    inner.copy(f, 22)
    return f
  }
  const send = (s: dgram.Socket, buf: Buffer): Promise<void> => new Promise((resolve, reject) => s.send(buf, b.port, '127.0.0.1', (err) => err ? reject(err) : resolve()))

  await send(stranger, frame())
  await send(good, frame().subarray(0, 30))
  await send(good, frame({ vni: 2 }))
  await send(good, frame({ flags: 0 }))
  await send(good, frame({ dstMac: '02:00:00:00:00:99' }))
  await send(good, frame({ etherType: 0x86dd }))
  await send(good, frame({ inner: udpPacket('10.244.1.2', '10.244.3.3', 20) }))
  await send(good, frame({ inner: udpPacket('10.244.1.2', '10.244.2.3', 1500) }))
  await send(good, frame())
  const got = await collect(b, 1)
  assert.equal(got.length, 1, 'the good frame got through')
  await waitFor(() => {
    const s = b.pipeline.stats
    assert.equal(s[Drop.UNKNOWN_SOURCE], 1)
    assert.equal(s[Reason.TRUNCATED], 1)
    assert.equal(s[Reason.WRONG_VNI], 1)
    assert.equal(s[Reason.BAD_VXLAN_FLAGS], 1)
    assert.equal(s[Drop.NOT_OUR_MAC], 1)
    assert.equal(s[Drop.NOT_IPV4], 1)
    assert.equal(s[Drop.NOT_FOR_US], 1)
    assert.equal(s[Drop.TOO_BIG], 1)
    return true
  }, { what: 'every drop counted', intervalMs: 5 })
  assert.equal(b.pipeline.outside.unknownSources[0], parseIp4('127.0.0.2'), 'the stranger is remembered for the log')
})

test('remote checksum offload marks are let in only from peers that asked for RCO and where they describe the packet; without RCO on, the R flag is a reserved bit', async (t) => {
  const b = node('10.244.2.0/24', MAC_B, { remCsum: true })
  const plain = node('10.244.3.0/24', '02:00:00:00:00:0c')
  t.after(() => { b.close(); plain.close() })
  const peer = dgram.createSocket('udp4')
  const other = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', resolve))
  await new Promise<void>((resolve) => other.bind(0, '127.0.0.2', resolve))
  t.after(() => { peer.close(); other.close() })
  // peer's lease asks for RCO; other's (a flannel node's, say) does not
  b.fdb.set(parseCidr('10.244.1.0/24'), LOOPBACK, parseMac(MAC_A), peer.address().port, true)
  b.fdb.set(parseCidr('10.244.4.0/24'), parseIp4('127.0.0.2'), parseMac(MAC_A), other.address().port, false)
  plain.fdb.set(parseCidr('10.244.1.0/24'), LOOPBACK, parseMac(MAC_A), peer.address().port, true)

  /** [VXLAN with RCO byte 7 = rco][inner Ethernet][inner], to `to`; the inner UDP checksum left partial */
  const frame = (to: TestNode, inner: Buffer, rco: number): Buffer => {
    const f = Buffer.alloc(22 + inner.length)
    f[0] = 0x08
    f[1] = 0x20
    f[6] = 1
    f[7] = rco
    to.mac.copy(f, 8)
    parseMac(MAC_A).copy(f, 14)
    f.writeUInt16BE(0x0800, 20)
    inner.copy(f, 22)
    return f
  }
  const partialUdp = (dst: string, tag: number, fragField = 0x4000): { whole: Buffer, partial: Buffer } => {
    const whole = udpPacket('10.244.1.2', dst, 40, tag)
    whole.writeUInt16BE(fragField, 6)
    setIpv4Checksum(whole, 0)
    const partial = Buffer.from(whole)
    const s = fold(pseudoHeaderSum4At(partial, 0, IPPROTO_UDP, partial.length - 20))
    partial[26] = s >> 8
    partial[27] = s & 255
    return { whole, partial }
  }
  const send = (to: TestNode, buf: Buffer, from = peer): Promise<void> => new Promise((resolve, reject) => from.send(buf, to.port, '127.0.0.1', (err) => err ? reject(err) : resolve()))
  const UDP_AT_34 = 0x80 | (34 >> 1) // UDP, its header 14 + 20 bytes into the inner frame

  // a UDP header cut to 4 bytes by the IP total length, padded to look long enough
  const short = Buffer.concat([partialUdp('10.244.2.3', 6).partial.subarray(0, 24), Buffer.alloc(40)])
  short.writeUInt16BE(24, 2)
  setIpv4Checksum(short, 0)
  // with IP options (IHL 6): the UDP header starts 14 + 24 bytes in
  const opts = udpPacket('10.244.1.2', '10.244.2.3', 40, 7)
  const withOpts = Buffer.concat([opts.subarray(0, 20), Buffer.from([1, 1, 1, 0]), opts.subarray(20)])
  withOpts[0] = 0x46
  withOpts.writeUInt16BE(withOpts.length, 2)
  setIpv4Checksum(withOpts, 0)
  const optsPartial = Buffer.from(withOpts)
  const ps = fold(pseudoHeaderSum4At(optsPartial, 0, IPPROTO_UDP, optsPartial.length - 24))
  optsPartial[30] = ps >> 8
  optsPartial[31] = ps & 255

  const good = partialUdp('10.244.2.3', 1)
  await send(b, frame(b, partialUdp('10.244.2.3', 2).partial, 0x80 | (38 >> 1))) // the wrong start
  await send(b, frame(b, partialUdp('10.244.2.3', 3).partial, 34 >> 1)) // says TCP
  await send(b, frame(b, partialUdp('10.244.2.3', 4, 0x2000).partial, UDP_AT_34)) // a fragment
  await send(b, frame(b, short, UDP_AT_34)) // no checksum field inside the packet
  await send(b, frame(b, partialUdp('10.244.2.3', 5).partial, UDP_AT_34), other) // from a peer that did not ask for RCO
  await send(plain, frame(plain, partialUdp('10.244.3.3', 5).partial, UDP_AT_34)) // to a node without RCO
  await send(b, frame(b, good.partial, UDP_AT_34))
  await send(b, frame(b, optsPartial, 0x80 | (38 >> 1)))
  const got = await collect(b, 2)
  assert.equal(got.length, 2, 'the good frames got through')
  assert.ok(got[0].equals(good.whole), 'without a vnet header, its checksum finished on the way in')
  assert.ok(got[1].equals(withOpts), 'and with IP options, at its own place')
  await waitFor(() => {
    assert.equal(b.pipeline.stats[Drop.BAD_VXLAN_RCO], 5)
    assert.equal(b.pipeline.stats[Count.OUTSIDE_PARTIAL], 2)
    assert.equal(b.pipeline.stats[Count.CHECKSUMS_FINISHED], 0, 'counted once, as RCO')
    assert.equal(plain.pipeline.stats[Reason.BAD_VXLAN_RESERVED], 1)
    return true
  }, { what: 'the RCO drops and partial checksums counted', intervalMs: 5 })
})

test('a removed peer is unreachable at once, and its entry can come back with a new MAC', async (t) => {
  const a = node('10.244.1.0/24', MAC_A)
  const b = node('10.244.2.0/24', MAC_B)
  t.after(() => { a.close(); b.close() })
  link(a, b)
  a.fdb.delete(parseCidr('10.244.2.0/24'))
  inject(a, [udpPacket('10.244.1.2', '10.244.2.3', 10)])
  assert.equal((await collect(b, 1, 200)).length, 0)
  assert.equal(a.pipeline.stats[Drop.NO_ROUTE], 1)
  a.fdb.set(parseCidr('10.244.2.0/24'), LOOPBACK, parseMac(MAC_B), b.port)
  inject(a, [udpPacket('10.244.1.2', '10.244.2.3', 10)])
  assert.equal((await collect(b, 1)).length, 1)
})
