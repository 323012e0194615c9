// Leases skipped for what another lease holds, looked at again after each
// batch of lease events. A WireGuard lease whose PublicKey a peer already
// has is skipped (the first keeps it, ../wireguard/loops.ts unusableKey);
// once that peer goes or takes another key, the one skipped is taken up
// then, not at its next renewal, a day away. What is kept is bounded, so a
// writer of many bad leases cannot grow it.
import type { Lease } from '../../subnet/lease'
import type { PeerEvent } from '../../lease/watcher'

/** The most leases kept for another look; past it, a skipped lease waits for its next event as before. */
export const MAX_PARKED = 1024

export class ParkedLeases {
  private readonly leases = new Map<string, Lease>()

  constructor (private readonly max = MAX_PARKED) {}

  get size (): number {
    return this.leases.size
  }

  /** `lease` (keyed by its subnet text) was skipped by the backend's own test. */
  park (key: string, lease: Lease): void {
    if (this.leases.has(key) || this.leases.size < this.max) this.leases.set(key, lease)
  }

  /** Its lease went, or was taken up. */
  drop (key: string): void {
    this.leases.delete(key)
  }

  /** The parked leases that `usable` takes now, as the 'added' events that bring them in. */
  ready (usable: (lease: Lease) => boolean): PeerEvent[] {
    const out: PeerEvent[] = []
    for (const lease of this.leases.values()) {
      if (usable(lease)) out.push({ type: 'added', lease })
    }
    return out
  }
}
