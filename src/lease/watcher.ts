// Turns the store's changes into what a backend needs: batches of peers
// Added and Removed, like flannel's lease.LeaseWatcher.
//
// - the node's own subnet is filtered out
// - a snapshot (start-up, or after a compaction) is diffed against what was
//   known, so a backend sees only real changes
// - a put for a known subnet replaces it and is reported as Added again (a new
//   VTEP MAC or public IP arrives this way)
// - a delete carries the *cached* lease, attributes included: the backend
//   needs the old MAC and public IP to tear down its FDB/ARP entries
// - a snapshot of a store that was recreated empty is merged instead: peers
//   it lacks are kept (their holders are putting them back as we speak, and
//   forwarding to them must not stop meanwhile) until dropUnconfirmed()
//   removes those that did not come back
// - a lease is known by its key (both families, lease.ts leaseKey), never by
//   its IPv4 subnet alone, which every IPv6-only lease shares (0.0.0.0/0)
// Pure: no I/O, no timers, so it is tested on its own.
import { makeSubnetKey } from '../packet/net'
import type { Ip4Net, SubnetKeyParts } from '../packet/net'
import { leaseKey } from '../subnet/lease'
import type { Lease } from '../subnet/lease'
import type { StoreEvent } from '../store/store'

export type PeerEvent =
  | { readonly type: 'added', readonly lease: Lease }
  | { readonly type: 'removed', readonly lease: Lease }

export class LeaseWatcher {
  private readonly known = new Map<string, Lease>()
  /** peers a recreated store lacked, as we knew them then */
  private readonly unconfirmed = new Map<string, Lease>()

  /** the key of the node's own lease */
  private own: string | undefined

  /** own: the node's lease (its subnets), or an IPv4 subnet alone */
  constructor (own: Ip4Net | SubnetKeyParts | undefined) {
    this.own = own === undefined ? undefined : ownKey(own)
  }

  /** The node's own subnets changed (re-acquired after a revocation). */
  setOwn (own: Ip4Net | SubnetKeyParts): PeerEvent[] {
    const k = ownKey(own)
    this.own = k
    const old = this.known.get(k)
    if (old === undefined) return []
    this.known.delete(k)
    return [{ type: 'removed', lease: old }]
  }

  peers (): Lease[] {
    return [...this.known.values()]
  }

  /** Replace everything known with `leases`; returns the difference. */
  reset (leases: readonly Lease[]): PeerEvent[] {
    const out: PeerEvent[] = []
    const next = new Map<string, Lease>()
    for (const l of leases) if (!this.isOwn(leaseKey(l))) next.set(leaseKey(l), l)
    for (const [k, old] of this.known) if (!next.has(k)) out.push({ type: 'removed', lease: old })
    for (const [k, l] of next) {
      const old = this.known.get(k)
      if (old === undefined || old.revision !== l.revision) out.push({ type: 'added', lease: l })
    }
    this.known.clear()
    this.unconfirmed.clear()
    for (const [k, l] of next) this.known.set(k, l)
    return out
  }

  /** Take in `leases` but keep known peers they lack, as unconfirmed; returns the additions and changes. */
  merge (leases: readonly Lease[]): PeerEvent[] {
    const out: PeerEvent[] = []
    const next = new Map<string, Lease>()
    for (const l of leases) if (!this.isOwn(leaseKey(l))) next.set(leaseKey(l), l)
    this.unconfirmed.clear()
    for (const [k, old] of this.known) if (!next.has(k)) this.unconfirmed.set(k, old)
    for (const [k, l] of next) {
      const old = this.known.get(k)
      if (old === undefined || old.revision !== l.revision) out.push({ type: 'added', lease: l })
      this.known.set(k, l)
    }
    return out
  }

  /** Remove the unconfirmed peers that no put has replaced since merge(). */
  dropUnconfirmed (): PeerEvent[] {
    const out: PeerEvent[] = []
    for (const [k, l] of this.unconfirmed) {
      if (this.known.get(k) !== l) continue
      this.known.delete(k)
      out.push({ type: 'removed', lease: l })
    }
    this.unconfirmed.clear()
    return out
  }

  /** Apply incremental store events; returns the peer events they amount to. */
  update (events: readonly StoreEvent[]): PeerEvent[] {
    const out: PeerEvent[] = []
    for (const e of events) {
      if (e.type === 'put') {
        const k = leaseKey(e.lease)
        if (this.isOwn(k)) continue
        this.known.set(k, e.lease)
        out.push({ type: 'added', lease: e.lease })
      } else {
        const k = leaseKey(e)
        if (this.isOwn(k)) continue
        const old = this.known.get(k)
        if (old === undefined) continue // never heard of it: nothing to tear down
        this.known.delete(k)
        out.push({ type: 'removed', lease: old })
      }
    }
    return out
  }

  private isOwn (key: string): boolean {
    return this.own === key
  }
}

function ownKey (own: Ip4Net | SubnetKeyParts): string {
  return 'subnet' in own ? makeSubnetKey(own.subnet, own.subnet6) : makeSubnetKey(own)
}
