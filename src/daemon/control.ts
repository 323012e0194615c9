// The local control socket: `weft status` (and tests) read the running
// daemon's state from it. HTTP over a unix socket in the state dir, mode
// 0660: the daemon's user and group may ask, nobody else.
//
// Connecting to a unix socket needs write permission on it, so its mode is
// the access control. A socket takes its first mode from the umask, and a
// chmod after listen() would leave a window in which anyone may connect; so
// the socket is bound inside a fresh 0700 directory, given its mode there,
// and only then renamed into place (rename also replaces, atomically, a
// socket left by a killed daemon).
//
// Whoever may connect is trusted with what it says, but not with the
// process: a request it sends, however malformed, is answered or refused
// with a status and never ends the daemon (http-guard.ts, CONTROL_LIMITS).
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import type { Logger } from '../log'
import { CONTROL_LIMITS, closeServer, guardedServer, listen } from './http-guard'
import type { HttpLimits, RefusedReason } from './http-guard'

export const CONTROL_SOCKET = 'weft.sock'
/** rw for the daemon's user and group */
export const CONTROL_SOCKET_MODE = 0o660

export interface ControlOptions {
  /** every refused request, by reason (weft_http_refused_total) */
  onRefused?: (reason: RefusedReason) => void
  /** default CONTROL_LIMITS */
  limits?: Partial<HttpLimits>
}

export class ControlServer {
  readonly path: string
  private server: http.Server | undefined

  constructor (stateDir: string, private readonly status: () => unknown, private readonly log: Logger, private readonly o: ControlOptions = {}) {
    this.path = path.join(stateDir, CONTROL_SOCKET)
  }

  async listen (): Promise<void> {
    const dir = path.dirname(this.path)
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
    const st = fs.statSync(dir)
    if ((st.mode & 0o002) !== 0) {
      // Anyone could put their own socket in its place (or, without the sticky bit, delete ours).
      this.log.warn({ dir, mode: '0' + (st.mode & 0o7777).toString(8) }, 'the state dir is world-writable: give weft a directory only its user can write (--state-dir)')
    }
    const limits = { ...CONTROL_LIMITS, ...this.o.limits }
    // a status() that throws is answered 500 by the guard, and logged
    const server = guardedServer({ name: 'control', log: this.log, limits, ...(this.o.onRefused !== undefined ? { onRefused: this.o.onRefused } : {}) },
      (_req, t) => t.path === '/status' ? { status: 200, body: JSON.stringify(this.status()), type: 'application/json' } : undefined)
    // mkdtemp makes the directory 0700 whatever the umask
    const staging = fs.mkdtempSync(path.join(dir, `.${CONTROL_SOCKET}-`))
    const tmp = path.join(staging, CONTROL_SOCKET)
    try {
      await listen(server, this.log, 'control', tmp)
      fs.chmodSync(tmp, CONTROL_SOCKET_MODE)
      fs.renameSync(tmp, this.path)
    } catch (err) {
      server.close()
      throw err
    } finally {
      fs.rmSync(staging, { recursive: true, force: true })
    }
    this.server = server
    this.log.debug({ socket: this.path }, 'control socket listening')
  }

  async close (): Promise<void> {
    const s = this.server
    this.server = undefined
    if (s === undefined) return
    await closeServer(s)
    fs.rmSync(this.path, { force: true })
  }
}

/** Client side: GET /status from a daemon's state dir. */
export function fetchStatus (stateDir: string, timeoutMs = 3000): Promise<unknown> {
  const socketPath = path.join(stateDir, CONTROL_SOCKET)
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: '/status', timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => {
        // a refusal (429 when polled too often, 500) is not a status
        if (res.statusCode !== 200) {
          reject(new Error(`${socketPath} answered ${res.statusCode ?? '?'}: ${body.trim().slice(0, 200)}`))
          return
        }
        try { resolve(JSON.parse(body)) } catch (err) { reject(err) }
      })
    })
    req.on('timeout', () => req.destroy(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`)))
    req.on('error', reject)
  })
}
