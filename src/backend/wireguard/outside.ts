// Outside: WireGuard messages from other nodes (the underlay socket) to our
// pods.
// 1. the socket is readable: the addon has read up to a batch of datagrams
//    (with UDP_GRO an entry holds several of one size, from one sender)
// 2. per datagram, by its type:
//    - transport (4): its receiver index names one of our keypairs
//      (IndexTable.slotOf, no allocation); queued for opening with that
//      keypair's receiving key slot
//    - handshake (1, 2, 3): copied out for the control path (loops.ts),
//      which answers after the batch; at most HANDSHAKES_PER_BATCH a batch
//    - anything else, or a transport for no keypair: dropped, counted
// 3. one call opens the queued messages in place (WgOpener): authenticated,
//    decrypted, their inner TCP/UDP checksums checked
// 4. per opened message: the peer accepts its counter (replay window,
//    Peer.received: it also roams the endpoint and runs the receive
//    timers); a keepalive ends there; a packet must be IPv4, whole, for our
//    subnet and from the sending peer's own subnet (cryptokey routing: a
//    peer that sends another source is remembered in a small ring, for the
//    control plane to name once, as ../../dataplane/outside.ts does), and
//    is queued for the TUN where it lies, coalescing as the other backends do
// 5. one call writes the batch to the TUN (paced UDP may hold the socket's
//    reading until it went, as in ../../dataplane/outside.ts)
// The IPv6 device (weft-wg-v6) runs the same loop over an Fdb6: senders are
// four words (rx.addrs6), which the protocol knows by handle (endpoints6.ts:
// the peer's current endpoint is matched word by word, a new one interned);
// a packet must be IPv6 (fixed header, payload length within what arrived,
// no jumbogram, extension headers walked; no Neighbour Discovery or router
// messages, which never cross a WireGuard link), for our IPv6 subnet and
// from the sending peer's.
// A device of both families (flannel's single-device Modes) takes each
// opened packet by its version, the IPv6 table's entries naming their peers'
// indexes (inner6.peerOf); its senders are of the socket's family.
// Nothing here allocates per packet or logs; handshakes are copied (they
// are rare, and bounded per batch).
import type { PacketBatch } from '../../native/batch'
import type { PacketIo } from '../../native/io'
import { WG_HDR_LEN, WG_OVERHEAD, WgInner, WgStatus } from '../../native/wg'
import type { WgOpener } from '../../native/wg'
import { Reason } from '../../packet/reason'
import type { Fdb } from '../../dataplane/fdb'
import type { Fdb6 } from '../../dataplane/fdb6'
import { walkIpv6 } from '../../packet/ipv6'
import { ip6Words, mask6 } from '../../packet/net6'
import type { Ip6Net } from '../../packet/net6'
import type { Endpoints6 } from './endpoints6'
import type { Inner6 } from './inside'
import { PER_PEER, PeerCount } from '../../dataplane/fdb'
import { GRO_MAX_SEGMENTS } from '../../dataplane/outside'
import { Count, Drop } from '../../dataplane/stats'
import type { TunWrites } from '../../dataplane/tun-writes'
import { WgDrop } from '../../wireguard/reasons'
import type { IndexTable } from '../../wireguard/index-table'
import type { Peer } from '../../wireguard/peer'
import type { Keypair } from '../../wireguard/session'

/**
 * Handshake messages taken from one batch; more are dropped (rate_limited):
 * a flood must not stall the dataplane. Generous, because this cap comes
 * before any check: the cheap ones (mac1, then mac2 and the per-source
 * limit under load) sort a flood out before any Diffie-Hellman is done.
 */
export const HANDSHAKES_PER_BATCH = 128

/** A handshake message copied out of a batch, with its sender. */
export interface Handshake { bytes: Buffer, addr: number, port: number }

