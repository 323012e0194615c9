// PacketIo: one fd (TUN/TAP, UDP socket or raw socket) driven by libuv
// readiness, moving whole batches.
//
// 1. receiveInto(batch) registers where packets land (once, not per read:
//    the addon reads the views then and keeps them)
// 2. start(onBatch): whenever the fd is readable the addon reads one batch
//    and calls onBatch(count) once; count < 0 is -errno of a fatal error,
//    after which reading has stopped
// 3. sendFrom(batch, peers) registers the send views; send(count) moves
//    packets 0..count-1 and returns how many were consumed (sent or dropped
//    with a counted reason). Fewer than count means the kernel queue is full:
//    keep the rest, call wantWritable(), resend from onWritable.
// 4. wakeAfter(us) calls start's onTimer once after that many µs (a timerfd
//    on the same loop): for writes the caller paces (dataplane/pacer.ts).
// Counters live in a Float64Array the addon writes directly: reading them
// costs no call.
import { fromNative } from '../errors'
import { native } from './binding'
import type { NativeIo } from './binding'
import { PeerTable, PeerTable6 } from './batch'
import type { PacketBatch } from './batch'
import type { BusyPoll } from './busy-poll'
import { COUNTER_NAMES, snapshot } from './counters'
import type { CounterSnapshot } from './counters'

export type IoKind = 'fd' | 'udp4' | 'raw4' | 'udp6'

export interface ReceiveOptions {
  /** TUN with IFF_VNET_HDR: every packet starts with a virtio_net_hdr; partial checksums of plain packets are finished */
  vnet?: boolean
  /** sockets: check every (segment's) inner TCP/UDP checksum, the inner IPv4 or IPv6 packet starting this many bytes in (raw: after the outer header; IPv6 with extension headers is not checked); results in batch.bad */
  checkInner?: number
  /**
   * UDP sockets carrying VXLAN, with checkInner: a datagram with the remote
   * checksum offload flag is not checked (its inner checksum is partial by
   * design; the outer UDP checksum, verified by the kernel, covers it). The
   * decapsulation must check the RCO fields against the packet.
   */
  rco?: boolean
}

export interface SendOptions {
  /** sockets: batch.segs describes each entry (UDP_SEGMENT runs, super-packets to segment) */
  gso?: boolean
  /** sockets: bytes of encapsulation in front of a super-packet's inner IPv4 or IPv6 header */
  inner?: number
  /** sockets: send runs of same-size plain datagrams to one peer as one UDP_SEGMENT message */
  coalesce?: boolean
  /** TUN: batch.segs[j] = how many offsets/lengths entries write j gathers (writev) */
  pieces?: boolean
}

const KINDS: Record<IoKind, number> = {
  fd: native.constants.KIND_FD,
  udp4: native.constants.KIND_UDP4,
  raw4: native.constants.KIND_RAW4,
  udp6: native.constants.KIND_UDP6
}

export class PacketIo {
  readonly kind: IoKind
  readonly counters: Float64Array
  readonly maxBatch: number
  private readonly io: NativeIo
  private closed = false

  /**
   * Takes ownership of fd: close() closes it. `counters` (COUNTER_NAMES.length
   * slots) lets another thread read them: a worker's, over a SharedArrayBuffer.
   */
  constructor (fd: number, kind: IoKind, maxBatch: number, counters: Float64Array = new Float64Array(COUNTER_NAMES.length)) {
    this.kind = kind
    this.maxBatch = maxBatch
    this.counters = counters
    this.io = new native.Io({ fd, kind: KINDS[kind], counters: this.counters, maxBatch })
  }

  get fd (): number { return this.io.fd }

