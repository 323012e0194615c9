// A Kubernetes Node as weft reads it, and the lease flanneld's annotations
// make of it (flannel's nodeToLease): the subnets are the node's pod CIDRs
// (spec.podCIDRs, else spec.podCIDR; IPv4 and, with IPv6, the IPv6 one),
// the public IPs, backend type and backend data (v4 and v6) are the
// annotations. Everything here comes from the API
// server, which anyone with `kubectl annotate` can write to: every field is
// checked, and a node that does not make a lease is named, not thrown.
import { networkOf, parseCidr } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { ip6ToString, networkOf6, parseCidr6, parseIp6 } from '../packet/net6'
import type { Ip6Net } from '../packet/net6'
import { parseIp4 } from '../packet/ip'
import type { LeaseAttrs } from '../subnet/lease'
import type { Annotations } from './annotations'

/** The parts of a Node weft reads; the rest is ignored. Plain JSON (a watch event) or the client's model (a list): the same field names. */
export interface KubeNode {
  metadata?: { name?: string, resourceVersion?: string, annotations?: Record<string, string> | null }
  spec?: { podCIDR?: string, podCIDRs?: string[] | null }
}

/** Annotation values are strings up to the API's 256 KiB for all of them; a backend-data longer than this is not flannel's. */
const MAX_BACKEND_DATA = 4096

export type NodeLease =
  | { readonly ok: true, readonly subnet: Ip4Net, readonly subnet6?: Ip6Net, readonly attrs: LeaseAttrs }
  /** carries flannel's annotations but cannot be a lease: skipped, named once */
  | { readonly ok: false, readonly reason: string }

/**
 * Which families a node's lease is made of, as flanneld's nodeToLease reads
 * them from its EnableIPv4 and EnableIPv6: each one on is required (a node
 * without that family's pod CIDR or public address is no lease). 'auto'
 * takes what the node has, for listing nodes without a network config.
 */
export type Families = { readonly ipv4: boolean, readonly ipv6: boolean } | 'auto'

export const IPV4_ONLY: Families = { ipv4: true, ipv6: false }

/** An IPv6-only lease's IPv4 half, as flannel writes it (the key "0.0.0.0-0&fc00::-64"). */
const NO_IPV4: Ip4Net = { ip: 0, prefixLen: 0 }

export function nodeName (n: KubeNode): string | undefined {
  const name = n.metadata?.name
  return typeof name === 'string' && name !== '' ? name : undefined
}

export function annotationsOf (n: KubeNode): Record<string, string> {
  const a = n.metadata?.annotations
  return a !== null && typeof a === 'object' ? a : {}
}

/** Whether a flannel-compatible daemon manages this node (flannel ignores nodes without "kube-subnet-manager": "true"). */
export function isManaged (n: KubeNode, names: Annotations): boolean {
  return annotationsOf(n)[names.subnetKubeManaged] === 'true'
}

/**
 * The node's pod CIDRs, one per family (either may be missing), or why they
 * cannot be read. flannel takes podCIDRs (one or two entries) over podCIDR,
 * refuses three or more, and takes the first entry of each family.
 */
export function podSubnets (n: KubeNode): { subnet?: Ip4Net, subnet6?: Ip6Net } | { reason: string, unassigned?: true } {
  const list = n.spec?.podCIDRs
  const cidrs = Array.isArray(list) && list.length > 0 ? list : [n.spec?.podCIDR]
  if (cidrs.length > 2) return { reason: 'its pod CIDRs should be IPv4/IPv6 only or dual stack (more than two)' }
  if (cidrs.every((c) => c === undefined || c === '')) return { reason: 'its pod CIDR is not assigned', unassigned: true }
  let subnet: Ip4Net | undefined
  let subnet6: Ip6Net | undefined
  for (const c of cidrs) {
    if (typeof c !== 'string') return { reason: 'its pod CIDR is not a string' }
    try {
      if (c.includes(':')) subnet6 ??= networkOf6(parseCidr6(c))
      else subnet ??= networkOf(parseCidr(c))
    } catch {
      return { reason: `its pod CIDR ${JSON.stringify(c.slice(0, 64))} is not a CIDR` }
    }
  }
  return { ...(subnet !== undefined ? { subnet } : {}), ...(subnet6 !== undefined ? { subnet6 } : {}) }
}

/** The node's IPv4 pod CIDR, or why there is none (the IPv4 half of podSubnets). */
export function podSubnet (n: KubeNode): { subnet: Ip4Net } | { reason: string, unassigned?: true } {
  const s = podSubnets(n)
  if ('reason' in s) return s
  if (s.subnet === undefined) return { reason: 'it has no IPv4 pod CIDR' }
  return { subnet: s.subnet }
}

