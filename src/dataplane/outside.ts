// Outside: datagrams from other nodes to our pods (the socket to the TUN).
// 1. the socket is readable: the addon has received up to a batch into `rx`,
//    with each sender's address (length 0 from 0.0.0.0 = already dropped and
//    counted);
//    with UDP_GRO a message holds several datagrams of rx.segs[i] bytes
//    each, and with inner checks the addon has checked every datagram's
//    inner TCP/UDP checksum (rx.bad: one bit per datagram)
// 2. per message: the sender must hold a lease (Fdb.source)
// 3. per datagram: the outer headers must check out (encap.decap: flags,
//    VNI, our MAC, IPv4), the inner IPv4 packet must be sane, within the MTU
//    and addressed to our subnet (a TCP packet beyond the MTU is a kernel
//    VXLAN peer's TSO super-packet that crossed a veth unsegmented, as
//    flannel.1 on the same host sends them, or what an underlay's GRO
//    merged before a raw socket: it goes to the TUN whole, as TSO in
//    segments that fit any pod, SUPER_SEGMENT_MTU); without inner checks,
//    a TCP/UDP checksum a kernel sender left partial is finished here
//    (partial-checksum.ts); with them, a packet the sender marked partial
//    (VXLAN RCO) goes to the TUN asking the kernel to finish it
// 4. it is queued for the TUN where it lies (no copy): TCP segments (and,
//    with TUN USO, UDP datagrams) of one flow coalesce into super-packets
//    (tun-writes.ts)
// 5. one call writes the batch to the TUN; if UDP in it must be paced
//    (pacer.ts), the socket is not read again until the last of it is
//    written (the slab holds it), which also leaves any backlog in the
//    socket's buffer rather than ours
// Senders without a lease, and lease holders that sent a spoofed inner
// source, are remembered in small rings (no allocation) so that the control
// plane can log each one once.
import type { PacketBatch } from '../native/batch'
import type { PacketIo } from '../native/io'
import { finishChecksum, finishPartialChecksum } from '../packet/partial-checksum'
import { Reason } from '../packet/reason'
import { DECAP_PARTIAL } from './encap'
import type { Encapsulation } from './encap'
import type { Fdb } from './fdb'
import { PER_PEER, PeerCount } from './fdb'
import { Count, Drop } from './stats'
import type { TunWrites } from './tun-writes'
import { Fdb6 } from './fdb6'
import type { Ip6Net } from '../packet/net6'
import { GRO_MAX_SEGMENTS, MAX_LOCAL_ADDRESSES, SUPER_SEGMENT_MTU, UNKNOWN_RING } from './outside-limits'
import { OutsidePath6 } from './outside6'

export interface OutsideOptions {
  sock: PacketIo
  rx: PacketBatch
  /** the TUN's writes (shared with the inside loop's ICMP answers) */
  writes: TunWrites
  /** an Fdb6 makes this an IPv6 pipeline's outside (outside6.ts) */
  fdb: Fdb | Fdb6
  encap: Encapsulation
  stats: Float64Array
  mtu: number
  /** the addon checks inner checksums (rx.bad) */
  checked: boolean
  onFatal: (errno: number) => void
  /** UNKNOWN_RING slots for unknownSources (a worker's: over a SharedArrayBuffer) */
  unknownSources?: Uint32Array
  /** UNKNOWN_RING slots for spoofSenders (likewise) */
  spoofSenders?: Uint32Array
  /** IPv6: UNKNOWN_RING * 4 slots (four words per address) for unknownSources6 and spoofSenders6 */
  unknownSources6?: Uint32Array
  spoofSenders6?: Uint32Array
  /**
   * Drop a datagram whose inner source is inside the network but not in a
   * subnet its sender holds, or is one of this node's addresses (Drop.SPOOFED_SOURCE).
   * Sources outside the network pass: a peer forwards external traffic
   * (and its own host's) with them.
   */
  checkSource?: boolean
}

export { UNKNOWN_RING, GRO_MAX_SEGMENTS, MAX_LOCAL_ADDRESSES }

export class Outside {
  /** recent senders that hold no lease (uint32), written round-robin */
  readonly unknownSources: Uint32Array
  unknownCursor = 0
  /** recent lease holders that sent an inner source they do not hold (uint32) */
  readonly spoofSenders: Uint32Array
  spoofCursor = 0
  private ownBase = 0
  private ownMask = -1
  private readonly checkSource: boolean
  /** this node's own addresses (int32), never a peer's inner source */
  private readonly local = new Int32Array(MAX_LOCAL_ADDRESSES)
  private localCount = 0
  /**
   * Called by the addon once per batch: the IPv4 loop, or an IPv6
   * pipeline's (chosen here once, so neither family's loop tests which it is).
   */
  readonly onBatch: (n: number) => void
  /** the IPv6 loop and its state, for an Fdb6 */
  private readonly v6: OutsidePath6 | undefined
  /** recent IPv6 senders without a lease, and IPv6 spoofers: four words each (empty for IPv4) */
  readonly unknownSources6: Uint32Array
  readonly spoofSenders6: Uint32Array

