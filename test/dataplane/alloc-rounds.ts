// The measurement the no-allocation tests share: the same traffic sent again
// and again from A's "TUN" through the dataplane under test to B's, counting
// garbage collections over N turns of it against N turns of one small packet
// through the same loops and callbacks (the baseline: what the event loop and
// the test itself cost). Also the packets those tests send.
import v8 from 'node:v8'
import vm from 'node:vm'
import { PacketBatch } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { GSO_TCPV6, GSO_UDP_L4, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from '../../src/native/vnet'
import { fold, pseudoHeaderSum4At } from '../../src/packet/checksum'
import { IPPROTO_UDP, IPV4_FLAG_DF, writeIpv4Header } from '../../src/packet/ipv4'
import { parseIp4 } from '../../src/packet/ip'
import { writeUdpHeader } from '../../src/packet/udp'
import { pseudoHeaderSum6At } from '../../src/packet/ipv6'
import { packet6, tcpBytes, udpBytes } from '../packet/v6'
import { gcCounter, tick } from './gc'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

/** A USO super-packet: IPv4 + UDP + payload, cut at `size`, the UDP checksum partial. */
export function usoSuperPacket (payload: number, size: number): Buffer {
  const total = 28 + payload
  const b = Buffer.alloc(VNET_HDR_LEN + total)
  writeVnetHdr(b, 0, VNET_F_NEEDS_CSUM, GSO_UDP_L4, 28, size, 20, 6)
  const ip = VNET_HDR_LEN
  writeIpv4Header(b, ip, 0, total, 1, IPV4_FLAG_DF, 64, IPPROTO_UDP, parseIp4('10.244.1.2'), parseIp4('10.244.2.4'))
  writeUdpHeader(b, ip + 20, 40000, 7000, 8 + payload)
  for (let i = 0; i < payload; i++) b[ip + 28 + i] = (i * 11) & 255
  const p = fold(pseudoHeaderSum4At(b, ip, IPPROTO_UDP, 8 + payload))
  b[ip + 26] = p >> 8
  b[ip + 27] = p & 255
  return b
}

/** A plain packet with a vnet header that asks for nothing. */
export function plain (p: Buffer): Buffer {
  return Buffer.concat([Buffer.alloc(VNET_HDR_LEN), p])
}

export interface AllocSides {
  /** A's pods' side: what writes into A's TUN, and its batch */
  a: { wire: PacketIo, wireTx: PacketBatch }
  /** B's pods' side, drained after each turn */
  b: { wire: PacketIo }
}

export interface AllocFigures {
  without: { gcs: number, heap: number }
  withPackets: { gcs: number, heap: number }
  /** turns whose write into A's TUN was short */
  short: number
  /** when the counted rounds began (Date.now()) */
  warm: number
}

/**
 * Warm up, then count GCs over `turns` turns of one small packet and over
 * `turns` turns of `packets` (placed in A's batch once); `beforeTraffic`
 * runs just before the counted turns with traffic (read counters there).
 */
export async function allocRounds (t: { after: (fn: () => void) => void }, s: AllocSides, packets: readonly Buffer[], small: Buffer, turns: number, beforeTraffic: () => void): Promise<AllocFigures> {
  const { a, b } = s
  packets.forEach((p, i) => {
    p.copy(a.wireTx.slab, a.wireTx.offsets[i])
    a.wireTx.lengths[i] = p.length
  })
  const one = new PacketBatch({ size: 1, slotSize: 2048 })
  small.copy(one.slab, one.offsets[0])
  one.lengths[0] = small.length
  let short = 0
  const round = async (n: number, count: number): Promise<void> => {
    for (let k = 0; k < n; k++) {
      if (a.wire.send(count) !== count) short++
      await tick()
      await tick()
      while (b.wire.read() > 0);
    }
  }
  const gcs = gcCounter(t)
  const counted = async (n: number, tx: PacketBatch, count: number): Promise<{ gcs: number, heap: number }> => {
    a.wire.sendFrom(tx)
    gc()
    await tick()
    const heap = process.memoryUsage().heapUsed
    gcs.reset()
    await round(n, count)
    const c = gcs.count
    gc()
    return { gcs: c, heap: process.memoryUsage().heapUsed - heap }
  }
  // warm up both kinds of turn: JIT, inline caches, maps all settled
  await round(300, packets.length)
  a.wire.sendFrom(one)
  await round(100, 1)
  const warm = Date.now()
  // the first counted round sees one GC more whatever it carries (two
  // identical baseline rounds counted 5, then 6): one throw-away turn first
  await counted(1, one, 1)
  const without = await counted(turns, one, 1)
  beforeTraffic()
  const withPackets = await counted(turns, a.wireTx, packets.length)
  return { without, withPackets, short, warm }
}

/** A super-packet as a TUN with TSO6/USO hands it over: vnet header, IPv6, TCP (or UDP), checksum partial. */
export function superPacket6 (l4: Buffer, nh: number, size: number): Buffer {
  const p = packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::3', nh, l4 })
  const b = Buffer.concat([Buffer.alloc(VNET_HDR_LEN), p])
  const thl = nh === 6 ? (l4[12] >> 4) * 4 : 8
  writeVnetHdr(b, 0, VNET_F_NEEDS_CSUM, nh === 6 ? GSO_TCPV6 : GSO_UDP_L4, 40 + thl, size, 40, nh === 6 ? 16 : 6)
  b.writeUInt16BE(fold(pseudoHeaderSum6At(b, VNET_HDR_LEN, nh, l4.length)), VNET_HDR_LEN + 40 + (nh === 6 ? 16 : 6))
  return b
}

/**
 * One turn of IPv6 traffic from fc00:0:0:1::2 to fc00:0:0:2::/64 for the
 * no-allocation rounds (vxlan's and wireguard's IPv6 loops alike): a TCPv6
 * super-packet of 46 segments at `mss` with timestamps, a UDP one of 20,
 * 16 plain datagrams; and the small packet of the baseline.
 */
export function ipv6Turn (mss: number): { packets: Buffer[], segmentsPerTurn: number, small: Buffer } {
  const ts = Buffer.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2])
  return {
    packets: [
      superPacket6(tcpBytes({ sport: 40001, flags: 0x18, options: ts, payload: 46 * mss - 100 }), 6, mss),
      superPacket6(udpBytes(20 * 1200), 17, 1200),
      ...Array.from({ length: 16 }, (_, i) => plain(packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::5', nh: 17, l4: udpBytes(1000, { tag: i }), checksum: true })))
    ],
    segmentsPerTurn: 46 + 20 + 16,
    small: plain(packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::6', nh: 17, l4: udpBytes(100), checksum: true }))
  }
}
