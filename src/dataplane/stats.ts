// Dataplane counters: one Float64Array, indexed by small constants, so the
// hot path only does `c[i]++`. Every dropped packet increments exactly one
// drop counter, named by its reason. Packet-format reasons come from
// src/packet/reason.ts; the dataplane adds its own after them.
import { REASON_COUNT, REASON_NAMES } from '../packet/reason'

export const Drop = {
  /** no lease covers the destination */
  NO_ROUTE: REASON_COUNT,
  /** the outer source address holds no lease */
  UNKNOWN_SOURCE: REASON_COUNT + 1,
  /** the inner Ethernet destination is not our VTEP MAC */
  NOT_OUR_MAC: REASON_COUNT + 2,
  /** the inner packet is not IPv4 (IPv6, ARP, ...) on an IPv4 pipeline */
  NOT_IPV4: REASON_COUNT + 3,
  /** the inner destination is not in our subnet */
  NOT_FOR_US: REASON_COUNT + 4,
  /** larger than the device MTU allows */
  TOO_BIG: REASON_COUNT + 5,
  /** the kernel refused the write to the TUN device */
  TUN_WRITE: REASON_COUNT + 6,
  /** the peer's lease is not usable by this backend (wrong type, no VTEP MAC) */
  PEER_UNUSABLE: REASON_COUNT + 7,
  /** from our own address (a loop) */
  LOOP: REASON_COUNT + 8,
  /** the outer IPv4 protocol is not the one this backend carries (IP-in-IP: 4) */
  WRONG_PROTOCOL: REASON_COUNT + 9,
  /** the inner TCP/UDP checksum is wrong (checked once, before coalescing) */
  BAD_INNER_CHECKSUM: REASON_COUNT + 10,
  /** a super-packet from the TUN of a kind we do not segment (IPv6, ECN, UFO) */
  GSO_UNSUPPORTED: REASON_COUNT + 11,
  /** VXLAN remote checksum offload that does not describe the packet (or is not on here) */
  BAD_VXLAN_RCO: REASON_COUNT + 12,
  /** the inner source lies in a subnet the sender does not hold, or is one of our own addresses */
  SPOOFED_SOURCE: REASON_COUNT + 13,
  /** an IPv6 pipeline's inner packet is not IPv6 (IPv4, ARP, ...) */
  NOT_IPV6: REASON_COUNT + 14
} as const

export const DROP_COUNT = REASON_COUNT + 15

export const DROP_NAMES: readonly string[] = [
  ...REASON_NAMES,
  'no_route', 'unknown_source', 'not_our_mac', 'not_ipv4', 'not_for_us', 'too_big', 'tun_write', 'peer_unusable', 'loop', 'wrong_protocol',
  'bad_inner_checksum', 'gso_unsupported', 'bad_vxlan_rco', 'spoofed_source', 'not_ipv6'
]

/** Non-drop counters, after the drop slots. */
export const Count = {
  INSIDE_PACKETS: DROP_COUNT,
  INSIDE_BYTES: DROP_COUNT + 1,
  INSIDE_BATCHES: DROP_COUNT + 2,
  OUTSIDE_PACKETS: DROP_COUNT + 3,
  OUTSIDE_BYTES: DROP_COUNT + 4,
  OUTSIDE_BATCHES: DROP_COUNT + 5,
  /** batches the socket took only in part (EAGAIN): the rest waited for writable */
  INSIDE_BACKPRESSURE: DROP_COUNT + 6,
  /** inner TCP/UDP checksums a kernel sender left partial, finished by us */
  CHECKSUMS_FINISHED: DROP_COUNT + 7,
  /** ICMP net-unreachable messages the inside loop wrote back into the TUN (flannel's UDP backend does this) */
  UNREACHABLE_SENT: DROP_COUNT + 8,
  /** TSO/USO super-packets read from the TUN (each is segmented on the way out) */
  INSIDE_SUPER_PACKETS: DROP_COUNT + 9,
  /** super-packets written to the TUN, coalesced from received segments */
  OUTSIDE_SUPER_PACKETS: DROP_COUNT + 10,
  /** received segments that went into those super-packets */
  OUTSIDE_COALESCED: DROP_COUNT + 11,
  /** super-packets queued with their segments' inner checksums left to the peer (VXLAN RCO; the addon's txCsumPartial counts the segments sent) */
  INSIDE_PARTIAL: DROP_COUNT + 12,
  /** datagrams received with RCO: inner checksum left partial, written to the TUN for the kernel to finish (without a vnet header: finished by us) */
  OUTSIDE_PARTIAL: DROP_COUNT + 13,
  /** TSO super-packets a kernel VXLAN peer on this host sent unsegmented (over a veth), written to the TUN whole */
  OUTSIDE_UNSEGMENTED: DROP_COUNT + 14,
  /** ns the loop spent busy-polling and found nothing (the addon's BusyPoll writes this and the next two, in this order) */
  BUSY_POLL_NS: DROP_COUNT + 15,
  /** light batches read while the loop was busy-polling: each found it awake instead of waking it */
  BUSY_POLL_CAUGHT: DROP_COUNT + 16,
  /** times heavy traffic began, holding busy polling off (for 100 ms, renewed while it lasts) */
  BUSY_POLL_SUSPENDED: DROP_COUNT + 17,
  /** times UDP into the TUN waited for the pacer (a backlog spread out instead of written at once; pacer.ts) */
  OUTSIDE_PACED: DROP_COUNT + 18,
  /** IPv6 fragments (next header 44) passed to the TUN whole, for the kernel to reassemble or forward (never coalesced) */
  OUTSIDE_IPV6_FRAGMENTS: DROP_COUNT + 19
} as const

export const COUNT_NAMES: readonly string[] = [
  'inside_packets', 'inside_bytes', 'inside_batches', 'outside_packets', 'outside_bytes', 'outside_batches', 'inside_backpressure', 'checksums_finished',
  'unreachable_sent', 'inside_super_packets', 'outside_super_packets', 'outside_coalesced', 'inside_partial_checksums',
  'outside_partial_checksums', 'outside_unsegmented', 'busy_poll_ns', 'busy_poll_caught', 'busy_poll_suspended',
  'outside_paced', 'outside_ipv6_fragments'
]

export const STAT_SLOTS = DROP_COUNT + COUNT_NAMES.length

export function newStats (): Float64Array {
  return new Float64Array(STAT_SLOTS)
}

export interface StatsSnapshot {
  drops: Record<string, number>
  counters: Record<string, number>
}

/** Off the hot path: names and values, zero drops left out. */
export function snapshotStats (s: Float64Array): StatsSnapshot {
  const drops: Record<string, number> = {}
  for (let i = 1; i < DROP_COUNT; i++) if (s[i] !== 0) drops[DROP_NAMES[i]] = s[i]
  const counters: Record<string, number> = {}
  for (let i = 0; i < COUNT_NAMES.length; i++) counters[COUNT_NAMES[i]] = s[DROP_COUNT + i]
  return { drops, counters }
}
