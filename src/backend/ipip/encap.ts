// IP-in-IP (RFC 2003, IPv4 protocol 4), as the kernel's ipip device and
// flannel's ipip backend speak it: the inner IPv4 packet is the whole
// payload of an outer IPv4 header, nothing in between.
// Out: 1. nothing to write: the raw socket's kernel adds the outer header
// In:  1. the raw socket hands us the outer header too: IPv4, a header length
//         that fits, protocol 4, a total length that matches what came
//      2. it is skipped; what follows must start as IPv4
//      3. the outside loop checks the inner packet itself, and that it is for
//         our subnet
import { IPPROTO_IPIP } from '../../packet/ipv4'
import { Reason } from '../../packet/reason'
import type { Encapsulation } from '../../dataplane/encap'
import { Drop } from '../../dataplane/stats'

export class IpipEncap implements Encapsulation {
  readonly headroom = 0

  encap (_slab: Buffer, off: number, _len: number, _peer: number): number {
    return off
  }

  decap (slab: Buffer, off: number, len: number, _peer: number): number {
    if (len < 20) return -Reason.TRUNCATED
    const vihl = slab[off]
    if ((vihl >> 4) !== 4) return -Reason.BAD_VERSION
    const hlen = (vihl & 15) << 2
    if (hlen < 20) return -Reason.BAD_IHL
    if (hlen > len) return -Reason.TRUNCATED
    if (slab[off + 9] !== IPPROTO_IPIP) return -Drop.WRONG_PROTOCOL
    const total = (slab[off + 2] << 8) | slab[off + 3]
    // a raw socket trims what it hands us to the total length: anything else is forged
    if (total < hlen || total !== len) return -Reason.BAD_TOTAL_LENGTH
    // the inner packet: at least a version nibble, and it must be 4 (RFC 2003 carries IPv4 only)
    if (total === hlen) return -Reason.TRUNCATED
    if ((slab[off + hlen] >> 4) !== 4) return -Drop.NOT_IPV4
    return hlen
  }
}