  constructor (private readonly o: OutsideOptions) {
    this.unknownSources = o.unknownSources ?? new Uint32Array(UNKNOWN_RING)
    this.spoofSenders = o.spoofSenders ?? new Uint32Array(UNKNOWN_RING)
    this.checkSource = o.checkSource === true
    o.sock.receiveInto(o.rx, o.checked ? { checkInner: o.encap.headroom, rco: o.encap.remoteChecksum === true } : {})
    o.writes.onDrained = this.drained
    if (o.fdb instanceof Fdb6) {
      this.unknownSources6 = o.unknownSources6 ?? new Uint32Array(UNKNOWN_RING * 4)
      this.spoofSenders6 = o.spoofSenders6 ?? new Uint32Array(UNKNOWN_RING * 4)
      this.v6 = new OutsidePath6(o, o.fdb, this.unknownSources6, this.spoofSenders6)
      this.onBatch = this.v6.onBatch
    } else {
      this.unknownSources6 = new Uint32Array(0)
      this.spoofSenders6 = new Uint32Array(0)
      this.v6 = undefined
      this.onBatch = this.batch4
    }
  }

  /** IPv6: our subnet (inner destinations must be inside it). */
  setOwnSubnet6 (subnet: Ip6Net): void {
    this.v6?.setOwnSubnet(subnet)
  }

  /** IPv6: this node's addresses, which no peer may use as inner sources. */
  setLocalAddresses6 (addrs: readonly bigint[]): void {
    this.v6?.setLocalAddresses(addrs)
  }

  /** The paced rest of a batch is written: the slab is free, read again. */
  private readonly drained = (): void => { this.o.sock.setReading(true) }

