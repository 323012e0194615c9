// Drop-reason codes returned by the validate* functions in src/packet/.
// Small consecutive integers so the dataplane can count drops in its
// counters array (a Float64Array, dataplane/stats.ts) indexed by reason, and REASON_NAMES[code] labels that counter in
// metrics and logs. 0 always means "ok". Append new codes at the end: the
// numbers may end up in dashboards.

export const Reason = {
  OK: 0,
  /** Fewer bytes than the header (or its declared length) needs. */
  TRUNCATED: 1,
  /** IP version nibble is not the one expected (4, or 6 on an IPv6 path). */
  BAD_VERSION: 2,
  /** IPv4 IHL < 5, or the header it declares does not fit. */
  BAD_IHL: 3,
  /** IPv4 total length < header length, or larger than the bytes we have. */
  BAD_TOTAL_LENGTH: 4,
  /** IPv4 header checksum does not verify. */
  BAD_IPV4_CHECKSUM: 5,
  /** IPv4 fragment where the path needs a whole datagram (MF set or offset != 0). */
  FRAGMENT: 6,
  /** TTL would reach 0 on forwarding. */
  TTL_EXCEEDED: 7,
  /** UDP length < 8 or larger than the bytes we have. */
  BAD_UDP_LENGTH: 8,
  /** UDP checksum present (non-zero) and wrong. */
  BAD_UDP_CHECKSUM: 9,
  /** TCP data offset < 5, or the header it declares does not fit. */
  BAD_TCP_DATA_OFFSET: 10,
  BAD_TCP_CHECKSUM: 11,
  BAD_ICMP_CHECKSUM: 12,
  /** ICMP message of a type this operation does not handle (e.g. not an echo request). */
  BAD_ICMP_TYPE: 13,
  /** VXLAN I flag (0x08) clear: the VNI is not valid. */
  BAD_VXLAN_FLAGS: 14,
  /** VXLAN reserved bits set. RFC 7348 says ignore them; Linux drops such packets, and so do we. */
  BAD_VXLAN_RESERVED: 15,
  /** VXLAN VNI is not the one this device serves. */
  WRONG_VNI: 16,
  /** ARP for something other than Ethernet hardware / IPv4 protocol addresses. */
  BAD_ARP_FORMAT: 17,
  /** ARP opcode is not the one this operation expects. */
  BAD_ARP_OP: 18,
  /** IPv6 payload length claims bytes past the packet we were given. */
  BAD_PAYLOAD_LENGTH: 19,
  /** IPv6 jumbogram (RFC 2675: payload length 0 with a hop-by-hop jumbo option, or the option anywhere): never on a tunnel with a 16-bit UDP length. */
  JUMBOGRAM: 20,
  /**
   * IPv6 extension headers that do not add up: one runs past the packet, a
   * hop-by-hop header that is not first, or more than IPV6_MAX_EXT_HEADERS
   * of them before the upper layer.
   */
  BAD_EXTENSION_HEADER: 21,
  /** IPv6 fragment (next header 44) where the path needs a whole datagram. */
  IPV6_FRAGMENT: 22,
  /** Neighbour Discovery or router messages (ICMPv6 133..137) inside a tunnel: link-local signalling a peer has no business sending through it, dropped as ARP is. */
  NDP: 23,
} as const

export type ReasonCode = (typeof Reason)[keyof typeof Reason]

/** REASON_NAMES[code] is the lower-case name of Reason code `code`, for metric labels. */
export const REASON_NAMES: readonly string[] = [
  'ok',
  'truncated',
  'bad_version',
  'bad_ihl',
  'bad_total_length',
  'bad_ipv4_checksum',
  'fragment',
  'ttl_exceeded',
  'bad_udp_length',
  'bad_udp_checksum',
  'bad_tcp_data_offset',
  'bad_tcp_checksum',
  'bad_icmp_checksum',
  'bad_icmp_type',
  'bad_vxlan_flags',
  'bad_vxlan_reserved',
  'wrong_vni',
  'bad_arp_format',
  'bad_arp_op',
  'bad_payload_length',
  'jumbogram',
  'bad_extension_header',
  'ipv6_fragment',
  'ndp',
]

/** Number of reason codes; size of a per-reason counter array. */
export const REASON_COUNT = REASON_NAMES.length
