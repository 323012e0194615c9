// Inside: packets from our pods (the TUN device) to other nodes.
// 1. the TUN is readable: the addon has read up to a batch of packets into
//    `rx`, each at its slot's headroom
// 2. per packet: an IPv4 packet within the MTU, whose destination subnet has
//    a peer (Fdb.lookup), else dropped with its reason; with answers on
//    (answerUnreachable), a packet with no peer is also answered with an ICMP
//    net-unreachable written into `tunTx` (flannel's UDP proxy does this)
// 3. the encapsulation is written in front of it, in place (or refuses it
//    with a drop reason, e.g. the UDP backend's TTL running out), and the
//    packet queued in `tx` (start, length, peer index)
// 4. the answers, if any, go back into the TUN in one write
// 5. one send for the whole batch; if the socket takes only part, the TUN is
//    not read again until the socket drains (backpressure, not loss)
// Nothing here allocates, closes over per-packet state, or logs.
import type { PacketBatch } from '../native/batch'
import type { PacketIo } from '../native/io'
import { setIpv4Checksum, IPPROTO_ICMP, IPV4_FRAG_OFFSET_MASK } from '../packet/ipv4'
import { setIcmpChecksum, ICMP_DEST_UNREACH } from '../packet/icmp'
import { Reason } from '../packet/reason'
import type { Encapsulation } from './encap'
import type { Fdb } from './fdb'
import { PER_PEER, PeerCount } from './fdb'
import { Count, Drop } from './stats'

export interface InsideOptions {
  tun: PacketIo
  sock: PacketIo
  /** receive batch on the TUN; its headroom must fit encap.headroom */
  rx: PacketBatch
  /** send batch over the same slab */
  tx: PacketBatch
  fdb: Fdb
  encap: Encapsulation
  stats: Float64Array
  mtu: number
  /** a fatal read error (-errno); reading has stopped */
  onFatal: (errno: number) => void
  /**
   * The batch registered for writes to the TUN, i.e. the outside loop's send
   * batch. Needed only to answer packets (answerUnreachable). Sharing it is
   * safe: both loops run on one thread, and each finishes its TUN write
   * before it returns, so between batches the slots are free.
   */
  tunTx?: PacketBatch
}

/** ICMP net-unreachable (type 3, code 0). */
const NET_UNREACH = 0
/** TTL of the answers we write, as flannel's proxy sets it */
const ANSWER_TTL = 8
/** The longest answer: IPv4 20 + ICMP 8 + the offender's header (<= 60) and 8 bytes of its payload */
const ANSWER_MAX = 20 + 8 + 60 + 8

export class Inside {
  private pending = 0
  private first = 0
  /** whether the TUN is being read (false while the socket pushes back) */
  private readingTun = true
  /** our TUN address, 4 bytes, the source of answers; empty = no answers */
  private answerFrom: Buffer = Buffer.alloc(0)

  constructor (private readonly o: InsideOptions) {
    if (o.rx.headroom < o.encap.headroom) throw new RangeError('receive headroom is smaller than the encapsulation')
    o.tun.receiveInto(o.rx)
    o.sock.sendFrom(o.tx, o.fdb.addrs)
  }

  /**
   * Answer packets no lease covers with ICMP net-unreachable from `source`
   * (our TUN address, uint32), as flannel's UDP backend does; 0 turns it off.
   * Not for ICMP packets or non-first fragments.
   */
  answerUnreachable (source: number): void {
    const t = this.o.tunTx
    if (source !== 0 && (t === undefined || t.slotSize < ANSWER_MAX)) throw new RangeError('answering needs the TUN send batch (tunTx) with slots of at least ' + String(ANSWER_MAX) + ' bytes')
    if (source === 0) { this.answerFrom = Buffer.alloc(0); return }
    // kept as bytes: a uint32 above 2^31 passed around per packet would be a heap number
    const b = Buffer.alloc(4)
    b.writeUInt32BE(source >>> 0)
    this.answerFrom = b
  }

  /** Called by the addon once per batch. */
  readonly onBatch = (n: number): void => {
    const o = this.o
    if (n < 0) { o.onFatal(-n); return }
    const slab = o.rx.slab
    const offsets = o.rx.offsets
    const lengths = o.rx.lengths
    const txOff = o.tx.offsets
    const txLen = o.tx.lengths
    const txDest = o.tx.dests
    const stats = o.stats
    const perPeer = o.fdb.perPeer
    const fdb = o.fdb
    const encap = o.encap
    const mtu = o.mtu
    const from = this.answerFrom
    const answers = from.length === 4 ? (o.tunTx as PacketBatch) : undefined
    let k = 0
    let a = 0
    stats[Count.INSIDE_BATCHES]++
    for (let i = 0; i < n; i++) {
      const off = offsets[i]
      const len = lengths[i]
      if (len < 20) { stats[Reason.TRUNCATED]++; continue }
      if ((slab[off] >> 4) !== 4) { stats[Drop.NOT_IPV4]++; continue }
      if (len > mtu) { stats[Drop.TOO_BIG]++; continue }
      const dst = (slab[off + 16] << 24) | (slab[off + 17] << 16) | (slab[off + 18] << 8) | slab[off + 19]
      const peer = fdb.lookup(dst)
      if (peer < 0) {
        stats[Drop.NO_ROUTE]++
        if (answers !== undefined && a < answers.size && slab[off + 9] !== IPPROTO_ICMP && (((slab[off + 6] << 8) | slab[off + 7]) & IPV4_FRAG_OFFSET_MASK) === 0) {
          const at = a * answers.slotSize
          answers.offsets[a] = at
          answers.lengths[a] = writeNetUnreachable(answers.slab, at, slab, off, len, from)
          a++
        }
        continue
      }
      const start = encap.encap(slab, off, len, peer)
      if (start < 0) { stats[-start]++; continue }
      txOff[k] = start
      txLen[k] = len + (off - start)
      txDest[k] = peer
      k++
      perPeer[peer * PER_PEER + PeerCount.INSIDE_PACKETS]++
      perPeer[peer * PER_PEER + PeerCount.INSIDE_BYTES] += len
      stats[Count.INSIDE_PACKETS]++
      stats[Count.INSIDE_BYTES] += len
    }
    if (a > 0) {
      const written = o.tun.send(a)
      stats[Count.UNREACHABLE_SENT] += written
      // TUN writes do not queue: what the kernel would not take is lost, and counted
      if (written < a) stats[Drop.TUN_WRITE] += a - written
    }
    this.first = 0
    this.pending = k
    this.flush()
  }

  /** Send what is queued; on a partial send wait for the socket. */
  readonly flush = (): void => {
    const o = this.o
    if (this.pending === 0) { this.reading(true); return }
    if (this.first > 0) this.shiftDown()
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

  /** Move the unsent tail of tx to the front (the addon always sends from 0). */
  private shiftDown (): void {
    const t = this.o.tx
    const f = this.first
    for (let i = 0; i < this.pending; i++) {
      t.offsets[i] = t.offsets[f + i]
      t.lengths[i] = t.lengths[f + i]
      t.dests[i] = t.dests[f + i]
    }
    this.first = 0
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