  /** Our subnet (inner destinations must be inside it). */
  setOwnSubnet (ip: number, prefixLen: number): void {
    this.ownMask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) | 0
    this.ownBase = ip & this.ownMask
  }

  /** This node's addresses (uint32): a peer may not use them as inner sources. */
  setLocalAddresses (addrs: ArrayLike<number>): void {
    const n = Math.min(addrs.length, MAX_LOCAL_ADDRESSES)
    for (let i = 0; i < n; i++) this.local[i] = addrs[i] | 0
    this.localCount = n
    this.local.subarray(0, n).sort()
  }

  private readonly batch4 = (n: number): void => {
    const o = this.o
    if (n < 0) { o.onFatal(-n); return }
    const offsets = o.rx.offsets
    const lengths = o.rx.lengths
    const addrs = o.rx.addrs
    const segs = o.rx.segs
    const bad = o.rx.bad
    const checked = o.checked
    const stats = o.stats
    const fdb = o.fdb as Fdb
    stats[Count.OUTSIDE_BATCHES]++
    for (let i = 0; i < n; i++) {
      const len = lengths[i]
      const src = addrs[i] | 0
      if (len === 0 && src === 0) continue // the addon dropped it (truncated) and counted it
      const off = offsets[i]
      const peer = fdb.source(src)
      if (peer < 0) {
        // every datagram of a coalesced message counts
        const seg = segs[i]
        stats[Drop.UNKNOWN_SOURCE] += seg === 0 ? 1 : Math.ceil(len / seg)
        this.unknownSources[this.unknownCursor] = src
        this.unknownCursor = (this.unknownCursor + 1) % UNKNOWN_RING
        continue
      }
      let seg = segs[i]
      if (seg === 0) seg = len
      if (len === 0) { this.datagram(off, 0, peer); continue } // empty: judged (and dropped) like any other
      const end = off + len
      let j = 0
      for (let at = off; at < end; at += seg) {
        const dlen = end - at < seg ? end - at : seg
        // the addon checks GRO_MAX_SEGMENTS datagrams of a message (the
        // kernel's UDP_GRO_CNT_MAX); one past them was never checked
        if (checked && (j >= GRO_MAX_SEGMENTS || (j < 32 ? (bad[2 * i] >>> j) & 1 : (bad[2 * i + 1] >>> (j - 32)) & 1) !== 0)) {
          stats[Drop.BAD_INNER_CHECKSUM]++
        } else {
          this.datagram(at, dlen, peer)
        }
        j++
      }
    }
    o.writes.send()
    if (o.writes.pending > 0) o.sock.setReading(false)
  }

  /** One datagram from `peer`: checked, decapsulated and queued for the TUN. */
  private datagram (off: number, len: number, peer: number): void {
    const o = this.o
    const slab = o.rx.slab
    const stats = o.stats
    const r = o.encap.decap(slab, off, len, peer)
    if (r < 0) { stats[-r]++; return }
    const skip = r & (DECAP_PARTIAL - 1)
    const partial = r >= DECAP_PARTIAL
    const ip = off + skip
    const avail = len - skip
    if (avail < 20) { stats[Reason.TRUNCATED]++; return }
    const vihl = slab[ip]
    if ((vihl >> 4) !== 4) { stats[Reason.BAD_VERSION]++; return }
    if ((vihl & 15) < 5) { stats[Reason.BAD_IHL]++; return }
    const total = (slab[ip + 2] << 8) | slab[ip + 3]
    if (total < (vihl & 15) * 4 || total > avail) { stats[Reason.BAD_TOTAL_LENGTH]++; return }
    const superMss = total > o.mtu ? this.superMss(ip, total) : 0
    if (total > o.mtu && superMss === 0) { stats[Drop.TOO_BIG]++; return }
    const dst = (slab[ip + 16] << 24) | (slab[ip + 17] << 16) | (slab[ip + 18] << 8) | slab[ip + 19]
    if ((dst & this.ownMask) !== this.ownBase) { stats[Drop.NOT_FOR_US]++; return }
    if (this.checkSource && !this.sourceOk((slab[ip + 12] << 24) | (slab[ip + 13] << 16) | (slab[ip + 14] << 8) | slab[ip + 15], peer)) {
      stats[Drop.SPOOFED_SOURCE]++
      this.spoofSenders[this.spoofCursor] = (o.fdb as Fdb).publicIPs[peer]
      this.spoofCursor = (this.spoofCursor + 1) % UNKNOWN_RING
      return
    }
    // total drops any link-layer padding after the packet
    const proto = slab[ip + 9]
    // a TCP header that says it is shorter than TCP's own, or longer than
    // the packet, would mislead the coalescing (and the super-packet's
    // header length); fragments past the first carry no TCP header. Checked
    // before any checksum is finished, so a dropped packet counts no finish.
    if (proto === 6 && ((slab[ip + 6] & 0x1f) | slab[ip + 7]) === 0) {
      const ihl = (vihl & 15) << 2
      const doff = total >= ihl + 20 ? slab[ip + ihl + 12] >> 4 : 0
      if (doff < 5 || ihl + (doff << 2) > total) { stats[Reason.BAD_TCP_DATA_OFFSET]++; return }
    }
    if (partial) {
      stats[Count.OUTSIDE_PARTIAL]++
      // unchecked (no vnet header to hand it to the kernel): finished here, one pass
      if (!o.checked) finishChecksum(slab, ip, total)
    } else if (!o.checked && finishPartialChecksum(slab, ip, total)) stats[Count.CHECKSUMS_FINISHED]++
    const leftPartial = partial && o.checked
    if (superMss > 0) { o.writes.superTcp(ip, total, superMss); stats[Count.OUTSIDE_UNSEGMENTED]++ } else if (proto === 6) o.writes.tcp(ip, total, leftPartial)
    else if (proto === 17) o.writes.udp(ip, total, leftPartial)
    else o.writes.single(ip, total)
    const perPeer = o.fdb.perPeer
    perPeer[peer * PER_PEER + PeerCount.OUTSIDE_PACKETS]++
    perPeer[peer * PER_PEER + PeerCount.OUTSIDE_BYTES] += total
    stats[Count.OUTSIDE_PACKETS]++
    stats[Count.OUTSIDE_BYTES] += total
  }

  /**
   * May `peer` send us a packet from `src` (int32)? Inside the network only
   * from a subnet a lease of its address holds (so never from ours);
   * outside it, from anywhere but loopback and this node's own addresses.
   */
  private sourceOk (src: number, peer: number): boolean {
    const held = (this.o.fdb as Fdb).sourceHolds(src, peer)
    if (held >= 0) return held === 1
    if ((src >>> 24) === 127) return false
    const local = this.local
    let lo = 0
    let hi = this.localCount - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const v = local[mid]
      if (v === src) return false
      if (v < src) lo = mid + 1
      else hi = mid - 1
    }
    return true
  }

  /**
   * A packet beyond the MTU the TUN can take as a TCP super-packet: the MSS
   * its segments get (as many bytes as fit SUPER_SEGMENT_MTU, or our MTU if
   * smaller; the sender's own is not on the wire), or 0 if it cannot. Needs the vnet header (and so a
   * checksum checked on receive, as one packet); not a fragment.
   */
  private superMss (ip: number, total: number): number {
    const s = this.o.rx.slab
    if (!this.o.checked || s[ip + 9] !== 6 || ((s[ip + 6] & 0x3f) | s[ip + 7]) !== 0) return 0
    const ihl = (s[ip] & 15) << 2
    if (total < ihl + 20) return 0
    const hdr = ihl + ((s[ip + ihl + 12] >> 4) << 2)
    const limit = this.o.mtu < SUPER_SEGMENT_MTU ? this.o.mtu : SUPER_SEGMENT_MTU
    return total > hdr && hdr < limit ? limit - hdr : 0
  }
}
