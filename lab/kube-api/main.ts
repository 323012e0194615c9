// The stand-in API server as a program, for index.ts to run (in the root
// namespace or inside a topology's):
//   node main.js '<ServerConfig JSON>'
// prints {"ready":true,"port":N} once it listens, then answers each control
// request line on stdin ({"id":1,"op":"addNode",...}) with one line on
// stdout. Logs go to stderr. Exits on SIGTERM, and when stdin closes (the
// process that started it is gone).
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import type { ControlAnswer, ControlRequest, ReadyLine, ServerConfig } from './control'
import { KubeServer } from './server'

async function main (): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '') as ServerConfig
  const server = new KubeServer({
    token: cfg.token,
    user: cfg.user,
    bookmarkMs: cfg.bookmarkMs,
    stateFile: cfg.stateFile,
    callsFile: cfg.callsFile,
    ...(cfg.certFile === undefined || cfg.keyFile === undefined ? {} : { tls: { cert: readFileSync(cfg.certFile), key: readFileSync(cfg.keyFile) } })
  })
  let closing = false
  const quit = (why: string): void => {
    if (closing) return
    closing = true
    process.stderr.write(`kube-api: ${why}, exiting\n`)
    // bounded: connections that will not close must not hold the exit
    setTimeout(() => process.exit(0), 1000).unref()
    void server.close().then(() => process.exit(0))
  }
  process.on('SIGTERM', () => quit('SIGTERM'))
  process.on('SIGINT', () => quit('SIGINT'))
  // a test server that died on a socket race would fail the test for the wrong reason: log, count on the log, go on
  process.on('uncaughtException', (err) => { process.stderr.write(`kube-api: uncaught: ${err.stack ?? String(err)}\n`) })

  const port = await server.listen(cfg.host, cfg.port)
  const ready: ReadyLine = { ready: true, port }
  process.stdout.write(JSON.stringify(ready) + '\n')
  process.stderr.write(`kube-api: listening on ${cfg.host}:${port} (${cfg.certFile === undefined ? 'http' : 'https'})\n`)

  const lines = createInterface({ input: process.stdin })
  lines.on('line', (line) => {
    let answer: ControlAnswer
    let req: ControlRequest
    try {
      req = JSON.parse(line) as ControlRequest
    } catch {
      process.stderr.write(`kube-api: control line is not JSON: ${line.slice(0, 200)}\n`)
      return
    }
    try {
      answer = { id: req.id, ok: true, result: server.control(req) }
    } catch (err) {
      answer = { id: req.id, ok: false, error: (err as Error).message }
    }
    process.stdout.write(JSON.stringify(answer) + '\n')
  })
  lines.on('close', () => quit('stdin closed'))
}

main().catch((err) => {
  process.stderr.write(`kube-api: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
