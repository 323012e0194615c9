// One running dataplane: a TUN device and an underlay socket, joined by the
// inside and outside loops over one encapsulation. Batches and slabs are
// allocated here, once; nothing on the per-packet path allocates after this.
import type { PacketIo } from '../native/io'
import { BusyPoll } from '../native/busy-poll'
import { PacketBatch } from '../native/batch'
import type { Encapsulation } from './encap'
import type { Fdb } from './fdb'
import type { Fdb6 } from './fdb6'
import type { Ip6Net } from '../packet/net6'
import { PER_PEER } from './fdb'
import { ANSWER_SLOT, ANSWER_SLOTS, Inside } from './inside'
import { GRO_MAX_SEGMENTS, Outside } from './outside'
import { TunWrites } from './tun-writes'
import { pacingFactor, UdpPacer } from './pacer'
import { VNET_F_DATA_VALID, VNET_HDR_LEN } from '../native/vnet'
import { snapshot } from '../native/counters'
import { Count, newStats, snapshotStats } from './stats'
import type { StatsSnapshot } from './stats'

export interface PipelineOptions {
  tun: PacketIo
  sock: PacketIo
  /** an Fdb6 (with a udp6 socket and a TUN carrying IPv6) makes an IPv6 pipeline */
  fdb: Fdb | Fdb6
  encap: Encapsulation
  /** the TUN device's MTU (largest inner packet) */
  mtu: number
  /** packets per batch */
  batch: number
  /**
   * What the kernel gives us (see TunDevice and the sockets):
   * vnet   the TUN was opened with IFF_VNET_HDR (required for the rest)
   * tso    TUN TSO/USO is on: reads may be 64 KB super-packets
   * gro    the socket has UDP_GRO: a read may hold many datagrams
   * uso    TUN USO is on: the TUN takes UDP super-packets too
   * gso    UDP_SEGMENT may gather same-size datagrams (super-packets are
   *        only ever read with tso, so they need nothing more)
   * Inner checksums are checked by the addon whenever vnet is on, which is
   * what lets received TCP segments coalesce into super-packets.
   */
  offloads?: { vnet: boolean, tso: boolean, gro: boolean, uso?: boolean, gso?: boolean }
  /**
   * The socket may hand over a packet of up to 64 KB without UDP_GRO: a raw
   * socket (IP-in-IP) gets the IPv4 stack's GRO of its protocol whole, which
   * any underlay with GRO on does (most NICs by default). Its slots must
   * hold that, or every merged packet is cut short and dropped.
   */
  wholeReads?: boolean
  onFatal: (where: 'inside' | 'outside', errno: number) => void
  /** µs the loop keeps polling after each light batch (BusyPoll); absent or 0: it sleeps between batches */
  busyPollUs?: number
  /** STAT_SLOTS counters and the unknown-sender ring, when another thread reads them (a worker's, over a SharedArrayBuffer) */
  stats?: Float64Array
  unknownSources?: Uint32Array
  spoofSenders?: Uint32Array
  /** drop inner sources the sender does not hold (Outside's checkSource) */
  checkSource?: boolean
  /**
   * Pace UDP into the TUN at this many times its arrival rate (pacer.ts);
   * 0: write every batch at once. Default: WEFT_UDP_PACING, else PACE_FACTOR.
   */
  udpPacing?: number
}

export type DataplaneSnapshot = StatsSnapshot & { tun: Record<string, number>, sock: Record<string, number> }

/** Names and values from a dataplane's raw counters (a sum over workers, or one pipeline's). */
export function dataplaneSnapshot (stats: Float64Array, tun: Float64Array, sock: Float64Array): DataplaneSnapshot {
  const snap = { ...snapshotStats(stats), tun: snapshot(tun), sock: snapshot(sock) }
  // with inner checks on, the addon finishes partial checksums on receive
  snap.counters.checksums_finished += snap.sock.rxCsumFinished
  return snap
}

/**
 * --busy-poll on a loop's TUN and socket (both on one event loop): a
 * BusyPoll over the stats' BUSY_POLL slots, or null for a window of 0.
 * Close it before the PacketIos.
 */
export function startBusyPoll (stats: Float64Array, windowUs: number, tun: PacketIo, sock: PacketIo): BusyPoll | null {
  if (windowUs <= 0) return null
  const busy = new BusyPoll(stats.subarray(Count.BUSY_POLL_NS, Count.BUSY_POLL_SUSPENDED + 1), windowUs)
  tun.busyPoll(busy)
  sock.busyPoll(busy)
  return busy
}

/** Room in front of every packet read from the TUN; more than any encapsulation needs. */
export const INSIDE_HEADROOM = 64
/** The largest super-packet the TUN hands us (IPv4 total length), and the largest UDP_GRO read. */
const SUPER_MAX = 65535

function roundUp (n: number, to: number): number {
  return Math.ceil(n / to) * to
}

export class Pipeline {
  readonly stats: Float64Array
  readonly inside: Inside
  readonly outside: Outside
  private readonly writes: TunWrites
  private started = false
  private busy: BusyPoll | null = null

