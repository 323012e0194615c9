// The Nodes the API server holds, turned into the store events every other
// store produces (a put per lease, a delete per subnet), so LeaseWatcher and
// every backend work unchanged in kube mode.
//
// - a node with flannel's annotations and a pod CIDR is a lease; its
//   revision changes only when something a peer uses changes (annotations
//   flannel reads, the pod CIDR), so node heartbeats cause no events
// - a node deleted, or stripped of "kube-subnet-manager": "true", or whose
//   annotations become malformed, is removed (flanneld keeps the last good
//   lease of a node stripped of its annotations; its pods are unreachable
//   meanwhile, so a stale route helps nobody)
// - a malformed node is skipped and reported once by the caller (skipped)
// - two nodes claiming one pod CIDR (a cluster misconfigured by hand): the
//   first keeps it, the second is skipped until the first lets go
// Pure: no I/O.
import { subnetKey } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import type { Lease, Skipped } from '../subnet/lease'
import type { StoreEvent } from '../store/store'
import type { Annotations } from './annotations'
import { isManaged, leaseKey, nodeName, nodeToLease } from './node'
import type { KubeNode } from './node'

interface Entry {
  /** what peers care about, to tell a change from a heartbeat */
  key: string
  /** the lease this node makes, or undefined if it makes none */
  lease: Lease | undefined
  skipped: string | undefined
}

export interface TableChange {
  events: StoreEvent[]
  skipped: Skipped[]
}

export class NodeTable {
  private readonly nodes = new Map<string, Entry>()
  /** subnet key -> the node holding it */
  private readonly holders = new Map<string, string>()
  private revision = 0

  constructor (private readonly names: Annotations) {}

  /** Every lease now held, for a snapshot. */
  leases (): Lease[] {
    const out: Lease[] = []
    for (const name of this.holders.values()) {
      const l = this.nodes.get(name)?.lease
      if (l !== undefined) out.push(l)
    }
    return out
  }

  get size (): number { return this.nodes.size }

  /** A node was added or changed. */
  put (n: KubeNode): TableChange {
    const name = nodeName(n)
    if (name === undefined) return { events: [], skipped: [{ key: '(a node without a name)', reason: 'it has no metadata.name' }] }
    const key = leaseKey(n, this.names)
    const old = this.nodes.get(name)
    if (old !== undefined && old.key === key) return { events: [], skipped: [] }
    const out: TableChange = { events: [], skipped: [] }
    const entry: Entry = { key, lease: undefined, skipped: undefined }
    const made = isManaged(n, this.names) ? nodeToLease(n, this.names) : undefined
    if (made !== undefined && !made.ok) {
      entry.skipped = made.reason
      out.skipped.push({ key: `node ${name}`, reason: made.reason })
    } else if (made !== undefined) {
      entry.lease = { subnet: made.subnet, attrs: made.attrs, expiration: null, revision: ++this.revision }
      if (old?.lease !== undefined && subnetKey(old.lease.subnet) === subnetKey(made.subnet) && this.holders.get(subnetKey(made.subnet)) === name) {
        // same subnet, new attributes (a new VTEP MAC, a new public IP): one put replaces it, no gap
        this.nodes.set(name, entry)
        out.events.push({ type: 'put', lease: entry.lease })
        return out
      }
    }
    this.release(name, out)
    this.nodes.set(name, entry)
    this.claim(name, entry, out)
    return out
  }

  /** A node was deleted. */
  delete (n: KubeNode): TableChange {
    const name = nodeName(n)
    const out: TableChange = { events: [], skipped: [] }
    if (name === undefined || !this.nodes.has(name)) return out
    this.release(name, out)
    this.nodes.delete(name)
    return out
  }

  /** Replace everything with a fresh list; returns the leases held afterwards (a snapshot) and what was skipped. */
  reset (nodes: readonly KubeNode[]): { leases: Lease[], skipped: Skipped[] } {
    const skipped: Skipped[] = []
    const seen = new Set<string>()
    for (const n of nodes) {
      const name = nodeName(n)
      if (name !== undefined) seen.add(name)
      skipped.push(...this.put(n).skipped)
    }
    for (const name of [...this.nodes.keys()]) if (!seen.has(name)) this.delete({ metadata: { name } })
    return { leases: this.leases(), skipped }
  }

  /** The node holding a subnet. */
  holderOf (subnet: Ip4Net): string | undefined {
    return this.holders.get(subnetKey(subnet))
  }

  private claim (name: string, entry: Entry, out: TableChange): void {
    const l = entry.lease
    if (l === undefined) return
    const k = subnetKey(l.subnet)
    const holder = this.holders.get(k)
    if (holder !== undefined && holder !== name) {
      out.skipped.push({ key: `node ${name}`, reason: `its pod CIDR ${k} is held by node ${holder}` })
      return
    }
    this.holders.set(k, name)
    out.events.push({ type: 'put', lease: l })
  }

  /** Lets go of whatever the node held; a node waiting for the same subnet takes it over. */
  private release (name: string, out: TableChange): void {
    const l = this.nodes.get(name)?.lease
    if (l === undefined) return
    const k = subnetKey(l.subnet)
    if (this.holders.get(k) !== name) return
    this.holders.delete(k)
    for (const [other, e] of this.nodes) {
      if (other === name || e.lease === undefined || subnetKey(e.lease.subnet) !== k) continue
      this.holders.set(k, other)
      out.events.push({ type: 'put', lease: e.lease })
      return
    }
    out.events.push({ type: 'delete', subnet: l.subnet, revision: ++this.revision })
  }
}
