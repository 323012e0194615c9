// The socket the `wg` tool talks to a userspace WireGuard through, so that
// `wg show flannel-wg` and `wg showconf flannel-wg` work on a weft node as
// they do on a wireguard-go one.
//
// Where: `wg` and wireguard-go both fix the path at
// /var/run/wireguard/<device>.sock (wireguard-go ipc/uapi_unix.go: the
// directory made 0755, the socket bound under umask 077, so srwx------, root
// only). `wg` picks a userspace device over a kernel one when that socket
// exists and accepts a connection; `wg show` with no name lists every
// `*.sock` there, connecting to each once and closing at once.
//
// The protocol (wireguard.com/xplatform, wireguard-go device/uapi.go): a
// connection carries operations one after the other, each a line
// `get=1` or `set=1`, then for get an empty line, for set `key=value`
// lines ending with an empty line. The answer to get is the device's
// `key=value` lines then `errno=0` and an empty line; to set, only
// `errno=N` and an empty line. wireguard-go writes failures as negative
// errnos (`errno=-22`), which `wg set` turns back into the errno it reports
// (`wg` parses get's errno as unsigned, so get only ever answers 0 or fails).
// An operation it does not know ends the connection without an answer.
//
// A weft node takes its configuration from the store (its lease, its
// peers' leases), so `set` is refused: the request is read to its end and
// answered `errno=-1` (EPERM: `wg set` says "Unable to modify interface:
// Operation not permitted"), and a warning is logged. Nothing is applied.
//
// The socket is an edge (any root process, a confused script, a fuzzer):
// every connection has a deadline, what it may send is bounded (64 KiB
// over its life, one line at most that long), answers are not queued
// past 1 MiB for a client that does not read, connections past a cap are
// closed on arrival, and each such case is counted (counters()) and logged
// at most once per 10 s per kind. Nothing a client sends can throw out of
// here; the state provider throwing is answered `errno=-5` (EIO).

import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { isMainThread } from 'node:worker_threads'
import { WeftError } from '../errors'
import type { Logger } from '../log'

export const UAPI_DIR = '/var/run/wireguard'

export interface UapiEndpoint {
  /** IPv4 dotted quad or IPv6 text */
  ip: string
  port: number
}

export interface UapiPeer {
  /** 32 bytes */
  publicKey: Buffer
  /** 32 bytes; absent (shown as all zeros, which `wg` reads as none) when the peer has no PSK */
  presharedKey?: Buffer
  endpoint?: UapiEndpoint
  /** seconds, 0 = off */
  persistentKeepalive: number
  /** CIDRs, e.g. '10.244.6.0/24' */
  allowedIps: readonly string[]
  /** wall-clock time of the last completed handshake; undefined = never */
  lastHandshake: { sec: number, nsec: number } | undefined
  rxBytes: number | bigint
  txBytes: number | bigint
}

/**
 * What `wg show` is told. Read fresh for every `get`; the server keeps no
 * reference to it (nor to its buffers) after the answer is written.
 */
export interface DeviceState {
  /** 32 bytes; all zeros = no key (left out, as wireguard-go does) */
  privateKey: Buffer
  /** 0 = not listening (left out) */
  listenPort: number
  /** 0 = none (left out) */
  fwmark: number
  peers: readonly UapiPeer[]
}

export interface UapiLimits {
  /** bytes one connection may send over its whole life; default 64 KiB */
  maxRequestBytes: number
  /** a connection is closed this long after it was accepted; default 5000 ms */
  timeoutMs: number
  /** connections open at once; more are closed on arrival; default 16 */
  maxConnections: number
  /** answers queued for a client that does not read; past this it is closed; default 1 MiB */
  maxPendingReplyBytes: number
}

export const DEFAULT_UAPI_LIMITS: Readonly<UapiLimits> = {
  maxRequestBytes: 64 * 1024,
  timeoutMs: 5000,
  maxConnections: 16,
  maxPendingReplyBytes: 1024 * 1024,
}

export interface UapiOptions {
  /** interface name, e.g. 'flannel-wg'; the socket is `<dir>/<device>.sock` */
  device: string
  /** called for every `get` */
  state: () => DeviceState
  /** default /var/run/wireguard (where `wg` looks) */
  dir?: string
  log?: Logger
  limits?: Partial<UapiLimits>
}

