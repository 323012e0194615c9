// A device's GSO size, fitted to one UDP_SEGMENT message.
//
// A TCP socket hands the kernel super-packets of up to its route's device's
// gso_max_size (64 KB by default): 46 segments at weft's VXLAN MTU of 1450.
// weft cuts each into segments and sends them with UDP_SEGMENT, at most
// 65507 bytes a message: 44 segments of 1472 bytes. So a 46-segment
// super-packet costs two messages, each a whole trip through both nodes'
// UDP, IP and veth code, and half of them carry 2 segments. With
// gso_max_size lowered until TCP's super-packets are 44 segments, each is
// one message. Measured with two weft nodes on this 2-core machine (vxlan,
// one TCP stream, 5 s, alternating): 5.49 and 6.21 Gbit/s against 4.78 and
// 4.39 with the default (and 5.12/5.37 at 32 segments: one message each,
// but more of them).
//
// Which device's size counts is the one the sending socket's route leaves
// by: a pod's own interface, which weft's CNI plugin sets (src/cni/gso.ts).
// The node's own TCP leaves by weft's TUN device, which keeps the kernel's
// size: a lower one would make the kernel cut up every bigger super-packet
// forwarded into it (backend/tun/device.ts says what that cost).
//
// TCP's size goal is floor((gso_max_size - 1 - MAX_TCP_HEADER) / mss)
// segments, and MAX_TCP_HEADER is 256 or 320 bytes depending on the kernel's
// configuration; half an MSS of slack on top of the segments plus 300 lands
// on the wanted count for either, with or without TCP timestamps.

/** the largest UDP payload of one IPv4 datagram: one UDP_SEGMENT message */
const UDP_MAX_PAYLOAD = 65507
/** the kernel's limit of segments in one UDP_SEGMENT message */
const UDP_MAX_SEGMENTS = 64
/** VXLAN header + inner Ethernet: the largest of weft's UDP encapsulations */
export const ENCAP_MAX = 22
/** IPv4 (20) + TCP (20) + the timestamps option (12) */
const TCP_IP_HEADERS = 52
const TCP_HEADROOM = 300
/** the kernel's default gso_max_size (GSO_LEGACY_MAX_SIZE) */
export const GSO_DEFAULT = 65536

/**
 * The gso_max_size for a device of `mtu` whose packets weft sends with
 * `encap` bytes of its own header in front of each segment (default the
 * largest, VXLAN's 22; flannel's udp adds none): TCP then sends
 * super-packets that weft sends as one message each. Undefined where the
 * default already does that (jumbo MTUs) or the MTU is too small to matter.
 */
export function fittedGsoMaxSize (mtu: number, encap = ENCAP_MAX): number | undefined {
  const mss = mtu - TCP_IP_HEADERS
  if (!Number.isInteger(mtu) || !Number.isInteger(encap) || encap < 0 || mss < 500) return undefined
  const perMessage = Math.min(UDP_MAX_SEGMENTS, Math.floor(UDP_MAX_PAYLOAD / (mtu + encap)))
  const size = perMessage * mss + Math.floor(mss / 2) + TCP_HEADROOM
  return size < GSO_DEFAULT ? size : undefined
}
