// What stands between the daemon's HTTP servers (/healthz on --healthz-port,
// the control socket) and whoever reaches them. The healthz port listens on
// 0.0.0.0 by default, as flanneld's does, without authentication; these
// servers share a thread with the dataplane, so nothing a client sends may
// throw out of them (an exception there ends the process, and with it the
// TUN device and the node's pods' network), and nothing may cost more than
// a bounded amount of that thread's time.
// 1. the connection: at most `maxConnections` in all and
//    `maxConnectionsPerSource` from one address, so one client cannot lock
//    the kubelet's probe out; a connection that has not sent its headers
//    within `headersTimeoutMs`, or its request within `requestTimeoutMs`, is
//    answered 408 and closed, as is an idle one after `idleTimeoutMs`
// 2. node's parser: a request line and headers over `maxHeaderBytes` get
//    431, anything it cannot parse 400 ('clientError'); CONNECT gets 405
// 3. the request: a token bucket per source address (429 with Retry-After),
//    then the method (GET and HEAD, else 405), then the target, parsed here
//    by hand (new URL() throws on targets node's parser accepts: `//[`,
//    `//%zz`, `//a:99999`, `http://`), then the route, inside a try/catch
//    (500)
// A 429 is cheap, but not free: a client that asks again at once, in a
// loop on 4 connections, got 17,000 of them a second out of a daemon
// (bench/scrape.ts), an eighth of a core taken from forwarding; held, it
// gets about 40. So after a 429 the connection is
// not read for the second Retry-After asks for (the kernel holds what the
// client sends meanwhile, and then holds the client), and one that has
// pipelined more requests behind the refused one is closed after answering
// the next.
// Every refusal is counted by reason (onRefused: weft_http_refused_total)
// and logged once per reason, at warn: a flood must not become a log flood.
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from '../log'

export type RefusedReason =
  | 'bad_request' // node's parser refused the request (400)
  | 'headers_too_large' // request line and headers over maxHeaderBytes (431)
  | 'timeout' // headers or request not complete in time (408)
  | 'connections' // over maxConnections, or maxConnectionsPerSource (closed)
  | 'rate' // over the source's token bucket (429)
  | 'method' // not GET or HEAD (405)
  | 'bad_target' // neither origin-form nor absolute-form (400)
  | 'not_found' // no such path (404)
  | 'handler_error' // the route threw (500): a bug of ours

export interface HttpLimits {
  /** the request line and headers together (node's maxHeaderSize) */
  maxHeaderBytes: number
  headersTimeoutMs: number
  requestTimeoutMs: number
  /** an idle keep-alive connection is closed after this */
  keepAliveTimeoutMs: number
  /** a connection with no traffic at all is closed after this (a client that stops reading) */
  idleTimeoutMs: number
  maxConnections: number
  maxConnectionsPerSource: number
  /** per source address: tokens added per second, and the bucket's size */
  ratePerSecond: number
  burst: number
}

/**
 * --healthz-port. A kubelet probes every 10 s and Prometheus scrapes every
 * 15 to 60 s: 20 requests a second per address is two orders of magnitude
 * beyond either, and 16 connections per address more than a client that
 * means well opens.
 */
export const HEALTHZ_LIMITS: HttpLimits = {
  maxHeaderBytes: 8 * 1024,
  headersTimeoutMs: 5000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5000,
  idleTimeoutMs: 15_000,
  maxConnections: 128,
  maxConnectionsPerSource: 16,
  ratePerSecond: 20,
  burst: 40
}

/**
 * The control socket: only the daemon's user and group can connect, and
 * they all come from one (unnamed) address. `weft status` asks once; tests
 * and scripts poll it, at most every 50 ms each.
 */
export const CONTROL_LIMITS: HttpLimits = {
  ...HEALTHZ_LIMITS,
  maxConnections: 32,
  maxConnectionsPerSource: 32,
  ratePerSecond: 50,
  burst: 100
}

/** A request target: path and query, undecoded. */
export interface Target { path: string, query: string }

