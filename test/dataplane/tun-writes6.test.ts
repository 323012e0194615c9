// Userspace GRO into the TUN for IPv6 (tun-writes.ts's *6 methods): TCPv6
// segments of one flow become one GSO_TCPV6 super-packet; a JS reference
// cuts it again as the kernel's TSO would (segments of gso_size, PSH on the
// last only, each checksum finished over the IPv6 pseudo-header), which must
// give back exactly the segments that went in. Anything else is written as
// it is. The "TUN" is one end of a SOCK_SEQPACKET pair, read back byte for byte.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Count } from '../../src/dataplane/stats'
import { GSO_NONE, GSO_TCPV6, GSO_UDP_L4, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from '../../src/native/vnet'
import { probeOffloads } from '../../src/native'
import { Drop } from '../../src/dataplane/stats'
import { collect, inject } from './helpers'
import { link6, node6 } from './helpers6'
import { fold, onesSum } from '../../src/packet/checksum'
import { pseudoHeaderSum6At } from '../../src/packet/ipv6'
import { packet6, tcpBytes, udpBytes, icmp6Bytes } from '../packet/v6'
import { parseWritten, tunRig, vxlanSender } from './tun-rig'
import type { TunRig, Vnet, Written as Written4 } from './tun-rig'

type Written = Written4 & { vnet: Vnet }

function harness (uso = false): Omit<TunRig, 'flush'> & { put: (kind: 'tcp6' | 'udp6' | 'single6' | 'super', p: Buffer, partial?: boolean, mss?: number) => void, flush: () => Written[] } {
  const r = tunRig(true, VNET_F_DATA_VALID, uso)
  const { writes, place } = r
  return {
    ...r,
    put: (kind, p, partial = false, mss = 0) => {
      const off = place(p)
      if (kind === 'tcp6') writes.tcp6(off, p.length, partial)
      else if (kind === 'udp6') writes.udp6(off, p.length, partial)
      else if (kind === 'single6') writes.single6(off, p.length, partial)
      else writes.superTcp6(off, p.length, mss)
    },
    // with vnet every write has its header
    flush: () => r.flush() as Written[]
  }
}

const TS = Buffer.from([1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78])

function seg (seq: number, payload: number, o: { flags?: number, sport?: number, hop?: number, flow?: number, options?: Buffer, dst?: string } = {}): Buffer {
  return packet6({ nh: 6, l4: tcpBytes({ seq, payload, flags: o.flags, sport: o.sport, options: o.options ?? TS, tag: seq & 255 }), hop: o.hop, flow: o.flow, dst: o.dst, checksum: true })
}

/** The kernel's TSO, the plain way: cut after the headers into gso_size pieces, each a whole segment with its checksum finished. */
function resegment (w: Written): Buffer[] {
  const ip = w.ip
  const hdr = w.vnet.hdrLen
  const thl = hdr - 40
  const total = ip.length
  const out: Buffer[] = []
  let seq = ip.readUInt32BE(44)
  for (let at = hdr; at < total; at += w.vnet.gsoSize) {
    const n = Math.min(w.vnet.gsoSize, total - at)
    const s = Buffer.concat([ip.subarray(0, hdr), ip.subarray(at, at + n)])
    s.writeUInt16BE(thl + n, 4)
    s.writeUInt32BE(seq >>> 0, 44)
    seq += n
    if (at + n < total) s[53] &= ~0x08 // PSH on the last only
    s.writeUInt16BE(0, 56)
    s.writeUInt16BE(~fold(onesSum(s, 40, thl + n, pseudoHeaderSum6At(s, 0, 6, thl + n))) & 0xffff, 56)
    out.push(s)
  }
  return out
}

test('consecutive TCPv6 segments of one flow: one GSO_TCPV6 write whose resegmentation gives them back byte for byte', () => {
  const h = harness()
  try {
    const segs = [...[0, 1, 2, 3].map((i) => seg((0xfffff000 + i * 1000) >>> 0, 1000)), seg((0xfffff000 + 4000) >>> 0, 300, { flags: 0x18 })]
    segs.forEach((s) => h.put('tcp6', s))
    const w = h.flush()
    assert.equal(w.length, 1)
    assert.deepEqual(w[0].vnet, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_TCPV6, hdrLen: 40 + 32, gsoSize: 1000, csumStart: 40, csumOffset: 16 })
    assert.equal(w[0].ip.readUInt16BE(4), 32 + 4300, 'payload length = the sum')
    assert.equal(w[0].ip.readUInt16BE(56), fold(pseudoHeaderSum6At(w[0].ip, 0, 6, 32 + 4300)), 'checksum field: the pseudo-header sum (partial)')
    assert.equal(w[0].ip[53], 0x18, 'PSH from the last')
    assert.deepEqual(resegment(w[0]), segs)
    assert.equal(h.stats[Count.OUTSIDE_SUPER_PACKETS], 1)
    assert.equal(h.stats[Count.OUTSIDE_COALESCED], 5)
  } finally { h.close() }
})

