// The offload path allocates nothing per packet either: a few hundred
// thousand segments through two real Pipelines with every offload on (TSO
// super-packets read with vnet headers, segmented in the addon behind
// UDP_SEGMENT, UDP_GRO reads, inner checksum checks, segments coalesced back
// into super-packets written with writev) cause no more young-generation
// garbage collections than the same loop without packets, and the heap does
// not grow.
//
// As in no-alloc.test.ts: the loop itself (promises, immediates) makes a
// little garbage per turn, so GCs are counted over the same number of turns
// twice, without and with packets, and at most one more is allowed. Garbage
// of even a few bytes per segment (300,000 x 8 B = 2.4 MB, several times new
// space) would add several.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { PerformanceObserver } from 'node:perf_hooks'
import v8 from 'node:v8'
import vm from 'node:vm'
import { parseCidr } from '../../src/ip/net'
import { Fdb } from '../../src/dataplane/fdb'
import { Pipeline } from '../../src/dataplane/pipeline'
import { Count, Drop } from '../../src/dataplane/stats'
import { VxlanEncap } from '../../src/dataplane/vxlan-encap'
import { GSO_TCPV4, GSO_UDP_L4, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from '../../src/dataplane/vnet'
import { openUdp4, packetPair, PacketBatch, probeOffloads } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { fold, pseudoHeaderSum4At } from '../../src/packet/checksum'
import { IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_DF, writeIpv4Header } from '../../src/packet/ipv4'
import { parseIp4 } from '../../src/packet/ip'
import { parseMac } from '../../src/packet/mac'
import { TCP_ACK, TCP_PSH, writeTcpHeader } from '../../src/packet/tcp'
import { writeUdpHeader } from '../../src/packet/udp'
import { udpPacket, LOOPBACK } from './helpers'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

const offloads = probeOffloads()
const skip = offloads.udpGso && offloads.udpGro ? undefined : 'the kernel lacks UDP GSO or UDP GRO'

const MTU = 1450
/** inner MSS with TCP timestamps */
const MSS = MTU - 52

interface OffloadNode { pipeline: Pipeline, fdb: Fdb, wire: PacketIo, wireTx: PacketBatch, port: number, mac: Buffer, subnet: string, close: () => void }

function offloadNode (subnet: string, mac: string): OffloadNode {
  const [tun, wire] = packetPair(64)
  const udp = openUdp4({ addr: LOOPBACK, port: 0, batch: 64, gro: true, rcvbuf: 8 << 20, sndbuf: 4 << 20 })
  const fdb = new Fdb({ network: parseCidr('10.244.0.0/16'), subnetLen: 24, port: 0 })
  const macBuf = parseMac(mac)
  const pipeline = new Pipeline({ tun, sock: udp.io, fdb, encap: new VxlanEncap(1, macBuf, fdb), mtu: MTU, batch: 64, offloads: { vnet: true, tso: true, gro: true }, onFatal: (w, e) => { throw new Error(`${w} fatal errno ${e}`) } })
  const own = parseCidr(subnet)
  pipeline.outside.setOwnSubnet(own.ip, own.prefixLen)
  const wireRx = new PacketBatch({ size: 64, slotSize: 65600 })
  const wireTx = new PacketBatch({ size: 32, slotSize: 65600 })
  wire.receiveInto(wireRx)
  wire.sendFrom(wireTx)
  pipeline.start()
  return { pipeline, fdb, wire, wireTx, port: udp.port, mac: macBuf, subnet, close: () => { pipeline.close(); wire.close() } }
}

/** [vnet header asking for TSO at MSS][IPv4 + TCP with timestamps + payload], the TCP checksum partial, as a TUN with TSO hands it over. */
function tsoSuperPacket (payload: number, sport: number): Buffer {
  const total = 52 + payload
  const b = Buffer.alloc(VNET_HDR_LEN + total)
  writeVnetHdr(b, 0, VNET_F_NEEDS_CSUM, GSO_TCPV4, 52, MSS, 20, 16)
  const ip = VNET_HDR_LEN
  writeIpv4Header(b, ip, 0, total, 1, IPV4_FLAG_DF, 64, IPPROTO_TCP, parseIp4('10.244.1.2'), parseIp4('10.244.2.3'))
  writeTcpHeader(b, ip + 20, sport, 5201, 1000, 1, TCP_ACK | TCP_PSH, 501)
  b[ip + 32] = 8 << 4
  Buffer.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]).copy(b, ip + 40)
  for (let i = 0; i < payload; i++) b[ip + 52 + i] = (i * 7 + sport) & 255
  const p = fold(pseudoHeaderSum4At(b, ip, IPPROTO_TCP, 32 + payload))
  b[ip + 36] = p >> 8
  b[ip + 37] = p & 255
  return b
}

