// flannel's UDP encapsulation end to end on loopback: two nodes, each the UDP
// backend's dataplane over an in-memory TUN and a real UDP socket. Needs no
// privileges. Covers the TTL decrement both ways and the ICMP net-unreachable
// answers the inside loop writes back into the TUN.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { parseCidr } from '../../src/packet/net'
import { Fdb } from '../../src/dataplane/fdb'
import { Count, Drop } from '../../src/dataplane/stats'
import { UdpEncap } from '../../src/backend/udp/encap'
import { Pipeline } from '../../src/dataplane/pipeline'
import { openUdp4, packetPair, PacketBatch } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { parseIp4 } from '../../src/packet/ip'
import { Reason } from '../../src/packet/reason'
import { setIpv4Checksum, verifyIpv4Checksum, IPPROTO_ICMP } from '../../src/packet/ipv4'
import { verifyIcmpChecksum, ICMP_DEST_UNREACH } from '../../src/packet/icmp'
import { LOOPBACK, collect, inject, udpPacket } from '../dataplane/helpers'
import { waitFor } from '../../lab/wait'

interface Node {
  dp: Pipeline
  fdb: Fdb
  port: number
  wire: PacketIo
  wireRx: PacketBatch
  wireTx: PacketBatch
  close: () => void
}

function node (subnet: string, mtu = 1472): Node {
  const [tun, wire] = packetPair(64)
  const udp = openUdp4({ addr: LOOPBACK, port: 0, batch: 64 })
  const fdb = new Fdb({ network: parseCidr('10.244.0.0/16'), subnetLen: 24, port: 0 })
  const dp = new Pipeline({ tun, sock: udp.io, fdb, encap: new UdpEncap(), mtu, batch: 64, onFatal: (w, e) => { throw new Error(`${w} fatal errno ${e}`) } })
  const own = parseCidr(subnet)
  dp.outside.setOwnSubnet(own.ip, own.prefixLen)
  dp.inside.answerUnreachable(own.ip)
  const wireRx = new PacketBatch({ size: 64, slotSize: 2048 })
  const wireTx = new PacketBatch({ size: 64, slotSize: 2048 })
  wire.receiveInto(wireRx)
  wire.sendFrom(wireTx)
  dp.start()
  return { dp, fdb, port: udp.port, wire, wireRx, wireTx, close: () => { dp.close(); wire.close() } }
}

function link (a: Node, aSubnet: string, b: Node, bSubnet: string): void {
  a.fdb.set(parseCidr(bSubnet), LOOPBACK, undefined, b.port)
  b.fdb.set(parseCidr(aSubnet), LOOPBACK, undefined, a.port)
}

/** The packet as it should look after `hops` TTL decrements. */
function aged (p: Buffer, hops: number): Buffer {
  const q = Buffer.from(p)
  q[8] -= hops
  setIpv4Checksum(q, 0)
  return q
}

test('UDP: a packet from a pod on A reaches B\'s TUN intact but for its TTL, decremented once each way with a valid checksum', async (t) => {
  const a = node('10.244.1.0/24')
  const b = node('10.244.2.0/24')
  t.after(() => { a.close(); b.close() })
  link(a, '10.244.1.0/24', b, '10.244.2.0/24')
  const there = [udpPacket('10.244.1.2', '10.244.2.3', 100, 1), udpPacket('10.244.1.2', '10.244.2.4', 1444, 2)]
  inject(a, there)
  const got = await collect(b, 2)
  assert.equal(got.length, 2)
  assert.ok(got[0].equals(aged(there[0], 2)))
  assert.ok(got[1].equals(aged(there[1], 2)), 'a packet of the full MTU (1472) fits')
  assert.ok(verifyIpv4Checksum(got[0], 0), 'incremental checksum fix')
  const back = udpPacket('10.244.2.3', '10.244.1.2', 64, 3)
  inject(b, [back])
  assert.ok((await collect(a, 1))[0].equals(aged(back, 2)))
  assert.equal(a.dp.stats[Count.INSIDE_PACKETS], 2)
  assert.equal(b.dp.stats[Count.OUTSIDE_PACKETS], 2)
})