export interface WgOutsideOptions {
  sock: PacketIo
  rx: PacketBatch
  opener: WgOpener
  writes: TunWrites
  /** the peers' table; an Fdb6 makes this the IPv6 device's loop */
  fdb: Fdb | Fdb6
  /** a device of both families: the IPv6 table beside the IPv4 one */
  inner6?: Inner6
  /** an IPv6 socket: the senders' handles */
  endpoints6?: Endpoints6
  /** an IPv6 socket: the handle of the sender in w[at..at+3] (a new source: off the steady path) */
  intern6?: (w: Uint32Array, at: number) => number
  indexes: IndexTable<Peer, Keypair>
  /** the table index of each peer */
  indexOf: Map<Peer, number>
  stats: Float64Array
  wgDrops: Float64Array
  /** ms, the protocol's clock */
  now: () => number
  onFatal: (errno: number) => void
  /** after a batch: the handshake messages it held (the array is reused) */
  handshakes: (list: Handshake[], count: number) => void
  /** the peer at this index roamed: its address in the send table is stale */
  endpointOf: (index: number) => void
  endpointSeen: Int32Array
  /** UNKNOWN_RING slots: the public IPs of peers that sent an inner source not theirs, for the control plane to name once */
  spoofSenders: Uint32Array
}

const HLEN6 = 40
const ICMPV6 = 58

export class WgOutside {
  private ownMask = 0
  private ownBase = 0
  /** IPv6: our subnet's words and mask; until set, nothing is for us */
  private readonly own6 = new Int32Array(4).fill(-1)
  private readonly ownMask6 = new Int32Array([-1, -1, -1, -1])
  private readonly fdb4: Fdb | undefined
  private readonly fdb6: Fdb6 | undefined
  private readonly map6: Int32Array | undefined
  /** where each queued datagram came from (IPv6: four words each in fromAddr6) */
  private readonly fromAddr: Uint32Array
  private readonly fromAddr6: Uint32Array
  private readonly fromPort: Uint32Array
  private queued = 0
  private spoofCursor = 0
  private readonly shakes: Handshake[] = []
  private shakeCount = 0

  constructor (private readonly o: WgOutsideOptions) {
    o.sock.receiveInto(o.rx, {})
    this.fromAddr = new Uint32Array(o.opener.offsets.length)
    this.fromPort = new Uint32Array(o.opener.offsets.length)
    this.fdb6 = 'lookupAt' in o.fdb ? o.fdb : o.inner6?.fdb
    this.fdb4 = 'lookupAt' in o.fdb ? undefined : o.fdb
    this.map6 = 'lookupAt' in o.fdb ? undefined : o.inner6?.peerOf
    this.fromAddr6 = new Uint32Array(o.endpoints6 !== undefined ? o.opener.offsets.length * 4 : 0)
    o.writes.onDrained = this.drained
  }

  /** The paced rest of a batch is written: the slab is free, read again. */
  private readonly drained = (): void => { this.o.sock.setReading(true) }

