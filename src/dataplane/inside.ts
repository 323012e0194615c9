// Inside: packets from our pods (the TUN device) to other nodes.
// 1. the TUN is readable: the addon has read up to a batch of packets into
//    `rx`, each at its slot's headroom
// 2. per packet: an IPv4 packet within the MTU, whose destination subnet has
//    a peer (Fdb.lookup), else dropped with its reason
// 3. the encapsulation is written in front of it, in place, and the packet
//    queued in `tx` (start, length, peer index)
// 4. one send for the whole batch; if the socket takes only part, the TUN is
//    not read again until the socket drains (backpressure, not loss)
// Nothing here allocates, closes over per-packet state, or logs.
import type { PacketBatch } from '../native/batch'
import type { PacketIo } from '../native/io'
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
}

export class Inside {
  private pending = 0
  private first = 0

  constructor (private readonly o: InsideOptions) {
    if (o.rx.headroom < o.encap.headroom) throw new RangeError('receive headroom is smaller than the encapsulation')
    o.tun.receiveInto(o.rx)
    o.sock.sendFrom(o.tx, o.fdb.addrs)
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
    let k = 0
    stats[Count.INSIDE_BATCHES]++
    for (let i = 0; i < n; i++) {
      const off = offsets[i]
      const len = lengths[i]
      if (len < 20) { stats[Reason.TRUNCATED]++; continue }
      if ((slab[off] >> 4) !== 4) { stats[Drop.NOT_IPV4]++; continue }
      if (len > mtu) { stats[Drop.TOO_BIG]++; continue }
      const dst = (slab[off + 16] << 24) | (slab[off + 17] << 16) | (slab[off + 18] << 8) | slab[off + 19]
      const peer = fdb.lookup(dst)
      if (peer < 0) { stats[Drop.NO_ROUTE]++; continue }
      const start = encap.encap(slab, off, len, peer)
      txOff[k] = start
      txLen[k] = len + (off - start)
      txDest[k] = peer
      k++
      perPeer[peer * PER_PEER + PeerCount.INSIDE_PACKETS]++
      perPeer[peer * PER_PEER + PeerCount.INSIDE_BYTES] += len
      stats[Count.INSIDE_PACKETS]++
      stats[Count.INSIDE_BYTES] += len
    }
    this.first = 0
    this.pending = k
    this.flush()
  }

  /** Send what is queued; on a partial send wait for the socket. */
  readonly flush = (): void => {
    const o = this.o
    if (this.pending === 0) { o.tun.setReading(true); return }
    if (this.first > 0) this.shiftDown()
    const sent = o.sock.send(this.pending)
    if (sent >= this.pending) {
      this.pending = 0
      o.tun.setReading(true)
      return
    }
    this.first = sent
    this.pending -= sent
    o.stats[Count.INSIDE_BACKPRESSURE]++
    o.tun.setReading(false)
    o.sock.wantWritable()
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
