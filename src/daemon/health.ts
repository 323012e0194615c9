// flanneld's health endpoints, plus weft's /metrics: /healthz says the process runs, /readyz says
// the node is usable (lease held, subnet.env written) and, in weft, that the
// store answers: a node that lost its store keeps forwarding but reports
// itself degraded (503), saying why. `/readyz?verbose` lists each check, as
// Kubernetes components do, with how long the store has been failing.
//
// Like flanneld's, the port is open to anyone who can reach it (0.0.0.0 by
// default), so what it says is chosen for anyone: the store's own error
// names the etcd endpoints or the SQLite path, and goes only to clients on
// the node itself (loopback), which can read those from the daemon's
// command line anyway; everyone else is told which check fails and for how
// long, and the error is in the log. The server's limits and refusals are
// http-guard.ts's.
import type http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from '../log'
import { HEALTHZ_LIMITS, closeServer, guardedServer, hasParam, isLoopback, listen } from './http-guard'
import type { Answer, HttpLimits, RefusedReason, Target } from './http-guard'

/** undefined while the store answers; otherwise why not, and for how long. */
export type StoreState = () => { reason: string, forMs: number } | undefined

export interface HealthOptions {
  log: Logger
  /** every refused request, by reason (weft_http_refused_total) */
  onRefused?: (reason: RefusedReason) => void
  /** default HEALTHZ_LIMITS; tests lower or raise them */
  limits?: Partial<HttpLimits>
}

export class Health {
  private ready = false
  private store: StoreState = () => undefined
  private server: http.Server | undefined
  private metrics: (() => Promise<string>) | undefined

  constructor (private readonly o: HealthOptions) {}

  /** Serve /metrics (Prometheus text) from this function. */
  setMetrics (fn: () => Promise<string>): void { this.metrics = fn }

  setReady (on: boolean): void { this.ready = on }
  setStore (fn: StoreState): void { this.store = fn }
  get isReady (): boolean { return this.ready && this.store() === undefined }

  /** `local`: the client is on this node, and may see the store's error text. */
  private readyz (verbose: boolean, local: boolean): Answer {
    const down = this.store()
    const ok = this.ready && down === undefined
    const summary = ok ? 'weft is ready\n' : this.ready ? 'weft is degraded: the store is unreachable\n' : 'weft is not ready yet\n'
    if (!verbose) return { status: ok ? 200 : 503, body: summary }
    const why = down === undefined ? '' : local ? `: ${down.reason}` : ' (the error is in weft\'s log)'
    const checks = [
      this.ready ? '[+]lease ok' : '[-]lease failed: no lease or subnet.env yet',
      down === undefined ? '[+]store ok' : `[-]store failed for ${(down.forMs / 1000).toFixed(1)} s${why}`
    ]
    return { status: ok ? 200 : 503, body: `${checks.join('\n')}\n${summary}` }
  }

  private route (req: http.IncomingMessage, t: Target): Answer | Promise<Answer> | undefined {
    switch (t.path) {
      case '/healthz': return { status: 200, body: 'weft is running\n' }
      case '/readyz': return this.readyz(hasParam(t.query, 'verbose'), isLoopback(req.socket.remoteAddress))
      case '/metrics': {
        const m = this.metrics
        if (m === undefined) return undefined
        return m().then((text) => ({ status: 200, body: text, type: 'text/plain; version=0.0.4' }))
      }
    }
    return undefined
  }

  async listen (host: string, port: number): Promise<number> {
    const limits = { ...HEALTHZ_LIMITS, ...this.o.limits }
    const s = guardedServer({ name: 'healthz', log: this.o.log, limits, ...(this.o.onRefused !== undefined ? { onRefused: this.o.onRefused } : {}) }, (req, t) => this.route(req, t))
    const addr = await listen(s, this.o.log, 'healthz', port, host)
    this.server = s
    return (addr as AddressInfo).port
  }

  async close (): Promise<void> {
    const s = this.server
    this.server = undefined
    if (s !== undefined) await closeServer(s)
  }
}
