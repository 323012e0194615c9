// What the addon's loopback tests share across families (gso.test.ts,
// gso6.test.ts, udp-batch.test.ts, udp6.test.ts): a sender and a receiver
// on 127.0.0.1 or ::1, entries put behind a prefix, and reading back
// datagrams (GRO messages split at their segment size).
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { openUdp4, openUdp6, PacketBatch, PeerTable, PeerTable6 } from '../../src/native'
import type { PacketIo, Udp4 } from '../../src/native'
import { ip6Bytes, ip6FromWords, ip6Words, parseIp6 } from '../../src/packet/net6'

export const LOOPBACK = 0x7f000001
export const LOOP6 = parseIp6('::1')

/** Why IPv6 on loopback cannot be used here, or undefined. */
export function v6Skip (): string | undefined {
  const f = '/proc/sys/net/ipv6/conf/lo/disable_ipv6'
  if (!existsSync(f)) return 'no IPv6 in this kernel'
  if (readFileSync(f, 'utf8').trim() !== '0') return 'IPv6 is disabled on lo'
  return undefined
}

export function pattern (len: number, tag: number): Buffer {
  const b = Buffer.alloc(len)
  // position-dependent with a period that is not a power of two: a slice from the wrong place differs
  for (let i = 0; i < len; i++) b[i] = (i * 7 + Math.floor(i / 251) * 13 + tag) & 255
  return b
}

/** A udp socket of either family on loopback (a Udp6 is a Udp4 of kind 'udp6'). */
export function openLoop (family: 4 | 6, o: { port?: number, batch: number, gro?: boolean, rcvbuf?: number }): Udp4 {
  const rest = { port: 0, ...o }
  return family === 6 ? openUdp6({ addr: ip6Bytes(LOOP6), ...rest }) : openUdp4({ addr: LOOPBACK, ...rest })
}

/** Peers of a family, each on loopback at one of `ports` (entries past them left empty). */
export function loopPeers (family: 4 | 6, ports: number[], capacity = ports.length): PeerTable | PeerTable6 {
  if (family === 6) {
    const t = new PeerTable6(capacity)
    ports.forEach((port, i) => t.set(i, ip6Words(LOOP6), port))
    return t
  }
  const t = new PeerTable(capacity)
  ports.forEach((port, i) => t.set(i, LOOPBACK, port))
  return t
}

export interface Ends { a: Udp4, b: Udp4, tx: PacketBatch, rx: PacketBatch, peers: PeerTable | PeerTable6, close: () => void }

/** a sends, b receives (b with UDP_GRO if gro), both on loopback of `family`; peer 0 is b (peer 1 is empty). */
export function ends (family: 4 | 6, gro: boolean, txSlots = 4, txSlot = 65600): Ends {
  const a = openLoop(family, { batch: 64 })
  const b = openLoop(family, { batch: 64, gro, rcvbuf: 8 << 20 })
  const tx = new PacketBatch({ size: txSlots, slotSize: txSlot })
  const rx = new PacketBatch({ size: 64, slotSize: gro ? 65600 : 2048 })
  const peers = loopPeers(family, [b.port], 2)
  b.io.receiveInto(rx)
  return { a, b, tx, rx, peers, close: () => { a.io.close(); b.io.close() } }
}

/** Put entry i of tx: prefix + packet, what segs says it is, to peer dest. */
export function put (tx: PacketBatch, i: number, prefix: Buffer, packet: Buffer, segs: number, dest = 0): void {
  prefix.copy(tx.slab, tx.offsets[i])
  packet.copy(tx.slab, tx.offsets[i] + prefix.length)
  tx.lengths[i] = prefix.length + packet.length
  tx.segs[i] = segs
  tx.dests[i] = dest
}

export interface Message { len: number, seg: number, bad: [number, number], from: number }
export interface Received { messages: Message[], datagrams: Buffer[] }

