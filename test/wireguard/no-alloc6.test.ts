// The IPv6 WireGuard device's loops (weft-wg-v6) allocate nothing per
// packet: a few hundred thousand IPv6 segments between two nodes (the
// backend's real WgLoops over an Fdb6, in-memory TUNs and udp6 sockets on
// ::1, a session between them, every offload on: TCPv6 and USO super-packets
// read with vnet headers, cut and sealed by the addon, sent as UDP_SEGMENT
// runs over IPv6; UDP_GRO reads opened in place, the sender matched to the
// peer's endpoint handle word by word, inner checksums checked, coalesced
// back into GSO_TCPV6/UDP_L4 writes) cause no more young-generation GCs than
// one small packet per turn (test/dataplane/alloc-rounds.ts), and the heap
// does not grow.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import { Count, Drop } from '../../src/dataplane/stats'
import { probeOffloads } from '../../src/native'
import { WgDrop } from '../../src/wireguard/reasons'
import { allocRounds, ipv6Turn } from '../dataplane/alloc-rounds'
import { orderedKeyPairs } from '../dataplane/wireguard-helpers'
import { waitFor } from '../../lab/wait'
import { addPeer6, wgNode6 } from './node6'

const offloads = probeOffloads()
const skip = offloads.udpGso && offloads.udpGro ? undefined : 'the kernel lacks UDP GSO or UDP GRO'

/** flannel's 80 less on a 1500-byte underlay, as weft-wg-v6 gets it */
const MTU = 1420
/** inner MSS with TCP timestamps: MTU - 40 - 32 */
const MSS = MTU - 72

test('300,000 IPv6 segments through two WireGuard nodes (weft-wg-v6\'s loops) with TSO6, USO, UDP GSO/GRO over IPv6 and TUN coalescing cause no more GCs than one small packet per turn', { skip, timeout: 30_000 }, async (t) => {
  const [aKeys, bKeys] = orderedKeyPairs()
  const all = { vnet: true, tso: true, uso: true, gro: true, gso: true }
  const a = wgNode6('fc00:0:0:1::/64', aKeys, { mtu: MTU, offloads: all })
  const b = wgNode6('fc00:0:0:2::/64', bKeys, { mtu: MTU, offloads: all })
  t.after(async () => { await a.close(); await b.close() })
  const bIndex = addPeer6(a, b)
  const aIndex = addPeer6(b, a)
  await waitFor(() => a.loops.peerStatus(bIndex).session === true && b.loops.peerStatus(aIndex).session === true, { what: 'a session both ways', timeoutMs: 5000, intervalMs: 10 })
  assert.equal(a.loops.peerStatus(bIndex).endpoint, `[::1]:${b.port}`, 'the endpoint as wg writes an IPv6 one')

  const { packets, segmentsPerTurn, small } = ipv6Turn(MSS)
  const N = 3700
  let start = 0
  const { without, withPackets } = await allocRounds(t, { a, b }, packets, small, N, () => { start = b.loops.stats[Count.OUTSIDE_PACKETS] })
  const segments = b.loops.stats[Count.OUTSIDE_PACKETS] - start
  const aSnap = a.loops.snapshot() as { tun: Record<string, number>, sock: Record<string, number>, wireguard: { handshakes: number, family: number } }
  const bSnap = b.loops.snapshot() as { sock: Record<string, number>, counters: Record<string, number>, drops: Record<string, number>, wireguard: { handshakes: number, drops: Record<string, number> } }
  const semi = (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 2
  t.diagnostic(`${segments} of ${N * segmentsPerTurn} IPv6 segments crossed; GCs over ${N} turns: ${without.gcs} baseline, ${withPackets.gcs} with traffic; heap ${without.heap} B / ${withPackets.heap} B; ` +
    `A: ${aSnap.tun.rxSuperPackets} super-packets read, ${aSnap.sock.txGsoSegments} messages sent with UDP_SEGMENT; B: ${bSnap.sock.rxGroSegments} GRO segments, ${bSnap.counters.outside_super_packets} super-packets written; drops ${JSON.stringify(bSnap.drops)}, WireGuard drops ${JSON.stringify(bSnap.wireguard.drops)}`)
  assert.equal(aSnap.wireguard.family, 6)
  assert.ok(segments >= 295_000, `${segments} segments crossed`)
  assert.ok(aSnap.tun.rxSuperPackets >= 2 * N, 'A read super-packets')
  assert.ok(aSnap.sock.txGsoSegments >= 66 * N, 'A sent its same-size messages as UDP_SEGMENT runs over IPv6')
  assert.ok(bSnap.sock.rxGroSegments >= 60 * N, 'B read with UDP_GRO over IPv6')
  assert.ok(bSnap.counters.outside_super_packets >= 2 * N, 'B wrote TCPv6 and UDP super-packets')
  assert.equal(b.loops.stats[Drop.BAD_INNER_CHECKSUM], 0)
  assert.equal(b.loops.wgDrops[WgDrop.DECRYPT_FAILED] + b.loops.wgDrops[WgDrop.REPLAY], 0, 'every message opened, none twice')
  assert.equal(aSnap.wireguard.handshakes + bSnap.wireguard.handshakes, 2, 'one handshake, one session throughout')
  assert.equal(b.loops.endpoints6?.size, 1, 'one endpoint handle: the steady path interns nothing')
  assert.ok(withPackets.gcs <= without.gcs + 1, `packets added ${withPackets.gcs - without.gcs} GCs: about ${Math.round(((withPackets.gcs - without.gcs) * semi) / segments)} bytes per segment`)
  assert.ok(withPackets.heap - without.heap < 1 << 20, `the heap grew by ${withPackets.heap - without.heap} B more with the traffic`)
})
