// The lease value, byte-compatible with flannel's Go json.Marshal of
// lease.LeaseAttrs: field order PublicIP, PublicIPv6, BackendType,
// BackendData, BackendV6Data; PublicIPv6 always present (null without v6);
// BackendType and the data fields omitted when empty. PublicIPv6 is kept as
// read (flannel writes it in Go's form, ip6ToString's); a node writing its
// own gives ip6ToString(address). Reading matches keys as Go's decoder does
// (../go-json.ts): in any case, the last match winning.
import { WeftError } from '../errors'
import { field } from '../go-json'
import { ip4ToString, parseIp4 } from '../packet/ip'
import { parseIp6 } from '../packet/net6'
import type { LeaseAttrs } from './lease'

export function encodeLeaseAttrs (a: LeaseAttrs): string {
  let s = `{"PublicIP":${JSON.stringify(ip4ToString(a.publicIP))},"PublicIPv6":${JSON.stringify(a.publicIPv6)}`
  if (a.backendType !== '') s += `,"BackendType":${JSON.stringify(a.backendType)}`
  if (a.backendData !== undefined && a.backendData !== null) s += `,"BackendData":${JSON.stringify(a.backendData)}`
  if (a.backendV6Data !== undefined && a.backendV6Data !== null) s += `,"BackendV6Data":${JSON.stringify(a.backendV6Data)}`
  return s + '}'
}

/** Throws WeftError ELEASEVALUE naming what is wrong. */
export function decodeLeaseAttrs (text: string): LeaseAttrs {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (err) {
    throw new WeftError('ELEASEVALUE', `lease value is not JSON: ${(err as Error).message}`)
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new WeftError('ELEASEVALUE', 'lease value is not a JSON object')
  const o = v as Record<string, unknown>
  const pub = field(o, 'PublicIP')
  // absent or null is 0.0.0.0, as in flannel; no backend routes to it (lease.ts unusablePublicIP)
  let publicIP = 0
  if (pub !== undefined && pub !== null) {
    if (typeof pub !== 'string') throw new WeftError('ELEASEVALUE', 'lease PublicIP is not a string')
    try {
      publicIP = parseIp4(pub)
    } catch {
      throw new WeftError('ELEASEVALUE', `lease PublicIP ${JSON.stringify(pub)} is not an IPv4 address`)
    }
  }
  const v6 = field(o, 'PublicIPv6')
  if (v6 !== undefined && v6 !== null) {
    if (typeof v6 !== 'string') throw new WeftError('ELEASEVALUE', 'lease PublicIPv6 is not a string')
    // flannel's decoder (ip.IP6's net.ParseIP) refuses the value too, and
    // skips the lease; it would take IPv4 text as ::ffff:a.b.c.d, which no
    // IPv6 underlay can reach, so weft refuses that as well
    try {
      parseIp6(v6)
    } catch {
      throw new WeftError('ELEASEVALUE', `lease PublicIPv6 ${JSON.stringify(v6.length > 64 ? `${v6.slice(0, 61)}...` : v6)} is not an IPv6 address`)
    }
  }
  const bt = field(o, 'BackendType')
  if (bt !== undefined && bt !== null && typeof bt !== 'string') throw new WeftError('ELEASEVALUE', 'lease BackendType is not a string')
  const data = field(o, 'BackendData')
  const data6 = field(o, 'BackendV6Data')
  return {
    publicIP,
    publicIPv6: typeof v6 === 'string' ? v6 : null,
    backendType: typeof bt === 'string' ? bt : '',
    ...(data !== undefined && data !== null ? { backendData: data } : {}),
    ...(data6 !== undefined && data6 !== null ? { backendV6Data: data6 } : {})
  }
}