export interface UapiCounters {
  /** connections accepted */
  connections: number
  /** `get` answered with the device's state */
  gets: number
  /** `set` refused (errno=-1) */
  setsRefused: number
  /** closed on arrival: maxConnections were open */
  connectionsRefused: number
  /** closed at the deadline */
  timeouts: number
  /** sent more than maxRequestBytes */
  oversized: number
  /** did not read its answers (past maxPendingReplyBytes) */
  slowReaders: number
  /** an operation other than get=1/set=1, or get=1 followed by something other than the empty line */
  malformed: number
  /** the state provider threw (answered errno=-5) */
  stateErrors: number
  /** socket errors (a client resetting, ...) */
  socketErrors: number
}

export interface UapiServer {
  /** the socket's path */
  readonly path: string
  /** a copy of the counters */
  counters(): UapiCounters
  /** Stops listening, closes every connection, removes the socket file if it is still ours. Idempotent. */
  close(): Promise<void>
}

const EPERM = 1
const EIO = 5
const EINVAL = 22
const NL = 0x0a
const LOG_EVERY_MS = 10_000
/** an interface name as the kernel allows it (IFNAMSIZ 16 with the NUL), and nothing that leaves the directory */
const DEVICE_RE = /^[A-Za-z0-9_=+.-]{1,15}$/

type Kind = keyof UapiCounters

/** Starts the server: stale socket cleaned, directory 0755, socket 0700. Rejects if a live server holds the path. */
export async function startUapiServer (opts: UapiOptions): Promise<UapiServer> {
  if (!DEVICE_RE.test(opts.device) || opts.device === '.' || opts.device === '..') {
    throw new WeftError('EINVAL', `uapi: ${JSON.stringify(opts.device)} is not an interface name`)
  }
  const limits: UapiLimits = { ...DEFAULT_UAPI_LIMITS, ...opts.limits }
  const dir = opts.dir ?? UAPI_DIR
  const sock = path.join(dir, `${opts.device}.sock`)
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
  await removeStale(sock)

  const server = net.createServer({ allowHalfOpen: true })
  server.maxConnections = limits.maxConnections
  const impl = new Server(server, sock, opts, limits)
  await impl.listen()
  return impl
}

/** A socket left by a process that is gone is removed; a live one, or anything that is not a socket, is an error. */
async function removeStale (sock: string): Promise<void> {
  let st: fs.Stats
  try {
    st = fs.lstatSync(sock)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return
    throw e
  }
  if (!st.isSocket()) throw new WeftError('EEXIST', `uapi: ${sock} exists and is not a socket; not removing it`)
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(sock)
    c.once('connect', () => { c.destroy(); resolve(true) })
    c.once('error', () => resolve(false)) // ECONNREFUSED: nobody listens
  })
  if (live) throw new WeftError('EADDRINUSE', `uapi: ${sock} is in use by another process (another daemon for this device?)`)
  fs.unlinkSync(sock)
}

class Server implements UapiServer {
  private readonly c: UapiCounters = {
    connections: 0,
    gets: 0,
    setsRefused: 0,
    connectionsRefused: 0,
    timeouts: 0,
    oversized: 0,
    slowReaders: 0,
    malformed: 0,
    stateErrors: 0,
    socketErrors: 0,
  }

  private readonly open = new Set<net.Socket>()
  private readonly lastLog = new Map<Kind, { at: number, since: number }>()
  private ino: number | undefined
  private closing: Promise<void> | undefined

  constructor (
    private readonly server: net.Server,
    readonly path: string,
    private readonly opts: UapiOptions,
    private readonly limits: UapiLimits
  ) {
    server.on('connection', (s) => this.accept(s))
    // over maxConnections: node has closed it already
    server.on('drop', () => this.count('connectionsRefused', `more than ${limits.maxConnections} connections at once`))
    server.on('error', (e) => this.opts.log?.warn({ err: e, path: this.path }, 'uapi: server error'))
  }

