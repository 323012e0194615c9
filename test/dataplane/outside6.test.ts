// The IPv6 outside loop alone, over fakes for the socket and the TUN's
// writes (as outside-bounds.test.ts does for IPv4): which write each inner
// packet becomes (tcp6/udp6 coalescing candidates, single6 behind extension
// headers or for a fragment, superTcp6 for a kernel peer's unsegmented
// TCPv6 super-packet), the source check against this node's own IPv6
// addresses, and GRO messages.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Fdb6 } from '../../src/dataplane/fdb6'
import { Outside } from '../../src/dataplane/outside'
import { Count, Drop, newStats } from '../../src/dataplane/stats'
import type { TunWrites } from '../../src/dataplane/tun-writes'
import { VxlanEncap } from '../../src/backend/vxlan/encap'
import { PacketBatch } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { ip6Words, parseCidr6, parseIp6 } from '../../src/packet/net6'
import { parseMac } from '../../src/packet/mac'
import { Reason } from '../../src/packet/reason'
import { icmp6Bytes, packet6, tcpBytes, udpBytes } from '../packet/v6'

const PEER = parseIp6('2001:2::3')
const OUR_MAC = parseMac('02:66:00:00:00:02')

function rig (checked: boolean): { outside: Outside, rx: PacketBatch, stats: Float64Array, written: string[], put: (inner: Buffer[], seg?: number) => void } {
  const fdb = new Fdb6({ network: parseCidr6('fc00::/48'), subnetLen: 64, port: 8472 })
  fdb.set(parseCidr6('fc00:0:0:1::/64'), PEER, parseMac('02:66:00:00:00:03'))
  const rx = new PacketBatch({ size: 4, slotSize: 65536 })
  const stats = newStats()
  const written: string[] = []
  const writes = {
    tcp6: (_ip: number, total: number) => written.push(`tcp6 ${total}`),
    udp6: (_ip: number, total: number) => written.push(`udp6 ${total}`),
    single6: (_ip: number, total: number) => written.push(`single6 ${total}`),
    superTcp6: (_ip: number, total: number, mss: number) => written.push(`superTcp6 ${total} ${mss}`),
    send: () => 0,
    pending: 0
  } as unknown as TunWrites
  const sock = { receiveInto: () => {}, setReading: () => {} } as unknown as PacketIo
  const outside = new Outside({ sock, rx, writes, fdb, encap: new VxlanEncap(1, OUR_MAC, fdb), stats, mtu: 1430, checked, onFatal: (e) => { throw new Error(`fatal ${e}`) }, checkSource: true })
  outside.setOwnSubnet6(parseCidr6('fc00:0:0:2::/64'))
  const put = (inner: Buffer[], seg = 0): void => {
    const frames = inner.map((p) => {
      const f = Buffer.alloc(22 + p.length)
      f[0] = 0x08
      f[6] = 1
      OUR_MAC.copy(f, 8)
      f.writeUInt16BE(0x86dd, 20)
      p.copy(f, 22)
      return f
    })
    const all = Buffer.concat(frames)
    all.copy(rx.slab, rx.offsets[0])
    rx.lengths[0] = all.length
    rx.segs[0] = seg
    rx.addrs6.set(ip6Words(PEER), 0)
    rx.bad[0] = 0
    rx.bad[1] = 0
    outside.onBatch(1)
  }
  return { outside, rx, stats, written, put }
}

const src = 'fc00:0:0:1::2'
const dst = 'fc00:0:0:2::3'

test('each inner IPv6 packet goes to the write that suits it', () => {
  const r = rig(true)
  r.put([packet6({ src, dst, nh: 6, l4: tcpBytes({ payload: 100 }), checksum: true })])
  r.put([packet6({ src, dst, nh: 17, l4: udpBytes(100), checksum: true })])
  r.put([packet6({ src, dst, nh: 58, l4: icmp6Bytes(128), checksum: true })])
  r.put([packet6({ src, dst, nh: 6, l4: tcpBytes({ payload: 10 }), ext: [{ type: 60 }], checksum: true })])
  r.put([packet6({ src, dst, nh: 17, l4: udpBytes(100), ext: [{ type: 44, more: true }] })])
  r.put([packet6({ src, dst, nh: 59, l4: Buffer.alloc(0) })])
  assert.deepEqual(r.written, ['tcp6 160', 'udp6 148', 'single6 56', 'single6 78', 'single6 156', 'single6 40'])
  assert.equal(r.stats[Count.OUTSIDE_IPV6_FRAGMENTS], 1)
  assert.equal(r.stats[Count.OUTSIDE_PACKETS], 6)
})

test('a TCPv6 packet beyond the MTU (a kernel peer\'s unsegmented TSO) goes as a super-packet at our MSS when checked; else, or behind an extension header, it is too big', () => {
  const big = packet6({ src, dst, nh: 6, l4: tcpBytes({ payload: 5000, options: Buffer.alloc(12, 1) }), checksum: true })
  const checked = rig(true)
  checked.put([big])
  assert.deepEqual(checked.written, [`superTcp6 ${big.length} ${1280 - 72}`], 'segments declared at 1280 bytes: fits any pod, whatever its MTU')
  assert.equal(checked.stats[Count.OUTSIDE_UNSEGMENTED], 1)
  const unchecked = rig(false)
  unchecked.put([big])
  unchecked.put([packet6({ src, dst, nh: 6, l4: tcpBytes({ payload: 5000 }), ext: [{ type: 60 }], checksum: true })])
  unchecked.put([packet6({ src, dst, nh: 17, l4: udpBytes(1500), checksum: true })])
  assert.deepEqual(unchecked.written, [])
  assert.equal(unchecked.stats[Drop.TOO_BIG], 3)
})

test('the source check: this node\'s own IPv6 addresses and ::1 are refused from outside the network, others pass', () => {
  const r = rig(true)
  r.outside.setLocalAddresses6([parseIp6('2001:db8::9'), parseIp6('2001:2::1'), parseIp6('fd00::1')])
  for (const s of ['2001:2::1', '2001:db8::9', 'fd00::1', '::1', '2001:db8::8', 'fd00::2', '2001:2::5']) {
    r.put([packet6({ src: s, dst, nh: 17, l4: udpBytes(8), checksum: true })])
  }
  assert.equal(r.stats[Drop.SPOOFED_SOURCE], 4)
  assert.equal(r.written.length, 3)
})

test('a UDP_GRO message: each datagram judged, a bad inner checksum bit drops only its own', () => {
  const r = rig(true)
  const p = packet6({ src, dst, nh: 17, l4: udpBytes(200), checksum: true })
  const frame = 22 + p.length
  r.rx.bad[0] = 0
  r.put([p, p, p, p], frame)
  assert.equal(r.written.length, 4)
  // again with datagram 2's bit set
  const r2 = rig(true)
  const frames = [p, p, p].map((x) => Buffer.concat([Buffer.from('0800000000000100', 'hex'), OUR_MAC, Buffer.alloc(6), Buffer.from([0x86, 0xdd]), x]))
  Buffer.concat(frames).copy(r2.rx.slab, r2.rx.offsets[0])
  r2.rx.lengths[0] = frames.length * frame
  r2.rx.segs[0] = frame
  r2.rx.addrs6.set(ip6Words(PEER), 0)
  r2.rx.bad[0] = 0b100
  r2.rx.bad[1] = 0
  r2.outside.onBatch(1)
  assert.equal(r2.written.length, 2)
  assert.equal(r2.stats[Drop.BAD_INNER_CHECKSUM], 1)
  assert.equal(r2.stats[Reason.TRUNCATED], 0)
})