const ABSOLUTE = /^https?:\/\/[^/?#]*/i

/**
 * The target of a request line, without a parser that can throw: origin-form
 * (`/path?query`) or absolute-form (`http://host/path?query`, whose host is
 * ignored, as RFC 9112 lets a server do). Anything else (`*`, authority-form)
 * is undefined. Nothing is percent-decoded: the routes are plain ASCII and
 * compared as sent, so `/%68ealthz` is simply not found.
 */
export function parseTarget (raw: string): Target | undefined {
  let rest: string
  if (raw.startsWith('/')) rest = raw
  else {
    const m = ABSOLUTE.exec(raw)
    if (m === null) return undefined
    rest = raw.slice(m[0].length)
    if (rest === '' || rest.startsWith('?')) rest = '/' + rest
    if (!rest.startsWith('/')) return undefined
  }
  const hash = rest.indexOf('#')
  if (hash >= 0) rest = rest.slice(0, hash)
  const q = rest.indexOf('?')
  return q < 0 ? { path: rest, query: '' } : { path: rest.slice(0, q), query: rest.slice(q + 1) }
}

/** Does the query hold `name` (`?name`, `?name=...`, among others)? */
export function hasParam (query: string, name: string): boolean {
  if (query === '') return false
  for (const p of query.split('&')) if (p === name || p.startsWith(name + '=')) return true
  return false
}

/** 127.0.0.0/8 and ::1 (also IPv4-mapped): a client on the node itself. */
export function isLoopback (addr: string | undefined): boolean {
  if (addr === undefined) return false
  const v4 = addr.startsWith('::ffff:') ? addr.slice(7) : addr
  return v4.startsWith('127.') || addr === '::1'
}

/** What a route answers. */
export interface Answer {
  status: number
  body: string
  /** default text/plain */
  type?: string
}

/** undefined: no such path (404). */
export type Route = (req: http.IncomingMessage, target: Target) => Answer | Promise<Answer> | undefined

export interface GuardOptions {
  /** for the log and the metric's `server` label: 'healthz', 'control' */
  name: string
  log: Logger
  limits: HttpLimits
  onRefused?: (reason: RefusedReason) => void
  /** ms, monotonic; for tests */
  now?: () => number
}

/** Slots for per-source state: addresses are hashed into them (no map to grow; a collision only shares a budget). */
const SLOTS = 256

/**
 * Seeds the slot hash afresh in every process, so a client cannot work out
 * which address shares a slot (a budget) with the kubelet's probes.
 */
const SEED = randomBytes(4).readUInt32BE(0)

/** FNV-1a of the address, seeded, into SLOTS. No allocation. */
function slotOf (addr: string | undefined): number {
  if (addr === undefined) return 0
  let h = (0x811c9dc5 ^ SEED) >>> 0
  for (let i = 0; i < addr.length; i++) h = Math.imul(h ^ addr.charCodeAt(i), 0x01000193)
  return (h >>> 0) % SLOTS
}

/** Connections and a token bucket per source slot. */
class Sources {
  private readonly conns = new Uint16Array(SLOTS)
  private readonly tokens: Float64Array
  private readonly stamps = new Float64Array(SLOTS)

  constructor (private readonly limits: HttpLimits, private readonly now: () => number) {
    this.tokens = new Float64Array(SLOTS).fill(limits.burst)
    this.stamps.fill(now())
  }

  /** Count a new connection from the slot; false if the slot has its maximum already. */
  open (slot: number): boolean {
    if (this.conns[slot] >= this.limits.maxConnectionsPerSource) return false
    this.conns[slot]++
    return true
  }

  close (slot: number): void { if (this.conns[slot] > 0) this.conns[slot]-- }

  /** Take a token: 0 if there was one, else how many ms until there is. */
  take (slot: number): number {
    const now = this.now()
    const { ratePerSecond, burst } = this.limits
    const t = Math.min(burst, this.tokens[slot] + (now - this.stamps[slot]) * ratePerSecond / 1000)
    this.stamps[slot] = now
    if (t >= 1) {
      this.tokens[slot] = t - 1
      return 0
    }
    this.tokens[slot] = t
    return Math.ceil((1 - t) * 1000 / ratePerSecond)
  }
}

const ALLOW = 'GET, HEAD'
/** how long a connection goes unread after a 429: the Retry-After it was given */
const HOLD_MS = 1000

/** An http.Server with the limits and refusals above; `route` answers what gets through. */
export function guardedServer (o: GuardOptions, route: Route): http.Server {
  const { limits, log, name } = o
  const sources = new Sources(limits, o.now ?? (() => performance.now()))
  const logged = new Set<RefusedReason>()
  const refused = (reason: RefusedReason, remote: string | undefined, detail?: Record<string, unknown>): void => {
    o.onRefused?.(reason)
    if (logged.has(reason)) return
    logged.add(reason)
    const fields = { server: name, reason, remote, ...detail }
    if (reason === 'handler_error') log.error(fields, `the ${name} server failed on a request (answered 500); later ones are only counted, in weft_http_refused_total`)
    else log.warn(fields, `refused an HTTP request on the ${name} server; later refusals for this reason are only counted, in weft_http_refused_total`)
  }

  const server = http.createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // node checks those two timeouts this often (default every 30 s)
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // every request reaches the route, which ignores Host; without this node answers 400 uncounted
    requireHostHeader: false
  }, (req, res) => {
    try {
      handle(req, res)
    } catch (err) {
      // handle() only throws on a bug of ours; still, never out of here
      refused('handler_error', req.socket.remoteAddress, { err: (err as Error).message })
      answer(req, res, 500, 'internal error\n')
    }
  })
  server.maxConnections = limits.maxConnections
  server.setTimeout(limits.idleTimeoutMs) // no 'timeout' listener: node destroys the socket

  // connections held after a 429 (see the top)
  const held = new WeakSet<Socket>()
  const closing = new WeakSet<Socket>()
  const hold = (socket: Socket, res: http.ServerResponse): void => {
    held.add(socket)
    res.once('finish', () => {
      // after node's own end of the response, which may resume the socket on the next tick
      setImmediate(() => {
        if (socket.destroyed) return
        socket.pause()
        const timer = setTimeout(() => {
          held.delete(socket)
          socket.resume()
        }, HOLD_MS)
        timer.unref()
        socket.once('close', () => clearTimeout(timer))
      })
    })
  }

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const socket = req.socket
    const remote = socket.remoteAddress
    if (held.has(socket)) {
      // pipelined behind a 429: the client is not waiting for answers. The
      // first such gets a 429 that closes the connection once the answers
      // before it have gone; those behind it, nothing (the connection goes).
      refused('rate', remote)
      if (closing.has(socket)) return
      closing.add(socket)
      answer(req, res, 429, 'too many requests\n', { 'retry-after': String(HOLD_MS / 1000), connection: 'close' })
      return
    }
    const wait = sources.take(slotOf(remote))
    if (wait > 0) {
      refused('rate', remote)
      answer(req, res, 429, 'too many requests\n', { 'retry-after': String(Math.max(1, Math.ceil(wait / 1000))) })
      hold(socket, res)
      return
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      refused('method', remote, { method: req.method })
      answer(req, res, 405, 'method not allowed\n', { allow: ALLOW })
      return
    }
    const target = parseTarget(req.url ?? '')
    if (target === undefined) {
      refused('bad_target', remote, { target: (req.url ?? '').slice(0, 100) })
      answer(req, res, 400, 'bad request target\n')
      return
    }
    const a = route(req, target)
    if (a === undefined) {
      refused('not_found', remote, { path: target.path.slice(0, 100) })
      answer(req, res, 404, 'not found\n')
    } else if (a instanceof Promise) {
      a.then((r) => { answer(req, res, r.status, r.body, { 'content-type': r.type ?? 'text/plain; charset=utf-8' }) }, (err: Error) => {
        refused('handler_error', remote, { err: err.message })
        answer(req, res, 500, 'internal error\n')
      }).catch(() => res.destroy())
    } else answer(req, res, a.status, a.body, { 'content-type': a.type ?? 'text/plain; charset=utf-8' })
  }

  server.on('connection', (socket: Socket) => {
    const slot = slotOf(socket.remoteAddress)
    if (!sources.open(slot)) {
      refused('connections', socket.remoteAddress, { perSource: limits.maxConnectionsPerSource })
      socket.destroy()
      return
    }
    socket.once('close', () => sources.close(slot))
  })
  // over maxConnections: node has closed it already
  server.on('drop', (d?: { remoteAddress?: string }) => refused('connections', d?.remoteAddress, { max: limits.maxConnections }))
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const s = socket as Socket
    // a client that went away mid-request is not refused, just gone
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || !s.writable) {
      s.destroy()
      return
    }
    const [status, reason]: [number, RefusedReason] = err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'headers_too_large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'timeout'] : [400, 'bad_request']
    refused(reason, s.remoteAddress, { code: err.code })
    // the client may be gone by the time this is written (EPIPE): that must
    // not become an uncaught error, which would end the process
    s.on('error', ignore)
    s.write(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
    s.destroySoon()
  })
  // CONNECT never reaches 'request'; without a listener node drops the socket silently
  server.on('connect', (req: http.IncomingMessage, socket: Duplex) => {
    refused('method', req.socket.remoteAddress, { method: 'CONNECT' })
    const s = socket as Socket
    // node hands a CONNECT's socket over without its own error listener: a
    // client that closed first (EPIPE) would otherwise end the process
    s.on('error', ignore)
    if (s.writable) s.write(`HTTP/1.1 405 Method Not Allowed\r\nallow: ${ALLOW}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
    s.destroySoon()
  })
  return server
}

/** For sockets that are being closed anyway: their errors say nothing more. */
function ignore (): void {}

/** Write an answer unless one is under way (then the connection goes). */
function answer (req: http.IncomingMessage, res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) {
    res.destroy()
    return
  }
  // a request with a body we do not read: close after answering rather than drain it for keep-alive
  const hasBody = (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    ...(hasBody ? { connection: 'close' } : {}),
    ...headers
  }).end(body)
}

/**
 * Listen, resolving once listening (rejecting if that fails: a port taken
 * stops the daemon at start). After that, a server error is logged, never
 * thrown: it would end the process.
 */
export async function listen (server: http.Server, log: Logger, name: string, ...args: [port: number, host: string] | [path: string]): Promise<AddressInfo | string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    const done = (): void => {
      server.removeListener('error', reject)
      server.on('error', (err: Error) => log.error({ server: name, err: err.message }, `the ${name} server failed; it goes on serving what it can`))
      resolve()
    }
    if (args.length === 1) server.listen(args[0], done)
    else server.listen(args[0], args[1], done)
  })
  return server.address() as AddressInfo | string
}

/** Close, and end the connections still open (an idle keep-alive one would hold close() for its timeout). */
export async function closeServer (server: http.Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}
