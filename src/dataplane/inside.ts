// Inside: packets from our pods (the TUN device) to other nodes.
// 1. the TUN is readable: the addon has read up to a batch of packets into
//    `rx`, each at its slot's headroom; with a vnet header (TSO on), a packet
//    may be a TCP/UDP super-packet of up to 64 KB, and plain packets have
//    had their partial checksums finished by the addon
// 2. per packet: an IPv4 packet within the MTU (a super-packet: of a kind we
//    segment), whose destination subnet has a peer (Fdb.lookup), else dropped
//    with its reason; with answers on (answerUnreachable), a packet with no
//    peer is also answered with an ICMP net-unreachable (flannel's UDP proxy
//    does this)
// 3. the encapsulation is written in front of it, in place, over the vnet
//    header (or refuses it with a drop reason, e.g. the UDP backend's TTL
//    running out), and the packet queued in `tx` (start, length, peer
//    index; for a super-packet, segs = type << 16 | mss: the addon cuts it
//    into segments, each behind a copy of the encapsulation; | SEGS_PARTIAL
//    where the peer takes VXLAN remote checksum offload, so that the addon
//    never sums the payload)
// 4. the answers, if any, go back into the TUN in one write
// 5. one send for the whole batch; if the socket takes only part, the TUN is
//    not read again until the socket drains (backpressure, not loss)
// Nothing here allocates, closes over per-packet state, or logs.
// An IPv6 pipeline (an Fdb6) runs inside6.ts's loop for step 2 instead; the
// choice is made once, here in the constructor.
import type { PacketBatch } from '../native/batch'
import { SEGS_PARTIAL } from '../native/batch'
import type { PacketIo } from '../native/io'
import { setIpv4Checksum, IPPROTO_ICMP, IPV4_FRAG_OFFSET_MASK } from '../packet/ipv4'
import { setIcmpChecksum, ICMP_DEST_UNREACH } from '../packet/icmp'
import { Reason } from '../packet/reason'
import type { Encapsulation } from './encap'
import type { Fdb } from './fdb'
import { Fdb6 } from './fdb6'
import { queueBatch6 } from './inside6'
import { PER_PEER, PeerCount } from './fdb'
import { Count, Drop } from './stats'
import type { TunWrites } from './tun-writes'
import { GSO_NONE, GSO_TCPV4, GSO_UDP_L4, VNET_HDR_LEN, vnetGsoSize } from '../native/vnet'

export interface InsideOptions {
  tun: PacketIo
  sock: PacketIo
  /** receive batch on the TUN; its headroom must fit encap.headroom */
  rx: PacketBatch
  /** send batch over the same slab */
  tx: PacketBatch
  /** an Fdb6 makes this an IPv6 pipeline's inside (inside6.ts) */
  fdb: Fdb | Fdb6
  encap: Encapsulation
  stats: Float64Array
  mtu: number
  /** the TUN puts a virtio_net_hdr in front of every packet */
  vnet: boolean
  /** gather same-size datagrams to one peer into UDP_SEGMENT sends (UDP sockets) */
  coalesce: boolean
  /** a fatal read error (-errno); reading has stopped */
  onFatal: (errno: number) => void
  /**
   * The TUN's writes, shared with the outside loop. Needed only to answer
   * packets (answerUnreachable), whose bytes go at answerBase in the writes'
   * slab (ANSWER_SLOTS slots of ANSWER_SLOT bytes). Sharing is safe: both
   * loops run on one thread, and each finishes its TUN write before it
   * returns.
   */
  writes?: TunWrites
  answerSlab?: Buffer
  answerBase?: number
}

/**
 * Answers per batch, and the room each takes in the answer area: the longest
 * is IPv4 20 + ICMP 8 + the offender's header (<= 60) and 8 bytes of its payload.
 */
export const ANSWER_SLOTS = 64
export const ANSWER_SLOT = 128

/** ICMP net-unreachable (type 3, code 0). */
const NET_UNREACH = 0
/** TTL of the answers we write, as flannel's proxy sets it */
const ANSWER_TTL = 8

