// The one place the fuzz tests touch the dataplane's API: a node's outside
// path (underlay -> TUN) for each encapsulation, fed datagrams from a peer
// holding a lease or a stranger, with what came out of its TUN and which
// counters moved. When the dataplane API changes, this file changes; the
// properties do not.
//
// Two rigs, both a real Pipeline writing into an in-memory TUN (packetPair):
// - socketRig: real sockets on loopback, as test/dataplane does it. The node
//   listens on NODE; the peer (PEER, holds a lease) and a stranger (STRANGER,
//   holds none) send from their own addresses. UDP carries any payload
//   unchanged. IP-in-IP goes through an IPPROTO_RAW socket (IP_HDRINCL), so
//   the outer header's options, TOS, TTL and source are ours; the kernel
//   fills in its total length and checksum and drops outer headers it finds
//   invalid before any socket sees them, so only valid ones are sent here.
// - directRig: the datagram is handed to the outside loop exactly as the
//   addon's recvmmsg would (bytes, length, source address), through the same
//   callback, without a kernel in between: this is how IP-in-IP outer headers
//   no kernel would deliver are tried, and how thousands of frames a second go.
// Loopback addresses 127.77.0.x, so that other tests' loopback sockets (on
// 127.0.0.x) never see this traffic nor send into it.
import { parseCidr } from '../../src/packet/net'
import { Fdb } from '../../src/dataplane/fdb'
import { IpipEncap } from '../../src/backend/ipip/encap'
import { Pipeline } from '../../src/dataplane/pipeline'
import { Count, DROP_COUNT, DROP_NAMES } from '../../src/dataplane/stats'
import { UdpEncap } from '../../src/backend/udp/encap'
import { VxlanEncap } from '../../src/backend/vxlan/encap'
import type { Encapsulation } from '../../src/dataplane/encap'
import { C, COUNTER_NAMES, constants, openRaw4, openUdp4, packetPair, PacketBatch, PeerTable, snapshot } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { parseIp4 } from '../../src/packet/ip'
import { setIpv4Checksum } from '../../src/packet/ipv4'
import { parseMac } from '../../src/packet/mac'

export type EncapKind = 'vxlan' | 'udp' | 'ipip'
export type From = 'peer' | 'stranger'

export const NODE = parseIp4('127.77.0.2')
export const PEER = parseIp4('127.77.0.3')
export const STRANGER = parseIp4('127.77.0.4')
export const NETWORK = '10.244.0.0/16'
export const OWN_SUBNET = '10.244.2.0/24'
export const PEER_SUBNET = '10.244.1.0/24'
export const OUR_MAC = parseMac('02:77:00:00:00:02')
export const PEER_MAC = parseMac('02:77:00:00:00:03')
export const VNI = 1
/** The TUN MTU each backend gets on a 1500-byte underlay. */
export const MTU: Record<EncapKind, number> = { vxlan: 1450, udp: 1472, ipip: 1480 }
/** IPPROTO_RAW: a raw socket that sends whole IPv4 packets (IP_HDRINCL implied). */
const IPPROTO_RAW = 255
/** How long a datagram sent on loopback may take to be accounted for. */
const SETTLE_MS = 1000

/** A datagram and who sends it. */
export interface Datagram { datagram: Buffer, from: From }

export interface Outcome {
  /** the datagrams as the outside loop saw them (for IP-in-IP over a socket: with the kernel's outer header fixes) */
  received: Buffer[]
  /** what came out of the TUN, in order */
  delivered: Buffer[]
  /** drop counters that moved, by reason name, including the addon's rxDropTruncated/rxDropError */
  drops: Record<string, number>
  /** inner TCP/UDP checksums the dataplane finished (partial checksums) */
  finished: number
  /** packets the dataplane counted as passed to the TUN */
  passed: number
  /** what the outside loop threw, if it did (directRig only: a socketRig throw is an uncaught exception) */
  threw?: unknown
}

export interface OutsideRig {
  readonly kind: EncapKind
  readonly mtu: number
  /** the most datagrams one inject() takes */
  readonly maxBatch: number
  /** Feed datagrams (in one receive batch for directRig, as fast as they go for socketRig) and report what became of them. */
  inject: (datagrams: readonly Datagram[]) => Promise<Outcome>
  close: () => void
}

function encapFor (kind: EncapKind, fdb: Fdb): Encapsulation {
  // remote checksum offload on, as between weft nodes by default: its marks are fuzzed too
  if (kind === 'vxlan') return new VxlanEncap(VNI, OUR_MAC, fdb, true)
  if (kind === 'udp') return new UdpEncap()
  return new IpipEncap()
}

export interface Node {
  pipeline: Pipeline
  wire: PacketIo
  wireRx: PacketBatch
}

