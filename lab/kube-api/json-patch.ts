// RFC 6902 JSON patch (application/json-patch+json): add, remove, replace,
// move, copy and test, applied in order to a copy; the first failing
// operation fails the whole patch, as with the server's evanphx/json-patch.
import { clone, deepEqual, isObject, own, put, type Json } from './json'

/** The body is not a JSON patch (the server: 400 BadRequest). */
export class PatchDecodeError extends Error {}
/** An operation cannot be applied, a failed `test` included (the server: 422). */
export class PatchApplyError extends Error {}

interface Op { op: string, path: string, from?: string, value?: Json }

const OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test'])

function decode (ops: Json): Op[] {
  if (!Array.isArray(ops)) throw new PatchDecodeError('json: cannot unmarshal object into Go value of type jsonpatch.Patch')
  return ops.map((o) => {
    if (!isObject(o)) throw new PatchDecodeError('json: cannot unmarshal into Go value of type jsonpatch.Operation')
    const op = own(o, 'op')
    const path = own(o, 'path')
    if (typeof op !== 'string' || !OPS.has(op)) throw new PatchDecodeError(`Unexpected kind: ${String(op)}`)
    if (typeof path !== 'string') throw new PatchDecodeError(`${op} operation missing path`)
    const from = own(o, 'from')
    if ((op === 'move' || op === 'copy') && typeof from !== 'string') throw new PatchDecodeError(`${op} operation missing from`)
    const r: Op = { op, path }
    if (typeof from === 'string') r.from = from
    if (Object.prototype.hasOwnProperty.call(o, 'value')) r.value = o.value!
    return r
  })
}

/** "/a/b~1c" -> ['a', 'b/c'] */
function tokens (pointer: string): string[] {
  if (pointer === '') return []
  if (!pointer.startsWith('/')) throw new PatchApplyError(`JSON pointer must be empty or start with a "/": ${pointer}`)
  return pointer.slice(1).split('/').map((t) => {
    if (/~[^01]|~$/.test(t)) throw new PatchApplyError(`invalid JSON pointer escape in ${pointer}`)
    return t.replace(/~1/g, '/').replace(/~0/g, '~')
  })
}

const INDEX = /^(0|[1-9][0-9]*)$/

function index (arr: Json[], t: string, pointer: string, allowEnd: boolean): number {
  if (allowEnd && t === '-') return arr.length
  if (!INDEX.test(t)) throw new PatchApplyError(`invalid array index ${JSON.stringify(t)} in ${pointer}`)
  const i = Number(t)
  if (i > arr.length || (!allowEnd && i === arr.length)) throw new PatchApplyError(`array index out of bounds: ${pointer}`)
  return i
}

/** The value at `ts` in doc, or undefined when there is none. */
function get (doc: Json, ts: string[]): Json | undefined {
  let cur: Json | undefined = doc
  for (const t of ts) {
    if (Array.isArray(cur)) cur = INDEX.test(t) ? cur[Number(t)] : undefined
    else if (isObject(cur)) cur = own(cur, t)
    else return undefined
    if (cur === undefined) return undefined
  }
  return cur
}

function parentOf (doc: Json, ts: string[], op: string, pointer: string): Json[] | Record<string, Json> {
  const parent = get(doc, ts.slice(0, -1))
  if (!Array.isArray(parent) && !isObject(parent)) throw new PatchApplyError(`${op} operation does not apply: doc is missing path: "${pointer}": missing value`)
  return parent
}

function add (doc: Json, pointer: string, value: Json): Json {
  const ts = tokens(pointer)
  if (ts.length === 0) return value
  const parent = parentOf(doc, ts, 'add', pointer)
  const last = ts[ts.length - 1]!
  if (Array.isArray(parent)) parent.splice(index(parent, last, pointer, true), 0, value)
  else put(parent, last, value)
  return doc
}

function remove (doc: Json, pointer: string): Json {
  const ts = tokens(pointer)
  if (ts.length === 0) throw new PatchApplyError('unable to remove the whole document')
  const parent = parentOf(doc, ts, 'remove', pointer)
  const last = ts[ts.length - 1]!
  if (Array.isArray(parent)) {
    parent.splice(index(parent, last, pointer, false), 1)
  } else {
    if (own(parent, last) === undefined) throw new PatchApplyError(`Unable to remove nonexistent key: ${last}: missing value`)
    delete parent[last]
  }
  return doc
}

function replace (doc: Json, pointer: string, value: Json): Json {
  const ts = tokens(pointer)
  if (get(doc, ts) === undefined) throw new PatchApplyError(`replace operation does not apply: doc is missing key: ${pointer}: missing value`)
  if (ts.length === 0) return value
  const parent = parentOf(doc, ts, 'replace', pointer)
  const last = ts[ts.length - 1]!
  // in place, so an object's keys keep their order
  if (Array.isArray(parent)) parent[index(parent, last, pointer, false)] = value
  else put(parent, last, value)
  return doc
}

/** `ops` (a parsed RFC 6902 patch) applied to a copy of doc. */
export function jsonPatch (doc: Json, ops: Json): Json {
  let out = clone(doc)
  for (const o of decode(ops)) {
    const value = (): Json => {
      if (o.value === undefined) throw new PatchApplyError(`${o.op} operation missing value`)
      return clone(o.value)
    }
    switch (o.op) {
      case 'add':
        out = add(out, o.path, value())
        break
      case 'remove':
        out = remove(out, o.path)
        break
      case 'replace':
        out = replace(out, o.path, value())
        break
      case 'move': {
        const v = get(out, tokens(o.from!))
        if (v === undefined) throw new PatchApplyError(`move operation does not apply: doc is missing from path: ${o.from!}: missing value`)
        if (o.path.startsWith(o.from! + '/')) throw new PatchApplyError(`move operation cannot move ${o.from!} into its own child ${o.path}`)
        if (o.path === o.from) break
        out = add(remove(out, o.from!), o.path, v)
        break
      }
      case 'copy': {
        const v = get(out, tokens(o.from!))
        if (v === undefined) throw new PatchApplyError(`copy operation does not apply: doc is missing from path: ${o.from!}: missing value`)
        out = add(out, o.path, clone(v))
        break
      }
      case 'test': {
        const cur = get(out, tokens(o.path))
        const want = o.value ?? null
        // a missing value tests equal to null, as with the server's library
        if (cur === undefined ? want !== null : !deepEqual(cur, want)) throw new PatchApplyError(`testing value ${o.path} failed: test failed`)
        break
      }
    }
  }
  return out
}
