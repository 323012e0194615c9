// JSON values as the patches and the store handle them. Bodies come from
// tests that mean to be hostile, so keys are read and written as own
// properties only: a "__proto__" key is data here, never a prototype.

export type Json = null | boolean | number | string | Json[] | JsonObject
export interface JsonObject { [k: string]: Json }

export const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v)

/** obj[k] if it is obj's own property */
export function own (obj: JsonObject, k: string): Json | undefined {
  return Object.prototype.hasOwnProperty.call(obj, k) ? obj[k] : undefined
}

/** obj[k] = v, as data even for "__proto__" */
export function put (obj: JsonObject, k: string, v: Json): void {
  Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true })
}

export function clone<T extends Json | undefined> (v: T): T {
  return v === undefined ? v : structuredClone(v)
}

export function deepEqual (a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]))
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a)
    if (ka.length !== Object.keys(b).length) return false
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]))
  }
  return false
}

/** The deepest nesting of arrays and objects in v, counted without recursion (bodies may be built to blow a stack). */
export function depth (v: Json): number {
  let max = 0
  const stack: Array<[Json, number]> = [[v, 0]]
  while (stack.length > 0) {
    const [x, d] = stack.pop()!
    if (typeof x !== 'object' || x === null) continue
    if (d + 1 > max) max = d + 1
    for (const c of Array.isArray(x) ? x : Object.values(x)) stack.push([c, d + 1])
  }
  return max
}

/** Nesting beyond this is refused before any (recursive) patch code sees it. */
export const MAX_DEPTH = 256
