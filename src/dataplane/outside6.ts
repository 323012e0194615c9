// Outside for an IPv6 pipeline (flannel-v6.<VNI>'s side): datagrams from
// peers' PublicIPv6 to our pods, the steps of outside.ts in IPv6:
// 1. the sender (rx.addrs6, four words) must hold a lease (Fdb6.sourceWords)
// 2. per datagram: the outer headers (encap.decap: inner EtherType 86DD),
//    then the inner IPv6 packet: version, fixed header, payload length
//    within what arrived (bytes past it are padding), no jumbogram; the
//    extension headers walked (ipv6.ts: at most IPV6_MAX_EXT_HEADERS of
//    hop-by-hop / routing / destination options, hop-by-hop first) to the
//    upper layer; Neighbour Discovery and router messages (ICMPv6 133..137)
//    dropped as ARP is; within the MTU (or a TCP super-packet a kernel peer
//    on this host sent unsegmented), addressed to our IPv6 subnet, from a
//    source its sender holds (or outside the network, and not ::1 or one
//    of our addresses)
// 3. queued for the TUN where it lies: TCP/UDP straight after the fixed
//    header coalesce (tun-writes.ts); behind extension headers, or a
//    fragment (passed whole, counted: the kernel reassembles or forwards
//    it, as it does for a fragment from any router; its L4 header, if any,
//    is not ours to judge), it goes as a single write
// Nothing here allocates or branches on the family per packet: an Outside
// given an Fdb6 calls this loop instead of its own.
import type { Ip6Net } from '../packet/net6'
import { ip6Words, mask6 } from '../packet/net6'
import { finishChecksum6, finishPartialChecksum6 } from '../packet/partial-checksum'
import { walkIpv6 } from '../packet/ipv6'
import { Reason } from '../packet/reason'
import { DECAP_PARTIAL } from './encap'
import type { Fdb6 } from './fdb6'
import { PER_PEER, PeerCount } from './fdb'
import { Count, Drop } from './stats'
import { GRO_MAX_SEGMENTS, MAX_LOCAL_ADDRESSES, SUPER_SEGMENT_MTU, UNKNOWN_RING } from './outside-limits'
import type { OutsideOptions } from './outside'

const HLEN = 40
const TCP = 6
const UDP = 17
const ICMPV6 = 58
const FRAGMENT = 44
const HOP = 0

function word (s: Uint8Array, at: number): number {
  return (s[at] << 24) | (s[at + 1] << 16) | (s[at + 2] << 8) | s[at + 3]
}

export class OutsidePath6 {
  unknownCursor = 0
  spoofCursor = 0
  /** our subnet's words and mask; until set, nothing is for us */
  private readonly own = new Int32Array(4)
  private readonly ownMask = new Int32Array([-1, -1, -1, -1])
  private ownSet = false
  /** this node's addresses, four words each, sorted */
  private readonly local = new Int32Array(MAX_LOCAL_ADDRESSES * 4)
  private localCount = 0
  private readonly checkSource: boolean

  constructor (
    private readonly o: OutsideOptions,
    private readonly fdb: Fdb6,
    private readonly unknownSources: Uint32Array,
    private readonly spoofSenders: Uint32Array
  ) {
    this.checkSource = o.checkSource === true
    // an address nothing sends from: until setOwnSubnet, every datagram is not_for_us
    this.own.fill(-1)
  }

  setOwnSubnet (subnet: Ip6Net): void {
    const w = ip6Words(subnet.ip & mask6(subnet.prefixLen))
    const m = ip6Words(mask6(subnet.prefixLen))
    for (let i = 0; i < 4; i++) {
      this.own[i] = w[i] | 0
      this.ownMask[i] = m[i] | 0
    }
    this.ownSet = true
  }

