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
import { GSO_TCPV6, GSO_UDP_L4, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from '../../src/native/vnet'
import { probeOffloads } from '../../src/native'
import { fold } from '../../src/packet/checksum'
import { pseudoHeaderSum6At } from '../../src/packet/ipv6'
import { WgDrop } from '../../src/wireguard/reasons'
import { allocRounds, plain } from '../dataplane/alloc-rounds'
import { orderedKeyPairs } from '../dataplane/wireguard-helpers'
import { packet6, tcpBytes, udpBytes } from '../packet/v6'
import { waitFor } from '../../lab/wait'
import { addPeer6, wgNode6 } from './node6'

const offloads = probeOffloads()
const skip = offloads.udpGso && offloads.udpGro ? undefined : 'the kernel lacks UDP GSO or UDP GRO'

/** flannel's 80 less on a 1500-byte underlay, as weft-wg-v6 gets it */
const MTU = 1420
/** inner MSS with TCP timestamps: MTU - 40 - 32 */
const MSS = MTU - 72

/** A super-packet as a TUN with TSO6/USO hands it over: vnet header, IPv6, TCP (or UDP), checksum partial. */
function superPacket (l4: Buffer, nh: number, size: number): Buffer {
  const p = packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::3', nh, l4 })
  const b = Buffer.concat([Buffer.alloc(VNET_HDR_LEN), p])
  const thl = nh === 6 ? (l4[12] >> 4) * 4 : 8
  writeVnetHdr(b, 0, VNET_F_NEEDS_CSUM, nh === 6 ? GSO_TCPV6 : GSO_UDP_L4, 40 + thl, size, 40, nh === 6 ? 16 : 6)
  b.writeUInt16BE(fold(pseudoHeaderSum6At(b, VNET_HDR_LEN, nh, l4.length)), VNET_HDR_LEN + 40 + (nh === 6 ? 16 : 6))
  return b
}

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

  const ts = Buffer.from([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2])
  const packets = [
    superPacket(tcpBytes({ sport: 40001, flags: 0x18, options: ts, payload: 46 * MSS - 100 }), 6, MSS),
    superPacket(udpBytes(20 * 1200), 17, 1200),
    ...Array.from({ length: 16 }, (_, i) => plain(packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::5', nh: 17, l4: udpBytes(1000, { tag: i }), checksum: true })))
  ]
  const segmentsPerTurn = 46 + 20 + 16
  const small = plain(packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::6', nh: 17, l4: udpBytes(100), checksum: true }))
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
