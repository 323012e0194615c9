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
// - two nodes claiming one pod CIDR of either family (a cluster
//   misconfigured by hand): the first keeps it, the second is skipped until
//   the first lets go
// - a dual-stack node is one lease of both subnets, an IPv6-only node one
//   whose IPv4 half is 0.0.0.0/0 (flannel's key "0.0.0.0-0&fc00::-64"), as
//   the families the network has (EnableIPv4, EnableIPv6) make them
// Pure: no I/O.
import { subnetKey } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { subnetKey6 } from '../packet/net6'
import type { Ip6Net } from '../packet/net6'
import { hasIPv4, leaseKey as storeKey } from '../subnet/lease'
import type { Lease, Skipped } from '../subnet/lease'
import type { StoreEvent } from '../store/store'
import type { Annotations } from './annotations'
import { IPV4_ONLY, isManaged, leaseKey, nodeName, nodeToLease } from './node'
import type { Families, KubeNode } from './node'

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
  /** family subnet key ("10.244.1.0-24", "fc00::-64") -> the node holding it */
  private readonly holders = new Map<string, string>()
  private revision = 0

  constructor (private readonly names: Annotations, private readonly families: Families = IPV4_ONLY) {}

  /** Every lease now held, for a snapshot. */
  leases (): Lease[] {
    const out: Lease[] = []
    for (const name of new Set(this.holders.values())) {
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
    const made = isManaged(n, this.names) ? nodeToLease(n, this.names, this.families) : undefined
    if (made !== undefined && !made.ok) {
      entry.skipped = made.reason
      out.skipped.push({ key: `node ${name}`, reason: made.reason })
    } else if (made !== undefined) {
      entry.lease = { subnet: made.subnet, ...(made.subnet6 !== undefined ? { subnet6: made.subnet6 } : {}), attrs: made.attrs, expiration: null, revision: ++this.revision }
      if (old?.lease !== undefined && storeKey(old.lease) === storeKey(entry.lease) && this.holds(name, old.lease)) {
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

  /** The node holding an IPv6 subnet. */
  holderOf6 (subnet6: Ip6Net): string | undefined {
    return this.holders.get(subnetKey6(subnet6))
  }

  /** Does the node hold the lease's subnets (every family of it)? */
  private holds (name: string, l: Lease): boolean {
    return familyKeys(l).every((k) => this.holders.get(k) === name)
  }

  /** Take the lease's subnets if no other node holds one of them; returns whether it did. */
  private tryClaim (name: string, l: Lease): string | undefined {
    const keys = familyKeys(l)
    for (const k of keys) {
      const holder = this.holders.get(k)
      if (holder !== undefined && holder !== name) return `its pod CIDR ${k} is held by node ${holder}`
    }
    for (const k of keys) this.holders.set(k, name)
    return undefined
  }

  private claim (name: string, entry: Entry, out: TableChange): void {
    const l = entry.lease
    if (l === undefined) return
    const conflict = this.tryClaim(name, l)
    if (conflict !== undefined) {
      out.skipped.push({ key: `node ${name}`, reason: conflict })
      return
    }
    out.events.push({ type: 'put', lease: l })
  }

  /**
   * Lets go of whatever the node held; a node waiting for one of its subnets
   * takes it over if all of its own are free now (a lease of the same key
   * replaces the old one with a put alone, as before).
   */
  private release (name: string, out: TableChange): void {
    const l = this.nodes.get(name)?.lease
    if (l === undefined || !this.holds(name, l)) return
    const freed = familyKeys(l)
    for (const k of freed) this.holders.delete(k)
    let replaced = false
    for (const [other, e] of this.nodes) {
      if (other === name || e.lease === undefined || !familyKeys(e.lease).some((k) => freed.includes(k))) continue
      if (this.tryClaim(other, e.lease) !== undefined) continue
      if (storeKey(e.lease) === storeKey(l)) replaced = true
      else if (!replaced) { out.events.push(deleteOf(l, ++this.revision)); replaced = true }
      out.events.push({ type: 'put', lease: e.lease })
    }
    if (!replaced) out.events.push(deleteOf(l, ++this.revision))
  }
}

/** The subnets a lease holds, one key per family ("10.244.1.0-24", "fc00::-64"). */
function familyKeys (l: Lease): string[] {
  const keys: string[] = []
  if (hasIPv4(l)) keys.push(subnetKey(l.subnet))
  if (l.subnet6 !== undefined) keys.push(subnetKey6(l.subnet6))
  return keys
}

function deleteOf (l: Lease, revision: number): StoreEvent {
  return { type: 'delete', subnet: l.subnet, ...(l.subnet6 !== undefined ? { subnet6: l.subnet6 } : {}), revision }
}
