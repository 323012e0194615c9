// labelSelector and fieldSelector as the server parses them, for lists and
// watches. Labels: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
// `k notin (a,b)`, `k>n`, `k<n`, joined by commas. Fields: `f=v`, `f==v`,
// `f!=v` over the fields the resource supports (others: 400, as the server).
import { isObject, own, type JsonObject } from './json'
import { badRequest } from './status'

export type Selector = (obj: JsonObject) => boolean

const KEY = String.raw`(?:[A-Za-z0-9](?:[-A-Za-z0-9.]*[A-Za-z0-9])?/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?`
const VAL = String.raw`(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?`
const EXISTS = new RegExp(`^(!?)\\s*(${KEY})$`)
const EQUALS = new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*(${VAL})$`)
const SET = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(\\s*(${VAL}(?:\\s*,\\s*${VAL})*)\\s*\\)$`)
const NUMERIC = new RegExp(`^(${KEY})\\s*(<|>)\\s*(-?[0-9]+)$`)

/** Commas outside parentheses separate requirements. */
function requirements (s: string): string[] {
  const out: string[] = []
  let depth = 0
  let cur = ''
  for (const ch of s) {
    if (ch === '(') depth++
    if (ch === ')') depth--
    if (ch === ',' && depth === 0) {
      out.push(cur.trim())
      cur = ''
    } else {
      cur += ch
    }
  }
  out.push(cur.trim())
  return out
}

function labelsOf (obj: JsonObject): Record<string, string> {
  const md = own(obj, 'metadata')
  const labels = isObject(md) ? own(md, 'labels') : undefined
  return isObject(labels) ? labels as Record<string, string> : {}
}

export function parseLabelSelector (s: string | null): Selector {
  if (s === null || s.trim() === '') return () => true
  const tests = requirements(s).map((r): ((l: Record<string, string>) => boolean) => {
    let m = EQUALS.exec(r)
    if (m !== null) {
      const [, k, op, v] = m as unknown as [string, string, string, string]
      return op === '!=' ? (l) => own(l, k) !== v : (l) => own(l, k) === v
    }
    m = SET.exec(r)
    if (m !== null) {
      const [, k, op, vs] = m as unknown as [string, string, string, string]
      const set = vs.split(',').map((v) => v.trim())
      return op === 'in' ? (l) => set.includes(own(l, k) as string) : (l) => !set.includes(own(l, k) as string)
    }
    m = NUMERIC.exec(r)
    if (m !== null) {
      const [, k, op, n] = m as unknown as [string, string, string, string]
      return (l) => {
        const v = own(l, k)
        if (typeof v !== 'string' || !/^-?[0-9]+$/.test(v)) return false
        return op === '<' ? Number(v) < Number(n) : Number(v) > Number(n)
      }
    }
    m = EXISTS.exec(r)
    if (m !== null) {
      const [, not, k] = m as unknown as [string, string, string]
      return not === '!' ? (l) => own(l, k) === undefined : (l) => own(l, k) !== undefined
    }
    throw badRequest(`unable to parse requirement: found '${r}', expected: identifier`)
  })
  return (obj) => {
    const l = labelsOf(obj)
    return tests.every((t) => t(l))
  }
}

/** The selectable fields of an object, as strings. */
export type Fields = (obj: JsonObject) => Record<string, string>

export function parseFieldSelector (s: string | null, fields: Fields, supported: readonly string[]): Selector {
  if (s === null || s.trim() === '') return () => true
  const tests = requirements(s).map((r) => {
    const m = /^([^!=\s]+)\s*(==|=|!=)\s*(.*)$/.exec(r)
    if (m === null) throw badRequest(`invalid selector: '${s}'; can't understand '${r}'`)
    const [, f, op, v] = m as unknown as [string, string, string, string]
    if (!supported.includes(f)) throw badRequest(`field label not supported: ${f}`)
    return op === '!=' ? (o: Record<string, string>) => o[f] !== v : (o: Record<string, string>) => o[f] === v
  })
  return (obj) => {
    const f = fields(obj)
    return tests.every((t) => t(f))
  }
}
