// The one place the WireGuard fuzz tests touch the backend's API: a node
// under test (the backend's real WgLoops: outside loop, protocol, the addon's
// batch opener, an in-memory TUN) with a WireGuard session to a peer, fed
// datagrams from that peer or a stranger, with what came out of its TUN,
// which counters moved and what it sent back.
//
// The peer is the protocol alone (src/wireguard's Device, its transport
// sealed in JavaScript with Node's ChaCha20-Poly1305, not the addon), so
// every message the node opens was made by code other than its own opener.
// The peer starts the handshake (the node's key is the lower, so the node
// waits: loops.ts), which leaves genuine samples of each handshake message
// to replay and mutate: the peer's initiation, the node's response, the
// peer's confirming keepalive, and a cookie reply the peer could have sent.
//
// Two rigs, as drive.ts has them:
// - directRig: datagrams go to the outside loop exactly as the addon's
//   recvmmsg hands them over, UDP_GRO entries included (several datagrams of
//   one size from one sender in one entry, the last perhaps shorter), through
//   the same callback; what the node sends is caught from its send batch.
// - socketRig: real sockets on loopback; the node listens on NODE, the peer
//   and a stranger send from their own addresses.
import { performance } from 'node:perf_hooks'
import { parseCidr } from '../../src/packet/net'
import { Count, DROP_COUNT, DROP_NAMES } from '../../src/dataplane/stats'
import { C, COUNTER_NAMES, openUdp4, PacketBatch, PeerTable, probeOffloads, snapshot } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { NO_OFFLOADS } from '../../src/backend/tun/offloads'
import { Device } from '../../src/wireguard/device'
import { CookieChecker } from '../../src/wireguard/cookie'
import { generateKeyPair } from '../../src/wireguard/keys'
import type { KeyPair } from '../../src/wireguard/keys'
import { MSG_INITIATION, MSG_RESPONSE, MSG_TRANSPORT, readU32, transportCounter } from '../../src/wireguard/messages'
import type { Peer } from '../../src/wireguard/peer'
import { WG_DROP_NAMES, WgDrop } from '../../src/wireguard/reasons'
import { addWgPeer, orderedKeyPairs, wgNode } from '../dataplane/wireguard-helpers'
import type { WgTestNode } from '../dataplane/wireguard-helpers'
import { NODE, OWN_SUBNET, PEER, PEER_SUBNET, STRANGER } from './drive'
import type { From } from './drive'

export { NODE, OWN_SUBNET, PEER, PEER_SUBNET, STRANGER }
export type { From }

/** The node's pod MTU (1500-byte underlay, less 80, as flannel). */
export const WG_MTU = 1420
export const PEER_PORT = 51820
export const STRANGER_PORT = 40000
/** How long a datagram sent on loopback (or a paced TUN write) may take to be accounted for. */
const SETTLE_MS = 1000
const BATCH = 64
const GRO_SEGMENTS = 64

/** A datagram, who sends it (or from where exactly), and whether it joins the previous one's UDP_GRO entry (directRig with GRO only). */
export interface WgDatagram { bytes: Buffer, from: From, glue?: boolean, at?: { addr: number, port: number } }

/** A datagram the node sent. */
export interface Sent { bytes: Buffer, addr: number, port: number }

export interface WgOutcome {
  /** what came out of the TUN, in order */
  delivered: Buffer[]
  /** drop counters that moved, by reason name: the dataplane's, WireGuard's (wireguard.drops) and the addon's rx_truncated/rx_error */
  drops: Record<string, number>
  /** packets counted as passed to the TUN */
  passed: number
  /** what the node sent meanwhile */
  sent: Sent[]
  threw?: unknown
}

