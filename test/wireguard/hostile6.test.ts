// Hostile input at the IPv6 WireGuard device (weft-wg-v6): inner IPv6
// packets a peer with a real session seals (a truncated payload length, a
// jumbogram, bad extension headers, Neighbour Discovery, a source outside
// its subnet, a TCP header longer than the packet), and random bytes from a
// stranger's IPv6 socket. Each is dropped once under its reason, nothing
// throws, the session still carries a good packet after; and the endpoint
// handles stay bounded however many sources write.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { Drop } from '../../src/dataplane/stats'
import { Reason } from '../../src/packet/reason'
import { WgDrop } from '../../src/wireguard/reasons'
import { Endpoints6, MAX_HANDLES } from '../../src/backend/wireguard/endpoints6'
import { collect, inject } from '../dataplane/helpers'
import { orderedKeyPairs } from '../dataplane/wireguard-helpers'
import { packet6, tcpBytes, udpBytes, icmp6Bytes } from '../packet/v6'
import { waitFor } from '../../lab/wait'
import { addPeer6, wgNode6 } from './node6'
import type { WgNode6 } from './node6'

async function pair (t: { after: (fn: () => Promise<void>) => void }): Promise<{ a: WgNode6, b: WgNode6 }> {
  const [aKeys, bKeys] = orderedKeyPairs()
  const a = wgNode6('fc00:0:0:1::/64', aKeys)
  const b = wgNode6('fc00:0:0:2::/64', bKeys)
  t.after(async () => { await a.close(); await b.close() })
  const bIndex = addPeer6(a, b)
  const aIndex = addPeer6(b, a)
  await waitFor(() => a.loops.peerStatus(bIndex).session === true && b.loops.peerStatus(aIndex).session === true, { what: 'a session both ways', timeoutMs: 5000, intervalMs: 10 })
  return { a, b }
}

const good = (tag: number): Buffer => packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::3', nh: 17, l4: udpBytes(200, { tag }), checksum: true })

test('inner IPv6 packets a peer seals under its session, malformed each its own way, are each dropped once under their reason on weft-wg-v6; a good one still goes through', async (t) => {
  const { a, b } = await pair(t)
  const cut = good(1)
  cut.writeUInt16BE(cut.readUInt16BE(4) + 100, 4) // payload length past what came
  const jumbo = packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::3', nh: 17, l4: udpBytes(50), ext: [{ type: 0, len: 8 }] })
  jumbo.writeUInt16BE(0, 4) // payload length 0 behind a hop-by-hop header: a jumbogram
  const ndp = packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::3', nh: 58, l4: icmp6Bytes(136, 0, 20), checksum: true })
  const spoofed = packet6({ src: 'fc00:0:0:9::2', dst: 'fc00:0:0:2::3', nh: 17, l4: udpBytes(100), checksum: true })
  const badExt = packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::3', nh: 17, l4: udpBytes(50), ext: [{ type: 60, len: 8 }, { type: 0, len: 8 }] }) // hop-by-hop not first
  const doff = packet6({ src: 'fc00:0:0:1::2', dst: 'fc00:0:0:2::3', nh: 6, l4: tcpBytes({ payload: 4, doff: 15 }), checksum: true })
  const before = Float64Array.from(b.loops.stats)
  inject(a, [cut, jumbo, ndp, spoofed, badExt, doff])
  await waitFor(() => b.loops.stats[Reason.BAD_PAYLOAD_LENGTH] - before[Reason.BAD_PAYLOAD_LENGTH] === 1 && b.loops.stats[Reason.BAD_TCP_DATA_OFFSET] - before[Reason.BAD_TCP_DATA_OFFSET] === 1, { what: 'the malformed packets counted', timeoutMs: 3000, intervalMs: 10 })
  const diff = (i: number): number => b.loops.stats[i] - before[i]
  assert.equal(diff(Reason.BAD_PAYLOAD_LENGTH), 1, 'payload length past the packet')
  assert.equal(diff(Reason.JUMBOGRAM), 1, 'jumbogram')
  assert.equal(diff(Reason.NDP), 1, 'Neighbour Discovery never crosses a WireGuard link')
  assert.equal(diff(Drop.SPOOFED_SOURCE), 1, 'a source outside the sending peer\'s subnet (cryptokey routing)')
  assert.equal(diff(Reason.BAD_EXTENSION_HEADER), 1, 'hop-by-hop not first')
  assert.equal(diff(Reason.BAD_TCP_DATA_OFFSET), 1, 'a TCP header longer than the packet')
  assert.equal(await collect(b, 1, 200).then((x) => x.length), 0, 'none reached the pods')
  inject(a, [good(7)])
  const [out] = await collect(b, 1)
  assert.ok(out !== undefined && out.equals(good(7)), 'a good packet reaches the pods, exactly as sealed')
})

test('random bytes from a stranger\'s IPv6 socket at weft-wg-v6 are each dropped once for a reason, and the session keeps working', async (t) => {
  const { a, b } = await pair(t)
  const s = dgram.createSocket({ type: 'udp6' })
  t.after(() => s.close())
  const before = Float64Array.from(b.loops.wgDrops)
  const N = 200
  for (let i = 0; i < N; i++) {
    const msg = randomBytes(1 + (i * 37) % 300)
    if (i % 4 === 0) msg[0] = 4 // transport-shaped: an unknown receiver index (or too short)
    if (i % 4 === 0 && msg.length >= 4) msg.fill(0, 1, 4)
    await new Promise<void>((resolve, reject) => s.send(msg, b.port, '::1', (err) => { if (err !== null) reject(err); else resolve() }))
  }
  const dropped = (): number => b.loops.wgDrops.reduce((n, v, i) => n + v - before[i], 0)
  await waitFor(() => dropped() === N, { what: `${N} drops`, timeoutMs: 3000, intervalMs: 10 })
  assert.equal(b.loops.wgDrops[WgDrop.OK] ?? 0, 0)
  inject(a, [good(8)])
  const [out] = await collect(b, 1)
  assert.ok(out !== undefined && out.equals(good(8)), 'the session still carries a packet')
  assert.ok((b.loops.endpoints6?.size ?? 0) <= 2, 'transport junk interns no endpoint')
})

test('endpoint handles: one per address, bounded at MAX_HANDLES however many sources, the peers\' kept when the table is swept', () => {
  const e = new Endpoints6()
  const w = new Uint32Array([0x20010002, 0, 0, 1])
  const held = e.intern(w, 0, () => [])
  assert.equal(e.intern(w, 0, () => []), held, 'the same address, the same handle')
  assert.equal(e.text(held), '2001:2::1')
  for (let i = 2; i < MAX_HANDLES * 3; i++) e.intern(new Uint32Array([0x20010002, 0, 0, i]), 0, () => [held])
  assert.ok(e.size <= MAX_HANDLES, `${e.size} handles`)
  assert.equal(e.text(held), '2001:2::1', 'a held handle survives the sweeps')
  assert.ok(e.matches(held, w, 0))
})