  setOwnSubnet (ip: number, prefixLen: number): void {
    this.ownMask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) | 0
    this.ownBase = ip & this.ownMask
  }

  setOwnSubnet6 (subnet: Ip6Net): void {
    const w = ip6Words(subnet.ip & mask6(subnet.prefixLen))
    const m = ip6Words(mask6(subnet.prefixLen))
    for (let i = 0; i < 4; i++) {
      this.own6[i] = w[i] | 0
      this.ownMask6[i] = m[i] | 0
    }
  }

  readonly onBatch = (n: number): void => {
    const o = this.o
    if (n < 0) { o.onFatal(-n); return }
    const slab = o.rx.slab
    const offsets = o.rx.offsets
    const lengths = o.rx.lengths
    const addrs = o.rx.addrs
    const addrs6 = o.rx.addrs6
    const v6 = o.endpoints6 !== undefined
    const ports = o.rx.ports
    const segs = o.rx.segs
    const stats = o.stats
    const wgDrops = o.wgDrops
    const indexes = o.indexes
    const opener = o.opener
    const max = opener.offsets.length
    stats[Count.OUTSIDE_BATCHES]++
    this.shakeCount = 0
    for (let i = 0; i < n; i++) {
      const len = lengths[i]
      const a6 = i * 4
      if (len === 0) {
        if (v6 ? (addrs6[a6] | addrs6[a6 + 1] | addrs6[a6 + 2] | addrs6[a6 + 3]) !== 0 : addrs[i] !== 0) wgDrops[WgDrop.BAD_LENGTH]++
        continue
      }
      const off = offsets[i]
      const addr = v6 ? 0 : addrs[i]
      const port = ports[i]
      const seg = segs[i] === 0 ? len : segs[i]
      const end = off + len
      let j = 0
      for (let at = off; at < end; at += seg, j++) {
        const dlen = end - at < seg ? end - at : seg
        if (j >= GRO_MAX_SEGMENTS) { wgDrops[WgDrop.BAD_LENGTH]++; continue }
        if (dlen < 4 || (slab[at + 1] | slab[at + 2] | slab[at + 3]) !== 0) { wgDrops[WgDrop.BAD_TYPE]++; continue }
        const type = slab[at]
        if (type === 4) {
          if (dlen < WG_OVERHEAD) { wgDrops[WgDrop.BAD_LENGTH]++; continue }
          const receiver = (slab[at + 4] | (slab[at + 5] << 8) | (slab[at + 6] << 16) | (slab[at + 7] << 24)) >>> 0
          const slot = indexes.slotOf(receiver)
          if (slot < 0) { wgDrops[WgDrop.UNKNOWN_RECEIVER_INDEX]++; continue }
          const q = this.queued
          opener.offsets[q] = at
          opener.lengths[q] = dlen
          opener.keySlot[q] = slot
          this.fromAddr[q] = addr
          if (v6) {
            const f = q * 4
            this.fromAddr6[f] = addrs6[a6]
            this.fromAddr6[f + 1] = addrs6[a6 + 1]
            this.fromAddr6[f + 2] = addrs6[a6 + 2]
            this.fromAddr6[f + 3] = addrs6[a6 + 3]
          }
          this.fromPort[q] = port
          this.queued = q + 1
          if (q + 1 === max) this.open()
        } else if (type >= 1 && type <= 3) {
          if (this.shakeCount >= HANDSHAKES_PER_BATCH) { wgDrops[WgDrop.RATE_LIMITED]++; continue }
          this.shake(slab, at, dlen, v6 ? this.handle6(addrs6, a6) : addr, port)
        } else {
          wgDrops[WgDrop.BAD_TYPE]++
        }
      }
    }
    if (this.queued > 0) this.open()
    o.writes.send()
    if (o.writes.pending > 0) o.sock.setReading(false)
    if (this.shakeCount > 0) o.handshakes(this.shakes, this.shakeCount)
  }

  /** IPv6: the sender's handle (interned: a handshake or a new source is off the steady path). */
  private handle6 (w: Uint32Array, at: number): number {
    const intern = this.o.intern6
    return intern === undefined ? 0 : intern(w, at)
  }

  /** Copy a handshake message out of the slab (the slab is reused by the next read). */
  private shake (slab: Buffer, at: number, len: number, addr: number, port: number): void {
    const k = this.shakeCount++
    const bytes = Buffer.allocUnsafe(len)
    slab.copy(bytes, 0, at, at + len)
    if (k < this.shakes.length) {
      const h = this.shakes[k]
      h.bytes = bytes; h.addr = addr; h.port = port
    } else {
      this.shakes.push({ bytes, addr, port })
    }
  }

  /** 3-4. Open what is queued and hand the packets on. */
  private open (): void {
    const o = this.o
    const count = this.queued
    this.queued = 0
    const opener = o.opener
    opener.open(count)
    const status = opener.status
    const inner = opener.inner
    const counter = opener.counter
    const offsets = opener.offsets
    const lengths = opener.lengths
    const slab = o.rx.slab
    const stats = o.stats
    const wgDrops = o.wgDrops
    const fdb = this.fdb4
    const fdb6 = this.fdb6
    const eps = o.endpoints6
    const perPeer = o.fdb.perPeer
    const writes = o.writes
    const now = o.now()
    for (let j = 0; j < count; j++) {
      const st = status[j]
      if (st !== WgStatus.OK) {
        wgDrops[st === WgStatus.AUTH_FAILED ? WgDrop.DECRYPT_FAILED : st === WgStatus.NO_KEY ? WgDrop.NO_SESSION : WgDrop.BAD_LENGTH]++
        continue
      }
      const kp = o.indexes.keypairAt(opener.keySlot[j])
      if (kp === undefined) { wgDrops[WgDrop.NO_SESSION]++; continue }
      const peer = kp.peer
      const plen = lengths[j] - WG_OVERHEAD
      let from = this.fromAddr[j]
      if (eps !== undefined) {
        // the peer's current endpoint, as almost always, or a source to intern (it roamed)
        const cur = peer.endpointAddr
        from = eps.matches(cur, this.fromAddr6, j * 4) ? cur : this.handle6(this.fromAddr6, j * 4)
      }
      const r = peer.received(kp, counter[j], plen, now, from, this.fromPort[j])
      if (r !== WgDrop.OK) { wgDrops[r]++; continue }
      const index = o.indexOf.get(peer)
      if (index === undefined) { wgDrops[WgDrop.NO_SESSION]++; continue }
      if (peer.endpointVersion !== o.endpointSeen[index]) o.endpointOf(index)
      if (plen === 0) continue // a keepalive: its work is done
      const ip = offsets[j] + WG_HDR_LEN
      // an IPv6 device's packet, or a both-families device's IPv6 one
      if (fdb6 !== undefined && (fdb === undefined || (slab[ip] >> 4) === 6)) {
        const total = this.deliver6(fdb6, slab, ip, plen, index, inner[j])
        if (total === 0) continue
        perPeer[index * PER_PEER + PeerCount.OUTSIDE_PACKETS]++
        perPeer[index * PER_PEER + PeerCount.OUTSIDE_BYTES] += total
        stats[Count.OUTSIDE_PACKETS]++
        stats[Count.OUTSIDE_BYTES] += total
        continue
      }
      if (fdb === undefined) continue
      if (plen < 20) { stats[Reason.TRUNCATED]++; continue }
      const vihl = slab[ip]
      if ((vihl >> 4) !== 4) { stats[Reason.BAD_VERSION]++; continue }
      if ((vihl & 15) < 5) { stats[Reason.BAD_IHL]++; continue }
      const total = (slab[ip + 2] << 8) | slab[ip + 3]
      if (total < (vihl & 15) * 4 || total > plen) { stats[Reason.BAD_TOTAL_LENGTH]++; continue }
      const dst = (slab[ip + 16] << 24) | (slab[ip + 17] << 16) | (slab[ip + 18] << 8) | slab[ip + 19]
      if ((dst & this.ownMask) !== this.ownBase) { stats[Drop.NOT_FOR_US]++; continue }
      // cryptokey routing: the source must be in the sending peer's allowed IPs (its subnet)
      const src = (slab[ip + 12] << 24) | (slab[ip + 13] << 16) | (slab[ip + 14] << 8) | slab[ip + 15]
      if (fdb.lookup(src) !== index) {
        stats[Drop.SPOOFED_SOURCE]++
        o.spoofSenders[this.spoofCursor] = fdb.publicIPs[index]
        this.spoofCursor = (this.spoofCursor + 1) % o.spoofSenders.length
        continue
      }
      const proto = slab[ip + 9]
      const checked = inner[j]
      if (checked === WgInner.BAD) { stats[Drop.BAD_INNER_CHECKSUM]++; continue }
      if (proto === 6 && ((slab[ip + 6] & 0x1f) | slab[ip + 7]) === 0) {
        // as the other backends: a TCP header shorter than TCP's own, or longer than the packet, would mislead the coalescing
        const ihl = (vihl & 15) << 2
        const doff = total >= ihl + 20 ? slab[ip + ihl + 12] >> 4 : 0
        if (doff < 5 || ihl + (doff << 2) > total) { stats[Reason.BAD_TCP_DATA_OFFSET]++; continue }
      }
      if (checked === WgInner.GOOD && proto === 6) writes.tcp(ip, total)
      else if (checked === WgInner.GOOD && proto === 17) writes.udp(ip, total)
      else writes.single(ip, total)
      perPeer[index * PER_PEER + PeerCount.OUTSIDE_PACKETS]++
      perPeer[index * PER_PEER + PeerCount.OUTSIDE_BYTES] += total
      stats[Count.OUTSIDE_PACKETS]++
      stats[Count.OUTSIDE_BYTES] += total
    }
  }

  /**
   * IPv6: the opened packet at slab[ip] (plen bytes with the padding)
   * checked and queued for the TUN; its length, or 0 if dropped (counted).
   */
  private deliver6 (fdb6: Fdb6, slab: Buffer, ip: number, plen: number, index: number, checked: number): number {
    const stats = this.o.stats
    if (plen < HLEN6) { stats[Reason.TRUNCATED]++; return 0 }
    if ((slab[ip] >> 4) !== 6) { stats[Reason.BAD_VERSION]++; return 0 }
    const payload = (slab[ip + 4] << 8) | slab[ip + 5]
    let proto = slab[ip + 6]
    if (payload === 0 && proto === 0) { stats[Reason.JUMBOGRAM]++; return 0 }
    const total = HLEN6 + payload
    if (total > plen) { stats[Reason.BAD_PAYLOAD_LENGTH]++; return 0 }
    let l4 = HLEN6
    if (proto !== 6 && proto !== 17 && proto !== ICMPV6) {
      const w = walkIpv6(slab, ip, total)
      if (w < 0) { stats[-w]++; return 0 }
      proto = w >>> 17
      l4 = w & 0x1ffff
    }
    if (proto === ICMPV6 && l4 < total && slab[ip + l4] >= 133 && slab[ip + l4] <= 137) { stats[Reason.NDP]++; return 0 }
    const own = this.own6
    const m = this.ownMask6
    for (let k = 0; k < 4; k++) {
      const at = ip + 24 + 4 * k
      const w = (slab[at] << 24) | (slab[at + 1] << 16) | (slab[at + 2] << 8) | slab[at + 3]
      if (((w ^ own[k]) & m[k]) !== 0) { stats[Drop.NOT_FOR_US]++; return 0 }
    }
    // cryptokey routing: the source must be in the sending peer's allowed IPs
    // (its IPv6 subnet); lookupAt reads the address 24 bytes past its
    // offset, so ip - 16 reads the source (ip + 8)
    let owner = fdb6.lookupAt(slab, ip - 16)
    if (owner >= 0 && this.map6 !== undefined) owner = this.map6[owner]
    if (owner !== index) { stats[Drop.SPOOFED_SOURCE]++; return 0 }
    if (checked === WgInner.BAD) { stats[Drop.BAD_INNER_CHECKSUM]++; return 0 }
    if (proto === 6) {
      const doff = total >= l4 + 20 ? slab[ip + l4 + 12] >> 4 : 0
      if (doff < 5 || l4 + (doff << 2) > total) { stats[Reason.BAD_TCP_DATA_OFFSET]++; return 0 }
    }
    const w = this.o.writes
    if (checked === WgInner.GOOD && l4 === HLEN6 && proto === 6) w.tcp6(ip, total)
    else if (checked === WgInner.GOOD && l4 === HLEN6 && proto === 17) w.udp6(ip, total)
    else w.single6(ip, total)
    return total
  }
}