/** The genuine handshake messages of the session's set-up, and a stranger's initiation. */
export interface Samples {
  /** the peer's initiation (consumed: a replay is stale) */
  initiation: Buffer
  /** the node's response to it */
  response: Buffer
  /** the peer's confirming keepalive (counter 0) */
  keepalive: Buffer
  /** an initiation with a valid mac1 from a static key that is nobody's peer */
  stranger: Buffer
  /** a cookie reply the peer could have sent for the node's response (it decrypts) */
  cookie: Buffer
}

export interface WgRig {
  readonly maxBatch: number
  /** the longest datagram the node's socket reads whole (longer ones are cut: rx_truncated) */
  readonly readSlot: number
  /** datagrams reach the loop in exactly the batches inject() is given (directRig) */
  readonly exactBatches: boolean
  readonly node: WgTestNode
  /** the peer, as the protocol alone: seals transport messages to the node */
  readonly peer: Device
  /** the peer's Peer for the node: its session */
  readonly session: Peer
  readonly samples: Samples
  /** the node's public key (mac1 is keyed with it) */
  readonly nodeKey: Buffer
  /** the node's receiver index of the session: what the peer's messages carry */
  readonly nodeIndex: () => number
  /** does the node know this receiver index: for transport (a key slot) or a handshake (any) */
  readonly knowsIndex: (index: number, transport: boolean) => boolean
  /** a transport message from the peer, sealed now (consumes a counter) */
  seal: (packet: Buffer) => Buffer
  /** Feed datagrams and report what became of them, once `want` of them are accounted for (or a second passed). */
  inject: (datagrams: readonly WgDatagram[], want: number) => Promise<WgOutcome>
  /** A packet from the node's pods to the peer's subnet: the transport message the node sent for it (null if none came). */
  outbound: (packet: Buffer) => Promise<Buffer | null>
  close: () => Promise<void>
}

const peerAddr = (d: WgDatagram): number => (d.at?.addr ?? (d.from === 'peer' ? PEER : STRANGER)) >>> 0
const peerPort = (d: WgDatagram): number => d.at?.port ?? (d.from === 'peer' ? PEER_PORT : STRANGER_PORT)

/**
 * A stand-in for the node's UDP socket: the outside loop is handed receive
 * batches laid out as the addon's recvmmsg lays them out (UDP_GRO entries:
 * same-size datagrams back to back, segs = their size), and whatever the node
 * sends is kept. It implements what WgLoops uses of a PacketIo. While
 * `blocked`, sends take nothing (a full socket buffer: EAGAIN); unblock()
 * then calls the node's onWritable, as the addon does.
 */
export class DirectSocket {
  private rx: PacketBatch | undefined
  private tx: PacketBatch | undefined
  private peers: PeerTable | undefined
  private onBatch: ((n: number) => void) | undefined
  private onWritable: (() => void) | undefined
  private wantsWritable = false
  readonly counters = new Float64Array(COUNTER_NAMES.length)
  readonly sent: Sent[] = []
  blocked = false

  constructor (private readonly gro: boolean) {}

  receiveInto (b: PacketBatch): void { this.rx = b }
  get capacity (): number { return (this.rx as PacketBatch).capacity }
  sendFrom (b: PacketBatch, peers?: PeerTable): void { this.tx = b; this.peers = peers }
  start (onBatch: (n: number) => void, onWritable?: () => void): void { this.onBatch = onBatch; this.onWritable = onWritable }
  setReading (): void {}
  wantWritable (): void { this.wantsWritable = true }
  read (): number { return 0 }
  stats (): Record<string, number> { return snapshot(this.counters) }
  close (): void {}

  /** Room in the socket again: the node hears so if it asked. */
  unblock (): void {
    this.blocked = false
    if (this.wantsWritable) { this.wantsWritable = false; this.onWritable?.() }
  }

