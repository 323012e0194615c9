// flanneld's health endpoints, plus weft's /metrics: /healthz says the process runs, /readyz says
// the node is usable (lease held, subnet.env written) and, in weft, that the
// store answers: a node that lost its store keeps forwarding but reports
// itself degraded (503), saying why. `/readyz?verbose` lists each check, as
// Kubernetes components do, with the store's error and how long it has lasted.
import http from 'node:http'
import type { AddressInfo } from 'node:net'

/** undefined while the store answers; otherwise why not, and for how long. */
export type StoreState = () => { reason: string, forMs: number } | undefined

export class Health {
  private ready = false
  private store: StoreState = () => undefined
  private server: http.Server | undefined
  private metrics: (() => Promise<string>) | undefined

  /** Serve /metrics (Prometheus text) from this function. */
  setMetrics (fn: () => Promise<string>): void { this.metrics = fn }

  setReady (on: boolean): void { this.ready = on }
  setStore (fn: StoreState): void { this.store = fn }
  get isReady (): boolean { return this.ready && this.store() === undefined }

  private readyz (verbose: boolean): { status: number, body: string } {
    const down = this.store()
    const ok = this.ready && down === undefined
    const summary = ok ? 'weft is ready\n' : this.ready ? 'weft is degraded: the store is unreachable\n' : 'weft is not ready yet\n'
    if (!verbose) return { status: ok ? 200 : 503, body: summary }
    const checks = [
      this.ready ? '[+]lease ok' : '[-]lease failed: no lease or subnet.env yet',
      down === undefined ? '[+]store ok' : `[-]store failed for ${(down.forMs / 1000).toFixed(1)} s: ${down.reason}`
    ]
    return { status: ok ? 200 : 503, body: `${checks.join('\n')}\n${summary}` }
  }

  listen (host: string, port: number): Promise<number> {
    this.server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x')
      if (url.pathname === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('weft is running\n')
      } else if (url.pathname === '/readyz') {
        const r = this.readyz(url.searchParams.has('verbose'))
        res.writeHead(r.status, { 'content-type': 'text/plain' }).end(r.body)
      } else if (url.pathname === '/metrics' && this.metrics !== undefined) {
        this.metrics().then((text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text), (err: Error) => res.writeHead(500).end(err.message))
      } else {
        res.writeHead(404).end()
      }
    })
    const s = this.server
    return new Promise((resolve, reject) => {
      s.once('error', reject)
      s.listen(port, host, () => resolve((s.address() as AddressInfo).port))
    })
  }

  close (): Promise<void> {
    const s = this.server
    this.server = undefined
    if (s === undefined) return Promise.resolve()
    return new Promise((resolve) => s.close(() => resolve()))
  }
}
