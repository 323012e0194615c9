// HTTP as an attacker writes it: bytes over a raw socket (TCP or the control
// socket's unix path), whatever node's own client would refuse to send, and
// what came back. Used in-process by the unit and fuzz tests, and run as a
// program inside a namespace by test/hostile/http-abuse.test.ts:
//   node raw-http.js '{"to":{"host":"198.18.0.1","port":8081},"step":{...}}'
// prints one JSON line with the step's result. Every step is bounded in
// time and count.
import net from 'node:net'

/** Request targets node's HTTP parser takes and new URL() throws on: each one stopped the daemon before issue 17. */
export const KILLERS = ['//[', '//%zz', '//a:99999', 'http://']

/** Where to connect: host and port, or a unix socket path. */
export type To = { host: string, port: number } | { path: string }

export interface RawResult {
  /** everything the server sent, as latin1 */
  text: string
  /** the status of every response in it, in order */
  statuses: number[]
  /** the server closed (or reset) the connection before we gave up waiting */
  closed: boolean
  /** ms from connecting to the server's close, or to giving up */
  ms: number
}

export interface RawOptions {
  /** half-close our side after sending (FIN): the server must still answer and close */
  end?: boolean
  /** give up after this long without a byte from the server (default 300) */
  idleMs?: number
  /** give up after this long in all (default 5000) */
  maxMs?: number
  /** stop once this many responses have come */
  responses?: number
}

const STATUS = /HTTP\/1\.[01] (\d{3}) /g

export function statusesOf (text: string): number[] {
  return [...text.matchAll(STATUS)].map((m) => Number(m[1]))
}

function connect (to: To): net.Socket {
  return 'path' in to ? net.connect(to.path) : net.connect(to.port, to.host)
}

/** Send `chunks` in order on one connection and collect the answer. Never rejects. */
export async function raw (to: To, chunks: ReadonlyArray<string | Buffer>, o: RawOptions = {}): Promise<RawResult> {
  const idleMs = o.idleMs ?? 300
  const maxMs = o.maxMs ?? 5000
  const t0 = Date.now()
  return await new Promise((resolve) => {
    const s = connect(to)
    let text = ''
    let done = false
    let idle: NodeJS.Timeout | undefined
    const finish = (closed: boolean): void => {
      if (done) return
      done = true
      clearTimeout(idle)
      clearTimeout(all)
      s.destroy()
      resolve({ text, statuses: statusesOf(text), closed, ms: Date.now() - t0 })
    }
    const all = setTimeout(() => finish(false), maxMs)
    const arm = (): void => {
      clearTimeout(idle)
      idle = setTimeout(() => finish(false), idleMs)
    }
    s.on('connect', () => {
      for (const c of chunks) s.write(c)
      if (o.end === true) s.end()
      arm()
    })
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1')
      arm()
      if (o.responses !== undefined && statusesOf(text).length >= o.responses) finish(false)
    })
    s.on('error', () => finish(true))
    s.on('close', () => finish(true))
  })
}

/** One GET, as a well-behaved client sends it: its status and body ({ status: 0 } if none came). */
export async function get (to: To, target: string, o: { idleMs?: number, headers?: string } = {}): Promise<{ status: number, body: string }> {
  // connection: close, so the server's close marks the end of the one response
  const r = await raw(to, [`GET ${target} HTTP/1.1\r\nhost: weft\r\nconnection: close\r\n${o.headers ?? ''}\r\n`], { idleMs: o.idleMs ?? 3000 })
  const at = r.text.indexOf('\r\n\r\n')
  return { status: r.statuses[0] ?? 0, body: at < 0 ? '' : r.text.slice(at + 4) }
}

/** `count` connections held open for `holdMs`: how many the server closed on us meanwhile. */
export async function connections (to: To, count: number, holdMs: number): Promise<{ opened: number, closedByServer: number }> {
  if (!(count >= 1 && count <= 1000)) throw new RangeError(`connections: count must be 1..1000, got ${count}`)
  let closedByServer = 0
  let opened = 0
  const socks: net.Socket[] = []
  let ending = false
  await Promise.all(Array.from({ length: count }, async () => await new Promise<void>((resolve) => {
    const s = connect(to)
    socks.push(s)
    s.on('connect', () => { opened++; resolve() })
    s.on('error', () => resolve())
    s.on('close', () => {
      if (!ending) closedByServer++
      resolve()
    })
  })))
  await new Promise((resolve) => setTimeout(resolve, holdMs))
  ending = true
  for (const s of socks) s.destroy()
  return { opened, closedByServer }
}

/** `requests` GETs of `target`, pipelined over `conns` connections at once: the statuses that came back, by status. */
export async function flood (to: To, target: string, requests: number, conns: number, maxMs: number): Promise<Record<string, number>> {
  if (!(requests >= 1 && requests <= 100_000)) throw new RangeError(`flood: requests must be 1..100000, got ${requests}`)
  const per = Math.ceil(requests / conns)
  const req = `GET ${target} HTTP/1.1\r\nhost: weft\r\n\r\n`
  const results = await Promise.all(Array.from({ length: conns }, async () => await raw(to, [req.repeat(per)], { idleMs: 1000, maxMs, responses: per })))
  const by: Record<string, number> = {}
  for (const r of results) for (const s of r.statuses) by[s] = (by[s] ?? 0) + 1
  return by
}