test('UDP on the wire: the IP packet (TTL one lower) is the whole datagram, flannel\'s format', async (t) => {
  const a = node('10.244.1.0/24')
  const sniff = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => sniff.bind(0, '127.0.0.1', resolve))
  t.after(() => { a.close(); sniff.close() })
  a.fdb.set(parseCidr('10.244.2.0/24'), LOOPBACK, undefined, sniff.address().port)
  const got = new Promise<Buffer>((resolve) => sniff.once('message', resolve))
  const p = udpPacket('10.244.1.2', '10.244.2.3', 32, 9)
  inject(a, [p])
  assert.ok((await got).equals(aged(p, 1)))
})

test('UDP: a TTL that would reach 0 is dropped both ways and counted', async (t) => {
  const a = node('10.244.1.0/24')
  const b = node('10.244.2.0/24')
  t.after(() => { a.close(); b.close() })
  link(a, '10.244.1.0/24', b, '10.244.2.0/24')
  const dying = udpPacket('10.244.1.2', '10.244.2.3', 10)
  dying[8] = 1
  setIpv4Checksum(dying, 0)
  const lastHop = udpPacket('10.244.1.2', '10.244.2.3', 10, 2)
  lastHop[8] = 2 // 1 after A, so B drops it
  setIpv4Checksum(lastHop, 0)
  inject(a, [dying, lastHop, udpPacket('10.244.1.2', '10.244.2.3', 10, 3)])
  assert.equal((await collect(b, 1)).length, 1)
  await waitFor(() => {
    assert.equal(a.dp.stats[Reason.TTL_EXCEEDED], 1)
    assert.equal(b.dp.stats[Reason.TTL_EXCEEDED], 1)
    return true
  }, { what: 'the TTL drops counted on both nodes', intervalMs: 5 })
})

test('UDP: a destination no lease covers is answered with ICMP net-unreachable from our TUN address, not for ICMP or non-first fragments', async (t) => {
  const a = node('10.244.1.0/24')
  const b = node('10.244.2.0/24')
  t.after(() => { a.close(); b.close() })
  link(a, '10.244.1.0/24', b, '10.244.2.0/24')
  const lost = udpPacket('10.244.1.2', '10.244.9.9', 40, 7)
  const icmp = udpPacket('10.244.1.2', '10.244.9.9', 40, 8)
  icmp[9] = IPPROTO_ICMP
  setIpv4Checksum(icmp, 0)
  const fragment = udpPacket('10.244.1.2', '10.244.9.9', 40, 9)
  fragment.writeUInt16BE(0x0010, 6) // offset 128 bytes, a non-first fragment
  setIpv4Checksum(fragment, 0)
  const firstFragment = udpPacket('10.244.1.3', '10.244.9.9', 40, 10)
  firstFragment.writeUInt16BE(0x2000, 6) // MF, offset 0: the first fragment is answered
  setIpv4Checksum(firstFragment, 0)
  // one batch: answers and good traffic side by side
  inject(a, [lost, icmp, udpPacket('10.244.1.2', '10.244.2.3', 10, 11), fragment, firstFragment])
  const answers = await collect(a, 2)
  assert.equal(answers.length, 2)
  assert.equal((await collect(b, 1)).length, 1, 'the good packet in the same batch went through')
  const [ans, ans2] = answers
  assert.equal(ans.length, 20 + 8 + 20 + 8)
  assert.equal(ans[0], 0x45)
  assert.equal(ans.readUInt16BE(2), ans.length)
  assert.equal(ans[8], 8, 'TTL 8, as flannel')
  assert.equal(ans[9], IPPROTO_ICMP)
  assert.equal(ans.readUInt32BE(12), parseIp4('10.244.1.0'), 'from our TUN address')
  assert.equal(ans.readUInt32BE(16), parseIp4('10.244.1.2'), 'to the sender')
  assert.ok(verifyIpv4Checksum(ans, 0))
  assert.equal(ans[20], ICMP_DEST_UNREACH)
  assert.equal(ans[21], 0, 'code 0: net unreachable')
  assert.ok(verifyIcmpChecksum(ans, 20, ans.length - 20))
  assert.ok(ans.subarray(28).equals(lost.subarray(0, 28)), 'quotes the header and 8 bytes of payload')
  assert.equal(ans2.readUInt32BE(16), parseIp4('10.244.1.3'))
  assert.equal((await collect(a, 1, 100)).length, 0, 'nothing for the ICMP packet or the fragment')
  const s = a.dp.stats
  assert.equal(s[Drop.NO_ROUTE], 4)
  assert.equal(s[Count.UNREACHABLE_SENT], 2)
  assert.equal(s[Count.INSIDE_PACKETS], 1)
})

