// Errors for the off-hot-path string parsers (parseMac, parseIp4, parseIp6). Nothing a
// per-packet path calls throws; those return Reason codes instead.

import { WeftError } from '../errors'

/** Thrown by parseMac / parseIp4 for malformed input. */
export class AddressParseError extends WeftError {
  constructor (
    readonly kind: 'mac' | 'ipv4' | 'ipv6',
    readonly input: string
  ) {
    super('EADDRESS', `invalid ${kind === 'mac' ? 'MAC' : kind === 'ipv4' ? 'IPv4' : 'IPv6'} address: ${JSON.stringify(input)}`)
    this.name = 'AddressParseError'
  }
}