export interface LoopOptions {
  target: string
  /** connections, each sending its next request once the last is answered */
  conns: number
  /** stop after this long, or after `requests` in all */
  seconds: number
  requests: number
  /** requests per second over all connections; 0: as fast as they are answered */
  rate: number
}

export interface LoopResult { requests: number, seconds: number, byStatus: Record<string, number> }

/**
 * A scrape loop, as a script or a scraper gone wrong runs one: keep-alive
 * connections, one request at a time each, reconnecting when the server
 * closes. Bounded by time and by count.
 */
export async function loop (to: To, o: LoopOptions): Promise<LoopResult> {
  if (!(o.seconds > 0 && o.seconds <= 120) || !(o.rate >= 0) || !(o.conns >= 1 && o.conns <= 64) || !(o.requests >= 1 && o.requests <= 10_000_000)) throw new RangeError(`loop: bad options ${JSON.stringify(o)}`)
  const t0 = performance.now()
  const until = t0 + o.seconds * 1000
  let taken = 0
  const byStatus: Record<string, number> = {}
  /** a request may go: the count is shared by the connections */
  const take = (): boolean => {
    if (taken >= o.requests) return false
    taken++
    return true
  }
  const req = Buffer.from(`GET ${o.target} HTTP/1.1\r\nhost: weft\r\n\r\n`)
  await Promise.all(Array.from({ length: o.conns }, async (_, i) => {
    // paced: the connections share the rate, each at rate / conns, staggered
    let k = 0
    const due = (): number => t0 + (i + o.conns * k++) * 1000 / o.rate
    let exhausted = false
    while (!exhausted && performance.now() < until) {
      const sock = connect(to)
      let buf = Buffer.alloc(0)
      let wake: (() => void) | undefined
      let closed = false
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d])
        wake?.()
      })
      sock.on('close', () => {
        closed = true
        wake?.()
      })
      sock.on('error', () => { /* 'close' follows */ })
      const more = async (): Promise<void> => await new Promise((resolve) => { wake = resolve })
      try {
        while (!closed && performance.now() < until) {
          if (!take()) {
            exhausted = true
            break
          }
          if (o.rate > 0) {
            const at = due()
            if (at > performance.now()) await new Promise((resolve) => setTimeout(resolve, at - performance.now()))
          }
          sock.write(req)
          // one whole response: the headers, then content-length bytes (or chunks up to the last, empty one)
          let end = -1
          let status = 0
          for (;;) {
            const h = buf.indexOf('\r\n\r\n')
            if (h >= 0) {
              const head = buf.subarray(0, h).toString('latin1')
              status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)
              if (/^transfer-encoding: chunked/im.test(head)) {
                const last = buf.indexOf('\r\n0\r\n\r\n', h + 2)
                end = last < 0 ? Infinity : last + 7
              } else end = h + 4 + Number(/^content-length: (\d+)/im.exec(head)?.[1] ?? 0)
              if (buf.length >= end) break
            }
            if (closed || performance.now() > until + 5000) break
            await more()
          }
          if (end < 0 || !(buf.length >= end)) break
          byStatus[status] = (byStatus[status] ?? 0) + 1
          buf = buf.subarray(end)
        }
      } finally {
        sock.destroy()
      }
    }
  }))
  return { requests: Object.values(byStatus).reduce((a, b) => a + b, 0), seconds: (performance.now() - t0) / 1000, byStatus }
}

type Step =
  | { kind: 'raw', chunks: string[], end?: boolean, idleMs?: number, maxMs?: number }
  | { kind: 'get', target: string, headers?: string }
  | { kind: 'connections', count: number, holdMs: number }
  | { kind: 'flood', target: string, requests: number, conns: number, maxMs: number }
  | ({ kind: 'loop' } & LoopOptions)

/** As a program: one step (chunks are latin1 strings), one JSON line. */
async function main (): Promise<void> {
  const { to, step } = JSON.parse(process.argv[2] ?? '') as { to: To, step: Step }
  let out: unknown
  if (step.kind === 'raw') out = await raw(to, step.chunks.map((c) => Buffer.from(c, 'latin1')), step)
  else if (step.kind === 'get') out = await get(to, step.target, step.headers !== undefined ? { headers: step.headers } : {})
  else if (step.kind === 'connections') out = await connections(to, step.count, step.holdMs)
  else if (step.kind === 'flood') out = await flood(to, step.target, step.requests, step.conns, step.maxMs)
  else out = await loop(to, step)
  process.stdout.write(JSON.stringify(out) + '\n')
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`${err.stack ?? String(err)}\n`)
    process.exitCode = 1
  })
}
