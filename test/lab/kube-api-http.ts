// Raw HTTP against the stand-in API server for its tests: one request with
// the server's CA and token (or another token, or none), and a watch read
// line by line. Every request is bounded; nothing is kept alive.
import http, { type IncomingHttpHeaders } from 'node:http'
import https from 'node:https'
import { readFileSync } from 'node:fs'
import type { KubeApi } from '../../lab/kube-api'
import { waitFor } from '../../lab/wait'

export interface Answer {
  code: number
  headers: IncomingHttpHeaders
  text: string
  json: any
}

export interface CallOptions {
  /** an object is sent as JSON; a string or Buffer as is */
  body?: unknown
  /** Content-Type; default application/json with a body */
  type?: string
  /** null: no Authorization header */
  token?: string | null
  accept?: string
  timeoutMs?: number
}

function requestOpts (api: KubeApi, method: string, path: string, o: CallOptions): https.RequestOptions {
  const u = new URL(api.url)
  const headers: Record<string, string> = {}
  const token = o.token === undefined ? api.token : o.token
  if (token !== null) headers.Authorization = `Bearer ${token}`
  if (o.accept !== undefined) headers.Accept = o.accept
  return { method, host: u.hostname, port: u.port, path, headers, agent: false, ...(api.caFile === '' ? {} : { ca: readFileSync(api.caFile) }) }
}

const client = (api: KubeApi): typeof https => api.url.startsWith('https:') ? https : http as unknown as typeof https

/** One request; rejects only when no answer comes within timeoutMs (default 5000). */
export function call (api: KubeApi, method: string, path: string, o: CallOptions = {}): Promise<Answer> {
  const opts = requestOpts(api, method, path, o)
  let payload: Buffer | undefined
  if (o.body !== undefined) {
    payload = Buffer.isBuffer(o.body) ? o.body : Buffer.from(typeof o.body === 'string' ? o.body : JSON.stringify(o.body))
    opts.headers = { ...opts.headers, 'Content-Type': o.type ?? 'application/json', 'Content-Length': String(payload.length) }
  }
  return new Promise((resolve, reject) => {
    const req = client(api).request(opts, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => {
        let json: unknown
        try { json = JSON.parse(text) } catch { json = undefined }
        resolve({ code: res.statusCode ?? 0, headers: res.headers, text, json })
      })
    })
    req.setTimeout(o.timeoutMs ?? 5000, () => req.destroy(new Error(`${method} ${path}: no answer within ${o.timeoutMs ?? 5000} ms`)))
    req.on('error', reject)
    req.end(payload)
  })
}

export interface WatchEvent { type: string, object: any }

export interface WatchStream {
  readonly code: Promise<number>
  /** complete event lines so far */
  readonly events: WatchEvent[]
  /** every byte of the body so far */
  readonly text: () => string
  /** how the stream ended: 'end' (the server ended it cleanly) or 'cut' (the connection went mid-body) */
  readonly ended: Promise<'end' | 'cut'>
  /** waits until `n` events have come (default 5 s) */
  until: (n: number, timeoutMs?: number) => Promise<WatchEvent[]>
  close: () => void
}

/** GET `path` (a watch) and read its events as they come. */
export function watch (api: KubeApi, path: string, o: CallOptions = {}): WatchStream {
  const events: WatchEvent[] = []
  let text = ''
  let partial = ''
  let onCode: (c: number) => void = () => {}
  let onEnd: (how: 'end' | 'cut') => void = () => {}
  const code = new Promise<number>((resolve) => { onCode = resolve })
  const ended = new Promise<'end' | 'cut'>((resolve) => { onEnd = resolve })
  const req = client(api).request(requestOpts(api, 'GET', path, o), (res) => {
    onCode(res.statusCode ?? 0)
    res.setEncoding('utf8')
    res.on('data', (c: string) => {
      text += c
      const lines = (partial + c).split('\n')
      partial = lines.pop()!
      for (const l of lines) if (l !== '') events.push(JSON.parse(l))
    })
    res.on('error', () => {})
    res.on('close', () => onEnd(res.complete ? 'end' : 'cut'))
  })
  req.on('error', () => { onCode(0); onEnd('cut') })
  req.end()
  return {
    code,
    events,
    text: () => text,
    ended,
    until: async (n, timeoutMs = 5000) => {
      await waitFor(() => events.length >= n, { what: `${n} events on ${path} (have ${JSON.stringify(events.map((e) => e.type))})`, timeoutMs, intervalMs: 10 })
      return events
    },
    close: () => req.destroy()
  }
}

/** The node named in an event, and its resourceVersion */
export const brief = (e: WatchEvent): string => `${e.type} ${e.object?.metadata?.name ?? ''}@${e.object?.metadata?.resourceVersion ?? ''}`
