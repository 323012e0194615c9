// Node's strategy, as pkg/registry/core/node does it: what a body decodes
// to, and what create, update, patch and delete keep and change. The main
// resource writes metadata and spec and keeps status; the status
// subresource writes status and metadata (labels, annotations: flanneld
// patches its annotations there) and keeps spec. Updates need no
// resourceVersion (nodes allow unconditional updates) but a stale one is a
// 409; a write that changes nothing keeps the resourceVersion.
import { randomBytes } from 'node:crypto'
import { isObject, own, put, type Json, type JsonObject } from './json'
import { jsonPatch, PatchApplyError, PatchDecodeError } from './json-patch'
import { metadataOf, nameOf, type Store } from './objects'
import { mergePatch, NODE_SCHEMA, PatchError, strategicMergePatch } from './patch'
import type { Fields } from './select'
import { alreadyExists, badRequest, conflict, deleted, invalid, KubeError, notFound, patchRejected, preconditionFailed } from './status'

export type Subresource = 'main' | 'status'

export const NODE_SELECTABLE = ['metadata.name', 'spec.unschedulable'] as const

export const nodeFields: Fields = (o) => ({
  'metadata.name': nameOf(o),
  'spec.unschedulable': String(isObject(o.spec) && o.spec.unschedulable === true)
})

// Fields of the Go types; others are dropped when decoding, as the server's typed decoder does.
const TOP = ['kind', 'apiVersion', 'metadata', 'spec', 'status']
const META = ['name', 'generateName', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp',
  'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers', 'managedFields']
const SPEC = ['podCIDR', 'podCIDRs', 'providerID', 'unschedulable', 'taints', 'configSource', 'externalID']
const STATUS = ['capacity', 'allocatable', 'phase', 'conditions', 'addresses', 'daemonEndpoints', 'nodeInfo', 'images',
  'volumesInUse', 'volumesAttached', 'config', 'runtimeHandlers', 'features']

function pick (o: JsonObject, keys: readonly string[]): JsonObject {
  const out: JsonObject = {}
  for (const k of keys) if (own(o, k) !== undefined) out[k] = o[k]!
  return out
}

function objectField (o: JsonObject, k: string, where: string): JsonObject | undefined {
  const v = own(o, k)
  if (v === undefined || v === null) return undefined
  if (!isObject(v)) throw badRequest(`json: cannot unmarshal ${goType(v)} into Go struct field ${where} of type object`)
  return v
}

function goType (v: Json): string {
  if (Array.isArray(v)) return 'array'
  if (v === null) return 'null'
  return typeof v === 'object' ? 'object' : typeof v
}

function stringMap (md: JsonObject, k: 'labels' | 'annotations'): void {
  const m = objectField(md, k, `ObjectMeta.metadata.${k}`)
  if (m === undefined) {
    delete md[k]
    return
  }
  for (const [key, v] of Object.entries(m)) {
    if (typeof v !== 'string') throw badRequest(`json: cannot unmarshal ${goType(v)} into Go struct field ObjectMeta.metadata.${k} of type string (key ${JSON.stringify(key)})`)
  }
}

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/** A body as a Node: kind and apiVersion checked, unknown fields dropped, labels and annotations strings. */
export function decodeNode (body: Json): JsonObject {
  if (!isObject(body)) throw badRequest(`json: cannot unmarshal ${goType(body)} into Go value of type v1.Node`)
  if (body.kind !== undefined && body.kind !== 'Node') throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (Node)`)
  if (body.apiVersion !== undefined && body.apiVersion !== 'v1') throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (v1)`)
  const node = pick(body, TOP)
  node.kind = 'Node'
  node.apiVersion = 'v1'
  const md = pick(objectField(body, 'metadata', 'Node.metadata') ?? {}, META)
  stringMap(md, 'labels')
  stringMap(md, 'annotations')
  for (const k of ['name', 'generateName', 'uid', 'resourceVersion', 'creationTimestamp'] as const) {
    const v = own(md, k)
    if (v !== undefined && v !== null && typeof v !== 'string') throw badRequest(`json: cannot unmarshal ${goType(v)} into Go struct field ObjectMeta.metadata.${k} of type string`)
    if (v === null) delete md[k]
  }
  node.metadata = md
  node.spec = pick(objectField(body, 'spec', 'Node.spec') ?? {}, SPEC)
  node.status = pick(objectField(body, 'status', 'Node.status') ?? {}, STATUS)
  return node
}

