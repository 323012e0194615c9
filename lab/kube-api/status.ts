// Errors as the real API server writes them: a v1 Status with the reason
// and message shapes of k8s.io/apimachinery/pkg/api/errors, so a client's
// error handling (kubectl's messages, client-go's IsNotFound/IsConflict,
// @kubernetes/client-node's ApiException) is exercised as in a cluster.

export interface StatusCause { reason?: string, message?: string, field?: string }

export interface StatusDetails {
  name?: string
  group?: string
  /** the resource ("nodes"), as the real server fills it */
  kind?: string
  uid?: string
  causes?: StatusCause[]
}

export interface Status {
  kind: 'Status'
  apiVersion: 'v1'
  metadata: Record<string, never>
  status: 'Failure' | 'Success'
  message?: string
  reason?: string
  details?: StatusDetails
  code: number
}

/** Thrown by handlers; the router answers it as its Status. */
export class KubeError extends Error {
  constructor (readonly code: number, readonly reason: string, message: string, readonly details?: StatusDetails) {
    super(message)
  }

  get status (): Status {
    // key order as the server's: message, reason, details, code
    const s: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason } as Status
    if (this.details !== undefined) s.details = this.details
    s.code = this.code
    return s
  }
}

/** `nodes "h9" not found` */
export const notFound = (resource: string, name: string): KubeError =>
  new KubeError(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource })

export const alreadyExists = (resource: string, name: string): KubeError =>
  new KubeError(409, 'AlreadyExists', `${resource} "${name}" already exists`, { name, kind: resource })

/** a stale metadata.resourceVersion on update or patch */
export const conflict = (resource: string, name: string): KubeError =>
  new KubeError(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: resource })

export const preconditionFailed = (resource: string, name: string, what: string): KubeError =>
  new KubeError(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": ${what}`, { name, kind: resource })

export const badRequest = (message: string): KubeError => new KubeError(400, 'BadRequest', message)

/** 422 as the server's field validation words it: `Node "X" is invalid: metadata.name: Invalid value: ...` */
export const invalid = (kind: string, name: string, field: string, value: unknown, why: string): KubeError =>
  new KubeError(422, 'Invalid', `${kind} "${name}" is invalid: ${field}: Invalid value: ${JSON.stringify(value)}: ${why}`,
    { name, kind, causes: [{ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${why}`, field }] })

/**
 * A JSON patch that fails to apply (a `test` op, a missing path): 422 with
 * the generic message and empty details, as the server's
 * NewGenericServerResponse makes it; the library's own words are not sent.
 */
export const patchRejected = (): KubeError =>
  new KubeError(422, 'Invalid', 'the server rejected our request due to an error in our request', {})

export const unauthorized = (): KubeError => new KubeError(401, 'Unauthorized', 'Unauthorized')

/**
 * RBAC's denial: `nodes "h1" is forbidden: User "..." cannot patch resource
 * "nodes/status" in API group "" at the cluster scope` (no name: `nodes is
 * forbidden: ...`; namespaced: `... in the namespace "ns"`). details.kind is
 * the resource without its subresource, as the server sets it.
 */
export function forbidden (user: string, verb: string, resource: string, name: string | undefined, namespace: string | undefined): KubeError {
  const base = resource.split('/')[0]!
  const scope = namespace === undefined ? 'at the cluster scope' : `in the namespace "${namespace}"`
  const who = name === undefined ? base : `${base} "${name}"`
  const details: StatusDetails = name === undefined ? { kind: base } : { name, kind: base }
  return new KubeError(403, 'Forbidden', `${who} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "" ${scope}`, details)
}

/** a watch from before the kept history: `too old resource version: 5 (20)` */
export const expired = (requested: string, oldest: number): KubeError =>
  new KubeError(410, 'Expired', `too old resource version: ${requested} (${oldest})`)

export const unsupportedMediaType = (accepted: readonly string[]): KubeError =>
  new KubeError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`)

export const notAcceptable = (): KubeError =>
  new KubeError(406, 'NotAcceptable', 'only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf')

export const methodNotAllowed = (): KubeError =>
  new KubeError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {})

export const pathNotFound = (): KubeError =>
  new KubeError(404, 'NotFound', 'the server could not find the requested resource', {})

export const tooLarge = (limit: number): KubeError =>
  new KubeError(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${limit}`)

export const internal = (message: string): KubeError =>
  new KubeError(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] })

/** DELETE's answer for a resource deleted at once (no finalizers): Success, naming what went */
export function deleted (resource: string, name: string, uid: string): Omit<Status, 'message' | 'reason'> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, kind: resource, uid }, code: 200 }
}
