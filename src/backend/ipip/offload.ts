// The IP-in-IP send offload (src/native/ipip-tx.ts): the kernel encapsulates
// and segments what goes to a peer, instead of weft's raw socket sending
// segment by segment. weft keeps every decision: the map holds one entry per
// peer in the route table, set and removed with it, and anything without an
// entry (no peer: weft answers or drops it) still reaches weft's pipeline.
// Receiving is weft's as before.
// Off with WEFT_IPIP_OFFLOAD=off; a kernel or a container that refuses it
// (no CAP_BPF, no cls_bpf) leaves the raw socket doing all of it, said once.
import type { Logger } from 'pino'
import type { Lease } from '../../subnet/lease'
import { IpipTx } from '../../native/ipip-tx'
import type { PeerOptions } from '../tun/start'

export interface IpipOffloadOptions {
  device: string
  underlay: { name: string, ip: number }
  log: Logger
  env?: NodeJS.ProcessEnv
}

export class IpipSendOffload {
  /** each table index's subnet in the map */
  private readonly subnets = new Map<number, { ip: number, prefixLen: number }>()

  private constructor (private readonly tx: IpipTx, private readonly o: IpipOffloadOptions) {}

  /** Attached to the device, or undefined (turned off, or refused: said why). */
  static start (o: IpipOffloadOptions): IpipSendOffload | undefined {
    const setting = (o.env ?? process.env).WEFT_IPIP_OFFLOAD
    if (setting === 'off') {
      o.log.info('IP-in-IP send offload off (WEFT_IPIP_OFFLOAD=off): every segment is sent through the raw socket')
      return undefined
    }
    try {
      return new IpipSendOffload(IpipTx.attach(o.device, o.underlay.name), o)
    } catch (err) {
      const e = err as { code?: string, message?: string }
      o.log.warn({ code: e.code, err: e.message }, 'IP-in-IP send offload refused by the kernel: every segment is sent through the raw socket, at a fraction of the rate (it needs CAP_BPF or CAP_SYS_ADMIN and tc BPF)')
      return undefined
    }
  }

  /** The hooks the route table calls (TunNetworkOptions). */
  hooks (): Pick<PeerOptions, 'peerSet' | 'peerDeleted' | 'peerStatus' | 'onClose'> {
    return {
      peerSet: (index, lease) => { this.set(index, lease) },
      peerDeleted: (index) => { this.delete(index) },
      peerStatus: (index) => this.status(index),
      onClose: () => { this.tx.close() }
    }
  }

  private set (index: number, lease: Lease): void {
    const old = this.subnets.get(index)
    if (old !== undefined && (old.ip !== lease.subnet.ip || old.prefixLen !== lease.subnet.prefixLen)) this.delete(index)
    try {
      this.tx.set(lease.subnet.ip, lease.subnet.prefixLen, this.o.underlay.ip, lease.attrs.publicIP)
      this.subnets.set(index, { ip: lease.subnet.ip, prefixLen: lease.subnet.prefixLen })
    } catch (err) {
      // the peer is still reached, through weft's pipeline
      this.o.log.warn({ index, err: (err as Error).message }, 'IP-in-IP send offload: could not add a peer, its packets go through the raw socket')
    }
  }

  private delete (index: number): void {
    const s = this.subnets.get(index)
    if (s === undefined) return
    this.subnets.delete(index)
    try {
      this.tx.remove(s.ip, s.prefixLen)
    } catch (err) {
      this.o.log.warn({ index, err: (err as Error).message }, 'IP-in-IP send offload: could not remove a peer')
    }
  }

  /** What the kernel sent to the peer for us: `weft status` shows it beside the pipeline's counters. */
  private status (index: number): Record<string, unknown> {
    const s = this.subnets.get(index)
    const c = s === undefined ? undefined : this.tx.counters(s.ip, s.prefixLen)
    return c === undefined ? { sendOffload: false } : { sendOffload: true, offloadPackets: c.packets, offloadBytes: c.bytes }
  }
}
