// The peer offload (src/native/peer-offload.ts) for a TUN backend: the
// kernel carries what goes to a peer and what comes from one, instead of
// weft's pipeline.
// - Sending: a program on the TUN's egress encapsulates and segments what
//   the route table sends to a peer (weft's pipeline would read it from the
//   TUN and send it: for ipip one segment at a time through a raw socket).
// - Receiving: a program on the underlay's ingress takes what a peer sent
//   that weft would have delivered unchanged, strips the outer headers and
//   hands it to the TUN as if weft had written it there (weft's pipeline
//   would wake, read it, judge it and write it: four wake-ups per round
//   trip, one thread for every stream).
// weft keeps every decision: the maps hold one entry per peer in the route
// table, set and removed with it; anything without an entry, or that the
// programs do not take (an unknown sender, a spoofed source, a remote
// checksum to finish), still reaches weft's pipeline, which judges, counts
// and logs it as before.
// WEFT_OFFLOAD: unset or `on`, both; `send`, sending only; `off`, none
// (weft's pipeline does all of it). A kernel or a container that refuses
// it (no CAP_BPF, no tc BPF) leaves weft's pipeline doing all of it, said
// once.
import type { Logger } from 'pino'
import type { Lease } from '../../subnet/lease'
import type { Ip4Net } from '../../packet/net'
import { mask } from '../../packet/net'
import { OffloadProgram } from '../../native/peer-offload'
import type { OffloadDirection, OffloadEntry, OffloadKind } from '../../native/peer-offload'
import { native } from '../../native'
import type { PeerOptions } from './start'

/** What a VXLAN entry needs beyond the addresses. */
export interface VxlanHeaders { vni: number, port: number, peerMac: Buffer, ourMac: Buffer }

export interface PeerOffloadOptions {
  kind: OffloadKind
  /** the TUN */
  device: string
  underlay: { name: string, ip: number }
  /** our subnet and the network: what a received packet's addresses are judged against */
  ownSubnet: Ip4Net
  network: Ip4Net
  /** drop inner sources the sender does not hold (the backend context's sourceCheck) */
  sourceCheck: boolean
  log: Logger
  /** vxlan: the headers for a peer's lease (undefined: not offloaded, its packets go through the pipeline) */
  vxlanOf?: (lease: Lease) => VxlanHeaders | undefined
  env?: NodeJS.ProcessEnv
}

/** Which directions WEFT_OFFLOAD asks for (WEFT_SEND_OFFLOAD=off, its name before receiving was offloaded too, still turns it off). */
export function offloadSetting (env: NodeJS.ProcessEnv): OffloadDirection[] {
  const v = env.WEFT_OFFLOAD ?? (env.WEFT_SEND_OFFLOAD === 'off' ? 'off' : undefined)
  if (v === 'off') return []
  if (v === 'send') return ['send']
  return ['send', 'receive']
}

const PIPELINE: Record<OffloadKind, Record<OffloadDirection, string>> = {
  ipip: { send: 'weft\'s raw socket sends every segment itself', receive: 'weft reads every packet from its raw socket' },
  vxlan: { send: 'weft reads every packet from the TUN and sends it', receive: 'weft reads every packet from its socket' }
}

export class PeerOffload {
  /** each table index's subnet in the send map */
  private readonly subnets = new Map<number, { ip: number, prefixLen: number }>()
  /** each table index's lease, and the indexes claiming each public address (the receive map's keys) */
  private readonly leases = new Map<number, Lease>()
  private readonly claims = new Map<number, Set<number>>()
  /** the TUN, where received packets go, and the underlay, where sent ones leave */
  private readonly tunIndex: number
  private readonly underlayIndex: number

  private constructor (private readonly tx: OffloadProgram | undefined, private readonly rx: OffloadProgram | undefined, private readonly o: PeerOffloadOptions) {
    this.tunIndex = native.linkIndex(o.device)
    this.underlayIndex = native.linkIndex(o.underlay.name)
  }

  /** Attached as WEFT_OFFLOAD asks and the kernel allows, or undefined (turned off, or refused: said why). */
  static start (o: PeerOffloadOptions): PeerOffload | undefined {
    const wanted = offloadSetting(o.env ?? process.env)
    for (const d of ['send', 'receive'] as const) {
      if (!wanted.includes(d)) o.log.info(`${d} offload off (WEFT_OFFLOAD=${wanted.length === 0 ? 'off' : 'send'}): ${PIPELINE[o.kind][d]}`)
    }
    const attach = (d: OffloadDirection): OffloadProgram | undefined => {
      if (!wanted.includes(d)) return undefined
      try {
        return OffloadProgram.attach(o.kind, d, d === 'send' ? o.device : o.underlay.name)
      } catch (err) {
        const e = err as { code?: string, message?: string }
        // not allowed (a container without CAP_BPF) is a setting; anything else a fault to look into
        o.log[e.code === 'EPERM' ? 'info' : 'warn']({ code: e.code, err: e.message }, `${d} offload refused by the kernel (it needs CAP_BPF or CAP_SYS_ADMIN and tc BPF): ${PIPELINE[o.kind][d]}, at a fraction of the rate`)
        return undefined
      }
    }
    const tx = attach('send')
    const rx = attach('receive')
    if (tx === undefined && rx === undefined) return undefined
    try {
      return new PeerOffload(tx, rx, o)
    } catch (err) {
      // a device gone between attaching and starting: weft's pipeline carries everything
      for (const prog of [rx, tx]) {
        try { prog?.close() } catch { /* the warning below says it all */ }
      }
      o.log.warn({ err: (err as Error).message }, 'peer offload: could not start, weft\'s pipeline carries everything')
      return undefined
    }
  }