  send (n: number): number {
    if (this.blocked) return 0
    const tx = this.tx as PacketBatch
    const table = (this.peers as PeerTable).table
    for (let i = 0; i < n; i++) {
      const at = tx.offsets[i]
      const len = tx.lengths[i]
      const seg = tx.segs[i] === 0 || tx.segs[i] > 0xffff ? len : tx.segs[i]
      const d = tx.dests[i]
      for (let o = 0; o < len; o += seg) {
        this.sent.push({ bytes: Buffer.from(tx.slab.subarray(at + o, at + Math.min(len, o + seg))), addr: table[2 * d], port: table[2 * d + 1] })
      }
    }
    return n
  }

  /** One receive batch of these datagrams; glued ones share a GRO entry where the kernel's GRO would have put them. */
  deliver (ds: readonly WgDatagram[]): void {
    const rx = this.rx as PacketBatch
    let n = 0
    let seg = 0
    let count = 0
    let closed = true
    for (const d of ds) {
      const len = d.bytes.length
      const last = n - 1
      if (this.gro && d.glue === true && !closed && len > 0 && len <= seg && rx.addrs[last] === peerAddr(d) && count < GRO_SEGMENTS && rx.lengths[last] + len <= rx.capacity) {
        d.bytes.copy(rx.slab, rx.offsets[last] + rx.lengths[last])
        rx.lengths[last] += len
        rx.segs[last] = seg
        count++
        if (len < seg) closed = true
        continue
      }
      if (n === rx.size) throw new RangeError(`more than ${rx.size} receive entries`)
      const i = n++
      rx.segs[i] = 0
      rx.ports[i] = peerPort(d)
      if (len > rx.capacity) {
        // recvmmsg: MSG_TRUNC; the addon counts it and hands over length 0 from 0.0.0.0
        this.counters[C.rxDropTruncated]++
        rx.lengths[i] = 0
        rx.addrs[i] = 0
        closed = true
        continue
      }
      d.bytes.copy(rx.slab, rx.offsets[i])
      rx.lengths[i] = len
      rx.addrs[i] = peerAddr(d)
      seg = len
      count = 1
      closed = len === 0
    }
    ;(this.onBatch as (n: number) => void)(n)
  }
}

/** What moves a reading: every drop counter, the addon's receive drops, and packets passed. */
function reading (n: WgTestNode, sock: Float64Array): Float64Array {
  const s = n.loops.stats
  const w = n.loops.wgDrops
  const r = new Float64Array(DROP_COUNT + WG_DROP_NAMES.length + 3)
  for (let i = 1; i < DROP_COUNT; i++) r[i] = s[i]
  for (let i = 1; i < WG_DROP_NAMES.length; i++) r[DROP_COUNT + i] = w[i]
  const base = DROP_COUNT + WG_DROP_NAMES.length
  r[base] = sock[C.rxDropTruncated]
  r[base + 1] = sock[C.rxDropError]
  r[base + 2] = s[Count.OUTSIDE_PACKETS]
  return r
}

function nameOf (i: number): string {
  if (i < DROP_COUNT) return DROP_NAMES[i]
  if (i < DROP_COUNT + WG_DROP_NAMES.length) return WG_DROP_NAMES[i - DROP_COUNT]
  return ['rx_truncated', 'rx_error', 'passed'][i - DROP_COUNT - WG_DROP_NAMES.length]
}

/** Datagrams passed or dropped between two readings. */
function accounted (before: Float64Array, after: Float64Array): number {
  let sum = 0
  for (let i = 1; i < after.length; i++) if (i !== DROP_COUNT) sum += after[i] - before[i]
  return sum
}

function dropsBetween (before: Float64Array, after: Float64Array): Record<string, number> {
  const drops: Record<string, number> = {}
  for (let i = 1; i < after.length - 1; i++) if (i !== DROP_COUNT && after[i] !== before[i]) drops[nameOf(i)] = after[i] - before[i]
  return drops
}

/** Read what the node's TUN holds into `into`. */
function drain (n: WgTestNode, into: Buffer[]): void {
  for (let k = n.wire.read(); k > 0; k = n.wire.read()) {
    for (let i = 0; i < k; i++) into.push(Buffer.from(n.wireRx.slab.subarray(n.wireRx.offsets[i], n.wireRx.offsets[i] + n.wireRx.lengths[i])))
  }
}