  receiveInto (batch: PacketBatch, opts: ReceiveOptions = {}): void {
    const sock = this.kind !== 'fd'
    this.io.setReceive({
      slab: batch.slab,
      offsets: batch.offsets,
      lengths: batch.lengths,
      capacity: batch.capacity,
      addrs: sock ? batch.addrs : null,
      addrs6: this.kind === 'udp6' ? batch.addrs6 : null,
      ports: sock ? batch.ports : null,
      segs: this.kind === 'udp4' || this.kind === 'udp6' ? batch.segs : null,
      vnet: opts.vnet === true,
      bad: sock && opts.checkInner !== undefined ? batch.bad : null,
      inner: opts.checkInner ?? 0,
      rco: opts.rco === true
    })
  }

  /**
   * Sockets need `peers`: a PeerTable, or a PeerTable6 for a 'udp6' socket
   * (either on the other family's socket is refused). `true` is short for
   * { gso: true }: batch.segs says per entry what to send (see PacketBatch.segs).
   */
  sendFrom (batch: PacketBatch, peers?: PeerTable | PeerTable6, opts: boolean | SendOptions = {}): void {
    const o: SendOptions = typeof opts === 'boolean' ? { gso: opts } : opts
    const views = { slab: batch.slab, offsets: batch.offsets, lengths: batch.lengths }
    if (this.kind === 'fd') {
      this.io.setSend({ ...views, segs: o.pieces === true ? batch.segs : null })
      return
    }
    if (peers === undefined) throw new TypeError('a socket needs a PeerTable to send')
    const v6 = this.kind === 'udp6'
    if (v6 !== (peers instanceof PeerTable6)) throw new TypeError(v6 ? 'a udp6 socket sends through a PeerTable6' : `a ${this.kind} socket sends through a PeerTable, not a PeerTable6`)
    const tableStride = v6 ? PeerTable6.STRIDE : PeerTable.STRIDE
    this.io.setSend({ ...views, dests: batch.dests, table: peers.table, tableStride, segs: o.gso === true ? batch.segs : null, inner: o.inner ?? 0, coalesce: o.coalesce === true })
  }

  start (onBatch: (count: number) => void, onWritable?: () => void, onTimer?: () => void): void {
    try {
      this.io.start(onBatch, onWritable, onTimer)
    } catch (err) { throw fromNative(err) }
  }

  /** One batch now, without waiting for readiness (0 when nothing is queued). */
  read (): number {
    try {
      return this.io.read()
    } catch (err) { throw fromNative(err) }
  }

  send (count: number): number {
    try {
      return this.io.send(count)
    } catch (err) { throw fromNative(err) }
  }

  /** A TUN registered with pieces: `count` writes from write `first`, whose pieces start at `firstPiece`. */
  sendRange (count: number, first: number, firstPiece: number): number {
    try {
      return this.io.send(count, first, firstPiece)
    } catch (err) { throw fromNative(err) }
  }

  /** start's onTimer once, `us` µs from now (1..1e6); a later call moves it. */
  wakeAfter (us: number): void {
    try {
      this.io.wakeAfter(us)
    } catch (err) { throw fromNative(err) }
  }

  /** Backpressure: stop (false) or resume (true) reading. */
  setReading (on: boolean): void { this.io.setReading(on) }

  /** Each batch read from now on keeps the loop polling a while (null: no more). */
  busyPoll (poller: BusyPoll | null): void { this.io.setBusyPoll(poller === null ? null : poller.handle) }

  /** Ask for one onWritable callback when the fd can take more. */
  wantWritable (): void { this.io.wantWritable() }

  stats (): CounterSnapshot { return snapshot(this.counters) }

  /** Idempotent. */
  close (): void {
    if (this.closed) return
    this.closed = true
    this.io.close()
  }
}

/**
 * Two connected in-memory packet endpoints (a SOCK_SEQPACKET pair): each
 * read returns one whole packet, as from a TUN device. For tests and
 * benchmarks that run the real pipeline without privileges.
 */
export function packetPair (batch = 64): [PacketIo, PacketIo] {
  const [a, b] = native.socketPair()
  return [new PacketIo(a, 'fd', batch), new PacketIo(b, 'fd', batch)]
}
