// The IP-in-IP pipeline end to end on loopback: two nodes, each a real
// Pipeline over an in-memory TUN and a raw protocol-4 socket bound to its
// own loopback address (127.0.0.1, 127.0.0.2), so each receives only what is
// sent to it. Raw sockets need CAP_NET_RAW: skipped without root.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseCidr } from '../../src/packet/net'
import { Fdb } from '../../src/dataplane/fdb'
import { IpipEncap } from '../../src/backend/ipip/encap'
import { Pipeline } from '../../src/dataplane/pipeline'
import { Count, Drop } from '../../src/dataplane/stats'
import { constants, openRaw4, packetPair, PacketBatch, PeerTable } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { parseIp4 } from '../../src/packet/ip'
import { Reason } from '../../src/packet/reason'
import { writeIpv4Header, IPPROTO_IPIP, IPPROTO_UDP } from '../../src/packet/ipv4'
import { tunSkipReason } from '../../lab/skip'
import { collect, inject, udpPacket } from '../dataplane/helpers'
import { waitFor } from '../../lab/wait'

const skip = tunSkipReason()
const A = '127.0.0.1'
const B = '127.0.0.2'

interface Node {
  pipeline: Pipeline
  fdb: Fdb
  wire: PacketIo
  wireRx: PacketBatch
  wireTx: PacketBatch
  close: () => void
}

function node (addr: string, subnet: string, mtu = 1480): Node {
  const [tun, wire] = packetPair(64)
  const raw = openRaw4({ protocol: constants.IPPROTO_IPIP, addr: parseIp4(addr), batch: 64 })
  const fdb = new Fdb({ network: parseCidr('10.244.0.0/16'), subnetLen: 24, port: 0 })
  const pipeline = new Pipeline({ tun, sock: raw, fdb, encap: new IpipEncap(), mtu, batch: 64, onFatal: (w, e) => { throw new Error(`${w} fatal errno ${e}`) } })
  const own = parseCidr(subnet)
  pipeline.outside.setOwnSubnet(own.ip, own.prefixLen)
  const wireRx = new PacketBatch({ size: 64, slotSize: 2048 })
  const wireTx = new PacketBatch({ size: 64, slotSize: 2048 })
  wire.receiveInto(wireRx)
  wire.sendFrom(wireTx)
  pipeline.start()
  return { pipeline, fdb, wire, wireRx, wireTx, close: () => { pipeline.close(); wire.close() } }
}

/** A raw protocol-4 socket bound to `from`, sending payloads (the kernel adds the outer header) to `to`. */
function rawSender (from: string): { send: (to: string, payloads: Buffer[]) => void, io: PacketIo, rx: PacketBatch } {
  const io = openRaw4({ protocol: constants.IPPROTO_IPIP, addr: parseIp4(from), batch: 16 })
  const tx = new PacketBatch({ size: 16, slotSize: 2048 })
  const rx = new PacketBatch({ size: 16, slotSize: 2048 })
  const peers = new PeerTable(1)
  io.sendFrom(tx, peers)
  io.receiveInto(rx)
  return {
    io,
    rx,
    send: (to, payloads) => {
      peers.set(0, parseIp4(to), 0)
      payloads.forEach((p, i) => { p.copy(tx.slab, tx.offsets[i]); tx.lengths[i] = p.length; tx.dests[i] = 0 })
      assert.equal(io.send(payloads.length), payloads.length)
    }
  }
}

test('IP-in-IP: a packet from a pod on A reaches B\'s TUN byte for byte (TTL untouched), and back', { skip }, async (t) => {
  const a = node(A, '10.244.1.0/24')
  const b = node(B, '10.244.2.0/24')
  t.after(() => { a.close(); b.close() })
  a.fdb.set(parseCidr('10.244.2.0/24'), parseIp4(B), undefined)
  b.fdb.set(parseCidr('10.244.1.0/24'), parseIp4(A), undefined)
  const there = [udpPacket('10.244.1.2', '10.244.2.3', 100, 1), udpPacket('10.244.1.2', '10.244.2.4', 1452, 2)]
  inject(a, there)
  const got = await collect(b, 2)
  assert.equal(got.length, 2)
  assert.ok(got[0].equals(there[0]))
  assert.ok(got[1].equals(there[1]), 'a packet of the full MTU (1480) fits')
  const back = udpPacket('10.244.2.3', '10.244.1.2', 64, 3)
  inject(b, [back])
  assert.ok((await collect(a, 1))[0].equals(back))
  assert.equal(a.pipeline.stats[Count.INSIDE_PACKETS], 2)
  assert.equal(b.pipeline.stats[Count.OUTSIDE_PACKETS], 2)
  assert.equal(a.pipeline.stats[Count.OUTSIDE_PACKETS], 1)
})