test('UDP: a full batch of unroutable packets gets a full batch of answers, and answering can be turned off', async (t) => {
  const a = node('10.244.1.0/24')
  t.after(() => a.close())
  const many = Array.from({ length: 64 }, (_, i) => udpPacket('10.244.1.2', `10.244.200.${i}`, 16, i))
  inject(a, many)
  const got = await collect(a, 64)
  assert.equal(got.length, 64)
  got.forEach((g, i) => assert.equal(g.readUInt32BE(28 + 16), parseIp4(`10.244.200.${i}`), `answer ${i} quotes its own offender`))
  a.dp.inside.answerUnreachable(0)
  inject(a, [udpPacket('10.244.1.2', '10.244.9.9', 16)])
  assert.equal((await collect(a, 1, 100)).length, 0)
  assert.equal(a.dp.stats[Count.UNREACHABLE_SENT], 64)
  assert.equal(a.dp.stats[Drop.NO_ROUTE], 65)
})

test('UDP outside drops, each counted by reason: not an IP packet, truncated, no lease, not for us; good packets still pass', async (t) => {
  const b = node('10.244.2.0/24')
  const good = dgram.createSocket('udp4')
  const stranger = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => good.bind(0, '127.0.0.1', resolve))
  await new Promise<void>((resolve) => stranger.bind(0, '127.0.0.2', resolve))
  t.after(() => { b.close(); good.close(); stranger.close() })
  b.fdb.set(parseCidr('10.244.1.0/24'), LOOPBACK, undefined, good.address().port)
  const send = (s: dgram.Socket, buf: Buffer): Promise<void> => new Promise((resolve, reject) => s.send(buf, b.port, '127.0.0.1', (err) => err ? reject(err) : resolve()))
  const ok = udpPacket('10.244.1.2', '10.244.2.3', 20, 5)
  const notIp = Buffer.from('hello from something that is not weft') // 'h': version nibble 6 (an HTTP 'G' would read as 4)
  await send(stranger, ok)
  await send(good, notIp)
  await send(good, ok.subarray(0, 12))
  await send(good, udpPacket('10.244.1.2', '10.244.3.3', 20))
  await send(good, Buffer.concat([ok.subarray(0, 20), Buffer.alloc(4)])) // total length says 48, 24 came
  await send(good, ok)
  const got = await collect(b, 1)
  assert.equal(got.length, 1)
  assert.ok(got[0].equals(aged(ok, 1)))
  await waitFor(() => {
    const s = b.dp.stats
    assert.equal(s[Drop.UNKNOWN_SOURCE], 1)
    assert.equal(s[Drop.NOT_IPV4], 1)
    assert.equal(s[Reason.TRUNCATED], 1)
    assert.equal(s[Drop.NOT_FOR_US], 1)
    assert.equal(s[Reason.BAD_TOTAL_LENGTH], 1)
    return true
  }, { what: 'every drop counted', intervalMs: 5 })
})
