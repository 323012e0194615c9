// The writes of one batch into the TUN, with TCP segments coalesced back
// into super-packets (GRO in userspace), so that ~45 received segments cost
// the kernel one write and the pod one trip up its stack.
// 1. every write gathers pieces of the slab (writev): with a vnet header,
//    [its header][the packet], where the header lives in a small area after
//    the packet slots (there is no room in front of a packet that followed
//    another inside one GRO read)
// 2. a TCP segment that continues the open run (same flow, next sequence
//    number, same ACK/window/options/IP fields, flags ACK or ACK|PSH, no
//    more payload than the first) adds only its payload as a piece; anything
//    else closes the run and opens a new write
// 3. with TUN USO (kernel >= 6.2), UDP datagrams of one flow and one size
//    (the last may be shorter) coalesce the same way
// 4. closing a run of more than one segment rewrites the first segment's
//    headers for the whole (IP length and checksum, PSH if any had it, the
//    TCP/UDP checksum left partial for the kernel to finish) and its vnet
//    header asks for TCPV4/UDP_L4 segmentation at the first segment's size
// 5. send(): one call into the addon for every write of the batch; with a
//    UdpPacer (pacer.ts), UDP writes go as it allows and the rest after a
//    wait (the TUN's wakeAfter, then resume()), in order with everything
//    else; whoever owns the slab (Outside) waits for onDrained before
//    reusing it
// Inner checksums were checked once on receive (the socket's checkInner):
// coalescing relies on that check (the kernel never checks a super-packet's
// segments), so it needs it. Single TCP/UDP packets go with DATA_VALID,
// which says as much, though Linux 6.18's TUN ignores it on writes and checks
// them again. A packet whose sender left the checksum partial (VXLAN remote
// checksum offload, `partial`) was not checked, and needs not be: the outer
// UDP checksum covered it; it goes with NEEDS_CSUM, as a segment of a
// coalesced run does.
// Only the last write can be an open run: interleaved flows simply coalesce
// less, which keeps every write's pieces contiguous.
// IPv6 (an IPv6 pipeline's writes): the *6 methods do the same over the
// fixed 40-byte header, TCP/UDP straight after it only (behind extension
// headers, or in a fragment, a packet goes single, its checksum left to the
// kernel's own check); a flow is the first 4 bytes (version, traffic class,
// flow label), next header, hop limit and both addresses; a closed run
// becomes GSO_TCPV6 (or UDP_L4) with its checksum over the IPv6
// pseudo-header. One pipeline's writes carry one family; close() tells a
// run's by the version nibble of its first packet.
import type { PacketBatch } from '../native/batch'
import type { PacketIo } from '../native/io'
import { fold, pseudoHeaderSum4At } from '../packet/checksum'
import { pseudoHeaderSum6At } from '../packet/ipv6'
import { setIpv4Checksum } from '../packet/ipv4'
import { Count, Drop } from './stats'
import { GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from '../native/vnet'
import { DATAGRAM_OVERHEAD } from './pacer'
import type { UdpPacer } from './pacer'

/** bytes per header slot in the header area */
const HDR_SLOT = 12
/** segments per coalesced write: the kernel's own GRO stops at 64 too */
const MAX_SEGMENTS = 64
const MAX_IP_LEN = 65535
const IPV6_HLEN = 40
const TCP_ACK = 0x10
const TCP_PSH = 0x08

export class TunWrites {
  /** writes queued */
  writes = 0
  /** pieces queued */
  private pieces = 0
  /** the open run (the last write): its first segment's IP offset, or -1 */
  private head = -1
  private headThl = 0
  /** the first segment's payload size: the run's gso_size */
  private headMss = 0
  private runSegs = 0
  private runPayload = 0
  private runPsh = 0
  /** the run's protocol: 6 TCP, 17 UDP */
  private runProto = 0
  /** the open run's IP version: on a device that carries both (wireguard's one-device modes) a segment joins only a run of its own family */
  private runFamily = 0
  /** [0] the sequence number the next segment must carry (int32 view of a uint32) */
  private readonly seq = new Int32Array(1)
  /** per write: what its UDP datagrams cost a receiving socket (0: not UDP, never held) */
  private readonly cost: Float64Array
  /** UDP cost queued since the last send(): what arrived in the batch */
  private arrivedCost = 0
  /** writes (and their pieces) already written of those queued; the rest wait for the pacer */
  private sent = 0
  private sentPieces = 0
  /** a wake is due: the queued writes go from resume(), not send() */
  private waiting = false
  /** called once the last paced write of a batch went: the slab is free again */
  onDrained: () => void = () => {}

  /**
   * batch: registered with the TUN in pieces mode; its slab holds the header
   * area at hdrBase (HDR_SLOT bytes per write, room for maxWrites).
   */
  constructor (
    private readonly tun: PacketIo,
    private readonly batch: PacketBatch,
    private readonly vnet: boolean,
    private readonly hdrBase: number,
    private readonly maxWrites: number,
    private readonly stats: Float64Array,
    /** VNET_F_DATA_VALID if inner checksums were checked on receive, else 0 */
    private readonly checked: number,
    /** the TUN takes UDP_L4 super-packets (USO): coalesce UDP too */
    private readonly uso = false,
    /** paces UDP writes (the TUN's start must then route onTimer to resume()); none: every batch at once */
    private readonly pacer?: UdpPacer,
    /** now in µs (tests pass their own clock) */
    private readonly now: () => number = nowUs
  ) {
    if (hdrBase + maxWrites * HDR_SLOT > batch.slab.length) throw new RangeError('the header area does not fit in the slab')
    this.cost = new Float64Array(maxWrites)
    tun.sendFrom(batch, undefined, { pieces: true })
  }

  /** Writes queued and not yet written (a paced batch's rest). */
  get pending (): number { return this.writes - this.sent }

  static headerArea (maxWrites: number): number { return maxWrites * HDR_SLOT }

  /** Room for another write of up to `pieces` pieces? */
  private room (pieces: number): boolean {
    return this.writes < this.maxWrites && this.pieces + pieces + 1 <= this.batch.size
  }

  /**
   * A packet that goes as it is (ICMP, UDP, a TCP segment that starts
   * nothing). partial: a whole TCP/UDP packet whose checksum field holds
   * only the pseudo-header sum (needs the vnet header).
   */
  single (ip: number, total: number, partial = false): void {
    this.close()
    if (!this.room(1)) { this.stats[Drop.TUN_WRITE]++; return }
    const s = this.batch.slab
    const proto = s[ip + 9]
    // DATA_VALID only where the socket checked the checksum: TCP and UDP,
    // whole (a fragment's checksum is the reassembled datagram's)
    const whole = ((s[ip + 6] & 0x3f) | s[ip + 7]) === 0
    this.open(ip, total, (proto === 6 || proto === 17) && whole ? this.checked : 0, partial)
  }

  /** A TCP segment (IPv4, header already checked): coalesced when it continues the open run. */
  tcp (ip: number, total: number, partial = false): void {
    const s = this.batch.slab
    const ihl = (s[ip] & 15) << 2
    const t = ip + ihl
    const thl = (s[t + 12] >> 4) << 2
    const payload = total - ihl - thl
    const flags = s[t + 13]
    const plain = this.checked !== 0 && this.vnet && ihl === 20 && (flags === TCP_ACK || flags === (TCP_ACK | TCP_PSH)) && payload > 0 &&
      ((s[ip + 6] & 0x3f) | s[ip + 7]) === 0
    if (!plain) { this.single(ip, total, partial); return }
    const h = this.head
    if (h >= 0 && this.runProto === 6 && this.runFamily === 4 && this.continues(h, ip, thl, payload) && this.pieces < this.batch.size) {
      const o = this.batch
      o.offsets[this.pieces] = t + thl
      o.lengths[this.pieces] = payload
      this.pieces++
      o.segs[this.writes - 1]++
      this.runSegs++
      this.runPayload += payload
      this.seq[0] = this.seq[0] + payload
      if ((flags & TCP_PSH) !== 0) this.runPsh = 1
      // a short segment or PSH ends what the sender sent as one
      if (payload < this.headMss || this.runPsh !== 0 || this.runSegs >= MAX_SEGMENTS) this.close()
      return
    }
    this.close()
    if (!this.room(1)) { this.stats[Drop.TUN_WRITE]++; return }
    this.open(ip, total, this.checked, partial)
    if ((flags & TCP_PSH) !== 0) return // already the end of a run
    this.head = ip
    this.runProto = 6
    this.runFamily = 4
    this.headThl = thl
    this.headMss = payload
    this.runSegs = 1
    this.runPayload = payload
    this.runPsh = 0
    this.seq[0] = ((s[t + 4] << 24) | (s[t + 5] << 16) | (s[t + 6] << 8) | s[t + 7]) + payload
  }

  /** A UDP datagram (IPv4, header already checked): coalesced when it continues the open run (USO only). */
  udp (ip: number, total: number, partial = false): void {
    const p0 = this.pieces
    this.queueUdp(ip, total, partial)
    if (this.pieces === p0) return // dropped: no room
    const c = total + DATAGRAM_OVERHEAD
    this.cost[this.writes - 1] += c
    this.arrivedCost += c
  }

  private queueUdp (ip: number, total: number, partial: boolean): void {
    const s = this.batch.slab
    const payload = total - 28
    const plain = this.uso && this.checked !== 0 && this.vnet && s[ip] === 0x45 && payload > 0 &&
      ((s[ip + 6] & 0x3f) | s[ip + 7]) === 0 && ((s[ip + 24] << 8) | s[ip + 25]) === total - 20 &&
      (s[ip + 26] | s[ip + 27]) !== 0 // no checksum: left as it is, not computed by a segmenting kernel
    if (!plain) { this.single(ip, total, partial); return }
    const h = this.head
    if (h >= 0 && this.runProto === 17 && this.runFamily === 4 && payload <= this.headMss && this.runPayload + payload + 28 <= MAX_IP_LEN &&
        this.sameFlow(h, ip) && this.pieces < this.batch.size) {
      const o = this.batch
      o.offsets[this.pieces] = ip + 28
      o.lengths[this.pieces] = payload
      this.pieces++
      o.segs[this.writes - 1]++
      this.runSegs++
      this.runPayload += payload
      if (payload < this.headMss || this.runSegs >= MAX_SEGMENTS) this.close()
      return
    }
    this.close()
    if (!this.room(1)) { this.stats[Drop.TUN_WRITE]++; return }
    this.open(ip, total, this.checked, partial)
    this.head = ip
    this.runProto = 17
    this.runFamily = 4
    this.headThl = 8
    this.headMss = payload
    this.runSegs = 1
    this.runPayload = payload
    this.runPsh = 0
  }

  /**
   * A TCP super-packet that arrived whole (a local kernel sender's TSO that
   * crossed a veth unsegmented; its checksum checked or finished on receive,
   * or covered by the outer one under RCO): written as TSO at `mss`, the
   * checksum left partial again.
   */
  superTcp (ip: number, total: number, mss: number): void {
    this.close()
    if (!this.room(1)) { this.stats[Drop.TUN_WRITE]++; return }
    this.open(ip, total, 0, false)
    const s = this.batch.slab
    const ihl = (s[ip] & 15) << 2
    const thl = (s[ip + ihl + 12] >> 4) << 2
    const p = fold(pseudoHeaderSum4At(s, ip, 6, total - ihl))
    s[ip + ihl + 16] = p >> 8
    s[ip + ihl + 17] = p & 255
    writeVnetHdr(s, this.hdrBase + (this.writes - 1) * HDR_SLOT, VNET_F_NEEDS_CSUM, GSO_TCPV4, ihl + thl, mss, ihl, 16)
  }

  /** TOS, DF, TTL, addresses and ports equal (IPv4 without options). */
  private sameFlow (h: number, ip: number): boolean {
    const s = this.batch.slab
    if (s[ip + 1] !== s[h + 1] || (s[ip + 6] & 0x40) !== (s[h + 6] & 0x40) || s[ip + 8] !== s[h + 8]) return false
    for (let i = 12; i < 24; i++) if (s[ip + i] !== s[h + i]) return false
    return true
  }

  /** Does the segment at ip continue the run headed at h? */
  private continues (h: number, ip: number, thl: number, payload: number): boolean {
    const s = this.batch.slab
    if (thl !== this.headThl || payload > this.headMss) return false
    if (this.runPayload + payload + 20 + thl > MAX_IP_LEN) return false
    if (!this.sameFlow(h, ip)) return false
    const t = ip + 20
    const ht = h + 20
    // ACK number, data offset, window; then the options
    for (let i = 8; i < 13; i++) if (s[t + i] !== s[ht + i]) return false
    if (s[t + 14] !== s[ht + 14] || s[t + 15] !== s[ht + 15]) return false
    for (let i = 20; i < thl; i++) if (s[t + i] !== s[ht + i]) return false
    const seq = (s[t + 4] << 24) | (s[t + 5] << 16) | (s[t + 6] << 8) | s[t + 7]
    return seq === this.seq[0]
  }

  /** Queue a new write: [vnet header] + the packet; partial: the kernel finishes its TCP/UDP checksum. */
  private open (ip: number, total: number, flags: number, partial: boolean): void {
    const o = this.batch
    const w = this.writes
    let p = this.pieces
    if (this.vnet) {
      const at = this.hdrBase + w * HDR_SLOT
      if (partial) writeVnetHdr(o.slab, at, VNET_F_NEEDS_CSUM, GSO_NONE, 0, 0, (o.slab[ip] & 15) << 2, o.slab[ip + 9] === 6 ? 16 : 6)
      else writeVnetHdr(o.slab, at, flags, GSO_NONE, 0, 0, 0, 0)
      o.offsets[p] = at
      o.lengths[p] = VNET_HDR_LEN
      p++
    }
    o.offsets[p] = ip
    o.lengths[p] = total
    p++
    o.segs[w] = p - this.pieces
    this.cost[w] = 0
    this.pieces = p
    this.writes = w + 1
  }

  /** Close the open run: a run of several segments becomes one super-packet. */
  private close (): void {
    const h = this.head
    if (h < 0) return
    this.head = -1
    if (this.runSegs < 2) return
    const s = this.batch.slab
    if ((s[h] >> 4) === 6) { this.close6(h); return }
    const l4len = this.headThl + this.runPayload
    const total = 20 + l4len
    s[h + 2] = total >> 8
    s[h + 3] = total & 255
    setIpv4Checksum(s, h)
    const t = h + 20
    const tcp = this.runProto === 6
    if (tcp && this.runPsh !== 0) s[t + 13] |= TCP_PSH
    if (!tcp) {
      s[t + 4] = l4len >> 8
      s[t + 5] = l4len & 255
    }
    // CHECKSUM_PARTIAL: the field holds the pseudo-header sum, the kernel finishes it
    const p = fold(pseudoHeaderSum4At(s, h, this.runProto, l4len))
    const at = t + (tcp ? 16 : 6)
    s[at] = p >> 8
    s[at + 1] = p & 255
    if (this.vnet) writeVnetHdr(s, this.hdrBase + (this.writes - 1) * HDR_SLOT, VNET_F_NEEDS_CSUM, tcp ? GSO_TCPV4 : GSO_UDP_L4, 20 + this.headThl, this.headMss, 20, tcp ? 16 : 6)
    this.stats[Count.OUTSIDE_SUPER_PACKETS]++
    this.stats[Count.OUTSIDE_COALESCED] += this.runSegs
  }

  /** single() for an IPv6 packet: DATA_VALID only for TCP/UDP straight after the header (what the socket checked). */
  single6 (ip: number, total: number, partial = false): void {
    this.close()
    if (!this.room(1)) { this.stats[Drop.TUN_WRITE]++; return }
    const nh = this.batch.slab[ip + 6]
    this.open6(ip, total, nh === 6 || nh === 17 ? this.checked : 0, partial)
  }

  /** tcp() for an IPv6 segment whose TCP header follows the fixed one (next header 6, header already checked). */
  tcp6 (ip: number, total: number, partial = false): void {
    const s = this.batch.slab
    const t = ip + IPV6_HLEN
    const thl = (s[t + 12] >> 4) << 2
    const payload = total - IPV6_HLEN - thl
    const flags = s[t + 13]
    const plain = this.checked !== 0 && this.vnet && s[ip + 6] === 6 && (flags === TCP_ACK || flags === (TCP_ACK | TCP_PSH)) && payload > 0
    if (!plain) { this.single6(ip, total, partial); return }
    const h = this.head
    if (h >= 0 && this.runProto === 6 && this.runFamily === 6 && this.continues6(h, ip, thl, payload) && this.pieces < this.batch.size) {
      this.append(t + thl, payload)
      this.seq[0] = this.seq[0] + payload
      if ((flags & TCP_PSH) !== 0) this.runPsh = 1
      if (payload < this.headMss || this.runPsh !== 0 || this.runSegs >= MAX_SEGMENTS) this.close()
      return
    }
    this.close()
    if (!this.room(1)) { this.stats[Drop.TUN_WRITE]++; return }
    this.open6(ip, total, this.checked, partial)
    if ((flags & TCP_PSH) !== 0) return
    this.startRun(ip, 6, thl, payload)
    this.seq[0] = ((s[t + 4] << 24) | (s[t + 5] << 16) | (s[t + 6] << 8) | s[t + 7]) + payload
  }

  /** udp() for an IPv6 datagram (next header 17 straight after the fixed header, or single). */
  udp6 (ip: number, total: number, partial = false): void {
    const p0 = this.pieces
    this.queueUdp6(ip, total, partial)
    if (this.pieces === p0) return
    const c = total + DATAGRAM_OVERHEAD
    this.cost[this.writes - 1] += c
    this.arrivedCost += c
  }

  private queueUdp6 (ip: number, total: number, partial: boolean): void {
    const s = this.batch.slab
    const u = ip + IPV6_HLEN
    const payload = total - IPV6_HLEN - 8
    const plain = this.uso && this.checked !== 0 && this.vnet && s[ip + 6] === 17 && payload > 0 &&
      ((s[u + 4] << 8) | s[u + 5]) === total - IPV6_HLEN && (s[u + 6] | s[u + 7]) !== 0
    if (!plain) { this.single6(ip, total, partial); return }
    const h = this.head
    if (h >= 0 && this.runProto === 17 && this.runFamily === 6 && payload <= this.headMss && this.runPayload + payload + 8 <= MAX_IP_LEN &&
        this.sameFlow6(h, ip) && this.pieces < this.batch.size) {
      this.append(u + 8, payload)
      if (payload < this.headMss || this.runSegs >= MAX_SEGMENTS) this.close()
      return
    }
    this.close()
    if (!this.room(1)) { this.stats[Drop.TUN_WRITE]++; return }
    this.open6(ip, total, this.checked, partial)
    this.startRun(ip, 17, 8, payload)
  }

  /** superTcp() for an IPv6 TCP super-packet (next header 6 straight after the fixed header). */
  superTcp6 (ip: number, total: number, mss: number): void {
    this.close()
    if (!this.room(1)) { this.stats[Drop.TUN_WRITE]++; return }
    this.open6(ip, total, 0, false)
    const s = this.batch.slab
    const t = ip + IPV6_HLEN
    const thl = (s[t + 12] >> 4) << 2
    const p = fold(pseudoHeaderSum6At(s, ip, 6, total - IPV6_HLEN))
    s[t + 16] = p >> 8
    s[t + 17] = p & 255
    writeVnetHdr(s, this.hdrBase + (this.writes - 1) * HDR_SLOT, VNET_F_NEEDS_CSUM, GSO_TCPV6, IPV6_HLEN + thl, mss, IPV6_HLEN, 16)
  }

  /** The open run takes `len` more bytes of payload at `at` (one piece of the last write). */
  private append (at: number, len: number): void {
    const o = this.batch
    o.offsets[this.pieces] = at
    o.lengths[this.pieces] = len
    this.pieces++
    o.segs[this.writes - 1]++
    this.runSegs++
    this.runPayload += len
  }

  /** The write just opened heads a run. */
  private startRun (ip: number, proto: number, thl: number, payload: number): void {
    this.head = ip
    this.runProto = proto
    this.runFamily = 6
    this.headThl = thl
    this.headMss = payload
    this.runSegs = 1
    this.runPayload = payload
    this.runPsh = 0
  }

  /** Version, traffic class, flow label, next header, hop limit and both addresses equal. */
  private sameFlow6 (h: number, ip: number): boolean {
    const s = this.batch.slab
    if (s[ip] !== s[h] || s[ip + 1] !== s[h + 1] || s[ip + 2] !== s[h + 2] || s[ip + 3] !== s[h + 3] || s[ip + 6] !== s[h + 6] || s[ip + 7] !== s[h + 7]) return false
    for (let i = 8; i < IPV6_HLEN; i++) if (s[ip + i] !== s[h + i]) return false
    // the ports
    for (let i = IPV6_HLEN; i < IPV6_HLEN + 4; i++) if (s[ip + i] !== s[h + i]) return false
    return true
  }

  /** continues() over IPv6. */
  private continues6 (h: number, ip: number, thl: number, payload: number): boolean {
    const s = this.batch.slab
    if (thl !== this.headThl || payload > this.headMss) return false
    if (this.runPayload + payload + thl > MAX_IP_LEN) return false
    if (!this.sameFlow6(h, ip)) return false
    const t = ip + IPV6_HLEN
    const ht = h + IPV6_HLEN
    for (let i = 8; i < 13; i++) if (s[t + i] !== s[ht + i]) return false
    if (s[t + 14] !== s[ht + 14] || s[t + 15] !== s[ht + 15]) return false
    for (let i = 20; i < thl; i++) if (s[t + i] !== s[ht + i]) return false
    const seq = (s[t + 4] << 24) | (s[t + 5] << 16) | (s[t + 6] << 8) | s[t + 7]
    return seq === this.seq[0]
  }

  /** open() for IPv6: a partial checksum starts after the fixed header. */
  private open6 (ip: number, total: number, flags: number, partial: boolean): void {
    const o = this.batch
    const w = this.writes
    let p = this.pieces
    if (this.vnet) {
      const at = this.hdrBase + w * HDR_SLOT
      if (partial) writeVnetHdr(o.slab, at, VNET_F_NEEDS_CSUM, GSO_NONE, 0, 0, IPV6_HLEN, o.slab[ip + 6] === 6 ? 16 : 6)
      else writeVnetHdr(o.slab, at, flags, GSO_NONE, 0, 0, 0, 0)
      o.offsets[p] = at
      o.lengths[p] = VNET_HDR_LEN
      p++
    }
    o.offsets[p] = ip
    o.lengths[p] = total
    p++
    o.segs[w] = p - this.pieces
    this.cost[w] = 0
    this.pieces = p
    this.writes = w + 1
  }

  /** close() of an IPv6 run of several segments. */
  private close6 (h: number): void {
    const s = this.batch.slab
    const l4len = this.headThl + this.runPayload
    s[h + 4] = l4len >> 8
    s[h + 5] = l4len & 255
    const t = h + IPV6_HLEN
    const tcp = this.runProto === 6
    if (tcp && this.runPsh !== 0) s[t + 13] |= TCP_PSH
    if (!tcp) {
      s[t + 4] = l4len >> 8
      s[t + 5] = l4len & 255
    }
    const p = fold(pseudoHeaderSum6At(s, h, this.runProto, l4len))
    const at = t + (tcp ? 16 : 6)
    s[at] = p >> 8
    s[at + 1] = p & 255
    if (this.vnet) writeVnetHdr(s, this.hdrBase + (this.writes - 1) * HDR_SLOT, VNET_F_NEEDS_CSUM, tcp ? GSO_TCPV6 : GSO_UDP_L4, IPV6_HLEN + this.headThl, this.headMss, IPV6_HLEN, tcp ? 16 : 6)
    this.stats[Count.OUTSIDE_SUPER_PACKETS]++
    this.stats[Count.OUTSIDE_COALESCED] += this.runSegs
  }

  /**
   * Write what is queued (one call into the addon): everything, or with a
   * pacer as much as it allows, the rest from resume() after a wait (then
   * `pending` > 0). While a wait is due this writes nothing: what was just
   * queued goes after the rest, in order. Returns writes the kernel refused.
   */
  send (): number {
    this.close()
    const pacer = this.pacer
    // no UDP since the last send and nothing waiting: nothing to pace (TCP goes as before)
    if (pacer !== undefined && (this.arrivedCost > 0 || this.waiting)) {
      pacer.arrived(this.arrivedCost, this.now())
      this.arrivedCost = 0
      return this.waiting ? 0 : this.paced(pacer)
    }
    const n = this.writes
    if (n === 0) return 0
    this.writes = 0
    this.pieces = 0
    const written = this.tun.send(n)
    // TUN writes do not queue: whatever the kernel would not take is lost, and counted
    if (written < n) this.stats[Drop.TUN_WRITE] += n - written
    return n - written
  }

  /** The TUN's onTimer: the wait is over, write the next piece of the paced batch. */
  readonly resume = (): void => {
    if (!this.waiting || this.pacer === undefined) return
    this.waiting = false
    this.paced(this.pacer)
    if (!this.waiting) this.onDrained()
  }

  /** Write from `sent` on as far as the pacer allows; the rest waits for a wake. */
  private paced (pacer: UdpPacer): number {
    const end = this.writes
    if (this.sent === end) { this.reset(); return 0 }
    pacer.refill(this.now())
    const segs = this.batch.segs
    const cost = this.cost
    let used = 0
    let pieces = 0
    let w = this.sent
    for (; w < end; w++) {
      const c = cost[w]
      if (c > 0) {
        if (!pacer.allows(used, c)) break
        used += c
      }
      pieces += segs[w]
    }
    let refused = 0
    const n = w - this.sent
    if (n > 0) {
      pacer.spend(used)
      const written = this.tun.sendRange(n, this.sent, this.sentPieces)
      if (written < n) refused = n - written
      this.stats[Drop.TUN_WRITE] += refused
      this.sent = w
      this.sentPieces += pieces
    }
    if (w === end) { this.reset(); return refused }
    this.waiting = true
    this.stats[Count.OUTSIDE_PACED]++
    this.tun.wakeAfter(pacer.waitFor(cost[w]))
    return refused
  }

  /** Everything queued went: the slots and pieces start over. */
  private reset (): void {
    this.writes = 0
    this.pieces = 0
    this.sent = 0
    this.sentPieces = 0
  }
}

function nowUs (): number {
  return performance.now() * 1000
}