  constructor (private readonly o: PipelineOptions) {
    this.stats = o.stats ?? newStats()
    const off = o.offloads ?? { vnet: false, tso: false, gro: false }
    const vnet = off.vnet
    const vnetLen = vnet ? VNET_HDR_LEN : 0
    // A slot holds the largest packet plus one byte: a read that fills its
    // slot is treated as truncated.
    const inLargest = off.tso ? SUPER_MAX : o.mtu
    const inSlot = roundUp(INSIDE_HEADROOM + vnetLen + inLargest + 1, 64)
    const inRx = new PacketBatch({ size: o.batch, slotSize: inSlot, headroom: INSIDE_HEADROOM })
    const inTx = new PacketBatch({ size: o.batch, slotSize: inSlot, slab: inRx.slab })
    // Outside: the receive slots, then the TUN writes' header area, then the
    // inside loop's ICMP answers, all in one slab (writes gather from it).
    const outSlot = off.gro || o.wholeReads === true ? roundUp(SUPER_MAX + 1, 64) : roundUp(o.encap.headroom + 64 + o.mtu + 1, 64)
    const datagrams = o.batch * (off.gro ? GRO_MAX_SEGMENTS : 1)
    const maxWrites = datagrams + ANSWER_SLOTS
    const hdrBase = o.batch * outSlot
    const answerBase = hdrBase + TunWrites.headerArea(maxWrites)
    const outSlab = Buffer.allocUnsafeSlow(answerBase + ANSWER_SLOTS * ANSWER_SLOT)
    const outRx = new PacketBatch({ size: o.batch, slotSize: outSlot, slab: outSlab })
    // pieces: a header and a packet per write at most
    const pieces = new PacketBatch({ size: Math.min(8192, 2 * maxWrites), slotSize: 1, slab: outSlab })
    const checked = vnet
    const factor = o.udpPacing ?? pacingFactor(process.env.WEFT_UDP_PACING)
    const writes = new TunWrites(o.tun, pieces, vnet, hdrBase, maxWrites, this.stats, checked ? VNET_F_DATA_VALID : 0, off.uso === true, factor > 0 ? new UdpPacer(factor) : undefined)
    this.writes = writes
    this.inside = new Inside({ tun: o.tun, sock: o.sock, rx: inRx, tx: inTx, fdb: o.fdb, encap: o.encap, stats: this.stats, mtu: o.mtu, vnet, coalesce: off.gso === true, onFatal: (e) => o.onFatal('inside', e), writes, answerSlab: outSlab, answerBase })
    this.outside = new Outside({ sock: o.sock, rx: outRx, writes, fdb: o.fdb, encap: o.encap, stats: this.stats, mtu: o.mtu, checked, onFatal: (e) => o.onFatal('outside', e), unknownSources: o.unknownSources, spoofSenders: o.spoofSenders, checkSource: o.checkSource })
  }

  start (): void {
    if (this.started) return
    this.started = true
    this.busy = startBusyPoll(this.stats, this.o.busyPollUs ?? 0, this.o.tun, this.o.sock)
    this.o.tun.start(this.inside.onBatch, undefined, this.writes.resume)
    this.o.sock.start(this.outside.onBatch, this.inside.flush)
  }

  snapshot (): DataplaneSnapshot {
    return dataplaneSnapshot(this.stats, this.o.tun.counters, this.o.sock.counters)
  }

  /** The TUN's and the socket's raw counters (a WorkerGroup sums them with its workers'). */
  ioCounters (): { tun: Float64Array, sock: Float64Array } {
    return { tun: this.o.tun.counters, sock: this.o.sock.counters }
  }

  /** Our subnet: inner destinations must be inside it. */
  setOwnSubnet (ip: number, prefixLen: number): void {
    this.outside.setOwnSubnet(ip, prefixLen)
  }

  /** This node's addresses, which no peer may send from. */
  setLocalAddresses (addrs: readonly number[]): void {
    this.outside.setLocalAddresses(addrs)
  }

  /** IPv6 pipeline: our IPv6 subnet (inner destinations must be inside it). */
  setOwnSubnet6 (subnet: Ip6Net): void {
    this.outside.setOwnSubnet6(subnet)
  }

  /** IPv6 pipeline: this node's IPv6 addresses, which no peer may send from. */
  setLocalAddresses6 (addrs: readonly bigint[]): void {
    this.outside.setLocalAddresses6(addrs)
  }

  /** IPv6 pipeline: the rings of recent senders without a lease, four words per address (0s = empty slot). */
  unknownRings6 (): Uint32Array[] {
    return [this.outside.unknownSources6]
  }

  /** IPv6 pipeline: the rings of recent lease holders that sent a spoofed inner source, four words per address. */
  spoofRings6 (): Uint32Array[] {
    return [this.outside.spoofSenders6]
  }

  /** The rings of recent senders without a lease (one here; one per worker in a WorkerGroup). */
  unknownRings (): Uint32Array[] {
    return [this.outside.unknownSources]
  }

  /** The rings of recent lease holders that sent a spoofed inner source. */
  spoofRings (): Uint32Array[] {
    return [this.outside.spoofSenders]
  }

  /** A per-peer counter (PeerCount) of the peer at `index`. */
  peerCounter (index: number, which: number): number {
    return this.o.fdb.perPeer[index * PER_PEER + which]
  }

  /** Idempotent: stops both loops and closes both fds. */
  close (): void {
    this.busy?.close()
    this.o.tun.close()
    this.o.sock.close()
  }
}
