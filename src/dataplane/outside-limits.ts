// Sizes the outside paths of both families share (outside.ts, outside6.ts).

/** slots in the rings of recent unknown senders and spoofers */
export const UNKNOWN_RING = 16
/** Datagrams one UDP_GRO read may hold (the kernel's UDP_GRO_CNT_MAX), and whose inner checksums the addon checks (two uint32 of bits). */
export const GRO_MAX_SEGMENTS = 64
/**
 * This node's addresses the source check holds (a node with IPVS has one per
 * service on kube-ipvs0, so there can be many); past this many, the rest are
 * not checked and the network says so. Sorted, searched in halves.
 */
export const MAX_LOCAL_ADDRESSES = 4096
/**
 * The largest packet a super-packet's segments are declared to make (the
 * TSO size handed to the TUN) when the sender's own segment size is not on
 * the wire: a kernel peer's unsegmented TSO, or what an underlay's GRO
 * merged before a raw socket. The TUN's MTU is not safe: a pod attached
 * with a smaller MTU (another CNI plugin, an older subnet.env) is reached by
 * forwarding, and the kernel drops a forwarded super-packet whose segments
 * exceed the egress device with "fragmentation needed", which the sender's
 * smaller segments never changed: its TCP stalled. 1280 (IPv6's minimum
 * MTU) fits every pod; the size costs nothing on the way to a local pod (a
 * veth carries the super-packet whole) but the receiver's estimate of its
 * peer's MSS.
 */
export const SUPER_SEGMENT_MTU = 1280
