// What Fdb and Fdb6 share of their control plane: handing out peer
// indexes, and the claims on each public address (fdb.ts says why several
// leases may claim one and what that means). Neither runs per packet; the
// tables' hot lookups stay in each file, specialised per family.
import { WeftError } from '../errors'

/** Peer indexes of a table of `capacity`, reused as leases come and go. */
export class PeerIndexes {
  private readonly free: number[] = []
  private next = 0

  /** `name` says which table in the EFDBFULL message ("peer table") */
  constructor (readonly capacity: number, private readonly name: string) {}

  /** A free index; throws EFDBFULL when every one is taken. */
  take (): number {
    const i = this.free.length > 0 ? (this.free.pop() as number) : this.next++
    if (i >= this.capacity) {
      this.next--
      throw new WeftError('EFDBFULL', `the ${this.name} is full (${this.capacity} peers)`)
    }
    return i
  }

  give (i: number): void {
    this.free.unshift(i) // reuse the longest-freed index last
  }
}

/**
 * The peer indexes claiming each public address (key K: the family's form
 * of it), oldest first. The oldest answers for the address; it may take
 * RCO (rcoFrom) if any claimant asked for it (remCsum).
 */
export class Claims<K> {
  private readonly map = new Map<K, number[]>()

  constructor (private readonly remCsum: Uint8Array, private readonly rcoFrom: Uint8Array) {}

  /** `i` claims `a` (again, with perhaps another remCsum): it joins the claimants, last. Returns the index answering for `a`. */
  claim (a: K, i: number): number {
    let list = this.map.get(a)
    if (list === undefined) {
      list = []
      this.map.set(a, list)
    }
    if (!list.includes(i)) list.push(i)
    return this.settle(list)
  }

  /**
   * `i` no longer claims `a`: the next oldest claimant, if any, answers for
   * it. Returns that index, -1 if no one claims `a` now, undefined if no one
   * did (nothing changed).
   */
  unclaim (a: K, i: number): number | undefined {
    this.rcoFrom[i] = 0
    const list = this.map.get(a)
    if (list === undefined) return undefined
    const at = list.indexOf(i)
    if (at >= 0) list.splice(at, 1)
    if (list.length === 0) {
      this.map.delete(a)
      return -1
    }
    return this.settle(list)
  }

  /** How many claim `a` (more than one is a conflict). */
  count (a: K): number {
    return this.map.get(a)?.length ?? 0
  }

  /** The indexes claiming `a`, oldest first. */
  of (a: K): readonly number[] {
    return this.map.get(a) ?? []
  }

  /** Every address claimed, with its claimants, oldest first. */
  entries (): IterableIterator<[K, readonly number[]]> {
    return this.map.entries()
  }

  private settle (list: number[]): number {
    const first = list[0]
    let rco = 0
    for (const j of list) {
      rco |= this.remCsum[j]
      if (j !== first) this.rcoFrom[j] = 0
    }
    this.rcoFrom[first] = rco
    return first
  }
}

/** An entry's MAC in lower-case colon form, as the tables list it. */
export function macText (mac: Buffer | undefined): string | undefined {
  return mac === undefined ? undefined : [...mac.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':')
}