  listen (): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => {
        reject(new WeftError((e as NodeJS.ErrnoException).code ?? 'EIO', `uapi: cannot listen on ${this.path}: ${e.message}`, { cause: e }))
      }
      this.server.once('error', onError)
      // The socket is bound inside listen(), synchronously: under umask 077
      // it is born 0700, as wireguard-go's; a worker thread cannot change
      // the umask, so there the chmod below closes the window instead.
      const old = isMainThread ? process.umask(0o077) : undefined
      try {
        this.server.listen(this.path, () => {
          this.server.removeListener('error', onError)
          try {
            fs.chmodSync(this.path, 0o700)
            this.ino = fs.lstatSync(this.path).ino
          } catch (e) {
            this.server.close()
            reject(e)
            return
          }
          resolve()
        })
      } finally {
        if (old !== undefined) process.umask(old)
      }
    })
  }

  counters (): UapiCounters {
    return { ...this.c }
  }

  close (): Promise<void> {
    this.closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
      for (const s of this.open) s.destroy()
      await closed
      // libuv unlinks the path on close; should it still be there and be ours, remove it
      try {
        if (this.ino !== undefined && fs.lstatSync(this.path).ino === this.ino) fs.unlinkSync(this.path)
      } catch {
        // gone already
      }
    })()
    return this.closing
  }

  /** Counts a case; logs it at most once per LOG_EVERY_MS per kind, with how many came since. */
  private count (kind: Kind, why: string): void {
    this.c[kind]++
    const log = this.opts.log
    if (log === undefined) return
    const now = Date.now()
    const l = this.lastLog.get(kind) ?? { at: -Infinity, since: 0 }
    l.since++
    this.lastLog.set(kind, l)
    if (now - l.at < LOG_EVERY_MS) return
    const msg = kind === 'setsRefused'
      ? 'uapi: `wg set` refused: a weft node takes its WireGuard configuration from the store (its lease and its peers\' leases)'
      : `uapi: client closed: ${why}`
    log.warn({ device: this.opts.device, kind, count: l.since, total: this.c[kind] }, msg)
    l.at = now
    l.since = 0
  }

  private accept (s: net.Socket): void {
    if (this.closing !== undefined) { s.destroy(); return }
    this.c.connections++
    this.open.add(s)
    const timer = setTimeout(() => {
      this.count('timeouts', `no complete request within ${this.limits.timeoutMs} ms`)
      s.destroy()
    }, this.limits.timeoutMs)
    timer.unref()
    const conn = new Conn(s, this)
    s.on('data', (chunk: Buffer) => conn.feed(chunk))
    s.on('end', () => s.end()) // the client is done sending: finish what is queued, then close
    s.on('error', () => { this.c.socketErrors++ })
    s.on('close', () => {
      clearTimeout(timer)
      this.open.delete(s)
    })
  }

  /** For Conn: the limits, counting, and the state. */
  get lim (): UapiLimits { return this.limits }
  refuse (kind: Kind, why: string): void { this.count(kind, why) }
  setRefused (): void { this.count('setsRefused', '') }
  answerGet (): string {
    let state: DeviceState
    try {
      state = this.opts.state()
    } catch (e) {
      this.c.stateErrors++
      this.opts.log?.warn({ err: e, device: this.opts.device }, 'uapi: reading the device state failed')
      return `errno=-${EIO}\n\n`
    }
    this.c.gets++
    return formatGet(state) + 'errno=0\n\n'
  }
}

/** One client: its bytes so far and where in an operation it is. */
class Conn {
  /** bytes of the current line not yet ended by a newline */
  private partial: Buffer[] = []
  private partialLen = 0
  private received = 0
  /** 'op': waiting for get=1/set=1; 'get': for the empty line after get=1; 'set': reading set's lines */
  private phase: 'op' | 'get' | 'set' = 'op'
  private dead = false

  constructor (private readonly s: net.Socket, private readonly srv: Server) {}

  feed (chunk: Buffer): void {
    if (this.dead) return
    this.received += chunk.length
    if (this.received > this.srv.lim.maxRequestBytes) return this.kill('oversized', `sent more than ${this.srv.lim.maxRequestBytes} bytes`)
    let from = 0
    while (!this.dead) {
      const nl = chunk.indexOf(NL, from)
      if (nl < 0) break
      const line = this.partialLen === 0
        ? chunk.subarray(from, nl)
        : Buffer.concat([...this.partial, chunk.subarray(from, nl)])
      this.partial = []
      this.partialLen = 0
      from = nl + 1
      this.line(line)
    }
    if (!this.dead && from < chunk.length) {
      this.partial.push(chunk.subarray(from))
      this.partialLen += chunk.length - from
    }
  }

