// The IPv6 path allocates nothing per packet: a few hundred thousand
// segments through two real IPv6 Pipelines (udp6 sockets on ::1, Fdb6
// lookups and sender checks, the inner IPv6 checks, the source check) with
// every offload on (TCPv6 and USO super-packets read with vnet headers and
// cut by the addon, UDP_SEGMENT/UDP_GRO over IPv6, TCPv6/UDP coalesced back
// into GSO_TCPV6/UDP_L4 writes, VXLAN RCO) cause no more young-generation
// GCs than the same loop with one small packet per turn (alloc-rounds.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import { Count, Drop } from '../../src/dataplane/stats'
import { probeOffloads } from '../../src/native'
import { allocRounds, ipv6Turn } from './alloc-rounds'
import { ALL_OFFLOADS } from './helpers'
import { link6, node6 } from './helpers6'
import type { TestNode6 } from './helpers6'

const offloads = probeOffloads()
const skip = offloads.udpGso && offloads.udpGro ? undefined : 'the kernel lacks UDP GSO or UDP GRO'

const MTU = 1430
/** inner MSS with TCP timestamps: MTU - 40 - 32 */
const MSS = MTU - 72

function offloadNode (subnet: string, mac: string): TestNode6 {
  return node6(subnet, mac, { ...ALL_OFFLOADS, mtu: MTU })
}

test('300,000 IPv6 segments through two pipelines with TSO6, USO, UDP GSO/GRO over IPv6 and TUN coalescing cause no more GCs than one small packet per turn', { skip, timeout: 30_000 }, async (t) => {
  const a = offloadNode('fc00:0:0:1::/64', '02:00:00:00:00:0a')
  const b = offloadNode('fc00:0:0:2::/64', '02:00:00:00:00:0b')
  t.after(() => { a.close(); b.close() })
  link6(a, b)
  const { packets, segmentsPerTurn, small } = ipv6Turn(MSS)
  const N = 3700
  let start = 0
  const { without, withPackets } = await allocRounds(t, { a, b }, packets, small, N, () => { start = b.pipeline.stats[Count.OUTSIDE_PACKETS] })
  const segments = b.pipeline.stats[Count.OUTSIDE_PACKETS] - start
  const aSnap = a.pipeline.snapshot()
  const bSnap = b.pipeline.snapshot()
  const semi = (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 2
  t.diagnostic(`${segments} of ${N * segmentsPerTurn} segments crossed; GCs over ${N} turns: ${without.gcs} baseline, ${withPackets.gcs} with traffic; heap ${without.heap} B / ${withPackets.heap} B; ` +
    `A: ${aSnap.tun.rxSuperPackets} super-packets read, ${aSnap.sock.txSegmented} cut; B: ${bSnap.sock.rxGroSegments} GRO segments, ${bSnap.counters.outside_super_packets} super-packets written; drops A ${JSON.stringify(aSnap.drops)} B ${JSON.stringify(bSnap.drops)}`)
  assert.ok(segments >= 295_000, `${segments} segments crossed`)
  assert.ok(aSnap.sock.txSegmented >= 66 * N, 'A cut super-packets into segments')
  assert.ok(bSnap.sock.rxGroSegments >= 60 * N, 'B read with UDP_GRO')
  assert.ok(bSnap.counters.outside_super_packets >= 3 * N, 'B wrote TCPv6 and UDP super-packets')
  assert.equal(b.pipeline.stats[Drop.BAD_INNER_CHECKSUM], 0)
  assert.ok(withPackets.gcs <= without.gcs + 1, `packets added ${withPackets.gcs - without.gcs} GCs: about ${Math.round(((withPackets.gcs - without.gcs) * semi) / segments)} bytes per segment`)
  assert.ok(withPackets.heap - without.heap < 1 << 20, `the heap grew by ${withPackets.heap - without.heap} B more with the traffic`)
})