/** Read until `want` datagrams (GRO messages split at their segment size) have arrived, or timeoutMs pass. */
export async function receive (io: PacketIo, rx: PacketBatch, want: number, timeoutMs = 2000): Promise<Received> {
  const out: Received = { messages: [], datagrams: [] }
  const deadline = Date.now() + timeoutMs
  while (out.datagrams.length < want && Date.now() < deadline) {
    const n = io.read()
    for (let i = 0; i < n; i++) {
      const len = rx.lengths[i]
      // dropped by the addon (an empty datagram keeps its sender): the sender reads as 0.0.0.0 or ::
      if (len === 0 && (io.kind === 'udp6' ? ip6FromWords(rx.addrs6, 4 * i) === 0n : rx.addrs[i] === 0)) continue
      const seg = rx.segs[i]
      out.messages.push({ len, seg, bad: [rx.bad[2 * i], rx.bad[2 * i + 1]], from: rx.ports[i] })
      const off = rx.offsets[i]
      const step = seg === 0 ? len : seg
      if (len === 0) out.datagrams.push(Buffer.alloc(0))
      for (let at = 0; at < len; at += step) out.datagrams.push(Buffer.from(rx.slab.subarray(off + at, off + Math.min(len, at + step))))
    }
    if (n === 0) await new Promise((resolve) => setTimeout(resolve, 2)) // a bounded poll that returns what came by the deadline
  }
  return out
}

export function fill (buf: Buffer, off: number, len: number, tag: number): void {
  for (let j = 0; j < len; j++) buf[off + j] = (tag * 131 + j * 7) & 255
}

/**
 * UDP GRO, either family: a (GSO on) sends 3 * 1200 + 500 bytes cut at
 * 1200 to b (GRO on), which reads one coalesced message with its segment
 * size. Returns b's receive batch for the caller's own checks.
 */
export function groRoundTrip (a: Udp4, b: Udp4): PacketBatch {
  const tx = new PacketBatch({ size: 1, slotSize: 8192 })
  const rx = new PacketBatch({ size: 4, slotSize: 65536 })
  a.io.sendFrom(tx, loopPeers(a.io.kind === 'udp6' ? 6 : 4, [b.port]), true)
  b.io.receiveInto(rx)
  tx.lengths[0] = 3 * 1200 + 500
  tx.segs[0] = 1200
  fill(tx.slab, 0, tx.lengths[0], 9)
  assert.equal(a.io.send(1), 1)
  assert.equal(b.io.read(), 1)
  assert.equal(rx.lengths[0], 4100)
  assert.equal(rx.segs[0], 1200)
  assert.equal(b.io.stats().rxGroSegments, 4)
  assert.ok(rx.slab.subarray(0, 4100).equals(tx.slab.subarray(0, 4100)))
  return rx
}

/** Two sockets of `family` on loopback with 4 MB receive buffers (b with UDP_GRO if gro). */
export function pair (family: 4 | 6, batch: number, gro = false): { a: Udp4, b: Udp4, close: () => void } {
  const a = openLoop(family, { batch, rcvbuf: 4 << 20 })
  const b = openLoop(family, { batch, rcvbuf: 4 << 20, gro })
  return { a, b, close: () => { a.io.close(); b.io.close() } }
}

/**
 * UDP GSO, either family: a sends one 4000-byte message cut at 1000 to b
 * (GRO off), which reads 4 datagrams, byte-exact. Returns b's receive batch
 * for the caller's own checks.
 */
export function gsoRoundTrip (a: Udp4, b: Udp4): PacketBatch {
  const tx = new PacketBatch({ size: 1, slotSize: 4096 })
  const rx = new PacketBatch({ size: 8, slotSize: 2048 })
  a.io.sendFrom(tx, loopPeers(a.io.kind === 'udp6' ? 6 : 4, [b.port]), true)
  b.io.receiveInto(rx)
  tx.lengths[0] = 4 * 1000
  tx.segs[0] = 1000
  fill(tx.slab, 0, 4000, 3)
  assert.equal(a.io.send(1), 1)
  assert.equal(a.io.stats().txGsoSegments, 4)
  assert.equal(b.io.read(), 4)
  for (let i = 0; i < 4; i++) {
    assert.equal(rx.lengths[i], 1000)
    assert.ok(rx.slab.subarray(rx.offsets[i], rx.offsets[i] + 1000).equals(tx.slab.subarray(i * 1000, (i + 1) * 1000)))
  }
  return rx
}