  private line (line: Buffer): void {
    switch (this.phase) {
      case 'op': {
        const op = line.length <= 8 ? line.toString('latin1') : ''
        if (op === 'get=1') this.phase = 'get'
        else if (op === 'set=1') this.phase = 'set'
        else this.kill('malformed', `unknown operation ${JSON.stringify(line.subarray(0, 32).toString('latin1'))}`)
        return
      }
      case 'get':
        this.phase = 'op'
        if (line.length !== 0) {
          // wireguard-go: "trailing character in UAPI get"
          this.srv.refuse('malformed', 'get=1 not followed by an empty line')
          this.reply(`errno=-${EINVAL}\n\n`)
          this.s.end()
          this.dead = true
          return
        }
        this.reply(this.srv.answerGet())
        return
      case 'set':
        if (line.length !== 0) return // read to the end, applied never
        this.phase = 'op'
        this.srv.setRefused()
        this.reply(`errno=-${EPERM}\n\n`)
    }
  }

  private reply (text: string): void {
    if (this.s.writableLength + text.length > this.srv.lim.maxPendingReplyBytes) {
      return this.kill('slowReaders', 'does not read its answers')
    }
    if (this.s.writable) this.s.write(text)
  }

  private kill (kind: Kind, why: string): void {
    this.dead = true
    this.partial = []
    this.srv.refuse(kind, why)
    this.s.destroy()
  }
}

const HEX = '0123456789abcdef'

function hexKey (key: Buffer): string {
  let out = ''
  for (let i = 0; i < 32; i++) {
    const b = key[i] ?? 0
    out += HEX[b >> 4]! + HEX[b & 15]!
  }
  return out
}

const isZero = (b: Buffer): boolean => b.every((x) => x === 0)

/** IPv4 or IPv6 CIDR text that cannot break a line of the protocol. */
const CIDR_RE = /^[0-9A-Fa-f.:]{2,45}\/\d{1,3}$/

/**
 * The device's `key=value` lines in wireguard-go's order (device/uapi.go
 * IpcGetOperation), without the closing errno line. Exported for tests.
 */
export function formatGet (st: DeviceState): string {
  const out: string[] = []
  if (st.privateKey.length === 32 && !isZero(st.privateKey)) out.push(`private_key=${hexKey(st.privateKey)}`)
  if (st.listenPort !== 0) out.push(`listen_port=${uint(st.listenPort, 0xffff)}`)
  if (st.fwmark !== 0) out.push(`fwmark=${uint(st.fwmark, 0xffffffff)}`)
  for (const p of st.peers) {
    if (p.publicKey.length !== 32) continue // not a peer wg could name
    out.push(`public_key=${hexKey(p.publicKey)}`)
    out.push(`preshared_key=${p.presharedKey !== undefined && p.presharedKey.length === 32 ? hexKey(p.presharedKey) : '0'.repeat(64)}`)
    out.push('protocol_version=1')
    if (p.endpoint !== undefined && net.isIP(p.endpoint.ip) !== 0) {
      const host = net.isIPv6(p.endpoint.ip) ? `[${p.endpoint.ip}]` : p.endpoint.ip
      out.push(`endpoint=${host}:${uint(p.endpoint.port, 0xffff)}`)
    }
    out.push(`last_handshake_time_sec=${uint(p.lastHandshake?.sec ?? 0, Number.MAX_SAFE_INTEGER)}`)
    out.push(`last_handshake_time_nsec=${uint(p.lastHandshake?.nsec ?? 0, 999_999_999)}`)
    out.push(`tx_bytes=${counter(p.txBytes)}`)
    out.push(`rx_bytes=${counter(p.rxBytes)}`)
    out.push(`persistent_keepalive_interval=${uint(p.persistentKeepalive, 0xffff)}`)
    for (const a of p.allowedIps) if (CIDR_RE.test(a)) out.push(`allowed_ip=${a}`)
  }
  return out.length === 0 ? '' : out.join('\n') + '\n'
}

/** A non-negative integer in range as decimal text; anything else (NaN, fractions, negatives) as 0 or the bound. */
function uint (n: number, max: number): string {
  if (!Number.isFinite(n) || n <= 0) return '0'
  return String(Math.min(Math.floor(n), max))
}

function counter (n: number | bigint): string {
  if (typeof n === 'bigint') return n < 0n ? '0' : n > 0xffffffffffffffffn ? '18446744073709551615' : n.toString()
  return uint(n, Number.MAX_SAFE_INTEGER)
}
