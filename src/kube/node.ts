// A Kubernetes Node as weft reads it, and the lease flanneld's annotations
// make of it (flannel's nodeToLease): the subnet is the node's IPv4 pod CIDR
// (spec.podCIDRs, else spec.podCIDR), the public IP, backend type and
// backend data are the annotations. Everything here comes from the API
// server, which anyone with `kubectl annotate` can write to: every field is
// checked, and a node that does not make a lease is named, not thrown.
import { networkOf, parseCidr } from '../packet/net'
import type { Ip4Net } from '../packet/net'
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
  | { readonly ok: true, readonly subnet: Ip4Net, readonly attrs: LeaseAttrs }
  /** carries flannel's annotations but cannot be a lease: skipped, named once */
  | { readonly ok: false, readonly reason: string }

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
 * The node's IPv4 pod CIDR, or why there is none. flannel takes podCIDRs
 * (one or two entries, one per family) over podCIDR, and refuses three or
 * more.
 */
export function podSubnet (n: KubeNode): { subnet: Ip4Net } | { reason: string, unassigned?: true } {
  const list = n.spec?.podCIDRs
  const cidrs = Array.isArray(list) && list.length > 0 ? list : [n.spec?.podCIDR]
  if (cidrs.length > 2) return { reason: 'its pod CIDRs should be IPv4/IPv6 only or dual stack (more than two)' }
  if (cidrs.every((c) => c === undefined || c === '')) return { reason: 'its pod CIDR is not assigned', unassigned: true }
  for (const c of cidrs) {
    if (typeof c !== 'string') return { reason: 'its pod CIDR is not a string' }
    if (c.includes(':')) continue
    try {
      return { subnet: networkOf(parseCidr(c)) }
    } catch {
      return { reason: `its pod CIDR ${JSON.stringify(c.slice(0, 64))} is not a CIDR` }
    }
  }
  return { reason: 'it has no IPv4 pod CIDR (weft is IPv4 only)' }
}

export function nodeToLease (n: KubeNode, names: Annotations): NodeLease {
  const a = annotationsOf(n)
  const sub = podSubnet(n)
  if ('reason' in sub) return { ok: false, reason: sub.reason }
  const pub = a[names.publicIP]
  if (typeof pub !== 'string') return { ok: false, reason: `it has no ${names.publicIP} annotation` }
  let publicIP: number
  try {
    publicIP = parseIp4(pub)
  } catch {
    return { ok: false, reason: `its ${names.publicIP} ${JSON.stringify(pub.slice(0, 64))} is not an IPv4 address` }
  }
  const type = a[names.backendType]
  if (typeof type !== 'string') return { ok: false, reason: `it has no ${names.backendType} annotation` }
  const raw = a[names.backendData]
  let data: unknown
  if (raw !== undefined && raw !== '') {
    if (typeof raw !== 'string' || raw.length > MAX_BACKEND_DATA) return { ok: false, reason: `its ${names.backendData} is longer than ${MAX_BACKEND_DATA} characters` }
    try {
      data = JSON.parse(raw)
    } catch {
      return { ok: false, reason: `its ${names.backendData} is not JSON` }
    }
  }
  const v6 = a[names.publicIPv6]
  return {
    ok: true,
    subnet: sub.subnet,
    attrs: {
      publicIP,
      publicIPv6: typeof v6 === 'string' && v6 !== '' ? v6 : null,
      backendType: type,
      ...(data !== undefined && data !== null ? { backendData: data } : {})
    }
  }
}

/** The VTEP MAC in a node's backend-data annotation (flanneld's GetStoredMacAddresses), lower case, if it parses. */
export function storedVtepMac (n: KubeNode, names: Annotations): string | undefined {
  const raw = annotationsOf(n)[names.backendData]
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
  return JSON.stringify([a[names.subnetKubeManaged], a[names.publicIP], a[names.backendType], a[names.backendData], a[names.publicIPv6], n.spec?.podCIDR, n.spec?.podCIDRs])
}
