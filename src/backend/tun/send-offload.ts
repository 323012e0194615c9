// The send offload (src/native/send-offload.ts) for a TUN backend: the
// kernel encapsulates and segments what goes to a peer, instead of weft
// reading it from the TUN and sending it (ipip: one segment at a time
// through a raw socket; vxlan: a copy out of the TUN and another into the
// socket). weft keeps every decision: the map holds one entry per peer in
// the route table, set and removed with it, and anything without an entry
// (no peer: weft answers or drops it) still reaches weft's pipeline.
// Receiving is weft's as before.
// WEFT_SEND_OFFLOAD: unset, ipip's only (VXLAN's is new: its sends carry no
// remote checksum offload between weft nodes, and weft.1 no longer shows
// what it sends to `weft capture`); `on`, ipip's and VXLAN's; `off`, none.
// A kernel or a container that refuses it (no CAP_BPF, no tc BPF) leaves
// weft's pipeline doing all of it, said once.
import type { Logger } from 'pino'
import type { Lease } from '../../subnet/lease'
import { SendOffload } from '../../native/send-offload'
import type { OffloadKind, VxlanHeaders } from '../../native/send-offload'
import type { PeerOptions } from './start'

export interface SendOffloadOptions {
  kind: OffloadKind
  device: string
  underlay: { name: string, ip: number }
  log: Logger
  /** vxlan: the headers for a peer's lease (undefined: not offloaded, its packets go through the pipeline) */
  vxlanOf?: (lease: Lease) => VxlanHeaders | undefined
  env?: NodeJS.ProcessEnv
}

const WORDS = { ipip: 'weft\'s raw socket sends every segment itself', vxlan: 'weft reads every packet from the TUN and sends it' } as const

export class PeerSendOffload {
  /** each table index's subnet in the map */
  private readonly subnets = new Map<number, { ip: number, prefixLen: number }>()

  private constructor (private readonly tx: SendOffload, private readonly o: SendOffloadOptions) {}

  /** Attached to the device, or undefined (turned off, or refused: said why). */
  static start (o: SendOffloadOptions): PeerSendOffload | undefined {
    const setting = (o.env ?? process.env).WEFT_SEND_OFFLOAD
    if (setting === 'off') {
      o.log.info(`send offload off (WEFT_SEND_OFFLOAD=off): ${WORDS[o.kind]}`)
      return undefined
    }
    if (o.kind === 'vxlan' && setting !== 'on') {
      o.log.info(`send offload not asked for (WEFT_SEND_OFFLOAD=on asks for it): ${WORDS[o.kind]}`)
      return undefined
    }
    try {
      return new PeerSendOffload(SendOffload.attach(o.kind, o.device, o.underlay.name), o)
    } catch (err) {
      const e = err as { code?: string, message?: string }
      // not allowed (a container without CAP_BPF) is a setting; anything else a fault to look into
      o.log[e.code === 'EPERM' ? 'info' : 'warn']({ code: e.code, err: e.message }, `send offload refused by the kernel (it needs CAP_BPF or CAP_SYS_ADMIN and tc BPF): ${WORDS[o.kind]}, at a fraction of the rate`)
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
    const vxlan = this.o.vxlanOf?.(lease)
    if (this.o.kind === 'vxlan' && vxlan === undefined) { this.delete(index); return }
    try {
      this.tx.set(lease.subnet.ip, lease.subnet.prefixLen, this.o.underlay.ip, lease.attrs.publicIP, vxlan)
      this.subnets.set(index, { ip: lease.subnet.ip, prefixLen: lease.subnet.prefixLen })
    } catch (err) {
      // the peer is still reached, through weft's pipeline
      this.o.log.warn({ index, err: (err as Error).message }, 'send offload: could not add a peer, its packets go through weft\'s pipeline')
    }
  }

  private delete (index: number): void {
    const s = this.subnets.get(index)
    if (s === undefined) return
    this.subnets.delete(index)
    try {
      this.tx.remove(s.ip, s.prefixLen)
    } catch (err) {
      this.o.log.warn({ index, err: (err as Error).message }, 'send offload: could not remove a peer')
    }
  }

  /** What the kernel sent to the peer for us: `weft status` shows it beside the pipeline's counters. */
  private status (index: number): Record<string, unknown> {
    const s = this.subnets.get(index)
    const c = s === undefined ? undefined : this.tx.counters(s.ip, s.prefixLen)
    return c === undefined ? { sendOffload: false } : { sendOffload: true, offloadPackets: c.packets, offloadBytes: c.bytes }
  }
}
