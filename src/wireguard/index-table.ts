// Our receiver indices and the addon's key slots.
//
// Every handshake we take part in gets a random 32-bit index, unique among
// ours (whitepaper §5.4.1; wireguard-go device/indextable.go): the peer puts
// it in the receiver field of everything it sends us for that session. When
// the handshake completes the index passes to the keypair, which also gets a
// key slot: a small integer 0..slots-1, its row in the addon's key table,
// reused once the keypair is gone. A peer holds at most three keypairs
// (previous, current, next), so 3 × peers slots always suffice.
//
// Two lookups:
//  - control path (responses, cookie replies): index → peer, a Map;
//  - hot path (every transport datagram): index → slot, an open-addressing
//    table in typed arrays (linear probing, backward-shift deletion, no
//    tombstones), then slot → keypair in an array. No allocation.

import { randomBytes } from 'node:crypto'
import { WeftError } from '../errors'

interface Entry<P> { readonly peer: P, slot: number }

export class IndexTable<P, K> {
  readonly slots: number
  private readonly entries = new Map<number, Entry<P>>()
  // hot table: index → slot
  private readonly mask: number
  private readonly shift: number
  private readonly keys: Uint32Array
  private readonly vals: Int32Array
  // slots
  private readonly bySlot: (K | undefined)[]
  private readonly freeSlots: Int32Array
  private freeCount: number

  constructor (slots: number) {
    if (!Number.isInteger(slots) || slots < 1 || slots > 1 << 24) throw new RangeError(`IndexTable: slots must be an integer in 1..${1 << 24}, got ${slots}`)
    this.slots = slots
    let bits = 4
    while (1 << bits < slots * 2) bits++
    this.mask = (1 << bits) - 1
    this.shift = 32 - bits
    this.keys = new Uint32Array(1 << bits)
    this.vals = new Int32Array(1 << bits).fill(-1)
    this.bySlot = new Array<K | undefined>(slots).fill(undefined)
    this.freeSlots = new Int32Array(slots)
    // handed out lowest first
    for (let i = 0; i < slots; i++) this.freeSlots[i] = slots - 1 - i
    this.freeCount = slots
  }

  /** A new random index, unique among ours (never 0), belonging to `peer`. */
  newIndex (peer: P): number {
    for (;;) {
      const i = randomBytes(4).readUInt32LE(0)
      if (i !== 0 && !this.entries.has(i)) {
        this.entries.set(i, { peer, slot: -1 })
        return i
      }
    }
  }

  /** The peer an index belongs to (control path). */
  peerOf (index: number): P | undefined {
    return this.entries.get(index)?.peer
  }

  /**
   * Gives `index` (from newIndex) a key slot for `keypair` and makes it
   * visible to slotOf. Returns the slot, or -1 if the index is unknown or
   * every slot is taken.
   */
  attachKeypair (index: number, keypair: K): number {
    const e = this.entries.get(index)
    if (e === undefined || e.slot >= 0 || this.freeCount === 0) return -1
    const slot = this.freeSlots[--this.freeCount]!
    e.slot = slot
    this.bySlot[slot] = keypair
    this.insert(index, slot)
    return slot
  }

  /** Forgets an index, freeing its slot if it had one. Unknown indices are ignored. */
  remove (index: number): void {
    const e = this.entries.get(index)
    if (e === undefined) return
    this.entries.delete(index)
    if (e.slot >= 0) {
      this.bySlot[e.slot] = undefined
      this.freeSlots[this.freeCount++] = e.slot
      this.erase(index)
    }
  }

  /** Hot path: the key slot of the keypair `index` names, or -1. No allocation. */
  slotOf (index: number): number {
    const keys = this.keys
    const vals = this.vals
    let h = Math.imul(index, 0x9e3779b1) >>> this.shift
    for (;;) {
      const v = vals[h]!
      if (v < 0 || keys[h] === index) return v
      h = (h + 1) & this.mask
    }
  }

  /** Hot path: the keypair in a slot, or undefined. */
  keypairAt (slot: number): K | undefined {
    return this.bySlot[slot]
  }

  /** Indices in use (handshakes and keypairs). */
  get size (): number {
    return this.entries.size
  }

  /** Key slots free. */
  get freeSlotCount (): number {
    return this.freeCount
  }

  private home (index: number): number {
    return Math.imul(index, 0x9e3779b1) >>> this.shift
  }

  private insert (index: number, slot: number): void {
    let h = this.home(index)
    while (this.vals[h]! >= 0) h = (h + 1) & this.mask
    this.keys[h] = index
    this.vals[h] = slot
  }

  private erase (index: number): void {
    const { keys, vals, mask } = this
    let i = this.home(index)
    while (vals[i]! >= 0 && keys[i] !== index) i = (i + 1) & mask
    if (vals[i]! < 0) throw new WeftError('EWGINDEX', `index table: ${index} has a slot but is not in the lookup table`)
    vals[i] = -1
    // Backward shift: pull later entries of the probe run into the hole
    // unless their home lies cyclically in (hole, their position].
    let j = i
    for (;;) {
      j = (j + 1) & mask
      if (vals[j]! < 0) return
      const k = this.home(keys[j]!)
      const stays = i <= j ? i < k && k <= j : i < k || k <= j
      if (stays) continue
      keys[i] = keys[j]!
      vals[i] = vals[j]!
      vals[j] = -1
      i = j
    }
  }
}
