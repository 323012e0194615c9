// The local control socket: `weft status` (and tests) read the running
// daemon's state from it. HTTP over a unix socket in the state dir, mode
// 0600: only root (or the daemon's user) may ask.
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import type { Logger } from '../log'

export const CONTROL_SOCKET = 'weft.sock'

export class ControlServer {
  readonly path: string
  private server: http.Server | undefined

  constructor (stateDir: string, private readonly status: () => unknown, private readonly log: Logger) {
    this.path = path.join(stateDir, CONTROL_SOCKET)
  }

  async listen (): Promise<void> {
    fs.mkdirSync(path.dirname(this.path), { recursive: true, mode: 0o755 })
    fs.rmSync(this.path, { force: true }) // a socket left by a killed daemon
    const server = http.createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/status') {
        let body: string
        try { body = JSON.stringify(this.status()) } catch (err) {
          res.writeHead(500).end(String(err))
          return
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(body)
      } else res.writeHead(404).end()
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.path, () => resolve())
    })
    fs.chmodSync(this.path, 0o600)
    this.log.debug({ socket: this.path }, 'control socket listening')
  }

  async close (): Promise<void> {
    const s = this.server
    this.server = undefined
    if (s === undefined) return
    await new Promise<void>((resolve) => s.close(() => resolve()))
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
        try { resolve(JSON.parse(body)) } catch (err) { reject(err) }
      })
    })
    req.on('timeout', () => req.destroy(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`)))
    req.on('error', reject)
  })
}