export class Inside {
  private pending = 0
  private first = 0
  /** whether the TUN is being read (false while the socket pushes back) */
  private readingTun = true
  /** our TUN address, 4 bytes, the source of answers; empty = no answers */
  private answerFrom: Buffer = Buffer.alloc(0)
  /** Called by the addon once per batch (the IPv4 loop, or an IPv6 pipeline's). */
  readonly onBatch: (n: number) => void

  constructor (private readonly o: InsideOptions) {
    if (o.rx.headroom + (o.vnet ? VNET_HDR_LEN : 0) < o.encap.headroom) throw new RangeError('receive headroom is smaller than the encapsulation')
    o.tun.receiveInto(o.rx, { vnet: o.vnet })
    const v6 = o.fdb instanceof Fdb6
    o.sock.sendFrom(o.tx, o.fdb.addrs, { gso: true, inner: o.encap.headroom, coalesce: o.coalesce && o.sock.kind === (v6 ? 'udp6' : 'udp4') })
    this.onBatch = v6 ? this.batch6 : this.batch4
  }

  /**
   * Answer packets no lease covers with ICMP net-unreachable from `source`
   * (our TUN address, uint32), as flannel's UDP backend does; 0 turns it off.
   * Not for ICMP packets or non-first fragments.
   */
  answerUnreachable (source: number): void {
    if (source !== 0 && (this.o.writes === undefined || this.o.answerSlab === undefined)) throw new RangeError('answering needs the TUN writes and an answer area')
    if (source !== 0 && this.o.fdb instanceof Fdb6) throw new RangeError('an IPv6 pipeline does not answer (flannel\'s UDP backend, the one that does, is IPv4 only)')
    if (source === 0) { this.answerFrom = Buffer.alloc(0); return }
    // kept as bytes: a uint32 above 2^31 passed around per packet would be a heap number
    const b = Buffer.alloc(4)
    b.writeUInt32BE(source >>> 0)
    this.answerFrom = b
  }

  /** An IPv6 pipeline's batch: queued by inside6.ts, sent as an IPv4 one. */
  private readonly batch6 = (n: number): void => {
    if (n < 0) { this.o.onFatal(-n); return }
    this.first = 0
    this.pending = queueBatch6(this.o, n)
    this.flush()
  }

  private readonly batch4 = (n: number): void => {
    const o = this.o
    if (n < 0) { o.onFatal(-n); return }
    const slab = o.rx.slab
    const offsets = o.rx.offsets
    const lengths = o.rx.lengths
    const txOff = o.tx.offsets
    const txLen = o.tx.lengths
    const txDest = o.tx.dests
    const txSegs = o.tx.segs
    const vnet = o.vnet
    const stats = o.stats
    const perPeer = o.fdb.perPeer
    const fdb = o.fdb as Fdb
    const encap = o.encap
    const mtu = o.mtu
    const from = this.answerFrom
    const answering = from.length === 4
    let k = 0
    let a = 0
    stats[Count.INSIDE_BATCHES]++
    for (let i = 0; i < n; i++) {
      let off = offsets[i]
      let len = lengths[i]
      let gso = 0
      if (vnet) {
        const type = slab[off + 1]
        if (type !== GSO_NONE) {
          if (type !== GSO_TCPV4 && type !== GSO_UDP_L4) { stats[Drop.GSO_UNSUPPORTED]++; continue }
          gso = (type << 16) | vnetGsoSize(slab, off)
          stats[Count.INSIDE_SUPER_PACKETS]++
        }
        off += VNET_HDR_LEN
        len -= VNET_HDR_LEN
      }
      if (len < 20) { stats[Reason.TRUNCATED]++; continue }
      if ((slab[off] >> 4) !== 4) { stats[Drop.NOT_IPV4]++; continue }
      if (len > mtu && gso === 0) { stats[Drop.TOO_BIG]++; continue }
      const dst = (slab[off + 16] << 24) | (slab[off + 17] << 16) | (slab[off + 18] << 8) | slab[off + 19]
      const peer = fdb.lookup(dst)
      if (peer < 0) {
        stats[Drop.NO_ROUTE]++
        if (answering && a < ANSWER_SLOTS && slab[off + 9] !== IPPROTO_ICMP && (((slab[off + 6] << 8) | slab[off + 7]) & IPV4_FRAG_OFFSET_MASK) === 0) {
          const at = (o.answerBase as number) + a * ANSWER_SLOT
          ;(o.writes as TunWrites).single(at, writeNetUnreachable(o.answerSlab as Buffer, at, slab, off, len, from))
          a++
        }
        continue
      }
      const start = encap.encap(slab, off, len, peer)
      if (start < 0) { stats[-start]++; continue }
      if (gso !== 0 && encap.partial !== undefined && encap.partial(slab, start, off, peer)) {
        gso |= SEGS_PARTIAL
        stats[Count.INSIDE_PARTIAL]++
      }
      txOff[k] = start
      txLen[k] = len + (off - start)
      txDest[k] = peer
      txSegs[k] = gso
      k++
      perPeer[peer * PER_PEER + PeerCount.INSIDE_PACKETS]++
      perPeer[peer * PER_PEER + PeerCount.INSIDE_BYTES] += len
      stats[Count.INSIDE_PACKETS]++
      stats[Count.INSIDE_BYTES] += len
    }
    if (a > 0) stats[Count.UNREACHABLE_SENT] += a - (o.writes as TunWrites).send()
    this.first = 0
    this.pending = k
    this.flush()
  }

