// VXLAN as the kernel's flannel.1 speaks it (RFC 7348, VNI 1, UDP 8472):
//   [VXLAN 8][inner Ethernet 14][inner IPv4 ...]
// The UDP and outer IPv4 headers are the kernel's, via our UDP socket.
// Out: inner Ethernet from our VTEP MAC to the peer's, then the VXLAN header,
// written in place in the headroom. In: flags and VNI checked, the inner
// frame must be addressed to our VTEP MAC and carry IPv4.
// Remote checksum offload (RCO, see ../packet/vxlan.ts), when on: a
// super-packet to a peer that asked for it (Fdb.remCsum) is marked so that
// its segments go with the inner checksum left partial; a datagram that
// arrives marked is let in only where the mark describes it, and goes to the
// TUN for the kernel to finish (DECAP_PARTIAL).
// IPv6 (flannel-v6.<VNI>'s side): the same, given an Fdb6, with the inner
// EtherType 0x86DD both ways; RCO over IPv6 only for TCP/UDP straight after
// the fixed 40-byte header (a checksum behind extension headers is left to
// the sender and the receiver's own check, never marked).
// The family is fixed at construction: an IPv6 instance gets its own encap
// and decap (own properties, so its hidden class differs), and the IPv4
// methods keep their EtherType as constants (measured: reading it from a
// field cost the IPv4 inside loop 4%).
import { ETH_HLEN } from '../../packet/ethernet'
import { Reason } from '../../packet/reason'
import { hasRco, rcoProtocol, rcoStart, validateVxlan, writeRco, VXLAN_FLAG_I } from '../../packet/vxlan'
import { DECAP_PARTIAL } from '../../dataplane/encap'
import type { Encapsulation } from '../../dataplane/encap'
import type { Fdb } from '../../dataplane/fdb'
import { Fdb6 } from '../../dataplane/fdb6'
import { Drop } from '../../dataplane/stats'

/** bytes of the inner TCP header up to its checksum field's end, and UDP's */
const TCP_CSUM_END = 18
const UDP_CSUM_END = 8

export const VXLAN_HEADROOM = 8 + 14

export class VxlanEncap implements Encapsulation {
  readonly headroom = VXLAN_HEADROOM
  private readonly v0: number
  private readonly v1: number
  private readonly v2: number
  private readonly v6: boolean

  /** ourMac: 6 bytes; remoteChecksum: speak RCO with peers that ask for it, and take it from anyone; an Fdb6: inner IPv6 */
  constructor (private readonly vni: number, private readonly ourMac: Buffer, private readonly fdb: Fdb | Fdb6, readonly remoteChecksum = false) {
    this.v0 = (vni >>> 16) & 255
    this.v1 = (vni >>> 8) & 255
    this.v2 = vni & 255
    this.v6 = fdb instanceof Fdb6
    if (this.v6) {
      this.encap = this.encap6
      this.decap = this.decap6
    }
  }

  /** encap for an IPv6 pipeline: the same headers, inner EtherType 86DD. */
  private encap6 (slab: Buffer, off: number, len: number, peer: number): number {
    const h = VxlanEncap.prototype.encap.call(this, slab, off, len, peer)
    slab[h + 20] = 0x86
    slab[h + 21] = 0xdd
    return h
  }

  /** decap for an IPv6 pipeline: inner EtherType 86DD (anything else: not_ipv6), RCO as rco6 checks it. */
  private decap6 (slab: Buffer, off: number, len: number, peer: number): number {
    if (len < VXLAN_HEADROOM + 20) return -Reason.TRUNCATED
    const r = validateVxlan(slab, off, len, this.vni, this.remoteChecksum)
    if (r !== Reason.OK) return -r
    const m = this.ourMac
    const e = off + 8
    if (slab[e] !== m[0] || slab[e + 1] !== m[1] || slab[e + 2] !== m[2] || slab[e + 3] !== m[3] || slab[e + 4] !== m[4] || slab[e + 5] !== m[5]) return -Drop.NOT_OUR_MAC
    if (slab[e + 12] !== 0x86 || slab[e + 13] !== 0xdd) return -Drop.NOT_IPV6
    if (!hasRco(slab, off)) return VXLAN_HEADROOM
    // as for IPv4 (decap): only from a peer that asked for RCO, and only where the mark names this packet's own checksum
    if (this.fdb.rcoFrom[peer] === 0) return -Drop.BAD_VXLAN_RCO
    return this.rco6(slab, off, off + VXLAN_HEADROOM, len)
  }

