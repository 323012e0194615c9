// What differs between VXLAN, IP-in-IP and flannel's UDP encapsulation: the
// header work on one packet. The batch loops (inside.ts, outside.ts) are the
// same for all of them and call these once per packet, so implementations
// must not allocate, throw, log or build strings.

/** Or'ed into decap's result: the inner TCP/UDP checksum was left partial by the sender (VXLAN RCO). */
export const DECAP_PARTIAL = 0x10000

export interface Encapsulation {
  /** bytes written in front of the inner IP packet on the way out */
  readonly headroom: number
  /**
   * Write the headers for peer `peer` in front of the inner packet at
   * slab[off] (len bytes). Returns the offset where the datagram to send
   * starts (off - headroom), or a negative drop reason if the packet must not
   * go (the UDP backend's TTL running out).
   */
  encap: (slab: Buffer, off: number, len: number, peer: number) => number
  /**
   * Check and strip the outer headers of a datagram received from peer
   * `peer` (already known to hold a lease). Returns how many bytes precede
   * the inner IP packet (>= 0; | DECAP_PARTIAL if the sender left the inner
   * TCP/UDP checksum partial and the outer UDP checksum covers it), or a
   * negative drop reason (-Drop.X / -Reason.X).
   */
  decap: (slab: Buffer, off: number, len: number, peer: number) => number
  /**
   * Remote checksum offload is on (VXLAN only): the addon does not check
   * received datagrams that carry its flag; decap vouches for them instead.
   */
  readonly remoteChecksum?: boolean
  /**
   * For a super-packet: mark the headers encap just wrote at slab[start] so
   * that its segments may leave the inner checksum partial (the inner IPv4
   * packet is at slab[ip]). True if peer `peer` takes that; false, with
   * nothing written, if not.
   */
  partial?: (slab: Buffer, start: number, ip: number, peer: number) => boolean
}