const turn = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))

/** Poll `f` (draining nothing itself) until it returns a value, for at most `ms`. */
async function until<T> (f: () => T | undefined, ms: number): Promise<T | undefined> {
  const deadline = Date.now() + ms
  for (let i = 0; i < 100_000; i++) {
    const v = f()
    if (v !== undefined || Date.now() > deadline) return v
    await new Promise((resolve) => setTimeout(resolve, i < 20 ? 0 : 2))
  }
  return undefined
}

/** What the rigs share: the peer, the node, the handshake between them and the samples it left. */
interface Parts {
  node: WgTestNode
  nodeKeys: KeyPair
  peer: Device
  session: Peer
  samples: Samples
  now: () => number
}

/**
 * The node and its peer, the peer's handshake carried by `carry` (to the
 * node, returning what the node sent back).
 */
async function handshake (node: WgTestNode, nodeKeys: KeyPair, peerKeys: KeyPair, nodePort: number, carry: (d: Buffer) => Promise<Sent[]>): Promise<Parts> {
  const now = (): number => performance.timeOrigin + performance.now()
  addWgPeer(node, { subnet: PEER_SUBNET, keys: peerKeys, port: PEER_PORT }, PEER)
  const peer = new Device({ privateKey: peerKeys.privateKey })
  const session = peer.addPeer({ publicKey: nodeKeys.publicKey, endpoint: { addr: NODE >>> 0, port: nodePort } })
  session.send(now(), 0)
  const [init] = peer.takeOutgoing()
  if (init?.kind !== 'initiation') throw new Error('the peer sent no initiation')
  const response = (await carry(init.bytes)).find((s) => s.bytes[0] === MSG_RESPONSE)
  if (response === undefined) throw new Error('the node did not answer the initiation')
  const r = peer.handshakeMessage(response.bytes, NODE, nodePort, now(), false)
  if (r.reason !== WgDrop.OK) throw new Error(`the peer refused the node's response: ${WG_DROP_NAMES[r.reason]}`)
  const keepalive = r.replies.find((m) => m.kind === 'keepalive')
  if (keepalive === undefined) throw new Error('the peer sent no confirming keepalive')
  await carry(keepalive.bytes)
  const index = node.fdb.lookup(parseCidr(PEER_SUBNET).ip)
  if (node.loops.peerStatus(index).session !== true) throw new Error('the node has no session after the handshake')
  // a stranger: a key nobody holds, a valid mac1 for the node
  const stranger = new Device({ privateKey: generateKeyPair().privateKey })
  stranger.addPeer({ publicKey: nodeKeys.publicKey, endpoint: { addr: NODE >>> 0, port: nodePort } }).send(now(), 0)
  const [s] = stranger.takeOutgoing()
  stranger.close()
  const cookie = new CookieChecker(peerKeys.publicKey).createReply(response.bytes, NODE, nodePort, now())
  return { node, nodeKeys, peer, session, samples: { initiation: init.bytes, response: response.bytes, keepalive: keepalive.bytes, stranger: s.bytes, cookie }, now }
}

function rigOf (p: Parts, o: Pick<WgRig, 'maxBatch' | 'readSlot' | 'exactBatches' | 'inject' | 'outbound' | 'close'>): WgRig {
  const indexes = p.node.loops.device.indexes
  return {
    ...o,
    node: p.node,
    peer: p.peer,
    session: p.session,
    samples: p.samples,
    nodeKey: p.nodeKeys.publicKey,
    nodeIndex: () => (p.session.current as { remoteIndex: number }).remoteIndex,
    knowsIndex: (index, transport) => transport ? indexes.slotOf(index) >= 0 : indexes.peerOf(index) !== undefined,
    seal: (packet) => {
      const m = p.peer.sendTransport(p.session, packet, p.now())
      if (m === null) throw new Error('the peer lost its session')
      return m
    }
  }
}

