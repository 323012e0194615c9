// The HTTP plumbing: bounded bodies, JSON answers, Accept negotiation
// (JSON, or a Table for kubectl's default output) and query parameters
// parsed as the server parses them.
import type { IncomingMessage } from 'node:http'
import { depth, MAX_DEPTH, type Json } from './json'
import { badRequest, KubeError, notAcceptable, tooLarge } from './status'
import type { Include, TableVersion } from './table'

/** Bodies above this are refused with 413 (the real server's limit is 3 MiB; tests need only to see one). */
export const MAX_BODY = 1 << 20

/** The request body, at most MAX_BODY bytes: 413 as soon as it is known to be larger. */
export function readBody (req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > MAX_BODY) return Promise.reject(tooLarge(MAX_BODY))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    req.on('data', (c: Buffer) => {
      if (done) return
      size += c.length
      if (size > MAX_BODY) {
        done = true
        reject(tooLarge(MAX_BODY))
        return
      }
      chunks.push(c)
    })
    req.on('end', () => { if (!done) { done = true; resolve(Buffer.concat(chunks)) } })
    req.on('error', (err) => { if (!done) { done = true; reject(err) } })
    req.on('close', () => { if (!done) { done = true; reject(new Error('client went away')) } })
  })
}

/** A body as JSON: malformed or too deeply nested is 400, as the server's decoder says it. */
export function parseJson (body: Buffer): Json {
  let v: Json
  try {
    v = JSON.parse(body.toString('utf8'))
  } catch (err) {
    throw badRequest(`error decoding body: ${(err as Error).message}`)
  }
  if (depth(v) > MAX_DEPTH) throw badRequest(`error decoding body: exceeded max depth of ${MAX_DEPTH}`)
  return v
}

/** The media type of a Content-Type header, lower case, without parameters. */
export function mediaType (header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase()
}

export interface Negotiated {
  /** a meta.k8s.io Table in this version, or plain JSON */
  table?: TableVersion
}

/**
 * What to answer a GET with, from Accept: the first range we can serve, in
 * order (kubectl lists Table v1, Table v1beta1, then plain JSON). Protobuf
 * and PartialObjectMetadata are not served: a client listing only those gets 406.
 */
export function negotiate (accept: string | undefined): Negotiated {
  if (accept === undefined || accept.trim() === '') return {}
  for (const range of accept.split(',')) {
    const [type, ...rawParams] = range.split(';').map((s) => s.trim())
    const params: Record<string, string> = {}
    for (const p of rawParams) {
      const i = p.indexOf('=')
      if (i > 0) params[p.slice(0, i).trim().toLowerCase()] = p.slice(i + 1).trim()
    }
    const t = type!.toLowerCase()
    if (t !== 'application/json' && t !== 'application/*' && t !== '*/*') continue
    if (params.as === undefined) return {}
    if (params.as === 'Table' && params.g === 'meta.k8s.io' && (params.v === 'v1' || params.v === 'v1beta1')) return { table: params.v }
  }
  throw notAcceptable()
}

/** includeObject for Tables: Metadata unless told */
export function includeObject (q: URLSearchParams): Include {
  const v = q.get('includeObject')
  if (v === null || v === '') return 'Metadata'
  if (v === 'None' || v === 'Metadata' || v === 'Object') return v
  throw badRequest(`includeObject: Unsupported value: "${v}": supported values: "Metadata", "None", "Object"`)
}

/** Go's strconv.ParseBool, which the server's query decoding uses. */
export function boolParam (q: URLSearchParams, name: string): boolean {
  const v = q.get(name)
  if (v === null || v === '') return false
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false
  throw badRequest(`strconv.ParseBool: parsing "${v}": invalid syntax`)
}

/** dryRun=All: everything but the write */
export function dryRunParam (q: URLSearchParams): boolean {
  const vs = q.getAll('dryRun')
  if (vs.length === 0) return false
  if (vs.every((v) => v === 'All')) return true
  throw new KubeError(400, 'BadRequest', `Invalid dry run value: ${JSON.stringify(vs.join(','))}`)
}

/** A resourceVersion as the store counts it; malformed is 400. */
export function parseRv (v: string): number {
  if (!/^[0-9]{1,15}$/.test(v)) throw badRequest(`invalid resource version: ${JSON.stringify(v)}`)
  return Number(v)
}
