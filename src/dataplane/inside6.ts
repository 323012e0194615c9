// Step 2 of inside.ts for an IPv6 pipeline (flannel-v6.<VNI>'s side): per
// packet read from the TUN, an IPv6 packet (the TUN carries only IPv6, a
// route to IPv6Network) within the MTU, or a TCPv6 (GSO_TCPV6) or UDP
// (GSO_UDP_L4) super-packet the addon segments, whose destination subnet has
// a peer (Fdb6.lookupAt, straight from the packet's bytes), gets the
// encapsulation written in front of it and is queued in `tx` for the udp6
// socket (the peer index selects its PublicIPv6 in fdb.addrs, a PeerTable6).
// Else it is dropped with its reason. No ICMPv6 answers: the only backend
// that answers (flannel's UDP) is IPv4 only. Nothing here allocates.
import { SEGS_PARTIAL } from '../native/batch'
import { GSO_NONE, GSO_TCPV6, GSO_UDP_L4, VNET_HDR_LEN, vnetGsoSize } from '../native/vnet'
import { Reason } from '../packet/reason'
import type { Fdb6 } from './fdb6'
import { PER_PEER, PeerCount } from './fdb'
import type { InsideOptions } from './inside'
import { Count, Drop } from './stats'

/** Queue a batch of `n` packets read into o.rx; returns how many went into o.tx. */
export function queueBatch6 (o: InsideOptions, n: number): number {
  const slab = o.rx.slab
  const offsets = o.rx.offsets
  const lengths = o.rx.lengths
  const txOff = o.tx.offsets
  const txLen = o.tx.lengths
  const txDest = o.tx.dests
  const txSegs = o.tx.segs
  const vnet = o.vnet
  const stats = o.stats
  const fdb = o.fdb as Fdb6
  const perPeer = fdb.perPeer
  const encap = o.encap
  const mtu = o.mtu
  let k = 0
  stats[Count.INSIDE_BATCHES]++
  for (let i = 0; i < n; i++) {
    let off = offsets[i]
    let len = lengths[i]
    let gso = 0
    if (vnet) {
      const type = slab[off + 1]
      if (type !== GSO_NONE) {
        if (type !== GSO_TCPV6 && type !== GSO_UDP_L4) { stats[Drop.GSO_UNSUPPORTED]++; continue }
        gso = (type << 16) | vnetGsoSize(slab, off)
        stats[Count.INSIDE_SUPER_PACKETS]++
      }
      off += VNET_HDR_LEN
      len -= VNET_HDR_LEN
    }
    if (len < 40) { stats[Reason.TRUNCATED]++; continue }
    if ((slab[off] >> 4) !== 6) { stats[Drop.NOT_IPV6]++; continue }
    if (len > mtu && gso === 0) { stats[Drop.TOO_BIG]++; continue }
    const peer = fdb.lookupAt(slab, off)
    if (peer < 0) { stats[Drop.NO_ROUTE]++; continue }
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
  return k
}
