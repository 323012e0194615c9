// Lease expirations come from the key's etcd lease (TimeToLive), one round
// trip per lease ID. A list or watch batch asks each ID at most once, which
// matters for keys an operator attached to one shared lease.
import type { LeaseClient } from 'etcd3'

export class Expirations {
  private readonly seen = new Map<string, Promise<number | null>>()

  constructor (private readonly leases: LeaseClient) {}

  /**
   * ms since the epoch, or null for a key with no etcd lease: that is a
   * reservation (flannel's Documentation/reservations.md). A lease that is
   * already gone (TTL -1; its key is being deleted) has expired now.
   */
  of (leaseId: string): Promise<number | null> {
    if (leaseId === '0') return Promise.resolve(null)
    let p = this.seen.get(leaseId)
    if (p === undefined) {
      const asked = Date.now()
      p = this.leases.leaseTimeToLive({ ID: leaseId }).then((r) => {
        const ttl = Number(r.TTL)
        return ttl < 0 ? asked : asked + ttl * 1000
      })
      this.seen.set(leaseId, p)
    }
    return p
  }
}
