// The two merge patches the API server takes: RFC 7386 JSON merge patch
// (application/merge-patch+json) and the strategic merge patch
// (application/strategic-merge-patch+json), whose lists merge by the
// patchStrategy/patchMergeKey tags of the Go types. RFC 6902 JSON patch is
// in json-patch.ts.
import { clone, deepEqual, isObject, own, put, type Json, type JsonObject } from './json'

/** The patch is malformed for its type (the server: 400 BadRequest). */
export class PatchError extends Error {}

/** RFC 7386: objects merge recursively, null deletes a key, anything else (arrays too) replaces. */
export function mergePatch (target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return clone(patch)
  const out: JsonObject = isObject(target) ? { ...target } : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else put(out, k, mergePatch(own(out, k), v))
  }
  return out
}

/**
 * How a list merges in a strategic merge patch, by its path from the
 * object's root (`[]` stands for "an item of the list"). Lists not named
 * here are atomic: the patch's list replaces them.
 */
export type ListStrategy = { mergeKey: string } | 'set'
export type MergeSchema = Readonly<Record<string, ListStrategy>>

/**
 * Node's tags in k8s.io/api/core/v1 (types.go). `spec.taints` has no
 * patchStrategy there, so it is replaced as a whole, as by the real server.
 */
export const NODE_SCHEMA: MergeSchema = {
  'metadata.finalizers': 'set',
  'metadata.ownerReferences': { mergeKey: 'uid' },
  'spec.podCIDRs': 'set',
  'status.addresses': { mergeKey: 'type' },
  'status.conditions': { mergeKey: 'type' },
  'status.volumesAttached': { mergeKey: 'name' }
}

const DIRECTIVE = '$patch'
const RETAIN_KEYS = '$retainKeys'
const ORDER = '$setElementOrder/'
const DELETE_FROM = '$deleteFromPrimitiveList/'

/**
 * The strategic merge patch of `original` by `patch`: maps merge
 * recursively and null deletes a key; lists merge by their strategy in
 * `schema` (by merge key, or as a set of primitives) or are replaced.
 * Directives: `$patch: replace|delete` on a map or a list item,
 * `$retainKeys`, `$deleteFromPrimitiveList/<list>`. `$setElementOrder/<list>`
 * (what `kubectl apply` sends) is accepted and its ordering not applied.
 */
export function strategicMergePatch (original: JsonObject, patch: Json, schema: MergeSchema): JsonObject {
  if (!isObject(patch)) throw new PatchError('a strategic merge patch must be a JSON object')
  return mergeMap(original, patch, '', schema) ?? {}
}

const child = (path: string, k: string): string => path === '' ? k : `${path}.${k}`

/** The merged map, or undefined when the patch says `$patch: delete`. */
function mergeMap (original: JsonObject, patch: JsonObject, path: string, schema: MergeSchema): JsonObject | undefined {
  const directive = own(patch, DIRECTIVE)
  if (directive === 'delete') return undefined
  if (directive === 'replace') return mergeMap({}, withoutKey(patch, DIRECTIVE), path, schema)
  if (directive !== undefined && directive !== 'merge') throw new PatchError(`unknown patch type: ${JSON.stringify(directive)} in map: ${JSON.stringify(patch)}`)

  const out: JsonObject = { ...original }
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith(DELETE_FROM)) continue
    const name = k.slice(DELETE_FROM.length)
    if (!Array.isArray(v)) throw new PatchError(`invalid patch: ${k} must be a list`)
    const cur = own(out, name)
    if (Array.isArray(cur)) put(out, name, cur.filter((x) => !v.some((d) => deepEqual(x, d))))
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k === DIRECTIVE || k === RETAIN_KEYS || k.startsWith(ORDER) || k.startsWith(DELETE_FROM)) continue
    const p = child(path, k)
    if (v === null) {
      delete out[k]
      continue
    }
    const cur = own(out, k)
    let merged: Json | undefined
    if (isObject(v)) merged = mergeMap(isObject(cur) ? cur : {}, v, p, schema)
    else if (Array.isArray(v)) merged = mergeList(Array.isArray(cur) ? cur : [], v, p, schema)
    else merged = v
    if (merged === undefined) delete out[k]
    else put(out, k, merged)
  }
  const retain = own(patch, RETAIN_KEYS)
  if (retain !== undefined) {
    if (!Array.isArray(retain) || !retain.every((x) => typeof x === 'string')) throw new PatchError(`invalid patch: ${RETAIN_KEYS} must be a list of strings`)
    for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k]
  }
  return out
}

function mergeList (original: Json[], patch: Json[], path: string, schema: MergeSchema): Json[] {
  const strategy = schema[path]
  if (strategy === undefined) return patch.map((v) => isObject(v) ? mergeMap({}, v, `${path}[]`, schema) ?? {} : clone(v))
  if (strategy === 'set') {
    const out = [...original]
    for (const v of patch) {
      if (isObject(v) || Array.isArray(v)) throw new PatchError(`invalid patch: ${path} is a list of primitives`)
      if (!out.some((x) => deepEqual(x, v))) out.push(v)
    }
    return out
  }
  const key = strategy.mergeKey
  const item = `${path}[]`
  if (patch.some((v) => isObject(v) && own(v, DIRECTIVE) === 'replace')) {
    return patch.filter((v) => !(isObject(v) && own(v, DIRECTIVE) === 'replace')).map((v) => isObject(v) ? mergeMap({}, v, item, schema) ?? {} : v)
  }
  let out = [...original]
  for (const v of patch) {
    if (!isObject(v)) throw new PatchError(`invalid patch: ${path} is a list of maps, got ${JSON.stringify(v)}`)
    const kv = own(v, key)
    if (kv === undefined) throw new PatchError(`map: ${JSON.stringify(v)} does not contain declared merge key: ${key}`)
    const same = (x: Json): boolean => isObject(x) && deepEqual(own(x, key), kv)
    if (own(v, DIRECTIVE) === 'delete') {
      out = out.filter((x) => !same(x))
      continue
    }
    const at = out.findIndex(same)
    const merged = mergeMap(at >= 0 ? out[at] as JsonObject : {}, v, item, schema)
    if (at >= 0) {
      if (merged === undefined) out.splice(at, 1)
      else out[at] = merged
    } else if (merged !== undefined) {
      out.push(merged)
    }
  }
  return out
}

function withoutKey (o: JsonObject, k: string): JsonObject {
  const out = { ...o }
  delete out[k]
  return out
}