test('IP-in-IP on the wire: outer IPv4 protocol 4 from our address to the peer\'s, the inner packet its whole payload', { skip }, async (t) => {
  const a = node(A, '10.244.1.0/24')
  const sniff = rawSender('127.0.0.3')
  t.after(() => { a.close(); sniff.io.close() })
  a.fdb.set(parseCidr('10.244.3.0/24'), parseIp4('127.0.0.3'), undefined)
  const p = udpPacket('10.244.1.2', '10.244.3.9', 32, 9)
  inject(a, [p])
  const k = await waitFor(() => sniff.io.read(), { what: 'the tunnelled packet at 127.0.0.3', timeoutMs: 5000, intervalMs: 5 })
  assert.equal(k, 1)
  const d = sniff.rx.slab.subarray(sniff.rx.offsets[0], sniff.rx.offsets[0] + sniff.rx.lengths[0])
  assert.equal(d[0], 0x45, 'outer IPv4, no options')
  assert.equal(d[9], IPPROTO_IPIP)
  assert.equal(d.readUInt16BE(2), 20 + p.length)
  assert.deepEqual([...d.subarray(12, 16)], [127, 0, 0, 1])
  assert.deepEqual([...d.subarray(16, 20)], [127, 0, 0, 3])
  assert.ok(d.subarray(20).equals(p))
})

test('IP-in-IP decap: each malformed outer header or inner packet has its reason', () => {
  const e = new IpipEncap()
  const inner = udpPacket('10.244.1.2', '10.244.2.3', 8)
  const outer = (o: { ihl?: number, proto?: number, total?: number, inner?: Buffer } = {}): Buffer => {
    const ihl = o.ihl ?? 5
    const body = o.inner ?? inner
    const b = Buffer.alloc(ihl * 4 + body.length)
    writeIpv4Header(b, 0, 0, o.total ?? b.length, 1, 0, 64, o.proto ?? IPPROTO_IPIP, parseIp4(A), parseIp4(B))
    b[0] = 0x40 | (ihl & 15)
    body.copy(b, ihl * 4)
    return b
  }
  assert.equal(e.decap(outer(), 0, outer().length, 0), 20)
  const opts = outer({ ihl: 6 })
  assert.equal(e.decap(opts, 0, opts.length, 0), 24, 'outer options are skipped')
  assert.equal(e.decap(outer(), 0, 12, 0), -Reason.TRUNCATED, 'shorter than an IPv4 header')
  assert.equal(e.decap(outer({ ihl: 15, inner: Buffer.alloc(0) }), 0, 40, 0), -Reason.TRUNCATED, 'the header claims more than we have')
  assert.equal(e.decap(outer({ ihl: 4 }), 0, 48, 0), -Reason.BAD_IHL)
  const v6 = outer()
  v6[0] = 0x65
  assert.equal(e.decap(v6, 0, v6.length, 0), -Reason.BAD_VERSION)
  assert.equal(e.decap(outer({ proto: IPPROTO_UDP }), 0, outer().length, 0), -Drop.WRONG_PROTOCOL)
  assert.equal(e.decap(outer({ total: 999 }), 0, outer().length, 0), -Reason.BAD_TOTAL_LENGTH)
  assert.equal(e.decap(outer({ inner: Buffer.alloc(0) }), 0, 20, 0), -Reason.TRUNCATED, 'nothing inside')
  const innerV6 = Buffer.from(inner)
  innerV6[0] = 0x60
  assert.equal(e.decap(outer({ inner: innerV6 }), 0, outer().length, 0), -Drop.NOT_IPV4)
  assert.equal(e.encap(inner, 64, inner.length, 0), 64, 'nothing to write on the way out')
})

test('IP-in-IP outside drops, each counted by reason, while good packets still pass', { skip }, async (t) => {
  const b = node(B, '10.244.2.0/24')
  const peer = rawSender(A)
  const stranger = rawSender('127.0.0.9')
  t.after(() => { b.close(); peer.io.close(); stranger.io.close() })
  b.fdb.set(parseCidr('10.244.1.0/24'), parseIp4(A), undefined)
  const good = udpPacket('10.244.1.2', '10.244.2.3', 20, 5)
  const v6 = Buffer.alloc(48)
  v6[0] = 0x60
  stranger.send(B, [good])
  peer.send(B, [
    good.subarray(0, 10), // inner truncated
    v6, // inner not IPv4
    udpPacket('10.244.1.2', '10.244.3.3', 20), // inner not for us
    udpPacket('10.244.1.2', '10.244.2.3', 1500), // inner larger than our MTU
    good
  ])
  const got = await collect(b, 1)
  assert.equal(got.length, 1)
  assert.ok(got[0].equals(good))
  await waitFor(() => {
    const s = b.pipeline.stats
    assert.equal(s[Drop.UNKNOWN_SOURCE], 1)
    assert.equal(s[Reason.TRUNCATED], 1)
    assert.equal(s[Drop.NOT_IPV4], 1)
    assert.equal(s[Drop.NOT_FOR_US], 1)
    assert.equal(s[Drop.TOO_BIG], 1)
    return true
  }, { what: 'every drop counted', intervalMs: 5 })
  assert.equal(b.pipeline.outside.unknownSources[0], parseIp4('127.0.0.9'), 'the stranger is remembered for the log')
})