  setLocalAddresses (addrs: readonly bigint[]): void {
    const sorted = [...addrs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).slice(0, MAX_LOCAL_ADDRESSES)
    sorted.forEach((ip, i) => {
      const w = ip6Words(ip)
      for (let k = 0; k < 4; k++) this.local[i * 4 + k] = w[k] | 0
    })
    this.localCount = sorted.length
  }

  readonly onBatch = (n: number): void => {
    const o = this.o
    if (n < 0) { o.onFatal(-n); return }
    const offsets = o.rx.offsets
    const lengths = o.rx.lengths
    const addrs6 = o.rx.addrs6
    const segs = o.rx.segs
    const bad = o.rx.bad
    const checked = o.checked
    const stats = o.stats
    const fdb = this.fdb
    stats[Count.OUTSIDE_BATCHES]++
    for (let i = 0; i < n; i++) {
      const len = lengths[i]
      const a = i * 4
      if (len === 0 && (addrs6[a] | addrs6[a + 1] | addrs6[a + 2] | addrs6[a + 3]) === 0) continue // the addon dropped it and counted it
      const off = offsets[i]
      const peer = fdb.sourceWords(addrs6, a)
      if (peer < 0) {
        const seg = segs[i]
        stats[Drop.UNKNOWN_SOURCE] += seg === 0 ? 1 : Math.ceil(len / seg)
        const r = this.unknownCursor * 4
        this.unknownSources[r] = addrs6[a]
        this.unknownSources[r + 1] = addrs6[a + 1]
        this.unknownSources[r + 2] = addrs6[a + 2]
        this.unknownSources[r + 3] = addrs6[a + 3]
        this.unknownCursor = (this.unknownCursor + 1) % UNKNOWN_RING
        continue
      }
      let seg = segs[i]
      if (seg === 0) seg = len
      if (len === 0) { this.datagram(off, 0, peer); continue }
      const end = off + len
      let j = 0
      for (let at = off; at < end; at += seg) {
        const dlen = end - at < seg ? end - at : seg
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
    if (avail < HLEN) { stats[Reason.TRUNCATED]++; return }
    if ((slab[ip] >> 4) !== 6) { stats[Reason.BAD_VERSION]++; return }
    const plen = (slab[ip + 4] << 8) | slab[ip + 5]
    let proto = slab[ip + 6]
    if (plen === 0 && proto === HOP) { stats[Reason.JUMBOGRAM]++; return }
    const total = HLEN + plen
    if (total > avail) { stats[Reason.BAD_PAYLOAD_LENGTH]++; return }
    let l4 = HLEN
    if (proto !== TCP && proto !== UDP && proto !== ICMPV6) {
      const w = walkIpv6(slab, ip, total)
      if (w < 0) { stats[-w]++; return }
      proto = w >>> 17
      l4 = w & 0x1ffff
    }
    if (proto === ICMPV6 && l4 < total && slab[ip + l4] >= 133 && slab[ip + l4] <= 137) { stats[Reason.NDP]++; return }
    const superMss = total > o.mtu ? this.superMss(ip, total, proto, l4) : 0
    if (total > o.mtu && superMss === 0) { stats[Drop.TOO_BIG]++; return }
    if (!this.forUs(slab, ip + 24)) { stats[Drop.NOT_FOR_US]++; return }
    if (this.checkSource && !this.sourceOk(slab, ip + 8, peer)) {
      stats[Drop.SPOOFED_SOURCE]++
      const w = this.fdb.publicWords
      const s = this.spoofCursor * 4
      this.spoofSenders[s] = w[peer * 4]
      this.spoofSenders[s + 1] = w[peer * 4 + 1]
      this.spoofSenders[s + 2] = w[peer * 4 + 2]
      this.spoofSenders[s + 3] = w[peer * 4 + 3]
      this.spoofCursor = (this.spoofCursor + 1) % UNKNOWN_RING
      return
    }
    // as in outside.ts: a TCP header shorter than TCP's own or longer than
    // the packet would mislead the coalescing
    if (proto === TCP) {
      const doff = total >= l4 + 20 ? slab[ip + l4 + 12] >> 4 : 0
      if (doff < 5 || l4 + (doff << 2) > total) { stats[Reason.BAD_TCP_DATA_OFFSET]++; return }
    }
    if (partial) {
      stats[Count.OUTSIDE_PARTIAL]++
      if (!o.checked) finishChecksum6(slab, ip, total)
    } else if (!o.checked && l4 === HLEN && finishPartialChecksum6(slab, ip, total)) stats[Count.CHECKSUMS_FINISHED]++
    const leftPartial = partial && o.checked
    const w = o.writes
    if (superMss > 0) { w.superTcp6(ip, total, superMss); stats[Count.OUTSIDE_UNSEGMENTED]++ } else if (proto === FRAGMENT) {
      stats[Count.OUTSIDE_IPV6_FRAGMENTS]++
      w.single6(ip, total, false)
    } else if (l4 !== HLEN) w.single6(ip, total, false)
    else if (proto === TCP) w.tcp6(ip, total, leftPartial)
    else if (proto === UDP) w.udp6(ip, total, leftPartial)
    else w.single6(ip, total, false)
    const perPeer = this.fdb.perPeer
    perPeer[peer * PER_PEER + PeerCount.OUTSIDE_PACKETS]++
    perPeer[peer * PER_PEER + PeerCount.OUTSIDE_BYTES] += total
    stats[Count.OUTSIDE_PACKETS]++
    stats[Count.OUTSIDE_BYTES] += total
  }

  /** Is the 16-byte address at s[at] inside our subnet? */
  private forUs (s: Uint8Array, at: number): boolean {
    const m = this.ownMask
    const n = this.own
    return this.ownSet && ((word(s, at) ^ n[0]) & m[0]) === 0 && ((word(s, at + 4) ^ n[1]) & m[1]) === 0 &&
      ((word(s, at + 8) ^ n[2]) & m[2]) === 0 && ((word(s, at + 12) ^ n[3]) & m[3]) === 0
  }

  /**
   * May `peer` send us a packet from the address at s[at]? Inside the IPv6
   * network only from a subnet a lease of its PublicIPv6 holds (so never
   * from ours); outside it, from anywhere but ::1 and this node's addresses.
   */
  private sourceOk (s: Uint8Array, at: number, peer: number): boolean {
    const held = this.fdb.sourceHolds(s, at, peer)
    if (held >= 0) return held === 1
    const a = word(s, at)
    const b = word(s, at + 4)
    const c = word(s, at + 8)
    const d = word(s, at + 12)
    if ((a | b | c) === 0 && d === 1) return false
    const local = this.local
    let lo = 0
    let hi = this.localCount - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const k = mid * 4
      // the same order as setLocalAddresses' sort: words compared unsigned
      let cmp = (local[k] >>> 0) - (a >>> 0)
      if (cmp === 0) cmp = (local[k + 1] >>> 0) - (b >>> 0)
      if (cmp === 0) cmp = (local[k + 2] >>> 0) - (c >>> 0)
      if (cmp === 0) cmp = (local[k + 3] >>> 0) - (d >>> 0)
      if (cmp === 0) return false
      if (cmp < 0) lo = mid + 1
      else hi = mid - 1
    }
    return true
  }

  /** A TCP packet beyond the MTU the TUN can take as TCPv6 TSO: the MSS its segments get, or 0 (as outside.ts). */
  private superMss (ip: number, total: number, proto: number, l4: number): number {
    const s = this.o.rx.slab
    if (!this.o.checked || proto !== TCP || l4 !== HLEN || total < HLEN + 20) return 0
    const hdr = HLEN + ((s[ip + HLEN + 12] >> 4) << 2)
    const limit = this.o.mtu < SUPER_SEGMENT_MTU ? this.o.mtu : SUPER_SEGMENT_MTU
    return total > hdr && hdr < limit ? limit - hdr : 0
  }
}