  /** Send what is queued; on a partial send wait for the socket. */
  readonly flush = (): void => {
    const o = this.o
    if (this.pending === 0) { this.reading(true); return }
    if (this.first > 0) { this.o.tx.moveToFront(this.first, this.pending); this.first = 0 }
    const sent = o.sock.send(this.pending)
    if (sent >= this.pending) {
      this.pending = 0
      this.reading(true)
      return
    }
    this.first = sent
    this.pending -= sent
    o.stats[Count.INSIDE_BACKPRESSURE]++
    this.reading(false)
    o.sock.wantWritable()
  }

  /** Start or stop reading the TUN, crossing into the addon only on a change. */
  private reading (on: boolean): void {
    if (on === this.readingTun) return
    this.readingTun = on
    this.o.tun.setReading(on)
  }
}

/**
 * Write at out[at] an ICMP net-unreachable from `from` (4 bytes) to the
 * sender of the IPv4 packet at pkt[off] (len bytes), quoting its header and
 * the first 8 bytes of its payload (RFC 792). Returns the answer's length.
 * Byte by byte on purpose: no numbers above 2^31, no allocation.
 */
function writeNetUnreachable (out: Buffer, at: number, pkt: Buffer, off: number, len: number, from: Buffer): number {
  let quote = ((pkt[off] & 15) << 2) + 8
  if (quote > len) quote = len
  const total = 28 + quote
  out[at] = 0x45
  out[at + 1] = 0
  out[at + 2] = total >> 8
  out[at + 3] = total & 255
  out[at + 4] = 0 // id
  out[at + 5] = 0
  out[at + 6] = 0 // flags, fragment offset
  out[at + 7] = 0
  out[at + 8] = ANSWER_TTL
  out[at + 9] = IPPROTO_ICMP
  out[at + 12] = from[0]
  out[at + 13] = from[1]
  out[at + 14] = from[2]
  out[at + 15] = from[3]
  out[at + 16] = pkt[off + 12] // to whoever sent the offender
  out[at + 17] = pkt[off + 13]
  out[at + 18] = pkt[off + 14]
  out[at + 19] = pkt[off + 15]
  setIpv4Checksum(out, at)
  const icmp = at + 20
  out[icmp] = ICMP_DEST_UNREACH
  out[icmp + 1] = NET_UNREACH
  for (let i = 2; i < 8; i++) out[icmp + i] = 0 // checksum (set below) and the unused word
  for (let i = 0; i < quote; i++) out[icmp + 8 + i] = pkt[off + i]
  setIcmpChecksum(out, icmp, 8 + quote)
  return total
}
