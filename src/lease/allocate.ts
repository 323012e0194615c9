// Which subnets to ask for, following flannel's tryAcquireLease:
// 1. a lease that already holds our public IP (a restart), if still valid
// 2. the subnets we had before, from the previous subnet.env, if free
// 3. otherwise up to 100 free candidates from SubnetMin to SubnetMax, one
//    picked at random (so racing nodes rarely collide); with IPv6, the same
//    from IPv6SubnetMin to IPv6SubnetMax, picked independently
// Pure: the manager does the store round trips.
import { contains, overlaps, parseLeaseKey, size } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { ip4ToString } from '../packet/ip'
import { formatCidr6, mask6, overlaps6 } from '../packet/net6'
import type { Ip6Net } from '../packet/net6'
import { hasIPv4 } from '../subnet/lease'
import type { Lease, Skipped } from '../subnet/lease'

/**
 * The leasable range; a NetworkConfig is one. Without enableIPv6 (or with
 * it false) the IPv6 fields are not read; with enableIPv4 false the IPv4
 * ones are not, and leases are IPv6-only (subnet 0.0.0.0/0, as flannel's).
 */
export interface SubnetRange {
  readonly network: Ip4Net
  readonly subnetLen: number
  /** first and last subnet addresses allocation may use (uint32) */
  readonly subnetMin: number
  readonly subnetMax: number
  /** default true */
  readonly enableIPv4?: boolean
  /** default false; true needs the four IPv6 fields below */
  readonly enableIPv6?: boolean
  readonly ipv6Network?: Ip6Net
  readonly ipv6SubnetLen?: number
  readonly ipv6SubnetMin?: bigint
  readonly ipv6SubnetMax?: bigint
}

/** The IPv6 half of a range that has one. */
export interface Range6 {
  readonly network: Ip6Net
  readonly subnetLen: number
  readonly min: bigint
  readonly max: bigint
}

export const MAX_CANDIDATES = 100

/** The IPv4 part of an IPv6-only lease (flannel's empty IP4Net). */
export const NO_IP4: Ip4Net = { ip: 0, prefixLen: 0 }

export function hasRange4 (r: SubnetRange): boolean {
  return r.enableIPv4 !== false
}

/** The IPv6 range, or undefined if the range has no IPv6. */
export function range6 (r: SubnetRange): Range6 | undefined {
  if (r.enableIPv6 !== true || r.ipv6Network === undefined || r.ipv6SubnetMin === undefined || r.ipv6SubnetMax === undefined) return undefined
  return { network: r.ipv6Network, subnetLen: r.ipv6SubnetLen ?? 64, min: r.ipv6SubnetMin, max: r.ipv6SubnetMax }
}

/** Does this subnet still fit the network config (flannel's isSubnetConfigCompat)? */
export function fitsRange (s: Ip4Net, r: SubnetRange): boolean {
  return s.prefixLen === r.subnetLen && contains(r.network, s.ip) && s.ip >= r.subnetMin && s.ip <= r.subnetMax &&
    (s.ip % size(r.subnetLen)) === 0
}

/** The same for an IPv6 subnet (flannel's isIPv6SubnetConfigCompat, plus the network and alignment). */
export function fitsRange6 (s: Ip6Net, r: Range6): boolean {
  return s.prefixLen === r.subnetLen && (s.ip & mask6(r.network.prefixLen)) === r.network.ip &&
    s.ip >= r.min && s.ip <= r.max && (s.ip & ~mask6(r.subnetLen) & ((1n << 128n) - 1n)) === 0n
}

/**
 * Does a lease fit the range in both families: its IPv4 subnet if the range
 * has IPv4 (none, 0.0.0.0/0, if not), its IPv6 one if the range has IPv6
 * (none if not)? flannel deletes and re-leases its own lease otherwise.
 */
export function leaseFits (l: { readonly subnet: Ip4Net, readonly subnet6?: Ip6Net }, r: SubnetRange): boolean {
  const v4ok = hasRange4(r) ? hasIPv4(l) && fitsRange(l.subnet, r) : !hasIPv4(l)
  const r6 = range6(r)
  const v6ok = r6 !== undefined ? l.subnet6 !== undefined && fitsRange6(l.subnet6, r6) : l.subnet6 === undefined
  return v4ok && v6ok
}