/** The node's outside loop fed directly; `gro`: its socket reads with UDP_GRO (64 KB entries). */
export async function directRig (gro: boolean): Promise<WgRig> {
  const sock = new DirectSocket(gro)
  const [peerKeys, nodeKeys] = orderedKeyPairs()
  const node = wgNode(OWN_SUBNET, { sock: sock as unknown as PacketIo, port: 51820, keys: nodeKeys, mtu: WG_MTU, offloads: { ...NO_OFFLOADS, gro } })
  const carry = async (d: Buffer): Promise<Sent[]> => {
    const from = sock.sent.length
    sock.deliver([{ bytes: d, from: 'peer' }])
    return sock.sent.slice(from)
  }
  const p = await handshake(node, nodeKeys, peerKeys, 51820, carry)
  return rigOf(p, {
    maxBatch: BATCH,
    readSlot: sock.capacity,
    exactBatches: true,
    inject: async (ds, want) => {
      const before = reading(node, sock.counters)
      const sentFrom = sock.sent.length
      let threw: unknown
      try {
        sock.deliver(ds)
      } catch (err) { threw = err }
      const delivered: Buffer[] = []
      // paced UDP writes may go a little later (the TUN's timer)
      await until(() => { drain(node, delivered); const r = reading(node, sock.counters); return accounted(before, r) >= want && delivered.length >= r[r.length - 1] - before[r.length - 1] ? true : undefined }, SETTLE_MS)
      await turn()
      drain(node, delivered)
      const after = reading(node, sock.counters)
      return { delivered, drops: dropsBetween(before, after), passed: after[after.length - 1] - before[before.length - 1], sent: sock.sent.slice(sentFrom), ...(threw !== undefined ? { threw } : {}) }
    },
    outbound: async (packet) => {
      const from = sock.sent.length
      inject(node, packet)
      const got = await until(() => sock.sent.slice(from).find((s) => s.bytes[0] === MSG_TRANSPORT && s.bytes.length > 32), SETTLE_MS)
      return got?.bytes ?? null
    },
    close: async () => { await node.close(); p.peer.close() }
  })
}

/** Write one packet into the node's TUN from its pods' side. */
function inject (n: WgTestNode, packet: Buffer): void {
  packet.copy(n.wireTx.slab, n.wireTx.offsets[0])
  n.wireTx.lengths[0] = packet.length
  if (n.wire.send(1) !== 1) throw new Error('could not write into the TUN')
}

interface Endpoint { io: PacketIo, tx: PacketBatch, rx: PacketBatch }

function endpoint (addr: number, nodePort: number): Endpoint {
  const io = openUdp4({ addr, port: from(addr), batch: 64 }).io
  const tx = new PacketBatch({ size: 1, slotSize: 65536 })
  const rx = new PacketBatch({ size: 64, slotSize: 65536 })
  const table = new PeerTable(1)
  table.set(0, NODE, nodePort)
  tx.dests[0] = 0
  io.sendFrom(tx, table)
  io.receiveInto(rx)
  return { io, tx, rx }
}

function from (addr: number): number {
  return addr === PEER ? PEER_PORT : STRANGER_PORT
}

function sendTo (e: Endpoint, d: Buffer): void {
  d.copy(e.tx.slab, e.tx.offsets[0])
  e.tx.lengths[0] = d.length
  const sent = e.io.stats().txPackets
  if (e.io.send(1) !== 1 || e.io.stats().txPackets !== sent + 1) throw new Error(`could not send a ${d.length}-byte datagram: ${JSON.stringify(e.io.stats())}`)
}