function makeNode (kind: EncapKind, sock: PacketIo, port: number): Node {
  const [tun, wire] = packetPair(64)
  const fdb = new Fdb({ network: parseCidr(NETWORK), subnetLen: 24, port })
  const pipeline = new Pipeline({ tun, sock, fdb, encap: encapFor(kind, fdb), mtu: MTU[kind], batch: 64, checkSource: true, onFatal: (w, e) => { throw new Error(`${w} fatal errno ${e}`) } })
  const own = parseCidr(OWN_SUBNET)
  pipeline.outside.setOwnSubnet(own.ip, own.prefixLen)
  fdb.set(parseCidr(PEER_SUBNET), PEER, kind === 'vxlan' ? PEER_MAC : undefined, port, kind === 'vxlan')
  return startNode(pipeline, wire)
}

/** The pipeline started, its TUN's far end read into a batch of its own (drive6.ts's node too). */
export function startNode (pipeline: Pipeline, wire: PacketIo): Node {
  const wireRx = new PacketBatch({ size: 64, slotSize: 4096 })
  wire.receiveInto(wireRx)
  wire.sendFrom(new PacketBatch({ size: 1, slotSize: 64 }))
  pipeline.start()
  return { pipeline, wire, wireRx }
}

/** Counter readings: every drop reason, the addon's receive drops, passed and finished. */
export function reading (n: Node): Float64Array {
  const s = n.pipeline.stats
  const sock = n.pipeline.snapshot().sock
  const r = new Float64Array(DROP_COUNT + 4)
  for (let i = 1; i < DROP_COUNT; i++) r[i] = s[i]
  r[DROP_COUNT] = sock.rxDropTruncated ?? 0
  r[DROP_COUNT + 1] = sock.rxDropError ?? 0
  r[DROP_COUNT + 2] = s[Count.OUTSIDE_PACKETS]
  r[DROP_COUNT + 3] = s[Count.CHECKSUMS_FINISHED]
  return r
}

/** How many datagrams a reading has accounted for: passed or dropped for some reason. */
function accounted (r: Float64Array): number {
  let sum = 0
  for (let i = 1; i < DROP_COUNT + 3; i++) sum += r[i]
  return sum
}

/** Read what the TUN holds into `into`. */
function drain (n: Node, into: Buffer[]): void {
  for (let k = n.wire.read(); k > 0; k = n.wire.read()) {
    for (let i = 0; i < k; i++) into.push(Buffer.from(n.wireRx.slab.subarray(n.wireRx.offsets[i], n.wireRx.offsets[i] + n.wireRx.lengths[i])))
  }
}

export function outcome (n: Node, before: Float64Array, received: Buffer[], delivered: Buffer[], threw?: unknown): Outcome {
  drain(n, delivered)
  const after = reading(n)
  const drops: Record<string, number> = {}
  for (let i = 1; i < DROP_COUNT; i++) if (after[i] !== before[i]) drops[DROP_NAMES[i]] = after[i] - before[i]
  if (after[DROP_COUNT] !== before[DROP_COUNT]) drops.rx_truncated = after[DROP_COUNT] - before[DROP_COUNT]
  if (after[DROP_COUNT + 1] !== before[DROP_COUNT + 1]) drops.rx_error = after[DROP_COUNT + 1] - before[DROP_COUNT + 1]
  return {
    received,
    delivered,
    drops,
    passed: after[DROP_COUNT + 2] - before[DROP_COUNT + 2],
    finished: after[DROP_COUNT + 3] - before[DROP_COUNT + 3],
    ...(threw !== undefined ? { threw } : {})
  }
}

/**
 * A stand-in for the underlay socket that hands the outside loop a batch of
 * datagrams per call, laid out as the addon's recvmmsg lays them out. It
 * implements what Pipeline uses of a PacketIo and nothing more. `setSender`
 * writes entry i's sender as the socket's family reports it (from
 * undefined: the addon's 0.0.0.0 or :: for a dropped datagram); `kind` is
 * 'udp6' for an IPv6 one.
 */
export class DirectSocket {
  private rx: PacketBatch | undefined
  private onBatch: ((n: number) => void) | undefined
  /** the addon's counters, as a PacketIo has them (the pipeline reads these) */
  readonly counters = new Float64Array(COUNTER_NAMES.length)

  constructor (private readonly setSender: (rx: PacketBatch, i: number, from: From | undefined) => void = setSender4, readonly kind?: 'udp6') {}

  receiveInto (b: PacketBatch): void { this.rx = b }
  sendFrom (): void {}
  start (onBatch: (n: number) => void): void { this.onBatch = onBatch }
  setReading (): void {}
  wantWritable (): void {}
  send (): number { return 0 }
  read (): number { return 0 }
  stats (): Record<string, number> { return snapshot(this.counters) }
  close (): void {}

