// The IP-in-IP send offload from the addon (native/src/ipip_tx.c): a tc BPF
// program on the ipip TUN's egress that encapsulates, in the kernel, what an
// LPM map routes to a peer, so that the kernel segments IP-in-IP
// super-packets. weft decides the map (one entry per peer subnet, from the
// leases); the program only applies it. Called at start and per lease
// change, never per packet.
import { native } from './binding'
import { closeFd } from './tun'
import { WeftError } from '../errors'

interface IpipTxBinding {
  load: () => { prog: number, map: number }
  attach: (ifindex: number, prog: number) => void
  set: (map: number, prefix: number, prefixLen: number, saddr: number, daddr: number, ifindex: number) => void
  remove: (map: number, prefix: number, prefixLen: number) => void
  counters: (map: number, prefix: number, prefixLen: number) => [number, number] | undefined
}

function binding (): IpipTxBinding {
  const b = (native as unknown as { ipipTx?: IpipTxBinding }).ipipTx
  if (b === undefined) throw new WeftError('ENATIVE', 'the native addon has no IP-in-IP send offload (built before it): rebuild it with `npm run build`')
  return b
}

/** The program and its map, attached to one device; close() lets both go (the device's filter goes with the device). */
export class IpipTx {
  private closed = false

  private constructor (private readonly prog: number, private readonly map: number, private readonly underlay: number) {}

  /**
   * Loads the program and attaches it to the egress of `device`; what it
   * encapsulates leaves by `underlay`. Throws the kernel's refusal (EPERM
   * without CAP_BPF or CAP_SYS_ADMIN, the verifier's words, a kernel
   * without cls_bpf) with its errno's code.
   */
  static attach (device: string, underlay: string): IpipTx {
    const b = binding()
    const dev = native.linkIndex(device)
    const out = native.linkIndex(underlay)
    const { prog, map } = b.load()
    try {
      b.attach(dev, prog)
    } catch (err) {
      closeFd(prog)
      closeFd(map)
      throw err
    }
    return new IpipTx(prog, map, out)
  }

  /** Packets for prefix/prefixLen leave from saddr to daddr (IPv4, host order). */
  set (prefix: number, prefixLen: number, saddr: number, daddr: number): void {
    binding().set(this.map, prefix >>> 0, prefixLen, saddr >>> 0, daddr >>> 0, this.underlay)
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
