// flanneld's health endpoints, plus weft's /metrics: /healthz says the process runs, /readyz says
// the node is usable (lease held, subnet.env written) and, in weft, that the
// store answers: a node that lost its store keeps forwarding but reports
// itself degraded.
import http from 'node:http'
import type { AddressInfo } from 'node:net'

export class Health {
  private ready = false
  private storeOk = true
  private server: http.Server | undefined
  private metrics: (() => Promise<string>) | undefined

  /** Serve /metrics (Prometheus text) from this function. */
  setMetrics (fn: () => Promise<string>): void { this.metrics = fn }

  setReady (on: boolean): void { this.ready = on }
  setStoreHealthy (on: boolean): void { this.storeOk = on }
  get isReady (): boolean { return this.ready && this.storeOk }

  listen (host: string, port: number): Promise<number> {
    this.server = http.createServer((req, res) => {
      if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('weft is running\n')
      } else if (req.url === '/readyz') {
        if (this.isReady) res.writeHead(200, { 'content-type': 'text/plain' }).end('weft is ready\n')
        else res.writeHead(503, { 'content-type': 'text/plain' }).end(this.ready ? 'weft is degraded: the store is unreachable\n' : 'weft is not ready yet\n')
      } else if (req.url === '/metrics' && this.metrics !== undefined) {
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
