// IPv4 addresses as uint32 numbers in host order (a.b.c.d = a<<24|b<<16|c<<8|d,
// kept non-negative with >>> 0), as flannel's pkg/ip IP4 does. Numbers compare
// and mask without allocating; these string helpers are for config, logs and tests.

import { AddressParseError } from './errors'

/** Dotted quad for a uint32 address. */
export function ip4ToString (ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}`
}

/** Build an address from four octets. */
export function ip4 (a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0
}

// Strict dotted decimal: four 0-255 parts, no leading zeros (which some
// parsers read as octal), no surrounding space.
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])'
const IP4_RE = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`)

/** Parse "a.b.c.d" to a uint32. Throws AddressParseError for anything else. */
export function parseIp4 (str: string): number {
  const m = IP4_RE.exec(str)
  if (m === null) throw new AddressParseError('ipv4', str)
  return ip4(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]))
}
