// How long a lease lives and when it is renewed. flannel's numbers are fixed:
// 24 h leases, renewed --subnet-lease-renew-margin (default 60 min) before
// they end, a failed renewal retried every minute.
//
// WEFT_LEASE_TTL=<seconds> (2..86400) shortens the lease, for tests and
// demonstrations of expiry (a node that is down for longer than this loses
// its subnet). It is deliberately not a flag: production clusters share
// their store with flanneld, which always writes 24 h. With it, the renew
// margin is at most half the TTL and a failed renewal is retried at least
// three times before the lease can run out.
import { WeftError } from '../errors'
import { SUBNET_TTL_SECONDS } from '../store/store'

export const LEASE_TTL_ENV = 'WEFT_LEASE_TTL'

export interface LeaseTiming {
  readonly ttlSeconds: number
  readonly renewMarginSeconds: number
  readonly renewRetryMs: number
  /** WEFT_LEASE_TTL was set */
  readonly overridden: boolean
}

/** Throws WeftError EFLAG for a WEFT_LEASE_TTL that is not a whole number of seconds in range. */
export function leaseTiming (renewMarginMinutes: number, env: NodeJS.ProcessEnv = process.env): LeaseTiming {
  const margin = renewMarginMinutes * 60
  const raw = env[LEASE_TTL_ENV]
  if (raw === undefined || raw === '') return { ttlSeconds: SUBNET_TTL_SECONDS, renewMarginSeconds: margin, renewRetryMs: 60_000, overridden: false }
  const ttl = Number(raw)
  if (!Number.isInteger(ttl) || ttl < 2 || ttl > SUBNET_TTL_SECONDS) {
    throw new WeftError('EFLAG', `${LEASE_TTL_ENV}=${JSON.stringify(raw)}: must be a whole number of seconds from 2 to ${SUBNET_TTL_SECONDS}`)
  }
  const renewMarginSeconds = Math.min(margin, Math.floor(ttl / 2))
  return { ttlSeconds: ttl, renewMarginSeconds, renewRetryMs: Math.min(60_000, Math.max(200, Math.floor(renewMarginSeconds * 1000 / 3))), overridden: true }
}
