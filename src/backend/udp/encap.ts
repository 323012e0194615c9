// flannel's UDP encapsulation (its backend's C proxy): the raw inner IPv4
// packet is the whole UDP payload, no header of our own. The UDP and outer
// IPv4 headers are the kernel's, via our UDP socket (port 8285).
// Out: 1. the TTL is decremented (incremental checksum fix), as flannel's
//         proxy does, being a router hop; one that would reach 0 is dropped
// In:  1. the datagram must be an IPv4 packet at all
//      2. the TTL is decremented the same way
//      3. the outside loop checks the rest, and that it is for our subnet
import { decrementIpv4Ttl } from '../../packet/ipv4'
import { Reason } from '../../packet/reason'
import type { Encapsulation } from '../../dataplane/encap'
import { Drop } from '../../dataplane/stats'

export class UdpEncap implements Encapsulation {
  readonly headroom = 0

  encap (slab: Buffer, off: number, _len: number, _peer: number): number {
    // the inside loop has checked it is IPv4 of at least 20 bytes
    if (decrementIpv4Ttl(slab, off) !== Reason.OK) return -Reason.TTL_EXCEEDED
    return off
  }

  decap (slab: Buffer, off: number, len: number, _peer: number): number {
    if (len < 20) return -Reason.TRUNCATED
    if ((slab[off] >> 4) !== 4) return -Drop.NOT_IPV4
    if (decrementIpv4Ttl(slab, off) !== Reason.OK) return -Reason.TTL_EXCEEDED
    return 0
  }
}