for (const [what, odd] of [
  ['a gap in the sequence', seg(2001, 1000)],
  ['another flow label', seg(2000, 1000, { flow: 7 })],
  ['another hop limit', seg(2000, 1000, { hop: 63 })],
  ['another source port', seg(2000, 1000, { sport: 1 })],
  ['another destination', seg(2000, 1000, { dst: 'fc00:0:0:1::3' })],
  ['other options', seg(2000, 1000, { options: Buffer.alloc(12, 1) })],
  ['SYN', seg(2000, 1000, { flags: 0x12 })],
  ['a larger payload', seg(2000, 1001)]
] as const) {
  test(`a TCPv6 segment with ${what} starts a new write`, () => {
    const h = harness()
    try {
      const segs = [seg(0, 1000), seg(1000, 1000)]
      ;[...segs, odd].forEach((s) => h.put('tcp6', s))
      const w = h.flush()
      assert.equal(w.length, 2)
      assert.deepEqual(resegment(w[0]), segs)
      assert.deepEqual(w[1].vnet, { flags: VNET_F_DATA_VALID, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 })
      assert.ok(w[1].ip.equals(odd))
    } finally { h.close() }
  })
}

test('behind an extension header, or a fragment: written alone, without DATA_VALID (the socket checked nothing there)', () => {
  const h = harness()
  try {
    const ext = packet6({ nh: 6, l4: tcpBytes({ payload: 100 }), ext: [{ type: 60 }], checksum: true })
    const frag = packet6({ nh: 17, l4: udpBytes(100), ext: [{ type: 44, more: true }] })
    const icmp = packet6({ nh: 58, l4: icmp6Bytes(128), checksum: true })
    h.put('single6', ext)
    h.put('single6', frag)
    h.put('single6', icmp)
    const w = h.flush()
    assert.deepEqual(w.map((x) => x.vnet.flags), [0, 0, 0])
    assert.ok(w[0].ip.equals(ext) && w[1].ip.equals(frag) && w[2].ip.equals(icmp))
  } finally { h.close() }
})

test('a partial TCPv6 checksum (RCO) goes with NEEDS_CSUM at 40 + 16; a UDP one at 40 + 6', () => {
  const h = harness()
  try {
    const t = seg(0, 500, { flags: 0x18 })
    const u = packet6({ nh: 17, l4: udpBytes(100), checksum: true })
    h.put('tcp6', t, true)
    h.put('udp6', u, true)
    const w = h.flush()
    assert.deepEqual(w.map((x) => [x.vnet.flags, x.vnet.csumStart, x.vnet.csumOffset]), [[VNET_F_NEEDS_CSUM, 40, 16], [VNET_F_NEEDS_CSUM, 40, 6]])
  } finally { h.close() }
})

test('with TUN USO, UDP datagrams of one flow and size coalesce into one UDP_L4 write over IPv6', () => {
  const h = harness(true)
  try {
    const ds = [0, 1, 2].map((i) => packet6({ nh: 17, l4: udpBytes(1200, { tag: i }), checksum: true }))
    const last = packet6({ nh: 17, l4: udpBytes(700, { tag: 9 }), checksum: true })
    ;[...ds, last].forEach((d) => h.put('udp6', d))
    const w = h.flush()
    assert.equal(w.length, 1)
    assert.deepEqual(w[0].vnet, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_UDP_L4, hdrLen: 48, gsoSize: 1200, csumStart: 40, csumOffset: 6 })
    const ip = w[0].ip
    assert.equal(ip.readUInt16BE(4), 8 + 3 * 1200 + 700)
    assert.equal(ip.readUInt16BE(44), 8 + 3 * 1200 + 700, 'UDP length = the whole')
    assert.ok(ip.subarray(48).equals(Buffer.concat([...ds, last].map((d) => d.subarray(48)))))
  } finally { h.close() }
})

