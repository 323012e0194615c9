// A batch of packet slots in one slab Buffer, the unit every I/O call moves.
//
// Slot i spans [i * slotSize, (i + 1) * slotSize). A packet read into slot i
// starts at offsets[i] = i * slotSize + headroom, so headers can later be
// written in front of it (VXLAN: inner Ethernet + VXLAN header) without a copy.
// Who owns what: the batch owns the slab; a packet's bytes are valid until the
// next read into the same batch ("borrowed until the next read").
//
// The parallel Uint32Arrays are shared with the addon: it fills lengths/addrs/
// addrs6/ports/segs on receive and reads offsets/lengths/dests/segs on send. A
// length of 0 after a receive marks a slot whose packet was dropped (and
// counted); its sender then reads as 0.0.0.0 (addrs) or :: (addrs6).
import { constants } from './binding'

export interface BatchOptions {
  /** packets (or, for gathered TUN writes, pieces) per batch (1..8192) */
  size: number
  /** bytes per slot, headroom included */
  slotSize: number
  /** bytes kept free in front of each received packet */
  headroom?: number
  /** share another batch's slab (a send batch over the packets a receive batch read) */
  slab?: Buffer
}

/**
 * Or'ed into a super-packet's segs entry: its segments carry only the
 * pseudo-header sum in the inner TCP/UDP checksum (the payload is not
 * summed), for a peer that takes VXLAN remote checksum offload.
 * WEFT_SEGS_PARTIAL in native/src/weft.h, from the addon.
 */
export const SEGS_PARTIAL: number = constants.SEGS_PARTIAL

export class PacketBatch {
  readonly size: number
  readonly slotSize: number
  readonly headroom: number
  /** bytes a packet may occupy after the headroom */
  readonly capacity: number
  readonly slab: Buffer
  readonly offsets: Uint32Array
  readonly lengths: Uint32Array
  /** source (receive) IPv4 as host-order uint32; 0 on a udp6 socket */
  readonly addrs: Uint32Array
  /**
   * source (receive on a udp6 socket) IPv6: entry i's address as four
   * big-endian words at 4i..4i+3 (word k = bytes 4k..4k+3). Allocated with
   * every batch (16 bytes a slot), so that any batch can be handed to
   * either family's socket without a second shape.
   */
  readonly addrs6: Uint32Array
  readonly ports: Uint32Array
  /**
   * receive: UDP_GRO segment size, 0 = not coalesced; send on a socket: what
   * entry i is (0 plain, 1..0xffff a run of datagrams of that size, type << 16 | mss
   * a super-packet to segment, | SEGS_PARTIAL to leave its segments' inner
   * checksums partial); send to a TUN: pieces gathered by write i
   */
  readonly segs: Uint32Array
  /** send: index into the peer table */
  readonly dests: Uint32Array
  /** receive with inner checks: bad[2i], bad[2i + 1] = bitmask of message i's segments whose inner checksum is wrong */
  readonly bad: Uint32Array

  constructor (opts: BatchOptions) {
    const headroom = opts.headroom ?? 0
    if (!Number.isInteger(opts.size) || opts.size < 1 || opts.size > 8192) throw new RangeError('batch size must be 1..8192')
    if (opts.slotSize <= headroom) throw new RangeError('slotSize must exceed headroom')
    this.size = opts.size
    this.slotSize = opts.slotSize
    this.headroom = headroom
    this.capacity = opts.slotSize - headroom
    if (opts.slab !== undefined && opts.slab.length < opts.size * opts.slotSize) throw new RangeError('shared slab is smaller than size * slotSize')
    this.slab = opts.slab ?? Buffer.allocUnsafeSlow(opts.size * opts.slotSize)
    this.offsets = new Uint32Array(opts.size)
    this.lengths = new Uint32Array(opts.size)
    this.addrs = new Uint32Array(opts.size)
    this.addrs6 = new Uint32Array(opts.size * 4)
    this.ports = new Uint32Array(opts.size)
    this.segs = new Uint32Array(opts.size)
    this.dests = new Uint32Array(opts.size)
    this.bad = new Uint32Array(opts.size * 2)
    this.resetOffsets()
  }

  /** Put every slot back at its home offset (after in-place header work). */
  resetOffsets (): void {
    for (let i = 0; i < this.size; i++) this.offsets[i] = i * this.slotSize + this.headroom
  }

  /**
   * Send entries first..first+count-1 become 0..count-1 (offsets, lengths,
   * dests, segs): the addon always sends from entry 0, so a partly sent
   * batch moves its unsent tail to the front.
   */
  moveToFront (first: number, count: number): void {
    for (let i = 0; i < count; i++) {
      this.offsets[i] = this.offsets[first + i]
      this.lengths[i] = this.lengths[first + i]
      this.dests[i] = this.dests[first + i]
      this.segs[i] = this.segs[first + i]
    }
  }
}

/**
 * What both families' destination tables share: a fixed-capacity table,
 * allocated once, `stride` words per peer index.
 */
abstract class PeerSlots {
  readonly table: Uint32Array
  readonly capacity: number

  constructor (capacity: number, private readonly stride: number) {
    this.capacity = capacity
    this.table = new Uint32Array(capacity * stride)
  }

  /** where index's words start; a RangeError outside the table */
  protected slot (index: number): number {
    if (index < 0 || index >= this.capacity) throw new RangeError(`peer index ${index} outside 0..${this.capacity - 1}`)
    return this.stride * index
  }
}

/**
 * Destinations for socket sends: a packed (addr, port) table the addon reads
 * by index, so sending never builds an address per packet. Fixed capacity,
 * allocated once; entries are rewritten in place as peers come and go.
 */
export class PeerTable extends PeerSlots {
  /** words per peer (the addon checks it against the socket's family) */
  static readonly STRIDE = 2

  constructor (capacity: number) {
    super(capacity, PeerTable.STRIDE)
  }

  set (index: number, addr: number, port: number): void {
    const at = this.slot(index)
    this.table[at] = addr >>> 0
    this.table[at + 1] = port
  }
}

/**
 * Destinations for a udp6 socket's sends, as PeerTable: per index the IPv6
 * address as four big-endian words (word k = bytes 4k..4k+3, as
 * PacketBatch.addrs6 reports a sender) and the port, (w0, w1, w2, w3, port).
 */
export class PeerTable6 extends PeerSlots {
  static readonly STRIDE = 5

  constructor (capacity: number) {
    super(capacity, PeerTable6.STRIDE)
  }

  /** `words`: the address's four big-endian words (ip6Words in src/packet/net6.ts) */
  set (index: number, words: ArrayLike<number>, port: number): void {
    const at = this.slot(index)
    if (words.length !== 4) throw new RangeError('an IPv6 address is four words')
    for (let k = 0; k < 4; k++) this.table[at + k] = words[k] >>> 0
    this.table[at + 4] = port
  }
}
