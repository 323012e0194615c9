// One running dataplane: a TUN device and an underlay socket, joined by the
// inside and outside loops over one encapsulation. Batches and slabs are
// allocated here, once; nothing on the per-packet path allocates after this.
import type { PacketIo } from '../native/io'
import { PacketBatch } from '../native/batch'
import type { Encapsulation } from './encap'
import type { Fdb } from './fdb'
import { Inside } from './inside'
import { Outside } from './outside'
import { newStats, snapshotStats } from './stats'
import type { StatsSnapshot } from './stats'

export interface PipelineOptions {
  tun: PacketIo
  sock: PacketIo
  fdb: Fdb
  encap: Encapsulation
  /** the TUN device's MTU (largest inner packet) */
  mtu: number
  /** packets per batch */
  batch: number
  onFatal: (where: 'inside' | 'outside', errno: number) => void
}

/** Room in front of every packet read from the TUN; more than any encapsulation needs. */
export const INSIDE_HEADROOM = 64

function roundUp (n: number, to: number): number {
  return Math.ceil(n / to) * to
}

export class Pipeline {
  readonly stats = newStats()
  readonly inside: Inside
  readonly outside: Outside
  private started = false

  constructor (private readonly o: PipelineOptions) {
    // A slot holds the largest packet plus one byte: a read that fills its
    // slot is treated as truncated.
    const inSlot = roundUp(INSIDE_HEADROOM + o.mtu + 1, 64)
    const inRx = new PacketBatch({ size: o.batch, slotSize: inSlot, headroom: INSIDE_HEADROOM })
    const inTx = new PacketBatch({ size: o.batch, slotSize: inSlot, slab: inRx.slab })
    const outSlot = roundUp(o.encap.headroom + 64 + o.mtu + 1, 64)
    const outRx = new PacketBatch({ size: o.batch, slotSize: outSlot })
    const outTx = new PacketBatch({ size: o.batch, slotSize: outSlot, slab: outRx.slab })
    // The inside loop may answer into the TUN (ICMP net-unreachable for the UDP
    // backend) through the batch registered for TUN writes: the outside loop's.
    this.inside = new Inside({ tun: o.tun, sock: o.sock, rx: inRx, tx: inTx, fdb: o.fdb, encap: o.encap, stats: this.stats, mtu: o.mtu, onFatal: (e) => o.onFatal('inside', e), tunTx: outTx })
    this.outside = new Outside({ sock: o.sock, tun: o.tun, rx: outRx, tx: outTx, fdb: o.fdb, encap: o.encap, stats: this.stats, mtu: o.mtu, onFatal: (e) => o.onFatal('outside', e) })
  }

  start (): void {
    if (this.started) return
    this.started = true
    this.o.tun.start(this.inside.onBatch)
    this.o.sock.start(this.outside.onBatch, this.inside.flush)
  }

  snapshot (): StatsSnapshot & { tun: Record<string, number>, sock: Record<string, number> } {
    return { ...snapshotStats(this.stats), tun: this.o.tun.stats(), sock: this.o.sock.stats() }
  }

  /** Idempotent: stops both loops and closes both fds. */
  close (): void {
    this.o.tun.close()
    this.o.sock.close()
  }
}
