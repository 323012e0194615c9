// Which subnet to ask for, following flannel's tryAcquireLease:
// 1. a lease that already holds our public IP (a restart), if still valid
// 2. the subnet we had before, from the previous subnet.env, if free
// 3. otherwise up to 100 free candidates from SubnetMin to SubnetMax, one
//    picked at random (so racing nodes rarely collide)
// Pure: the manager does the store round trips.
import { contains, overlaps, parseSubnetKey, size } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import type { Lease, Skipped } from '../subnet/lease'

export interface SubnetRange {
  readonly network: Ip4Net
  readonly subnetLen: number
  /** first and last subnet addresses allocation may use (uint32) */
  readonly subnetMin: number
  readonly subnetMax: number
}

export const MAX_CANDIDATES = 100

/** Does this subnet still fit the network config (flannel's isSubnetConfigCompat)? */
export function fitsRange (s: Ip4Net, r: SubnetRange): boolean {
  return s.prefixLen === r.subnetLen && contains(r.network, s.ip) && s.ip >= r.subnetMin && s.ip <= r.subnetMax &&
    (s.ip % size(r.subnetLen)) === 0
}

/** Subnets that are taken: every valid lease, and every key that parses even if its value does not. */
export function taken (leases: readonly Lease[], skipped: readonly Skipped[]): Ip4Net[] {
  const out = leases.map((l) => l.subnet)
  for (const s of skipped) {
    const n = parseSubnetKey(s.key)
    if (n !== undefined) out.push(n)
  }
  return out
}

export function freeCandidates (r: SubnetRange, used: readonly Ip4Net[], max = MAX_CANDIDATES): Ip4Net[] {
  const step = size(r.subnetLen)
  const out: Ip4Net[] = []
  for (let ip = r.subnetMin; ip <= r.subnetMax && out.length < max; ip += step) {
    const cand = { ip, prefixLen: r.subnetLen }
    if (!used.some((u) => overlaps(u, cand))) out.push(cand)
  }
  return out
}