  encap (slab: Buffer, off: number, _len: number, peer: number): number {
    const h = off - VXLAN_HEADROOM
    slab[h] = VXLAN_FLAG_I
    slab[h + 1] = 0
    slab[h + 2] = 0
    slab[h + 3] = 0
    slab[h + 4] = this.v0
    slab[h + 5] = this.v1
    slab[h + 6] = this.v2
    slab[h + 7] = 0
    // Byte by byte, not Buffer#copy: copy() from an offset makes a new
    // Uint8Array view on every call (Node's _copyActual), i.e. garbage per packet.
    const macs = this.fdb.macs
    const p = peer * 6
    slab[h + 8] = macs[p]
    slab[h + 9] = macs[p + 1]
    slab[h + 10] = macs[p + 2]
    slab[h + 11] = macs[p + 3]
    slab[h + 12] = macs[p + 4]
    slab[h + 13] = macs[p + 5]
    const m = this.ourMac
    slab[h + 14] = m[0]
    slab[h + 15] = m[1]
    slab[h + 16] = m[2]
    slab[h + 17] = m[3]
    slab[h + 18] = m[4]
    slab[h + 19] = m[5]
    slab[h + 20] = 0x08 // EtherType IPv4 (an IPv6 instance's encap6 rewrites it)
    slab[h + 21] = 0x00
    return h
  }

  partial (slab: Buffer, start: number, ip: number, peer: number): boolean {
    if (!this.remoteChecksum || this.fdb.remCsum[peer] === 0) return false
    if (this.v6) {
      const nh = slab[ip + 6]
      if (nh !== 6 && nh !== 17) return false
      writeRco(slab, start, ETH_HLEN + 40, nh)
      return true
    }
    writeRco(slab, start, ETH_HLEN + ((slab[ip] & 15) << 2), slab[ip + 9])
    return true
  }

  decap (slab: Buffer, off: number, len: number, peer: number): number {
    if (len < VXLAN_HEADROOM + 20) return -Reason.TRUNCATED
    const r = validateVxlan(slab, off, len, this.vni, this.remoteChecksum)
    if (r !== Reason.OK) return -r
    const m = this.ourMac
    const e = off + 8
    if (slab[e] !== m[0] || slab[e + 1] !== m[1] || slab[e + 2] !== m[2] || slab[e + 3] !== m[3] || slab[e + 4] !== m[4] || slab[e + 5] !== m[5]) return -Drop.NOT_OUR_MAC
    if (slab[e + 12] !== 0x08 || slab[e + 13] !== 0x00) return -Drop.NOT_IPV4
    if (!hasRco(slab, off)) return VXLAN_HEADROOM
    // The addon did not check this packet's inner checksum. The mark is
    // taken only from a peer that asked for RCO itself (a weft node, which
    // always sends an outer UDP checksum: a kernel vxlan device with
    // remcsumtx but no udpcsum sends none, and nothing would guard the
    // data), and only where it names this packet's own TCP/UDP checksum
    // field, inside the packet (anything else could let a bad checksum
    // through, or point the kernel's finishing at other bytes). Linux takes
    // any start; a pod's own tunnel inside ours is refused here.
    if (this.fdb.rcoFrom[peer] === 0) return -Drop.BAD_VXLAN_RCO
    const ip = off + VXLAN_HEADROOM
    const ihl = (slab[ip] & 15) << 2
    const proto = slab[ip + 9]
    const total = (slab[ip + 2] << 8) | slab[ip + 3]
    if ((slab[ip] >> 4) !== 4 || ihl < 20 || rcoStart(slab, off) !== ETH_HLEN + ihl || rcoProtocol(slab, off) !== proto ||
        ((slab[ip + 6] & 0x3f) | slab[ip + 7]) !== 0 || total < ihl + (proto === 6 ? TCP_CSUM_END : UDP_CSUM_END) ||
        total > len - VXLAN_HEADROOM) return -Drop.BAD_VXLAN_RCO
    return VXLAN_HEADROOM | DECAP_PARTIAL
  }

  /** decap's RCO check for inner IPv6: TCP/UDP straight after the fixed header, whole, inside the datagram. */
  private rco6 (slab: Buffer, off: number, ip: number, len: number): number {
    const nh = slab[ip + 6]
    const total = 40 + ((slab[ip + 4] << 8) | slab[ip + 5])
    if ((slab[ip] >> 4) !== 6 || (nh !== 6 && nh !== 17) || rcoStart(slab, off) !== ETH_HLEN + 40 || rcoProtocol(slab, off) !== nh ||
        total < 40 + (nh === 6 ? TCP_CSUM_END : UDP_CSUM_END) || total > len - VXLAN_HEADROOM) return -Drop.BAD_VXLAN_RCO
    return VXLAN_HEADROOM | DECAP_PARTIAL
  }
}
