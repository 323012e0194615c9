// The offload path allocates nothing per packet either: a few hundred
// thousand segments through two real Pipelines with every offload on (TSO
// and USO super-packets read with vnet headers, segmented in the addon behind
// UDP_SEGMENT, same-size datagrams gathered into UDP_SEGMENT sends, UDP_GRO
// reads, inner checksum checks, TCP segments and UDP datagrams coalesced back
// into super-packets written with writev; VXLAN remote checksum offload on,
// as it is between weft nodes by default) cause no more young-generation
// garbage collections than the same loop with one small packet per turn, and
// the heap does not grow.
//
// As in no-alloc.test.ts, GCs are counted over the same number of loop turns
// twice and at most one more is allowed with the traffic. Here the baseline
// turns carry one small packet each instead of none: the loop (promises,
// immediates) and every per-batch callback into JS then cost the same in
// both rounds, and only per-segment garbage can make the difference. Even a
// few bytes per segment (300,000 x 8 B = 2.4 MB, more than a 2 MB semispace)
// would add GCs; one small object per segment added 6 when tried.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import { parseCidr } from '../../src/packet/net'
import { Count, Drop } from '../../src/dataplane/stats'
import { GSO_TCPV4, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from '../../src/native/vnet'
import { probeOffloads } from '../../src/native'
import { fold, pseudoHeaderSum4At } from '../../src/packet/checksum'
import { IPPROTO_TCP, IPV4_FLAG_DF, writeIpv4Header } from '../../src/packet/ipv4'
import { parseIp4 } from '../../src/packet/ip'
import { TCP_ACK, TCP_PSH, writeTcpHeader } from '../../src/packet/tcp'
import { ALL_OFFLOADS, node, udpPacket, LOOPBACK } from './helpers'
import type { TestNode } from './helpers'
import { allocRounds, plain, usoSuperPacket } from './alloc-rounds'

const offloads = probeOffloads()
const skip = offloads.udpGso && offloads.udpGro ? undefined : 'the kernel lacks UDP GSO or UDP GRO'

const MTU = 1450
/** inner MSS with TCP timestamps */
const MSS = MTU - 52

function offloadNode (subnet: string, mac: string): TestNode {
  return node(subnet, mac, { ...ALL_OFFLOADS, mtu: MTU })
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

test('300,000 segments through two pipelines with TSO, USO, UDP GSO/GRO and TUN coalescing cause no more GCs than one small packet per turn', { skip, timeout: 20_000 }, async (t) => {
  const started = Date.now()
  const a = offloadNode('10.244.1.0/24', '02:00:00:00:00:0a')
  const b = offloadNode('10.244.2.0/24', '02:00:00:00:00:0b')
  t.after(() => { a.close(); b.close() })
  a.fdb.set(parseCidr(b.subnet), LOOPBACK, b.mac, b.port, true)
  b.fdb.set(parseCidr(a.subnet), LOOPBACK, a.mac, a.port, true)

  // What A's pods write each turn, placed once in A's "TUN" batch and sent again and again:
  // a TSO super-packet of 46 segments, a USO super-packet of 20 datagrams and
  // 16 plain same-size UDP packets (which A gathers into one UDP_SEGMENT send)
  const packets = [
    tsoSuperPacket(46 * MSS - 100, 40001),
    usoSuperPacket(20 * 1200, 1200),
    ...Array.from({ length: 16 }, (_, i) => plain(udpPacket('10.244.1.2', '10.244.2.5', 1000, i)))
  ]
  const segmentsPerTurn = 46 + 20 + 16
  // the baseline: one 100-byte UDP packet per turn, through the same loops and callbacks
  const small = plain(udpPacket('10.244.1.2', '10.244.2.6', 100, 1))
  const N = 3700
  let start = 0
  let sentBefore = 0
  const { without, withPackets, short, warm } = await allocRounds(t, { a, b }, packets, small, N, () => { start = b.pipeline.stats[Count.OUTSIDE_PACKETS]; sentBefore = a.pipeline.snapshot().sock.txPackets })
  const segments = b.pipeline.stats[Count.OUTSIDE_PACKETS] - start
  const aSnap = a.pipeline.snapshot()
  const bSnap = b.pipeline.snapshot()
  const semi = (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 2
  t.diagnostic(`${segments} segments of ${N * segmentsPerTurn} sent crossed (${aSnap.sock.txPackets - sentBefore} datagrams sent); GCs over ${N} turns: ${without.gcs} with one small packet per turn, ${withPackets.gcs} with ${segmentsPerTurn} segments; heap after a GC: ${without.heap} B, ${withPackets.heap} B (new space ${semi} B per semispace)`)
  t.diagnostic(`A: ${aSnap.tun.rxSuperPackets} super-packets read, ${aSnap.sock.txSegmented} segments cut, ${aSnap.sock.txCoalesced} datagrams coalesced, ${aSnap.sock.txGsoSegments} sent with UDP_SEGMENT; ` +
    `B: ${bSnap.sock.rxGroSegments} GRO segments, ${bSnap.counters.outside_super_packets} super-packets written from ${bSnap.counters.outside_coalesced} segments, ${bSnap.tun.txWritev} writev; drops ${JSON.stringify(bSnap.drops)}; ${short} short sends into A's TUN; ` +
    `warm-up ${warm - started} ms, counted rounds ${Date.now() - warm} ms`)

  // the offloads really ran
  assert.ok(segments >= 295_000, `${segments} segments crossed`)
  assert.ok(aSnap.tun.rxSuperPackets >= 2 * N, 'A read super-packets')
  assert.ok(aSnap.sock.txSegmented >= 66 * N, 'A cut them into segments')
  assert.ok(aSnap.sock.txCoalesced >= 16 * N, 'A gathered same-size datagrams into UDP_SEGMENT sends')
  assert.ok(bSnap.sock.rxGroSegments >= 60 * N, 'B read with UDP_GRO')
  // per turn: the TCP segments, the USO datagrams and the 16 plain datagrams each become one
  assert.ok(bSnap.counters.outside_super_packets >= 3 * N, 'B wrote TCP and UDP super-packets')
  assert.ok(bSnap.tun.txWritev >= N, 'B gathered them with writev')
  assert.equal(b.pipeline.stats[Drop.BAD_INNER_CHECKSUM], 0)
  assert.ok(aSnap.sock.txCsumPartial >= 66 * N && bSnap.counters.outside_partial_checksums >= 66 * N, 'segments crossed with remote checksum offload')
  // and made no garbage
  assert.ok(withPackets.gcs <= without.gcs + 1, `packets added ${withPackets.gcs - without.gcs} GCs: about ${Math.round(((withPackets.gcs - without.gcs) * semi) / segments)} bytes per segment`)
  assert.ok(withPackets.heap - without.heap < 1 << 20, `the heap grew by ${withPackets.heap - without.heap} B more with the traffic`)
})
