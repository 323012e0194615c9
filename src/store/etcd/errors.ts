// etcd3's errors, turned into StoreErrors whose message says which etcd,
// what went wrong and, where it is usually the same mistake, what to check.
import {
  castGrpcError, ClientClosedError, EtcdAuthenticationFailedError, EtcdInvalidAuthTokenError, EtcdPermissionDeniedError, EtcdWatchStreamEnded,
  GRPCDeadlineExceededError, GRPCUnauthenticatedError, GRPCUnavailableError
} from 'etcd3'
import { StoreError } from '../store'

/** grpc's message on one line, without its empty "Resolution note:" tail. */
function messageOf (err: unknown): string {
  const m = err instanceof Error ? err.message : String(err)
  return m.replace(/\s+/g, ' ').replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '').replace(/\.?\s*Resolution note:\s*$/, '').trim()
}

// A handshake that failed over a certificate fails the same way on every
// retry, until someone changes a certificate: that is ETLS, not an etcd
// that is down. grpc reports both as UNAVAILABLE ("No connection
// established"), so they are told apart by the words in the message.
/** etcd refused our certificate, or asked for one: the TLS alert it sent. */
const CLIENT_CERT_REFUSED = /alert (bad certificate|certificate required|unknown ca|certificate (expired|revoked|unknown)|unsupported certificate|access denied)/i
/** We could not verify etcd's certificate: Node's words, and its error codes. */
const SERVER_CERT_UNVERIFIED = new RegExp([
  'self[- ]signed certificate', 'unable to verify', 'unable to get (local )?issuer certificate', 'certificate verify failed',
  'certificate has expired', 'certificate is not yet valid', 'does not match certificate\'s altnames',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT'
].join('|'), 'i')

/** What to check when a certificate failed the handshake, or undefined if none did. */
function certificateHint (msg: string, tls: boolean): string | undefined {
  if (CLIENT_CERT_REFUSED.test(msg)) {
    return tls
      ? 'etcd rejected our client certificate: check --etcd-certfile, --etcd-keyfile and the CA etcd trusts'
      : 'etcd asks for a client certificate: give --etcd-certfile and --etcd-keyfile'
  }
  if (SERVER_CERT_UNVERIFIED.test(msg)) return 'cannot verify etcd\'s certificate: check --etcd-cafile'
  return undefined
}

/** A hint for other TLS trouble (a connection dropped mid-handshake, a scheme mismatch), which may pass. */
function tlsHint (msg: string): string {
  if (/certificate/i.test(msg)) return ' (a certificate problem: check --etcd-cafile, --etcd-certfile, --etcd-keyfile)'
  if (/ssl|tls|handshake/i.test(msg)) return ' (a TLS problem: check the https:// endpoints and --etcd-cafile, --etcd-certfile, --etcd-keyfile)'
  return ''
}

/**
 * Other ways a connection ends: an etcd shutting down resets its HTTP/2
 * streams (grpc reports INTERNAL, "RST_STREAM ... without gRPC status"), and
 * etcd itself refuses work while it has no leader or is stopping.
 */
const GONE = new RegExp([
  'ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'RST_STREAM', 'without gRPC status', 'GOAWAY',
  'etcdserver: (server stopped|no leader|leader changed|request timed out|too many requests)'
].join('|'))

export interface ErrorContext {
  /** the endpoints, comma-separated, for messages */
  readonly where: string
  readonly tls: boolean
}

export function toStoreError (raw: unknown, ctx: ErrorContext): StoreError {
  if (raw instanceof StoreError) return raw
  // etcd3 types the errors of unary calls, but a watch stream emits grpc's
  // plain Error with a numeric code: type those the same way
  const err = raw instanceof Error && raw.constructor === Error ? castGrpcError(raw) : raw
  const msg = messageOf(err)
  if (err instanceof EtcdAuthenticationFailedError) {
    return new StoreError('ESTORE', `etcd at ${ctx.where} rejected the username or password: ${msg}`, { cause: err })
  }
  if (err instanceof EtcdInvalidAuthTokenError || /invalid auth token/.test(msg)) {
    return new StoreError('ESTORE', `etcd at ${ctx.where} no longer accepts our auth token (it restarted, or the token expired); signing in again: ${msg}`, { cause: err })
  }
  if (err instanceof EtcdPermissionDeniedError || err instanceof GRPCUnauthenticatedError) {
    return new StoreError('ESTORE', `etcd at ${ctx.where} denied access: ${msg} (does it need --etcd-username and --etcd-password?)`, { cause: err })
  }
  if (/user name is empty/.test(msg)) {
    return new StoreError('ESTORE', `etcd at ${ctx.where} requires authentication: ${msg} (give --etcd-username and --etcd-password)`, { cause: err })
  }
  if (/required revision has been compacted/.test(msg)) return new StoreError('ECOMPACTED', `etcd at ${ctx.where}: ${msg}`, { cause: err })
  if (err instanceof ClientClosedError) return new StoreError('ESTORE', 'the etcd store is closed', { cause: err })
  const cert = certificateHint(msg, ctx.tls)
  if (cert !== undefined) return new StoreError('ETLS', `etcd at ${ctx.where} failed the TLS handshake: ${msg} (${cert})`, { cause: err })
  if (err instanceof GRPCUnavailableError || err instanceof GRPCDeadlineExceededError || err instanceof EtcdWatchStreamEnded || GONE.test(msg)) {
    return new StoreError('EUNAVAILABLE', `etcd at ${ctx.where} is unreachable: ${msg}${tlsHint(msg)}`, { cause: err })
  }
  return new StoreError('ESTORE', `etcd at ${ctx.where}: ${msg}${tlsHint(msg)}`, { cause: err })
}
