// The peer offload from the addon (native/src/peer_offload.c): tc BPF
// programs that carry, in the kernel, what goes to a peer (on a TUN's
// egress: encapsulated, so that the kernel segments the tunnel's
// super-packets) and what comes from one (on the underlay's ingress:
// decapsulated and handed to the TUN). weft decides each map (one entry
// per peer subnet to send, one per peer address to receive, from the
// leases); the programs only apply it. Called at start and per lease
// change, never per packet.
import { native } from './binding'
import { closeFd } from './tun'
import { WeftError } from '../errors'

export type OffloadKind = 'ipip' | 'vxlan'
export type OffloadDirection = 'send' | 'receive'
const KIND: Record<OffloadDirection, Record<OffloadKind, number>> = { send: { ipip: 1, vxlan: 2 }, receive: { ipip: 3, vxlan: 4 } }

/** A map entry (weft_offload_peer_t): addresses and masks as u32 in host order; absent fields are 0. */
export interface OffloadEntry {
  /** our underlay address */
  saddr: number
  /** the peer's underlay address */
  daddr: number
  /** send: the underlay device; receive: the TUN */
  ifindex: number
  /** VXLAN: the VNI, the UDP port, the peer's VTEP MAC (send) and ours */
  vni?: number
  port?: number
  dmac?: Buffer
  smac?: Buffer
  /** receive: the peer's subnet, ours, and the network, as the inner addresses are judged */
  peerNet?: number
  peerMask?: number
  ourNet?: number
  ourMask?: number
  net?: number
  netMask?: number
}

interface Binding {
  load: (kind: number) => { prog: number, map: number }
  attach: (ifindex: number, prog: number, ingress: boolean) => number
  detach: (ifindex: number) => void
  set: (map: number, prefix: number, prefixLen: number, entry: OffloadEntry) => void
  remove: (map: number, prefix: number, prefixLen: number) => void
  counters: (map: number, prefix: number, prefixLen: number) => [number, number] | undefined
}

function binding (): Binding {
  const b = (native as unknown as { peerOffload?: Binding }).peerOffload
  if (b === undefined) throw new WeftError('ENATIVE', 'the native addon has no peer offload (built before it): rebuild it with `npm run build`')
  return b
}

/** One program and its map, attached to one device; close() lets both go. */
export class OffloadProgram {
  private closed = false

  /** link: a tcx link's fd (closing it detaches), or 0 (a tc filter) */
  private constructor (readonly kind: OffloadKind, readonly direction: OffloadDirection, private readonly prog: number, private readonly map: number, private readonly ifindex: number, private readonly link: number) {}

  /**
   * Loads the program and attaches it: a send program to the egress of
   * `device` (the TUN), a receive program to its ingress (the underlay):
   * a tcx link, which goes with weft however it stops, or before kernel
   * 6.6 a tc filter, which replaces one a previous run left. Throws the kernel's
   * refusal (EPERM without CAP_BPF or CAP_SYS_ADMIN, the verifier's words,
   * a kernel without cls_bpf) with its errno's code.
   */
  static attach (kind: OffloadKind, direction: OffloadDirection, device: string): OffloadProgram {
    const b = binding()
    const ifindex = native.linkIndex(device)
    const { prog, map } = b.load(KIND[direction][kind])
    let link: number
    try {
      link = b.attach(ifindex, prog, direction === 'receive')
    } catch (err) {
      closeFd(prog)
      closeFd(map)
      throw err
    }
    return new OffloadProgram(kind, direction, prog, map, ifindex, link)
  }

  /** The entry for prefix/prefixLen (send: a peer's subnet; receive: a peer's address, /32). */
  set (prefix: number, prefixLen: number, entry: OffloadEntry): void {
    if (this.kind === 'vxlan' && (entry.vni === undefined || entry.port === undefined || entry.smac === undefined || (this.direction === 'send' && entry.dmac === undefined))) {
      throw new RangeError('a VXLAN entry needs its VNI, port and MACs')
    }
    binding().set(this.map, prefix >>> 0, prefixLen, entry)
  }

  remove (prefix: number, prefixLen: number): void {
    binding().remove(this.map, prefix >>> 0, prefixLen)
  }

  /** What the program carried for prefix/prefixLen since its entry was set: inner packets and bytes. */
  counters (prefix: number, prefixLen: number): { packets: number, bytes: number } | undefined {
    const c = binding().counters(this.map, prefix >>> 0, prefixLen)
    return c === undefined ? undefined : { packets: c[0], bytes: c[1] }
  }

  /**
   * Lets the program and its map go. A send program's filter goes with its
   * TUN, a receive program's link with its fd; a receive program's tc
   * filter is taken off the underlay, which outlives us (left there, it
   * would hand a peer's packets to a TUN that is gone).
   */
  close (): void {
    if (this.closed) return
    this.closed = true
    try {
      if (this.link > 0) closeFd(this.link)
      else if (this.direction === 'receive') binding().detach(this.ifindex)
    } finally {
      closeFd(this.prog)
      closeFd(this.map)
    }
  }
}