  /** One receive batch of these datagrams, as recvmmsg fills it. */
  deliver (ds: readonly Datagram[]): void {
    const rx = this.rx as PacketBatch
    const cb = this.onBatch as (n: number) => void
    ds.forEach(({ datagram: d, from }, i) => {
      if (d.length > rx.capacity) {
        // recvmmsg: MSG_TRUNC; the addon counts it and hands over length 0 from 0.0.0.0 (::)
        this.counters[C.rxDropTruncated]++
        rx.lengths[i] = 0
        this.setSender(rx, i, undefined)
      } else {
        d.copy(rx.slab, rx.offsets[i])
        rx.lengths[i] = d.length
        this.setSender(rx, i, from)
      }
      rx.segs[i] = 0
    })
    cb(ds.length)
  }
}

function setSender4 (rx: PacketBatch, i: number, from: From | undefined): void {
  rx.addrs[i] = from === undefined ? 0 : (from === 'peer' ? PEER : STRANGER) >>> 0
}

const BATCH = 64

export function directRig (kind: EncapKind): OutsideRig {
  const sock = new DirectSocket()
  const node = makeNode(kind, sock as unknown as PacketIo, 8472)
  return {
    kind,
    mtu: MTU[kind],
    maxBatch: BATCH,
    inject: async (ds) => {
      if (ds.length > BATCH) throw new RangeError(`at most ${BATCH} datagrams at once`)
      const before = reading(node)
      let threw: unknown
      try {
        sock.deliver(ds)
      } catch (err) { threw = err }
      return outcome(node, before, ds.map((d) => d.datagram), [], threw)
    },
    close: () => { node.pipeline.close(); node.wire.close() }
  }
}

interface Sender { io: PacketIo, tx: PacketBatch }

function sender (io: PacketIo, to: number, port: number): Sender {
  const tx = new PacketBatch({ size: 1, slotSize: 65536 })
  const peers = new PeerTable(1)
  peers.set(0, to, port)
  tx.dests[0] = 0
  io.sendFrom(tx, peers)
  return { io, tx }
}

/** For IP-in-IP over a raw socket: the packet as the receiving raw socket will see it. */
function asKernelDelivers (d: Buffer, from: number): Buffer {
  const r = Buffer.from(d)
  r.writeUInt16BE(r.length, 2)
  r.writeUInt32BE(from >>> 0, 12)
  r.writeUInt32BE(NODE >>> 0, 16)
  setIpv4Checksum(r, 0)
  return r
}

export function socketRig (kind: EncapKind): OutsideRig {
  const ipip = kind === 'ipip'
  let sock: PacketIo
  let port = 0
  if (ipip) {
    sock = openRaw4({ protocol: constants.IPPROTO_IPIP, addr: NODE, batch: 64 })
  } else {
    const u = openUdp4({ addr: NODE, port: 0, batch: 64 })
    sock = u.io
    port = u.port
  }
  const node = makeNode(kind, sock, port)
  const open = (addr: number): Sender => ipip
    ? sender(openRaw4({ protocol: IPPROTO_RAW, addr, batch: 1 }), NODE, 0)
    : sender(openUdp4({ addr, port: 0, batch: 1 }).io, NODE, port)
  const senders: Record<From, Sender> = { peer: open(PEER), stranger: open(STRANGER) }
  return {
    kind,
    mtu: MTU[kind],
    maxBatch: BATCH,
    inject: async (ds) => {
      const before = reading(node)
      const want = accounted(before) + ds.length
      const received: Buffer[] = []
      for (const { datagram: d, from } of ds) {
        const s = senders[from]
        // IP_HDRINCL sends the source address we write: each sender writes its own
        const r = ipip ? asKernelDelivers(d, from === 'peer' ? PEER : STRANGER) : d
        r.copy(s.tx.slab, s.tx.offsets[0])
        s.tx.lengths[0] = r.length
        const sent = s.io.stats().txPackets
        if (s.io.send(1) !== 1 || s.io.stats().txPackets !== sent + 1) throw new Error(`could not send a ${r.length}-byte datagram: ${JSON.stringify(s.io.stats())}`)
        received.push(r)
      }
      const delivered: Buffer[] = []
      const deadline = Date.now() + SETTLE_MS
      while (accounted(reading(node)) < want && Date.now() < deadline) {
        drain(node, delivered)
        await new Promise((resolve) => setImmediate(resolve))
      }
      return outcome(node, before, received, delivered)
    },
    close: () => {
      node.pipeline.close()
      node.wire.close()
      senders.peer.io.close()
      senders.stranger.io.close()
    }
  }
}