/** A USO super-packet: IPv4 + UDP + payload, cut at `size`, the UDP checksum partial. */
function usoSuperPacket (payload: number, size: number): Buffer {
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
function plain (p: Buffer): Buffer {
  return Buffer.concat([Buffer.alloc(VNET_HDR_LEN), p])
}

test('300,000 segments through two pipelines with TSO, UDP GSO/GRO and TUN coalescing cause no more GCs than the loop without them', { skip, timeout: 60_000 }, async (t) => {
  const started = Date.now()
  const a = offloadNode('10.244.1.0/24', '02:00:00:00:00:0a')
  const b = offloadNode('10.244.2.0/24', '02:00:00:00:00:0b')
  t.after(() => { a.close(); b.close() })
  a.fdb.set(parseCidr(b.subnet), LOOPBACK, b.mac, b.port)
  b.fdb.set(parseCidr(a.subnet), LOOPBACK, a.mac, a.port)

  // What A's pods write each turn, placed once in A's "TUN" batch and sent again and again:
  // a TSO super-packet of 46 segments, a USO super-packet of 20 datagrams and
  // 16 plain same-size UDP packets (which A gathers into one UDP_SEGMENT send)
  const packets = [
    tsoSuperPacket(46 * MSS - 100, 40001),
    usoSuperPacket(20 * 1200, 1200),
    ...Array.from({ length: 16 }, (_, i) => plain(udpPacket('10.244.1.2', '10.244.2.5', 1000, i)))
  ]
  const segmentsPerTurn = 46 + 20 + 16
  packets.forEach((p, i) => {
    p.copy(a.wireTx.slab, a.wireTx.offsets[i])
    a.wireTx.lengths[i] = p.length
  })
  const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
  let short = 0
  const round = async (turns: number, send: boolean): Promise<void> => {
    for (let k = 0; k < turns; k++) {
      if (send && a.wire.send(packets.length) !== packets.length) short++
      await tick()
      await tick()
      while (b.wire.read() > 0);
    }
  }
  let gcs = 0
  const obs = new PerformanceObserver((list) => { gcs += list.getEntries().length })
  obs.observe({ entryTypes: ['gc'] })
  t.after(() => obs.disconnect())
  const counted = async (turns: number, send: boolean): Promise<{ gcs: number, heap: number }> => {
    gc()
    await tick()
    const heap = process.memoryUsage().heapUsed
    gcs = 0
    await round(turns, send)
    const n = gcs
    gc()
    return { gcs: n, heap: process.memoryUsage().heapUsed - heap }
  }

  await round(300, true) // warm up: JIT, inline caches, maps all settled
  const warm = Date.now()
  const N = 3700
  const start = b.pipeline.stats[Count.OUTSIDE_PACKETS]
  const sentBefore = a.pipeline.snapshot().sock.txPackets
  const without = await counted(N, false)
  const withPackets = await counted(N, true)
  const segments = b.pipeline.stats[Count.OUTSIDE_PACKETS] - start
  const aSnap = a.pipeline.snapshot()
  const bSnap = b.pipeline.snapshot()
  const semi = (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 2
  t.diagnostic(`${segments} segments of ${N * segmentsPerTurn} sent crossed (${aSnap.sock.txPackets - sentBefore} datagrams sent); GCs over ${N} turns: ${without.gcs} without packets, ${withPackets.gcs} with; heap after a GC: ${without.heap} B without, ${withPackets.heap} B with (new space ${semi} B per semispace)`)
  t.diagnostic(`A: ${aSnap.tun.rxSuperPackets} super-packets read, ${aSnap.sock.txSegmented} segments cut, ${aSnap.sock.txCoalesced} datagrams coalesced, ${aSnap.sock.txGsoSegments} sent with UDP_SEGMENT; ` +
    `B: ${bSnap.sock.rxGroSegments} GRO segments, ${bSnap.counters.outside_super_packets} super-packets written from ${bSnap.counters.outside_coalesced} segments, ${bSnap.tun.txWritev} writev; drops ${JSON.stringify(bSnap.drops)}; ${short} short sends into A's TUN; ` +
    `warm-up ${warm - started} ms, counted rounds ${Date.now() - warm} ms`)

  // the offloads really ran
  assert.ok(segments >= 295_000, `${segments} segments crossed`)
  assert.ok(aSnap.tun.rxSuperPackets >= 2 * N, 'A read super-packets')
  assert.ok(aSnap.sock.txSegmented >= 66 * N, 'A cut them into segments')
  assert.ok(aSnap.sock.txCoalesced >= 16 * N, 'A gathered same-size datagrams into UDP_SEGMENT sends')
  assert.ok(bSnap.sock.rxGroSegments >= 60 * N, 'B read with UDP_GRO')
  assert.ok(bSnap.counters.outside_super_packets >= N, 'B wrote super-packets')
  assert.ok(bSnap.tun.txWritev >= N, 'B gathered them with writev')
  assert.equal(b.pipeline.stats[Drop.BAD_INNER_CHECKSUM], 0)
  // and made no garbage
  assert.ok(withPackets.gcs <= without.gcs + 1, `packets added ${withPackets.gcs - without.gcs} GCs: about ${Math.round(((withPackets.gcs - without.gcs) * semi) / segments)} bytes per segment`)
  assert.ok(withPackets.heap - without.heap < 1 << 20, `the heap grew by ${withPackets.heap - without.heap} B more with packets`)
})