function received (e: Endpoint, addr: number): Sent[] {
  const out: Sent[] = []
  for (let k = e.io.read(); k > 0; k = e.io.read()) {
    for (let i = 0; i < k; i++) {
      const len = e.rx.lengths[i]
      const seg = e.rx.segs[i] === 0 ? len : e.rx.segs[i]
      for (let o = 0; o < len; o += seg) out.push({ bytes: Buffer.from(e.rx.slab.subarray(e.rx.offsets[i] + o, e.rx.offsets[i] + Math.min(len, o + seg))), addr, port: from(addr) })
    }
  }
  return out
}

/** The node over a real UDP socket on loopback (with UDP_GRO if the kernel has it); the peer and a stranger send from their own. */
export async function socketRig (): Promise<WgRig> {
  const gro = probeOffloads().udpGro
  const udp = openUdp4({ addr: NODE, port: 0, batch: 64, gro })
  // what the outside loop reads into: its slot is the longest datagram read whole
  let readSlot = 0
  const receiveInto = udp.io.receiveInto.bind(udp.io)
  udp.io.receiveInto = (b, opts) => { if (b.size > 1) readSlot = b.capacity; receiveInto(b, opts) }
  const [peerKeys, nodeKeys] = orderedKeyPairs()
  const node = wgNode(OWN_SUBNET, { sock: udp.io, port: udp.port, keys: nodeKeys, mtu: WG_MTU, offloads: { ...NO_OFFLOADS, gro } })
  const peerEnd = endpoint(PEER, udp.port)
  const strangerEnd = endpoint(STRANGER, udp.port)
  const ends: Record<From, Endpoint> = { peer: peerEnd, stranger: strangerEnd }
  const heard = (): Sent[] => [...received(peerEnd, PEER), ...received(strangerEnd, STRANGER)]
  const carry = async (d: Buffer): Promise<Sent[]> => {
    sendTo(peerEnd, d)
    const out: Sent[] = []
    const index = node.fdb.lookup(parseCidr(PEER_SUBNET).ip)
    await until(() => { out.push(...heard()); return out.length > 0 || node.loops.peerStatus(index).session === true ? true : undefined }, SETTLE_MS)
    return out
  }
  let p: Parts
  try {
    p = await handshake(node, nodeKeys, peerKeys, udp.port, carry)
  } catch (err) {
    await node.close(); peerEnd.io.close(); strangerEnd.io.close()
    throw err
  }
  return rigOf(p, {
    maxBatch: BATCH,
    readSlot,
    exactBatches: false,
    inject: async (ds, want) => {
      const before = reading(node, udp.io.counters)
      for (const d of ds) sendTo(ends[d.from], d.bytes)
      const delivered: Buffer[] = []
      const sent: Sent[] = []
      await until(() => { drain(node, delivered); sent.push(...heard()); const r = reading(node, udp.io.counters); return accounted(before, r) >= want && delivered.length >= r[r.length - 1] - before[r.length - 1] ? true : undefined }, SETTLE_MS)
      await turn()
      drain(node, delivered)
      sent.push(...heard())
      const after = reading(node, udp.io.counters)
      return { delivered, drops: dropsBetween(before, after), passed: after[after.length - 1] - before[before.length - 1], sent }
    },
    outbound: async (packet) => {
      inject(node, packet)
      const got = await until(() => heard().find((s) => s.bytes[0] === MSG_TRANSPORT && s.bytes.length > 32), SETTLE_MS)
      return got?.bytes ?? null
    },
    close: async () => { await node.close(); p.peer.close(); peerEnd.io.close(); strangerEnd.io.close() }
  })
}

/** The counter of a transport message. */
export function counterOf (msg: Buffer): number {
  return transportCounter(msg)
}

/** The receiver index field of a message (transport, cookie reply: offset 4; response: 8). */
export function receiverOf (msg: Buffer): number {
  return readU32(msg, msg[0] === MSG_RESPONSE ? 8 : 4)
}

export const HANDSHAKE_TYPES = [MSG_INITIATION, MSG_RESPONSE, 3]