  /** The hooks the route table calls (TunNetworkOptions). */
  hooks (): Pick<PeerOptions, 'peerSet' | 'peerDeleted' | 'peerStatus' | 'onClose'> {
    return {
      peerSet: (index, lease) => { this.set(index, lease) },
      peerDeleted: (index) => { this.delete(index) },
      peerStatus: (index) => this.status(index),
      onClose: () => { this.close() }
    }
  }

  private close (): void {
    try {
      this.rx?.close()
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message, underlay: this.o.underlay.name }, 'receive offload: could not take its filter off the underlay')
    }
    this.tx?.close()
  }

  private set (index: number, lease: Lease): void {
    const vxlan = this.o.vxlanOf?.(lease)
    const usable = this.o.kind !== 'vxlan' || vxlan !== undefined
    if (this.tx !== undefined) {
      const old = this.subnets.get(index)
      if (old !== undefined && (old.ip !== lease.subnet.ip || old.prefixLen !== lease.subnet.prefixLen)) this.deleteSend(index)
      if (!usable) this.deleteSend(index)
      else {
        this.guard(index, 'send', () => {
          this.tx?.set(lease.subnet.ip, lease.subnet.prefixLen, this.entry(lease, this.underlayIndex, vxlan))
          this.subnets.set(index, { ip: lease.subnet.ip, prefixLen: lease.subnet.prefixLen })
        })
      }
    }
    if (this.rx !== undefined) {
      this.unclaim(index)
      if (usable) {
        this.leases.set(index, lease)
        const ip = lease.attrs.publicIP
        const c = this.claims.get(ip) ?? new Set<number>()
        c.add(index)
        this.claims.set(ip, c)
        this.receiveFrom(ip)
      }
    }
  }

  private delete (index: number): void {
    this.deleteSend(index)
    this.unclaim(index)
  }

  private deleteSend (index: number): void {
    const s = this.subnets.get(index)
    if (s === undefined) return
    this.subnets.delete(index)
    this.guard(index, 'send', () => this.tx?.remove(s.ip, s.prefixLen))
  }

  private unclaim (index: number): void {
    const lease = this.leases.get(index)
    if (lease === undefined) return
    this.leases.delete(index)
    const ip = lease.attrs.publicIP
    const c = this.claims.get(ip)
    c?.delete(index)
    if (c?.size === 0) this.claims.delete(ip)
    this.receiveFrom(ip)
  }

  /**
   * The receive entry for a public address: one lease claiming it, whose
   * subnet its inner sources must be in; none, or several (which subnet
   * a packet belongs to is weft's pipeline's to judge), no entry.
   */
  private receiveFrom (ip: number): void {
    const c = this.claims.get(ip)
    const index = c?.size === 1 ? [...c][0] : undefined
    const lease = index === undefined ? undefined : this.leases.get(index)
    this.guard(index ?? -1, 'receive', () => {
      if (lease === undefined) this.rx?.remove(ip, 32)
      else this.rx?.set(ip, 32, this.entry(lease, this.tunIndex, this.o.vxlanOf?.(lease)))
    })
  }

  private entry (lease: Lease, ifindex: number, vxlan: VxlanHeaders | undefined): OffloadEntry {
    const { ownSubnet, network, sourceCheck } = this.o
    return {
      saddr: this.o.underlay.ip,
      daddr: lease.attrs.publicIP,
      ifindex,
      ...(vxlan !== undefined ? { vni: vxlan.vni, port: vxlan.port, dmac: vxlan.peerMac, smac: vxlan.ourMac } : {}),
      // without the source check, any source is the peer's (a mask of 0 holds every address)
      peerNet: sourceCheck ? lease.subnet.ip : 0,
      peerMask: sourceCheck ? mask(lease.subnet.prefixLen) : 0,
      ourNet: ownSubnet.ip,
      ourMask: mask(ownSubnet.prefixLen),
      net: network.ip,
      netMask: mask(network.prefixLen)
    }
  }

  /** A map call that fails leaves the peer reached through weft's pipeline: said, not thrown. */
  private guard (index: number, d: OffloadDirection, f: () => void): void {
    try {
      f()
    } catch (err) {
      this.o.log.warn({ index, err: (err as Error).message }, `${d} offload: could not change a peer's entry, its packets go through weft's pipeline`)
    }
  }

  /** What the kernel carried for us: `weft status` shows it beside the pipeline's counters. */
  private status (index: number): Record<string, unknown> {
    const s = this.subnets.get(index)
    const out = s === undefined ? undefined : this.tx?.counters(s.ip, s.prefixLen)
    const lease = this.leases.get(index)
    const inn = lease === undefined || this.claims.get(lease.attrs.publicIP)?.size !== 1 ? undefined : this.rx?.counters(lease.attrs.publicIP, 32)
    return {
      ...(out === undefined ? { sendOffload: false } : { sendOffload: true, offloadPackets: out.packets, offloadBytes: out.bytes }),
      ...(inn === undefined ? { receiveOffload: false } : { receiveOffload: true, offloadInPackets: inn.packets, offloadInBytes: inn.bytes })
    }
  }
}
