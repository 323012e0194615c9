// Turning a stored (key, value) into a Lease, shared by every store so they
// agree on what is valid. Bad entries become Skipped, never exceptions: one
// broken lease must not hide the others.
import { mask, parseSubnetKey } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { decodeLeaseAttrs } from '../subnet/lease-json'
import type { Lease, Skipped } from '../subnet/lease'
import { WeftError } from '../errors'

/** flannel's lease values are a few hundred bytes; anything past this is not one, and is not kept */
export const MAX_LEASE_VALUE = 64 * 1024

export function leaseFromEntry (key: string, value: string, expiration: number | null, revision: number): Lease | Skipped {
  if (value.length > MAX_LEASE_VALUE) return { key, reason: `value is ${value.length} bytes, more than a lease's ${MAX_LEASE_VALUE}` }
  const subnet = parseSubnetKey(key)
  if (subnet === undefined) return { key, reason: 'key does not parse as a subnet (want e.g. 10.244.1.0-24)' }
  // flannel's regex lets "10.244.1.5-24" through; no route or table entry can be made for it
  if ((subnet.ip & ~mask(subnet.prefixLen)) !== 0) return { key, reason: 'key is not a subnet address: it has host bits set (want e.g. 10.244.1.0-24)' }
  try {
    return { subnet, attrs: decodeLeaseAttrs(value), expiration, revision }
  } catch (err) {
    return { key, reason: err instanceof WeftError ? err.message : String(err) }
  }
}

export function isSkipped (x: Lease | Skipped): x is Skipped {
  return (x as Skipped).reason !== undefined
}

export function subnetFromKey (key: string): Ip4Net | undefined {
  return parseSubnetKey(key)
}
