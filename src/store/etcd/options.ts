// flanneld's etcd flags (--etcd-endpoints, --etcd-prefix, --etcd-keyfile,
// --etcd-certfile, --etcd-cafile, --etcd-username, --etcd-password) turned
// into etcd3 client options, with flanneld's defaults and its TLS rule.
import { readFileSync } from 'node:fs'
import type { IOptions } from 'etcd3'
import { StoreError } from '../store'
import { passThrough, retryUntilConnected } from './policies'

export interface EtcdStoreOptions {
  /** default flanneld's: http://127.0.0.1:4001 and http://127.0.0.1:2379 */
  readonly endpoints?: readonly string[]
  /** default /coreos.com/network; config is <prefix>/config, leases <prefix>/subnets/<key> */
  readonly prefix?: string
  /** TLS client key and certificate: TLS is used only when both are given, as flanneld does */
  readonly keyFile?: string
  readonly certFile?: string
  /** CA for the server certificate; optional (the system roots otherwise) */
  readonly caFile?: string
  readonly username?: string
  readonly password?: string
  /** how long to keep trying to reach etcd before EUNAVAILABLE (requests retry, a watch waits to be accepted); default 5000 */
  readonly dialTimeoutMs?: number
  /** deadline of each request, connecting included; default twice dialTimeoutMs */
  readonly requestTimeoutMs?: number
}

export const DEFAULT_ETCD_ENDPOINTS: readonly string[] = ['http://127.0.0.1:4001', 'http://127.0.0.1:2379']
export const DEFAULT_ETCD_PREFIX = '/coreos.com/network'
export const DEFAULT_DIAL_TIMEOUT_MS = 5000

export { CONFIG_NOT_FOUND_HINT } from './hint'

/**
 * "/coreos.com/network/" and "/coreos.com/network" are the same prefix, as
 * with flannel's path.Join; a prefix without a leading "/" stays relative,
 * as it does in flannel, so both name the same keys.
 */
export function normalizePrefix (prefix: string): string {
  const p = prefix.replace(/\/+$/, '')
  return p === '' && prefix !== '' ? '/' : p
}

/** `<prefix>/<rest>`, or just `<rest>` under an empty prefix (path.Join again). */
export function under (prefix: string, rest: string): string {
  return prefix === '' || prefix.endsWith('/') ? `${prefix}${rest}` : `${prefix}/${rest}`
}

function readPem (what: string, file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw new StoreError('ESTORE', `cannot read the etcd ${what} ${file}: ${(err as Error).message}`, { cause: err })
  }
}

/** TLS credentials, or undefined for plain connections. Throws StoreError ESTORE on a half or contradictory setup. */
function credentials (o: EtcdStoreOptions, endpoints: readonly string[]): IOptions['credentials'] {
  const https = endpoints.filter((e) => e.startsWith('https://')).length
  // etcd3 has one set of credentials for all hosts, so it cannot mix the two
  if (https > 0 && https < endpoints.length) {
    throw new StoreError('ESTORE', `etcd endpoints mix http:// and https:// (${endpoints.join(',')}); use one scheme`)
  }
  const key = o.keyFile ?? ''
  const cert = o.certFile ?? ''
  const ca = o.caFile ?? ''
  if ((key === '') !== (cert === '')) {
    // flanneld silently falls back to plain http here; saying so is kinder
    throw new StoreError('ESTORE', 'etcd TLS needs both a key file and a certificate file (--etcd-keyfile and --etcd-certfile)')
  }
  if (key !== '') {
    if (https === 0) throw new StoreError('ESTORE', `etcd TLS key and certificate given, but the endpoints are not https:// (${endpoints.join(',')})`)
    return {
      // null makes grpc use the system roots, as Go does without --etcd-cafile
      rootCertificate: (ca !== '' ? readPem('CA file', ca) : null) as Buffer,
      privateKey: readPem('key file', key),
      certChain: readPem('certificate file', cert)
    }
  }
  // https without a client certificate: server-authenticated TLS (etcd3 would
  // otherwise pick the system roots by itself and ignore the CA)
  if (https > 0 && ca !== '') return { rootCertificate: readPem('CA file', ca) }
  return undefined
}

/** flanneld takes one comma-separated flag; accept that in any element, spaces around commas too. */
export function normalizeEndpoints (endpoints: readonly string[] | undefined): readonly string[] {
  const list = (endpoints ?? []).flatMap((e) => e.split(',')).map((e) => e.trim()).filter((e) => e !== '')
  return list.length > 0 ? list : DEFAULT_ETCD_ENDPOINTS
}

export function clientOptions (o: EtcdStoreOptions, endpoints: readonly string[], dialTimeoutMs: number, requestTimeoutMs: number): IOptions {
  const creds = credentials(o, endpoints)
  const username = o.username ?? ''
  return {
    hosts: [...endpoints],
    ...(creds !== undefined ? { credentials: creds } : {}),
    ...(username !== '' ? { auth: { username, password: o.password ?? '' } } : {}),
    // etcd3 ignores its own dialTimeout option, so every unary call gets a
    // deadline instead; watch streams are bounded by the watch loop and by
    // HTTP/2 keepalive below.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
    grpcOptions: {
      // reconnect like flannel's watch backoff (100 ms doubling to 5 s), not
      // grpc's default that grows to two minutes
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 5000,
      // notice a frozen or vanished etcd under a quiet watch; etcd refuses
      // pings more often than every 5 s (--grpc-keepalive-min-time)
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5000
    },
    faultHandling: {
      // no circuit breaker: it turns a restarted etcd into 5 s of refusals
      host: () => passThrough,
      global: retryUntilConnected(dialTimeoutMs)
    }
  }
}
