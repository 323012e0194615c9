// The send offload from the addon (native/src/send_offload.c): a tc BPF
// program on a TUN's egress that encapsulates, in the kernel, what an LPM
// map routes to a peer (IP-in-IP or VXLAN), so that the kernel segments the
// tunnel's super-packets. weft decides the map (one entry per peer subnet,
// from the leases); the program only applies it. Called at start and per
// lease change, never per packet.
import { native } from './binding'
import { closeFd } from './tun'
import { WeftError } from '../errors'

export type OffloadKind = 'ipip' | 'vxlan'
const KIND: Record<OffloadKind, number> = { ipip: 1, vxlan: 2 }

/** What a VXLAN entry needs beyond the addresses. */
export interface VxlanHeaders { vni: number, peerMac: Buffer, ourMac: Buffer }

interface Binding {
  load: (kind: number) => { prog: number, map: number }
  attach: (ifindex: number, prog: number) => void
  set: (map: number, prefix: number, prefixLen: number, saddr: number, daddr: number, ifindex: number, vni?: number, dmac?: Buffer, smac?: Buffer) => void
  remove: (map: number, prefix: number, prefixLen: number) => void
  counters: (map: number, prefix: number, prefixLen: number) => [number, number] | undefined
}

function binding (): Binding {
  const b = (native as unknown as { sendOffload?: Binding }).sendOffload
  if (b === undefined) throw new WeftError('ENATIVE', 'the native addon has no send offload (built before it): rebuild it with `npm run build`')
  return b
}

/** The program and its map, attached to one device; close() lets both go (the device's filter goes with the device). */
export class SendOffload {
  private closed = false

  private constructor (readonly kind: OffloadKind, private readonly prog: number, private readonly map: number, private readonly underlay: number) {}

  /**
   * Loads the program and attaches it to the egress of `device`; what it
   * encapsulates leaves by `underlay`. Throws the kernel's refusal (EPERM
   * without CAP_BPF or CAP_SYS_ADMIN, the verifier's words, a kernel
   * without cls_bpf) with its errno's code.
   */
  static attach (kind: OffloadKind, device: string, underlay: string): SendOffload {
    const b = binding()
    const dev = native.linkIndex(device)
    const out = native.linkIndex(underlay)
    const { prog, map } = b.load(KIND[kind])
    try {
      b.attach(dev, prog)
    } catch (err) {
      closeFd(prog)
      closeFd(map)
      throw err
    }
    return new SendOffload(kind, prog, map, out)
  }

  /** Packets for prefix/prefixLen leave from saddr to daddr (IPv4, host order), with a VXLAN program's headers. */
  set (prefix: number, prefixLen: number, saddr: number, daddr: number, vxlan?: VxlanHeaders): void {
    const b = binding()
    if (this.kind === 'vxlan') {
      if (vxlan === undefined) throw new RangeError('a VXLAN entry needs its VNI and MACs')
      b.set(this.map, prefix >>> 0, prefixLen, saddr >>> 0, daddr >>> 0, this.underlay, vxlan.vni, vxlan.peerMac, vxlan.ourMac)
    } else {
      b.set(this.map, prefix >>> 0, prefixLen, saddr >>> 0, daddr >>> 0, this.underlay)
    }
  }

  remove (prefix: number, prefixLen: number): void {
    binding().remove(this.map, prefix >>> 0, prefixLen)
  }

  /** What the program sent for prefix/prefixLen since its entry was set: inner packets and bytes. */
  counters (prefix: number, prefixLen: number): { packets: number, bytes: number } | undefined {
    const c = binding().counters(this.map, prefix >>> 0, prefixLen)
    return c === undefined ? undefined : { packets: c[0], bytes: c[1] }
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    closeFd(this.prog)
    closeFd(this.map)
  }
}