/** A backend-data annotation as JSON (undefined when absent, empty or "null"), or why it is not. */
function backendJson (raw: string | undefined, name: string): { data: unknown } | { reason: string } {
  if (raw === undefined || raw === '') return { data: undefined }
  if (typeof raw !== 'string' || raw.length > MAX_BACKEND_DATA) return { reason: `its ${name} is longer than ${MAX_BACKEND_DATA} characters` }
  try {
    const data = JSON.parse(raw) as unknown
    return { data: data ?? undefined }
  } catch {
    return { reason: `its ${name} is not JSON` }
  }
}

/**
 * The lease a node's annotations and pod CIDRs make (flannel's
 * nodeToLease): with IPv4, its IPv4 pod CIDR, public-ip and backend-data;
 * with IPv6, its IPv6 pod CIDR, public-ipv6 and backend-v6-data; an
 * IPv6-only lease's subnet is 0.0.0.0/0 and its PublicIP 0.0.0.0.
 */
export function nodeToLease (n: KubeNode, names: Annotations, families: Families = IPV4_ONLY): NodeLease {
  const a = annotationsOf(n)
  const sub = podSubnets(n)
  if ('reason' in sub) return { ok: false, reason: sub.reason }
  const ipv4 = families === 'auto' ? sub.subnet !== undefined : families.ipv4
  const ipv6 = families === 'auto' ? sub.subnet6 !== undefined : families.ipv6
  if (!ipv4 && !ipv6) return { ok: false, reason: 'it has no pod CIDR of a family the network has' }
  let publicIP = 0
  let data: unknown
  if (ipv4) {
    if (sub.subnet === undefined) return { ok: false, reason: 'it has no IPv4 pod CIDR (missing IPv4 address on spec.podCIDRs)' }
    const pub = a[names.publicIP]
    if (typeof pub !== 'string') return { ok: false, reason: `it has no ${names.publicIP} annotation` }
    try {
      publicIP = parseIp4(pub)
    } catch {
      return { ok: false, reason: `its ${names.publicIP} ${JSON.stringify(pub.slice(0, 64))} is not an IPv4 address` }
    }
    const d = backendJson(a[names.backendData], names.backendData)
    if ('reason' in d) return { ok: false, reason: d.reason }
    data = d.data
  }
  let publicIPv6: string | null = null
  let data6: unknown
  if (ipv6) {
    if (sub.subnet6 === undefined) return { ok: false, reason: 'it has no IPv6 pod CIDR (missing IPv6 address on spec.podCIDRs)' }
    const pub6 = a[names.publicIPv6]
    const strict = families !== 'auto'
    if (typeof pub6 !== 'string' || pub6 === '') {
      if (strict) return { ok: false, reason: `it has no ${names.publicIPv6} annotation` }
    } else {
      try {
        // kept in Go's form, as flanneld's lease prints it
        publicIPv6 = ip6ToString(parseIp6(pub6))
      } catch {
        if (strict) return { ok: false, reason: `its ${names.publicIPv6} ${JSON.stringify(pub6.slice(0, 64))} is not an IPv6 address` }
      }
    }
    const d6 = backendJson(a[names.backendV6Data], names.backendV6Data)
    if ('reason' in d6) return { ok: false, reason: d6.reason }
    data6 = d6.data
  }
  const type = a[names.backendType]
  if (typeof type !== 'string') return { ok: false, reason: `it has no ${names.backendType} annotation` }
  return {
    ok: true,
    subnet: ipv4 && sub.subnet !== undefined ? sub.subnet : NO_IPV4,
    ...(ipv6 && sub.subnet6 !== undefined ? { subnet6: sub.subnet6 } : {}),
    attrs: {
      publicIP,
      publicIPv6,
      backendType: type,
      ...(data !== undefined ? { backendData: data } : {}),
      ...(data6 !== undefined ? { backendV6Data: data6 } : {})
    }
  }
}

/** The VTEP MAC in a node's backend-data annotation (flanneld's GetStoredMacAddresses), lower case, if it parses; `v6`: backend-v6-data's. */
export function storedVtepMac (n: KubeNode, names: Annotations, v6 = false): string | undefined {
  const raw = annotationsOf(n)[v6 ? names.backendV6Data : names.backendData]
  if (typeof raw !== 'string' || raw.length > MAX_BACKEND_DATA) return undefined
  try {
    const mac = (JSON.parse(raw) as { VtepMAC?: unknown } | null)?.VtepMAC
    return typeof mac === 'string' ? mac.toLowerCase() : undefined
  } catch {
    return undefined
  }
}

/** What peers care about in a node: equal keys mean no change worth an event (flannel's update filter, plus the pod CIDR). */
export function leaseKey (n: KubeNode, names: Annotations): string {
  const a = annotationsOf(n)
  return JSON.stringify([a[names.subnetKubeManaged], a[names.publicIP], a[names.backendType], a[names.backendData], a[names.publicIPv6], a[names.backendV6Data], n.spec?.podCIDR, n.spec?.podCIDRs])
}
