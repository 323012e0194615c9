// Outside: datagrams from other nodes to our pods (the socket to the TUN).
// 1. the socket is readable: the addon has received up to a batch into `rx`,
//    with each sender's address (length 0 = already dropped and counted)
// 2. per datagram: the sender must hold a lease (Fdb.source), the outer
//    headers must check out (encap.decap: flags, VNI, our MAC, IPv4)
// 3. the inner IPv4 packet must be sane, within the MTU and addressed to our
//    subnet; a TCP/UDP checksum a kernel sender left partial is finished
//    (partial-checksum.ts); it is queued in `tx` where it lies (no copy)
// 4. one write of the batch to the TUN
// Senders without a lease are remembered in a small ring (no allocation) so
// that the control plane can log each one once.
import type { PacketBatch } from '../native/batch'
import type { PacketIo } from '../native/io'
import { finishPartialChecksum } from '../packet/partial-checksum'
import { Reason } from '../packet/reason'
import type { Encapsulation } from './encap'
import type { Fdb } from './fdb'
import { PER_PEER, PeerCount } from './fdb'
import { Count, Drop } from './stats'

export interface OutsideOptions {
  sock: PacketIo
  tun: PacketIo
  rx: PacketBatch
  tx: PacketBatch
  fdb: Fdb
  encap: Encapsulation
  stats: Float64Array
  mtu: number
  onFatal: (errno: number) => void
}

export const UNKNOWN_RING = 16

export class Outside {
  /** recent senders that hold no lease (uint32), written round-robin */
  readonly unknownSources = new Uint32Array(UNKNOWN_RING)
  unknownCursor = 0
  private ownBase = 0
  private ownMask = -1

  constructor (private readonly o: OutsideOptions) {
    o.sock.receiveInto(o.rx)
    o.tun.sendFrom(o.tx)
  }

  /** Our subnet (inner destinations must be inside it). */
  setOwnSubnet (ip: number, prefixLen: number): void {
    this.ownMask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) | 0
    this.ownBase = ip & this.ownMask
  }

  readonly onBatch = (n: number): void => {
    const o = this.o
    if (n < 0) { o.onFatal(-n); return }
    const slab = o.rx.slab
    const offsets = o.rx.offsets
    const lengths = o.rx.lengths
    const addrs = o.rx.addrs
    const txOff = o.tx.offsets
    const txLen = o.tx.lengths
    const stats = o.stats
    const perPeer = o.fdb.perPeer
    const fdb = o.fdb
    const encap = o.encap
    const mtu = o.mtu
    const ownBase = this.ownBase
    const ownMask = this.ownMask
    let k = 0
    stats[Count.OUTSIDE_BATCHES]++
    for (let i = 0; i < n; i++) {
      const len = lengths[i]
      if (len === 0) continue
      const off = offsets[i]
      const src = addrs[i] | 0
      const peer = fdb.source(src)
      if (peer < 0) {
        stats[Drop.UNKNOWN_SOURCE]++
        this.unknownSources[this.unknownCursor] = src
        this.unknownCursor = (this.unknownCursor + 1) % UNKNOWN_RING
        continue
      }
      const skip = encap.decap(slab, off, len, peer)
      if (skip < 0) { stats[-skip]++; continue }
      const ip = off + skip
      const avail = len - skip
      if (avail < 20) { stats[Reason.TRUNCATED]++; continue }
      const vihl = slab[ip]
      if ((vihl >> 4) !== 4) { stats[Reason.BAD_VERSION]++; continue }
      if ((vihl & 15) < 5) { stats[Reason.BAD_IHL]++; continue }
      const total = (slab[ip + 2] << 8) | slab[ip + 3]
      if (total < (vihl & 15) * 4 || total > avail) { stats[Reason.BAD_TOTAL_LENGTH]++; continue }
      if (total > mtu) { stats[Drop.TOO_BIG]++; continue }
      const dst = (slab[ip + 16] << 24) | (slab[ip + 17] << 16) | (slab[ip + 18] << 8) | slab[ip + 19]
      if ((dst & ownMask) !== ownBase) { stats[Drop.NOT_FOR_US]++; continue }
      if (finishPartialChecksum(slab, ip, total)) stats[Count.CHECKSUMS_FINISHED]++
      txOff[k] = ip
      txLen[k] = total // drops any link-layer padding after the packet
      k++
      perPeer[peer * PER_PEER + PeerCount.OUTSIDE_PACKETS]++
      perPeer[peer * PER_PEER + PeerCount.OUTSIDE_BYTES] += total
      stats[Count.OUTSIDE_PACKETS]++
      stats[Count.OUTSIDE_BYTES] += total
    }
    if (k === 0) return
    const written = o.tun.send(k)
    // TUN writes do not queue: whatever the kernel would not take is lost, and counted
    if (written < k) stats[Drop.TUN_WRITE] += k - written
  }
}
