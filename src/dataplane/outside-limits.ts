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
