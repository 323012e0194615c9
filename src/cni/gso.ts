// The pod interface's GSO size, fitted to one UDP_SEGMENT message.
//
// A pod's TCP hands the kernel super-packets of up to its interface's
// gso_max_size (64 KB by default): 46 segments at weft's VXLAN MTU of 1450,
// which weft sends as two UDP_SEGMENT messages. Lowered until TCP's
// super-packets are 44 segments, each is one message. The arithmetic, and
// why it holds for any MAX_TCP_HEADER, is in src/kernel/gso.ts (why weft's
// TUN device does not get the same: src/backend/tun/device.ts). The plugin
// does not know the backend, so it fits the largest of weft's UDP
// encapsulations (VXLAN's 22 bytes), which fits the others too.
import { fittedGsoMaxSize } from '../kernel/gso'

/**
 * The gso_max_size for a pod interface of `mtu` (FLANNEL_MTU): TCP then
 * sends super-packets that weft sends as one message each. Undefined where
 * the default already does that (jumbo MTUs) or the MTU is too small to
 * matter.
 */
export function podGsoMaxSize (mtu: number): number | undefined {
  return fittedGsoMaxSize(mtu)
}