function checkName (name: string): void {
  if (name.length > 253 || !SUBDOMAIN.test(name)) {
    throw invalid('Node', name, 'metadata.name', name, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
  }
}

export function createNode (store: Store, body: Json, dryRun: boolean): JsonObject {
  const node = decodeNode(body)
  const md = metadataOf(node)
  if (typeof md.resourceVersion === 'string' && md.resourceVersion !== '') throw badRequest('resourceVersion should not be set on objects to be created')
  if ((md.name ?? '') === '' && typeof md.generateName === 'string' && md.generateName !== '') {
    md.name = md.generateName + randomBytes(4).toString('hex').slice(0, 5)
  }
  const name = String(md.name ?? '')
  if (name === '') {
    throw new KubeError(422, 'Invalid', 'Node "" is invalid: metadata.name: Required value: name or generateName is required',
      { kind: 'Node', causes: [{ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' }] })
  }
  checkName(name)
  if (store.getNode(name) !== undefined) throw alreadyExists('nodes', name)
  delete md.uid
  delete md.creationTimestamp
  delete md.resourceVersion
  return dryRun ? node : store.createNode(node)
}

function current (store: Store, name: string): JsonObject {
  const cur = store.getNode(name)
  if (cur === undefined) throw notFound('nodes', name)
  return cur
}

/** The decoded `next` stored over `cur` as `sub` may change it; the no-op and precondition rules applied. */
function commit (store: Store, cur: JsonObject, next: JsonObject, urlName: string, sub: Subresource, dryRun: boolean): JsonObject {
  const md = metadataOf(next)
  const curMd = metadataOf(cur)
  if (md.name !== urlName) throw badRequest(`the name of the object (${String(md.name ?? '')}) does not match the name on the URL (${urlName})`)
  const rv = md.resourceVersion
  if (typeof rv === 'string' && rv !== '' && rv !== curMd.resourceVersion) throw conflict('nodes', urlName)
  if (typeof md.uid === 'string' && md.uid !== '' && md.uid !== curMd.uid) {
    throw invalid('Node', urlName, 'metadata.uid', md.uid, 'field is immutable')
  }
  md.uid = curMd.uid!
  md.creationTimestamp = curMd.creationTimestamp!
  md.resourceVersion = curMd.resourceVersion!
  if (sub === 'main') put(next, 'status', cur.status ?? {})
  else put(next, 'spec', cur.spec ?? {})
  return dryRun ? next : store.updateNode(next)
}

export function getNode (store: Store, name: string): JsonObject {
  return current(store, name)
}

export function updateNode (store: Store, name: string, body: Json, sub: Subresource, dryRun: boolean): JsonObject {
  const cur = current(store, name)
  return commit(store, cur, decodeNode(body), name, sub, dryRun)
}

export const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json'] as const
export type PatchType = typeof PATCH_TYPES[number]

export function patchNode (store: Store, name: string, type: PatchType, patch: Json, sub: Subresource, dryRun: boolean): JsonObject {
  const cur = current(store, name)
  let patched: Json
  try {
    if (type === 'application/merge-patch+json') patched = mergePatch(cur, patch)
    else if (type === 'application/strategic-merge-patch+json') patched = strategicMergePatch(cur, patch, NODE_SCHEMA)
    else patched = jsonPatch(cur, patch)
  } catch (err) {
    if (err instanceof PatchApplyError) {
      process.stderr.write(`kube-api: json patch of node ${name} rejected: ${err.message}\n`)
      throw patchRejected()
    }
    if (err instanceof PatchDecodeError || err instanceof PatchError) throw badRequest(err.message)
    throw err
  }
  return commit(store, cur, decodeNode(patched), name, sub, dryRun)
}

export function deleteNode (store: Store, name: string, options: Json, dryRun: boolean): object {
  const cur = current(store, name)
  const md = metadataOf(cur)
  const pre = isObject(options) && isObject(options.preconditions) ? options.preconditions : {}
  if (typeof pre.uid === 'string' && pre.uid !== md.uid) {
    throw preconditionFailed('nodes', name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${String(md.uid)}`)
  }
  if (typeof pre.resourceVersion === 'string' && pre.resourceVersion !== md.resourceVersion) {
    throw preconditionFailed('nodes', name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${String(md.resourceVersion)}`)
  }
  if (!dryRun) store.deleteNode(name)
  return deleted('nodes', name, String(md.uid))
}
