// The WireGuard backend's loops allocate nothing per packet: a few hundred
// thousand segments between two nodes (the backend's real WgLoops over
// in-memory TUNs and loopback UDP sockets, a session between them, every
// offload on: TSO and USO super-packets read with vnet headers, segmented and
// sealed by the addon into messages of equal size, sent as UDP_SEGMENT runs;
// UDP_GRO reads opened in place, inner checksums checked, TCP segments and
// UDP datagrams coalesced back into super-packets written with writev) cause
// no more young-generation garbage collections than the same loop with one
// small packet per turn, and the heap does not grow.
//
// The method is no-alloc-offload.test.ts's: GCs counted over the same number
// of loop turns twice, at most one more allowed with the traffic; the
// baseline turns carry one small packet each, so that the loop and every
// per-batch callback into JS cost the same in both rounds and only
// per-packet garbage can make the difference.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import { Count, Drop } from '../../src/dataplane/stats'
import { openUdp4, probeOffloads } from '../../src/native'
import { WgDrop } from '../../src/wireguard/reasons'
import { LOOPBACK, udpPacket } from './helpers'
import { addWgPeer, orderedKeyPairs, tsoSuperPacket, wgNode } from './wireguard-helpers'
import type { WgTestNode } from './wireguard-helpers'
import { allocRounds, plain, usoSuperPacket } from './alloc-rounds'
import { waitFor } from '../../lab/wait'

const offloads = probeOffloads()
const skip = offloads.udpGso && offloads.udpGro ? undefined : 'the kernel lacks UDP GSO or UDP GRO'

/** The pods' MTU on a 1500-byte underlay, as flannel's wireguard backend gives it */
const MTU = 1420
/** inner MSS with TCP timestamps */
const MSS = MTU - 52

function offloadNode (subnet: string, keys: ReturnType<typeof orderedKeyPairs>[number]): WgTestNode {
  const udp = openUdp4({ addr: LOOPBACK, port: 0, batch: 64, gro: true, rcvbuf: 8 << 20, sndbuf: 4 << 20 })
  return wgNode(subnet, { sock: udp.io, port: udp.port, keys, mtu: MTU, offloads: { vnet: true, tso: true, uso: true, gro: true, gso: true }, wireSlot: 65600, wireTxSize: 32 })
}

test('300,000 segments through two WireGuard nodes with TSO, USO, UDP GSO/GRO and TUN coalescing, sealed and opened by the addon, cause no more GCs than one small packet per turn', { skip, timeout: 30_000 }, async (t) => {
  const started = Date.now()
  const [aKeys, bKeys] = orderedKeyPairs()
  const a = offloadNode('10.244.1.0/24', aKeys)
  const b = offloadNode('10.244.2.0/24', bKeys)
  t.after(async () => { await a.close(); await b.close() })
  // each the other's peer, as their leases would make them; a (the higher key) starts the handshake
  const aIndex = addWgPeer(b, a, LOOPBACK)
  const bIndex = addWgPeer(a, b, LOOPBACK)
  await waitFor(() => a.loops.peerStatus(bIndex).session === true && b.loops.peerStatus(aIndex).session === true, { what: 'a session both ways', timeoutMs: 5000, intervalMs: 10 })

  // What A's pods write each turn, placed once in A's "TUN" batch and sent again and again:
  // a TSO super-packet of 46 segments, a USO super-packet of 20 datagrams and
  // 16 plain same-size UDP packets (sealed into same-size messages, one UDP_SEGMENT send)
  const packets = [
    tsoSuperPacket('10.244.1.2', '10.244.2.3', 46 * MSS - 100, MSS),
    usoSuperPacket(20 * 1200, 1200),
    ...Array.from({ length: 16 }, (_, i) => plain(udpPacket('10.244.1.2', '10.244.2.5', 1000, i)))
  ]
  const segmentsPerTurn = 46 + 20 + 16
  // the baseline: one 100-byte UDP packet per turn, through the same loops and callbacks
  const small = plain(udpPacket('10.244.1.2', '10.244.2.6', 100, 1))
  const N = 3700
  const aSock = (): Record<string, number> => (a.loops.snapshot() as { sock: Record<string, number> }).sock
  let start = 0
  let sentBefore = 0
  const { without, withPackets, short, warm } = await allocRounds(t, { a, b }, packets, small, N, () => { start = b.loops.stats[Count.OUTSIDE_PACKETS]; sentBefore = aSock().txPackets })
  const segments = b.loops.stats[Count.OUTSIDE_PACKETS] - start
  const aSnap = a.loops.snapshot() as { tun: Record<string, number>, sock: Record<string, number>, wireguard: { handshakes: number, drops: Record<string, number> } }
  const bSnap = b.loops.snapshot() as { tun: Record<string, number>, sock: Record<string, number>, counters: Record<string, number>, drops: Record<string, number>, wireguard: { handshakes: number, drops: Record<string, number> } }
  const semi = (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 2
  t.diagnostic(`${segments} segments of ${N * segmentsPerTurn} sent crossed (${aSnap.sock.txPackets - sentBefore} messages sent); GCs over ${N} turns: ${without.gcs} with one small packet per turn, ${withPackets.gcs} with ${segmentsPerTurn} segments; heap after a GC: ${without.heap} B, ${withPackets.heap} B (new space ${semi} B per semispace)`)
  t.diagnostic(`A: ${aSnap.tun.rxSuperPackets} super-packets read, ${aSnap.sock.txGsoSegments} messages sent with UDP_SEGMENT, WireGuard drops ${JSON.stringify(aSnap.wireguard.drops)}; ` +
    `B: ${bSnap.sock.rxGroSegments} GRO segments, ${bSnap.counters.outside_super_packets} super-packets written from ${bSnap.counters.outside_coalesced} segments, ${bSnap.tun.txWritev} writev; drops ${JSON.stringify(bSnap.drops)}, WireGuard drops ${JSON.stringify(bSnap.wireguard.drops)}; ${short} short sends into A's TUN; ` +
    `warm-up ${warm - started} ms, counted rounds ${Date.now() - warm} ms`)

  // the offloads really ran, over the one session
  assert.ok(segments >= 295_000, `${segments} segments crossed`)
  assert.ok(aSnap.tun.rxSuperPackets >= 2 * N, 'A read super-packets')
  assert.ok(aSnap.sock.txGsoSegments >= 66 * N, 'A sent its same-size messages as UDP_SEGMENT runs')
  assert.ok(bSnap.sock.rxGroSegments >= 60 * N, 'B read with UDP_GRO')
  assert.ok(bSnap.counters.outside_super_packets >= 2 * N, 'B wrote TCP and UDP super-packets')
  assert.ok(bSnap.tun.txWritev >= N, 'B gathered them with writev')
  assert.equal(b.loops.stats[Drop.BAD_INNER_CHECKSUM], 0)
  assert.equal(b.loops.wgDrops[WgDrop.DECRYPT_FAILED] + b.loops.wgDrops[WgDrop.REPLAY], 0, 'every message opened, none twice')
  assert.equal(aSnap.wireguard.handshakes + bSnap.wireguard.handshakes, 2, 'one handshake, one session throughout')
  // and made no garbage
  assert.ok(withPackets.gcs <= without.gcs + 1, `packets added ${withPackets.gcs - without.gcs} GCs: about ${Math.round(((withPackets.gcs - without.gcs) * semi) / segments)} bytes per segment`)
  assert.ok(withPackets.heap - without.heap < 1 << 20, `the heap grew by ${withPackets.heap - without.heap} B more with the traffic`)
})
