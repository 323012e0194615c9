// Turning a stored (key, value) into a Lease, shared by every store so they
// agree on what is valid. Bad entries become Skipped, never exceptions: one
// broken lease must not hide the others.
import { mask, parseLeaseKey } from '../packet/net'
import type { SubnetKeyParts } from '../packet/net'
import { mask6 } from '../packet/net6'
import { decodeLeaseAttrs } from '../subnet/lease-json'
import type { Lease, Skipped } from '../subnet/lease'
import { WeftError } from '../errors'

/** flannel's lease values are a few hundred bytes; anything past this is not one, and is not kept */
export const MAX_LEASE_VALUE = 64 * 1024

const BAD_KEY = 'key does not parse as a subnet (want e.g. 10.244.1.0-24 or 10.244.1.0-24&fc00:0:0:1::-64)'

export function leaseFromEntry (key: string, value: string, expiration: number | null, revision: number): Lease | Skipped {
  if (value.length > MAX_LEASE_VALUE) return { key, reason: `value is ${value.length} bytes, more than a lease's ${MAX_LEASE_VALUE}` }
  const parts = parseLeaseKey(key)
  if (parts === undefined) return { key, reason: BAD_KEY }
  const { subnet, subnet6 } = parts
  // flannel's regex lets "10.244.1.5-24" through; no route or table entry can be made for it
  if ((subnet.ip & ~mask(subnet.prefixLen)) !== 0) return { key, reason: 'key is not a subnet address: it has host bits set (want e.g. 10.244.1.0-24)' }
  if (subnet6 !== undefined && (subnet6.ip & ~mask6(subnet6.prefixLen) & ((1n << 128n) - 1n)) !== 0n) {
    return { key, reason: 'key\'s IPv6 half is not a subnet address: it has host bits set (want e.g. fc00:0:0:1::-64)' }
  }
  try {
    return { subnet, ...(subnet6 !== undefined ? { subnet6 } : {}), attrs: decodeLeaseAttrs(value), expiration, revision }
  } catch (err) {
    return { key, reason: err instanceof WeftError ? err.message : String(err) }
  }
}

export function isSkipped<T extends object> (x: T | Skipped): x is Skipped {
  return (x as Partial<Skipped>).reason !== undefined
}

/** The subnets a deleted key named (a delete carries no value), or undefined if it does not parse. */
export function subnetsFromKey (key: string): SubnetKeyParts | undefined {
  return parseLeaseKey(key)
}

/** A store's delete of `key` at `revision`, as a StoreEvent, or the key skipped. */
export function deleteFromKey (key: string, revision: number): { readonly type: 'delete', readonly subnet: SubnetKeyParts['subnet'], readonly subnet6?: SubnetKeyParts['subnet6'], readonly revision: number } | Skipped {
  const parts = parseLeaseKey(key)
  if (parts === undefined) return { key, reason: BAD_KEY }
  return { type: 'delete', subnet: parts.subnet, ...(parts.subnet6 !== undefined ? { subnet6: parts.subnet6 } : {}), revision }
}