/**
 * Why a peer's lease cannot be used with this range, or undefined if it can:
 * for peers, each family the lease has must fit that family's range
 * (fitsRange, fitsRange6); a family the lease lacks is no fault (an IPv4-only
 * node in a dual-stack cluster is still reached over IPv4), nor is a family
 * the network lacks (that half is not used), as long as one half is usable.
 * The reason names the half at fault, for the one warning per lease.
 */
export function peerMisfit (l: { readonly subnet: Ip4Net, readonly subnet6?: Ip6Net }, r: SubnetRange): string | undefined {
  const r6 = range6(r)
  const v4 = hasIPv4(l) && hasRange4(r)
  const v6 = l.subnet6 !== undefined && r6 !== undefined
  if (v4 && !fitsRange(l.subnet, r)) {
    return `its subnet ${ip4ToString(l.subnet.ip)}/${l.subnet.prefixLen} is not a /${r.subnetLen} of the Network from SubnetMin to SubnetMax`
  }
  if (v6 && l.subnet6 !== undefined && r6 !== undefined && !fitsRange6(l.subnet6, r6)) {
    return `its IPv6 subnet ${formatCidr6(l.subnet6)} is not a /${r6.subnetLen} of the IPv6Network ${formatCidr6(r6.network)} from IPv6SubnetMin to IPv6SubnetMax`
  }
  if (!v4 && !v6) return hasRange4(r) ? 'it has no IPv4 subnet, and the network has no IPv6' : 'it has no IPv6 subnet, and the network has no IPv4'
  return undefined
}

/** The subnets that are taken, per family. */
export interface Taken {
  readonly v4: Ip4Net[]
  readonly v6: Ip6Net[]
}

/**
 * Subnets that are taken: every valid lease's, and every key's that parses
 * even if its value does not. An IPv6-only lease takes no IPv4 subnet (its
 * 0.0.0.0/0 would overlap them all).
 */
export function takenSubnets (leases: ReadonlyArray<{ readonly subnet: Ip4Net, readonly subnet6?: Ip6Net }>, skipped: readonly Skipped[]): Taken {
  const out: Taken = { v4: [], v6: [] }
  const add = (l: { readonly subnet: Ip4Net, readonly subnet6?: Ip6Net }): void => {
    if (hasIPv4(l)) out.v4.push(l.subnet)
    if (l.subnet6 !== undefined) out.v6.push(l.subnet6)
  }
  for (const l of leases) add(l)
  for (const s of skipped) {
    const p = parseLeaseKey(s.key)
    if (p !== undefined) add(p)
  }
  return out
}

/** The IPv4 subnets taken (takenSubnets' v4), kept for callers of the IPv4-only form. */
export function taken (leases: readonly Lease[], skipped: readonly Skipped[]): Ip4Net[] {
  return takenSubnets(leases, skipped).v4
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

/**
 * Up to `max` free IPv6 subnets from the range's first on. A taken subnet
 * larger than a candidate (a hand-written /48 lease) is jumped over whole,
 * so the walk takes at most one step per free candidate and per taken
 * subnet, however large the range (an fc00::/7 of /64s is 2^57 of them).
 */
export function freeCandidates6 (r: Range6, used: readonly Ip6Net[], max = MAX_CANDIDATES): Ip6Net[] {
  const step = 1n << BigInt(128 - r.subnetLen)
  const out: Ip6Net[] = []
  for (let ip = r.min; ip <= r.max && out.length < max;) {
    const cand = { ip, prefixLen: r.subnetLen }
    const hit = used.find((u) => overlaps6(u, cand))
    if (hit === undefined) {
      out.push(cand)
      ip += step
      continue
    }
    const end = (hit.ip & mask6(hit.prefixLen)) + (1n << BigInt(128 - hit.prefixLen))
    ip = end > ip + step ? end : ip + step
  }
  return out
}

/** How many IPv6 subnets the range holds (bigint: a /48 of /64s is 65536, an fc00::/7 of /64s is 2^57). */
export function subnetCount6 (r: Range6): bigint {
  return r.max < r.min ? 0n : ((r.max - r.min) >> BigInt(128 - r.subnetLen)) + 1n
}
