// Inside: packets from our pods (the TUN) to other nodes, as WireGuard
// transport messages.
// 1. the TUN is readable: the addon has read up to a batch of packets, each
//    behind its virtio_net_hdr when offloads are on (a packet may then be a
//    TCP/UDP super-packet of up to 64 KB)
// 2. per packet: an IPv4 packet within the MTU (or a super-packet of a kind
//    the addon segments), whose destination subnet has a peer (Fdb.lookup),
//    or, on the IPv6 device (weft-wg-v6), an IPv6 packet (TCPv6 super-packets
//    too) whose destination an Fdb6 holds (Fdb6.lookupAt); a device that
//    carries both families (flannel's single-device Modes) looks each
//    packet up in its family's table, an IPv6 entry naming its peer's index
//    in the IPv4 table (inner6.peerOf),
//    with a session: the peer reserves one counter per segment (Peer.send);
//    without one the peer has started a handshake, and the packet is kept
//    for it (a few per peer, as WireGuard stages them) or dropped (no_session)
// 3. one call seals the batch (WgSealer): each (segment of a) packet becomes
//    a message behind the session's receiver index and its counter, padded,
//    encrypted and tagged, in the socket's send batch
// 4. one send for the messages: same-size messages to one peer go as
//    UDP_SEGMENT sends; if the send batch fills up, the rest of the TUN batch
//    is sealed after it went; if the socket takes only part, the TUN is not
//    read again until it drains (backpressure, not loss); an entry whose
//    keypair died while it waited (a rekey, the peer's key changed) is
//    dropped (no_session), never sealed with whatever key its slot holds by then
// Nothing here allocates, closes over per-packet state, or logs.
import type { PacketBatch } from '../../native/batch'
import type { PacketIo } from '../../native/io'
import { WgSealCode } from '../../native/wg'
import type { WgSealer } from '../../native/wg'
import { GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, vnetGsoSize } from '../../native/vnet'
import { Reason } from '../../packet/reason'
import type { Fdb } from '../../dataplane/fdb'
import type { Fdb6 } from '../../dataplane/fdb6'
import { PER_PEER, PeerCount } from '../../dataplane/fdb'
import { Count, Drop } from '../../dataplane/stats'
import { WgDrop } from '../../wireguard/reasons'
import type { Peer } from '../../wireguard/peer'
import type { Keypair } from '../../wireguard/session'

export interface WgInsideOptions {
  tun: PacketIo
  sock: PacketIo
  /** what the TUN reads into (the sealer's input) */
  rx: PacketBatch
  /** the socket's send batch (the sealer's output) */
  tx: PacketBatch
  sealer: WgSealer
  /** the peers' table (its indexes are the peers'); an Fdb6 makes this the IPv6 device's loop */
  fdb: Fdb | Fdb6
  /** a device of both families: the IPv6 table beside the IPv4 one, and the IPv4 index of each of its entries */
  inner6?: Inner6
  /** the WireGuard peer at each table index, or undefined */
  peers: Array<Peer | undefined>
  stats: Float64Array
  /** counts by WgDrop code */
  wgDrops: Float64Array
  mtu: number
  vnet: boolean
  /** ms, the protocol's clock */
  now: () => number
  /** a fatal read error (-errno); reading has stopped */
  onFatal: (errno: number) => void
  /** the batch went: anything the control path holds may go now */
  idle: () => void
  /** the peer at this index roamed: its address in the send table is stale */
  endpointOf: (index: number) => void
  /**
   * A packet for a peer without a session yet (a handshake is on its way):
   * whether it was kept to go once the session is ready (loops.ts; rare, and
   * bounded: off the steady-state path)
   */
  stage: (peer: Peer, slab: Buffer, ip: number, len: number, needsCsum: boolean) => boolean
}

/** The IPv6 half of a device that carries both families: its table, and each entry's peer (an index of the IPv4 table, -1 none). */
export interface Inner6 {
  fdb: Fdb6
  peerOf: Int32Array
}

export class WgInside {
  /** entries of the TUN batch read */
  private entries = 0
  /** the first entry not yet sealed */
  private nextEntry = 0
  /** sealed messages not yet sent, from tx entry `first` */
  private pending = 0
  private first = 0
  private readingTun = true
  /** the endpoint version each table index was last sent to */
  readonly endpointSeen: Int32Array
  /**
   * The keypair each entry's counters were reserved on. Its key slot is its
   * own only while it lives: an entry left unsealed while the socket was
   * full must not be sealed after its keypair died, when the slot may
   * already hold another session's key (that session issues the same
   * counters again: a nonce used twice under one key).
   */
  private readonly keypairs: Array<Keypair | null>
  /** the tables of the families this device carries, and the IPv6 table's peer indexes (undefined: its own) */
  private readonly fdb6: Fdb6 | undefined
  private readonly fdb4: Fdb | undefined
  private readonly map6: Int32Array | undefined