test('a TCPv6 super-packet that arrived whole goes as GSO_TCPV6 at the MSS given, its checksum partial again', () => {
  const h = harness()
  try {
    const big = seg(5, 5000)
    h.put('super', big, false, 1388)
    const w = h.flush()
    assert.deepEqual(w[0].vnet, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_TCPV6, hdrLen: 72, gsoSize: 1388, csumStart: 40, csumOffset: 16 })
    assert.equal(w[0].ip.readUInt16BE(56), fold(pseudoHeaderSum6At(w[0].ip, 0, 6, 5032)))
  } finally { h.close() }
})

// End to end: two IPv6 Pipelines over udp6 on ::1, each with an in-memory
// TUN that carries vnet headers.

const offloads = probeOffloads()
const offloadSkip = offloads.udpGso && offloads.udpGro ? undefined : 'the kernel lacks UDP GSO or UDP GRO'
const MTU = 1430
const MSS = MTU - 72

test('a TCPv6 TSO super-packet written into A\'s TUN comes out of B\'s TUN as one GSO_TCPV6 super-packet whose segments are the ones TSO makes', { skip: offloadSkip }, async (t) => {
  const off = { vnet: true, tso: true, gro: true, gso: true }
  const a = node6('fc00:0:0:1::/64', '02:00:00:00:00:0a', { mtu: MTU, offloads: off, rcvbuf: 8 << 20, wireSlot: 65600, wireTxSize: 8 })
  const b = node6('fc00:0:0:2::/64', '02:00:00:00:00:0b', { mtu: MTU, offloads: off, rcvbuf: 8 << 20, wireSlot: 65600, wireTxSize: 8 })
  t.after(() => { a.close(); b.close() })
  link6(a, b)
  const whole = packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::3', nh: 6, l4: tcpBytes({ seq: 0x7ffff000, flags: 0x18, options: TS, payload: 46 * MSS - 300 }), checksum: true })
  const partial = Buffer.from(whole)
  partial.writeUInt16BE(fold(pseudoHeaderSum6At(partial, 0, 6, partial.length - 40)), 56)
  const h = Buffer.alloc(VNET_HDR_LEN)
  writeVnetHdr(h, 0, VNET_F_NEEDS_CSUM, GSO_TCPV6, 72, MSS, 40, 16)
  inject(a, [Buffer.concat([h, partial])])
  const got = await collect(b, 1)
  assert.equal(got.length, 1)
  const w = parseWritten(got[0])
  assert.deepEqual(w.vnet, { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_TCPV6, hdrLen: 72, gsoSize: MSS, csumStart: 40, csumOffset: 16 })
  assert.ok(w.ip.subarray(72).equals(whole.subarray(72)), 'the same payload')
  assert.deepEqual(resegment(w), resegment({ vnet: w.vnet, ip: partial }), 'cut again, the segments TSO would have made of what A\'s pod sent')
  assert.equal(a.pipeline.snapshot().sock.txSegmented, 46)
  assert.equal(b.pipeline.stats[Count.OUTSIDE_COALESCED], 46)
  assert.equal(b.pipeline.stats[Drop.BAD_INNER_CHECKSUM], 0)
})

test('a TCPv6 segment corrupted on the wire is dropped as a bad inner checksum and the run is written around the gap', { skip: offloadSkip }, async (t) => {
  const off = { vnet: true, tso: true, gro: true }
  const b = node6('fc00:0:0:2::/64', '02:00:00:00:00:0b', { mtu: MTU, offloads: off, rcvbuf: 8 << 20, wireSlot: 65600, wireTxSize: 8 })
  t.after(() => b.close())
  const segs = [0, 1, 2, 3, 4, 5].map((i) => packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::3', nh: 6, l4: tcpBytes({ seq: 5000 + i * MSS, payload: MSS, options: TS, tag: i }), checksum: true }))
  const onWire = segs.map((s) => Buffer.from(s))
  onWire[3][200] ^= 0x20
  vxlanSender(t, b, 2048, true).send(onWire)
  const got = await collect(b, 2)
  assert.equal(got.length, 2)
  assert.deepEqual(resegment(parseWritten(got[0])), segs.slice(0, 3))
  assert.deepEqual(resegment(parseWritten(got[1])), segs.slice(4))
  assert.equal(b.pipeline.stats[Drop.BAD_INNER_CHECKSUM], 1)
})
