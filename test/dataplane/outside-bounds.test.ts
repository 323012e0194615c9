// Defensive checks on the outside path that the kernel covers today (issue
// 17, item 7): a UDP_GRO message of more datagrams than the addon checks
// drops the unchecked rest instead of reusing another datagram's check bit,
// and a TCP header whose data offset is below 5 or runs past the packet never
// reaches the TUN. The outside loop alone, over fakes for the socket and the
// TUN's writes, and the flannel-UDP encapsulation (the payload is the packet).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Fdb } from '../../src/dataplane/fdb'
import { GRO_MAX_SEGMENTS, Outside } from '../../src/dataplane/outside'
import { Count, Drop, newStats } from '../../src/dataplane/stats'
import type { TunWrites } from '../../src/dataplane/tun-writes'
import { UdpEncap } from '../../src/backend/udp/encap'
import { parseCidr } from '../../src/packet/net'
import { PacketBatch } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { parseIp4 } from '../../src/packet/ip'
import { IPPROTO_TCP, writeIpv4Header } from '../../src/packet/ipv4'
import { Reason } from '../../src/packet/reason'
import { udpPacket } from './helpers'

const PEER = parseIp4('198.18.0.2')

function rig (): { outside: Outside, rx: PacketBatch, stats: Float64Array, written: string[] } {
  const fdb = new Fdb({ network: parseCidr('10.244.0.0/16'), subnetLen: 24, port: 8285 })
  fdb.set(parseCidr('10.244.2.0/24'), PEER, undefined)
  const rx = new PacketBatch({ size: 4, slotSize: 65536 })
  const stats = newStats()
  const written: string[] = []
  const writes = {
    tcp: () => written.push('tcp'),
    udp: () => written.push('udp'),
    single: () => written.push('single'),
    superTcp: () => written.push('superTcp'),
    send: () => {}
  } as unknown as TunWrites
  const sock = { receiveInto: () => {} } as unknown as PacketIo
  const outside = new Outside({ sock, rx, writes, fdb, encap: new UdpEncap(), stats, mtu: 1472, checked: true, onFatal: (e) => { throw new Error(`fatal ${e}`) }, checkSource: true })
  const own = parseCidr('10.244.1.0/24')
  outside.setOwnSubnet(own.ip, own.prefixLen)
  return { outside, rx, stats, written }
}

test(`a UDP_GRO message of more than ${GRO_MAX_SEGMENTS} datagrams: the checked ones pass, the rest are dropped as unchecked, none judged by another's bit`, () => {
  const { outside, rx, stats, written } = rig()
  const one = udpPacket('10.244.2.3', '10.244.1.2', 20)
  const count = GRO_MAX_SEGMENTS + 6
  for (let j = 0; j < count; j++) one.copy(rx.slab, rx.offsets[0] + j * one.length)
  rx.lengths[0] = count * one.length
  rx.segs[0] = one.length
  rx.addrs[0] = PEER >>> 0
  rx.bad[0] = 0
  rx.bad[1] = 0
  outside.onBatch(1)
  assert.equal(written.length, GRO_MAX_SEGMENTS)
  assert.equal(stats[Drop.BAD_INNER_CHECKSUM], 6)
  assert.equal(stats[Count.OUTSIDE_PACKETS], GRO_MAX_SEGMENTS)
})

function tcpPacket (doff: number, total = 60): Buffer {
  const b = Buffer.alloc(total)
  writeIpv4Header(b, 0, 0, total, 1, 0x4000, 64, IPPROTO_TCP, parseIp4('10.244.2.3'), parseIp4('10.244.1.2'))
  b[20 + 12] = doff << 4
  b[20 + 13] = 0x10
  return b
}

for (const [what, p] of [
  ['data offset 0', tcpPacket(0)],
  ['data offset 4', tcpPacket(4)],
  ['a header longer than the packet (data offset 15 in 60 bytes)', tcpPacket(15)],
  ['no room for a TCP header at all', tcpPacket(5, 30)]
] as const) {
  test(`a TCP packet with ${what} is dropped as bad_tcp_data_offset before the TUN`, () => {
    const { outside, rx, stats, written } = rig()
    p.copy(rx.slab, rx.offsets[0])
    rx.lengths[0] = p.length
    rx.segs[0] = 0
    rx.addrs[0] = PEER >>> 0
    outside.onBatch(1)
    assert.deepEqual(written, [])
    assert.equal(stats[Reason.BAD_TCP_DATA_OFFSET], 1)
  })
}

test('a TCP packet with a sound header passes, and so does a later fragment (it carries no TCP header)', () => {
  const { outside, rx, written } = rig()
  const frag = tcpPacket(0)
  frag[6] = 0x00
  frag[7] = 0x10 // offset 16 * 8 bytes
  for (const [i, p] of [tcpPacket(5), tcpPacket(8), frag].entries()) {
    p.copy(rx.slab, rx.offsets[i])
    rx.lengths[i] = p.length
    rx.segs[i] = 0
    rx.addrs[i] = PEER >>> 0
  }
  outside.onBatch(3)
  assert.equal(written.length, 3)
})