  constructor (private readonly o: WgInsideOptions) {
    this.fdb6 = 'lookupAt' in o.fdb ? o.fdb : o.inner6?.fdb
    this.fdb4 = 'lookupAt' in o.fdb ? undefined : o.fdb
    this.map6 = 'lookupAt' in o.fdb ? undefined : o.inner6?.peerOf
    o.tun.receiveInto(o.rx, { vnet: o.vnet })
    this.endpointSeen = new Int32Array(o.fdb.capacity).fill(-1)
    this.keypairs = new Array<Keypair | null>(o.rx.size).fill(null)
  }

  /** Whether nothing is waiting to be sealed or sent (the send batch is free). */
  get idle (): boolean {
    return this.pending === 0 && this.nextEntry >= this.entries
  }

  /** Called by the addon once per batch. */
  readonly onBatch = (n: number): void => {
    const o = this.o
    if (n < 0) { o.onFatal(-n); return }
    const slab = o.rx.slab
    const offsets = o.rx.offsets
    const lengths = o.rx.lengths
    const s = o.sealer
    const keySlot = s.keySlot
    const receiver = s.receiver
    const counter = s.counter
    const gsoOf = s.gso
    const dest = s.dest
    const stats = o.stats
    const wgDrops = o.wgDrops
    const perPeer = o.fdb.perPeer
    const fdb = this.fdb4
    const fdb6 = this.fdb6
    const map6 = this.map6
    // the TCP super-packets of the families this device carries (-1: none)
    const tcp4 = fdb !== undefined ? GSO_TCPV4 : -1
    const tcp6 = fdb6 !== undefined ? GSO_TCPV6 : -1
    const peers = o.peers
    const mtu = o.mtu
    const vnet = o.vnet
    const now = o.now()
    stats[Count.INSIDE_BATCHES]++
    for (let i = 0; i < n; i++) {
      keySlot[i] = -1
      let ip = offsets[i]
      let len = lengths[i]
      let gso = 0
      let mss = 0
      if (vnet) {
        const type = slab[ip + 1]
        if (type !== GSO_NONE) {
          if (type !== tcp4 && type !== tcp6 && type !== GSO_UDP_L4) { stats[Drop.GSO_UNSUPPORTED]++; continue }
          mss = vnetGsoSize(slab, ip)
          gso = (type << 16) | mss
          stats[Count.INSIDE_SUPER_PACKETS]++
        }
        ip += VNET_HDR_LEN
        len -= VNET_HDR_LEN
      }
      if (len < 20) { stats[Reason.TRUNCATED]++; continue }
      const version = slab[ip] >> 4
      let index = -1
      if (version === 6 && fdb6 !== undefined) {
        if (len < 40) { stats[Reason.TRUNCATED]++; continue }
        if (len > mtu && gso === 0) { stats[Drop.TOO_BIG]++; continue }
        index = fdb6.lookupAt(slab, ip)
        if (index >= 0 && map6 !== undefined) index = map6[index]
      } else if (version === 4 && fdb !== undefined) {
        if (len > mtu && gso === 0) { stats[Drop.TOO_BIG]++; continue }
        index = fdb.lookup((slab[ip + 16] << 24) | (slab[ip + 17] << 16) | (slab[ip + 18] << 8) | slab[ip + 19])
      } else {
        stats[fdb !== undefined ? Drop.NOT_IPV4 : Drop.NOT_IPV6]++
        continue
      }
      if (index < 0) { stats[Drop.NO_ROUTE]++; continue }
      const peer = peers[index]
      if (peer === undefined) { wgDrops[WgDrop.NO_SESSION]++; continue }
      const segs = gso === 0 ? 1 : segments(slab, ip, len, mss, gso >>> 16)
      if (segs === 0) { stats[Drop.GSO_UNSUPPORTED]++; continue }
      const c = peer.send(now, segs)
      if (c < 0) {
        if (gso !== 0 || !o.stage(peer, slab, ip, len, vnet && (slab[ip - VNET_HDR_LEN] & VNET_F_NEEDS_CSUM) !== 0)) wgDrops[WgDrop.NO_SESSION]++
        continue
      }
      const kp = peer.current
      if (kp === null) { wgDrops[WgDrop.NO_SESSION]++; continue }
      if (peer.endpointVersion !== this.endpointSeen[index]) o.endpointOf(index)
      keySlot[i] = kp.slot
      this.keypairs[i] = kp
      receiver[i] = kp.remoteIndex
      counter[i] = c
      gsoOf[i] = gso
      dest[i] = index
      perPeer[index * PER_PEER + PeerCount.INSIDE_PACKETS] += segs
      perPeer[index * PER_PEER + PeerCount.INSIDE_BYTES] += len
      stats[Count.INSIDE_PACKETS] += segs
      stats[Count.INSIDE_BYTES] += len
    }
    this.entries = n
    this.nextEntry = 0
    this.flush()
  }

