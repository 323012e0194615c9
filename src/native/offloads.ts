// Which kernel offloads this machine gives us. The pipeline shapes itself on
// the answer (super-packets only with TUN TSO, GSO sends only with
// UDP_SEGMENT), and `weft probe` prints it for people.
import { native } from './binding'
import type { Offloads } from './binding'

export function probeOffloads (): Offloads {
  return native.probeOffloads()
}