  /** Seal and send what is left of the batch; on a partial send wait for the socket. */
  readonly flush = (): void => {
    const o = this.o
    const tx = o.tx
    for (;;) {
      if (this.pending > 0) {
        if (this.first > 0) { this.o.tx.moveToFront(this.first, this.pending); this.first = 0 }
        const sent = o.sock.send(this.pending)
        if (sent < this.pending) {
          this.first = sent
          this.pending -= sent
          o.stats[Count.INSIDE_BACKPRESSURE]++
          this.reading(false)
          o.sock.wantWritable()
          return
        }
        this.pending = 0
        // moveToFront moved entries (and sendControl used slots): every slot's offset back in place for the next seal
        tx.resetOffsets()
      }
      if (this.nextEntry >= this.entries) break
      this.dropDead()
      const m = o.sealer.seal(this.entries - this.nextEntry, this.nextEntry)
      const produced = o.sealer.produced
      let j = this.nextEntry
      while (j < this.entries && produced[j] !== WgSealCode.NO_ROOM) {
        const p = produced[j]
        if (p < 0) this.refused(p)
        j++
      }
      // an entry that does not fit an empty send batch never will
      if (j === this.nextEntry && m === 0) { o.stats[Drop.TOO_BIG]++; j++ }
      this.nextEntry = j
      this.pending = m
      this.first = 0
    }
    this.reading(true)
    o.idle()
  }

  /** Entries not sealed yet whose keypair died meanwhile (a rekey, the peer gone): dropped, not sealed with whatever key its slot holds now. */
  private dropDead (): void {
    const keySlot = this.o.sealer.keySlot
    for (let i = this.nextEntry; i < this.entries; i++) {
      const kp = this.keypairs[i]
      if (keySlot[i] >= 0 && kp !== null && kp.dead) {
        keySlot[i] = -1
        this.o.wgDrops[WgDrop.NO_SESSION]++
      }
    }
  }

  /** A packet the sealer refused, counted by why. */
  private refused (code: number): void {
    const o = this.o
    if (code === WgSealCode.NO_KEY) o.wgDrops[WgDrop.NO_SESSION]++
    else if (code === WgSealCode.TOO_BIG) o.stats[Drop.TOO_BIG]++
    else o.stats[Drop.GSO_UNSUPPORTED]++
  }

  /** Start or stop reading the TUN, crossing into the addon only on a change. */
  private reading (on: boolean): void {
    if (on === this.readingTun) return
    this.readingTun = on
    this.o.tun.setReading(on)
  }
}

/**
 * How many segments the addon cuts a super-packet into: its payload past
 * the IP and TCP/UDP headers, mss bytes each (0 if it cannot be cut). An
 * IPv6 super-packet has its TCP/UDP header right after the fixed 40 bytes
 * (the addon refuses one behind extension headers, and so does this).
 */
function segments (s: Buffer, ip: number, len: number, mss: number, type: number): number {
  if (mss === 0) return 0
  const v6 = (s[ip] >> 4) === 6
  if (v6 && s[ip + 6] !== (type === GSO_TCPV6 ? 6 : 17)) return 0
  const ihl = v6 ? 40 : (s[ip] & 15) << 2
  if (ihl < 20 || len < ihl + 8) return 0
  let hdr = ihl + 8
  if (type === GSO_TCPV4 || type === GSO_TCPV6) {
    if (len < ihl + 20) return 0
    hdr = ihl + ((s[ip + ihl + 12] >> 4) << 2)
  }
  const payload = len - hdr
  if (payload <= 0) return 0
  return Math.ceil(payload / mss)
}
