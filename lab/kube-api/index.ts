// A stand-in Kubernetes API server for tests: Nodes (and the status
// subresource), a minimal Pod, discovery for kubectl, watches with
// bookmarks and 410 Expired, bearer-token auth, RBAC denials, and faults.
// It keeps to the real API's semantics for what it serves (see server.ts);
// test/lab/kube-api*.test.ts shows them with kubectl and
// @kubernetes/client-node.
//
//   const api = await startKubeApi()                       // https://127.0.0.1:<port>, a child process
//   const api = await startKubeApi({ topo })               // https://198.18.0.250:6443 in topo's underlay (br0)
//   api.kubeconfig(`${dir}/kubeconfig`)                    // token auth, the CA embedded; returns the path
//   await api.addNode({ name: 'h1', podCIDR: '10.244.1.0/24' })
//   await api.annotate('h1', { k: 'v', gone: null })       // a merge patch through the status subresource
//   await api.getNode('h1')                                // the Node object, or undefined
//   await api.deleteNode('h1'); await api.addPod('kube-flannel', 'p', 'h1')
//   await api.cutWatches({ midEvent: true })               // every open watch's socket destroyed (half an event line first); resolves the count
//   await api.compact()                                    // forget history: a watch from any older resourceVersion gets 410 Expired
//   await api.deny('patch', 'nodes/status'); await api.allowAll()   // RBAC: 403 with the real message
//   await api.calls()                                      // every resource call: { verb, resource, name?, namespace?, code }
//   api.pause(); api.resume()                              // SIGSTOP/SIGCONT: connections hang
//   await api.stop(); await api.restart()                  // same address and port, state kept (restart expires older watches, as the real watch cache)
//   await api.close()                                      // stop and remove everything
//
// The server is always a child process (node dist/lab/kube-api/main.js),
// so pause() can stop it; the handle drives it with JSON lines on its stdin
// (control.ts), which work the same inside a namespace. It is killed by PID,
// bounded, with a process-exit hook as the safety net, and exits by itself
// when its stdin closes (the test process is gone).
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { makeTlsFiles, type TlsFiles } from '../etcd'
import type { Topology } from '../netns'
import { forgetOnExit, stopChild, killOnExit, waitStopped } from '../proc'
import type { ControlAnswer, ControlOp, ControlRequest, KubeApiCall, NodeSpec, ReadyLine, RequestLine, ServerConfig } from './control'

export type { KubeApiCall, NodeSpec, RequestLine } from './control'

export interface KubeApiOptions {
  /**
   * run the server inside this topology's underlay namespace, on `host`
   * (added to br0 there, default 198.18.0.250/24) port 6443, so daemons in
   * the hosts reach it; default: 127.0.0.1 in the root namespace, a free port
   */
  topo?: Topology
  host?: string
  /** https with a CA and a certificate for `host` (default true); false: plain http */
  tls?: boolean
  /** BOOKMARK interval for watches that allow them (default 1000) */
  bookmarkMs?: number
  /** the user the token stands for, named in Forbidden messages (default flannel's service account) */
  user?: string
}

export interface KubeApi {
  /** https://198.18.0.250:6443, https://127.0.0.1:<port> */
  readonly url: string
  readonly token: string
  /** the CA that signed the server's certificate ('' without tls) */
  readonly caFile: string
  /** the server's directory: state.json, calls.jsonl, server.log */
  readonly dir: string
  /** the server process (undefined while stopped) */
  readonly pid: number | undefined
  /** writes a kubeconfig for this server (token auth, the CA embedded) and returns its path; token defaults to the server's */
  kubeconfig (path: string, opts?: { token?: string, insecure?: boolean }): string
  addNode (n: NodeSpec): Promise<void>
  /** a merge patch of the node's annotations through nodes/status (null removes one); a real event */
  annotate (name: string, annotations: Record<string, string | null>): Promise<void>
  getNode (name: string): Promise<any | undefined>
  deleteNode (name: string): Promise<void>
  addPod (namespace: string, name: string, nodeName: string): Promise<void>
  /** destroys every open watch's socket (midEvent: after half an event line); resolves how many */
  cutWatches (opts?: { midEvent?: boolean }): Promise<number>
  compact (): Promise<void>
  deny (verb: string, resource: string): Promise<void>
  allowAll (): Promise<void>
  /** every resource call so far, across restarts, in order */
  calls (): Promise<KubeApiCall[]>
  /** the last 2000 HTTP requests (discovery too) with their status: what a client asked for */
  requests (): Promise<RequestLine[]>
  pause (): void
  resume (): void
  stop (): Promise<void>
  restart (): Promise<void>
  close (): Promise<void>
}

const START_TIMEOUT_MS = 10_000
const CONTROL_TIMEOUT_MS = 10_000
const STOP_GRACE_MS = 3000
const NS_PORT = 6443
const DEFAULT_NS_HOST = '198.18.0.250'
const FLANNEL_USER = 'system:serviceaccount:kube-flannel:flannel'
const MAIN = join(__dirname, 'main.js')

function checkHost (host: string, inNs: boolean): void {
  // the lab's traffic rule: loopback from the root namespace, 198.18.0.0/15 inside namespaces
  const ok = inNs ? /^198\.18\.0\.(\d{1,3})$/.exec(host) : /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.exec(host)
  if (ok === null || (inNs && (Number(ok[1]) < 1 || Number(ok[1]) > 254))) {
    throw new Error(`kube-api: host ${host} is not allowed ${inNs ? 'in the underlay (198.18.0.1-254)' : 'in the root namespace (127.0.0.0/8)'}`)
  }
}

export async function startKubeApi (o: KubeApiOptions = {}): Promise<KubeApi> {
  const topo = o.topo
  const host = o.host ?? (topo === undefined ? '127.0.0.1' : DEFAULT_NS_HOST)
  checkHost(host, topo !== undefined)
  const dir = mkdtempSync(join(tmpdir(), 'weft-kube-api-'))
  let tls: TlsFiles | undefined
  let child: ChildProcess | undefined
  let port = topo === undefined ? 0 : NS_PORT
  let nextId = 1
  const pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()
  let addedAddr = false

  const kill = (): void => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try { process.kill(child.pid, 'SIGKILL') } catch { /* already gone */ }
    }
  }
  const cleanup = (): void => {
    kill()
    rmSync(dir, { recursive: true, force: true })
    if (tls !== undefined) rmSync(tls.dir, { recursive: true, force: true })
  }
  killOnExit(cleanup)

  const running = (c: ChildProcess | undefined): c is ChildProcess => c?.pid !== undefined && c.exitCode === null && c.signalCode === null

  const launch = async (): Promise<void> => {
    const cfg: ServerConfig = {
      host,
      port,
      token,
      user: o.user ?? FLANNEL_USER,
      stateFile: join(dir, 'state.json'),
      callsFile: join(dir, 'calls.jsonl'),
      bookmarkMs: o.bookmarkMs ?? 1000,
      ...(tls === undefined ? {} : { certFile: tls.serverCert, keyFile: tls.serverKey })
    }
    const argv = [process.execPath, MAIN, JSON.stringify(cfg)]
    const log = openSync(join(dir, 'server.log'), 'a')
    let c: ChildProcess
    try {
      // `ip netns exec` execs node in place: the pid stays the server's, for kill() and pause()
      c = topo === undefined
        ? spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', log] })
        : spawn('ip', ['netns', 'exec', topo.underlayNs, ...argv], { stdio: ['pipe', 'pipe', log] })
    } finally { closeSync(log) }
    child = c
    c.on('error', () => { /* reported by the ready wait below */ })
    c.stdin!.on('error', () => { /* EPIPE once it is gone: pending requests are rejected on exit */ })
    const ready = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kube-api did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
      c.once('exit', (code, sig) => {
        clearTimeout(timer)
        reject(new Error(`kube-api exited (${code ?? sig}) before it was ready`))
        for (const [id, p] of pending) {
          clearTimeout(p.timer)
          p.reject(new Error('kube-api exited'))
          pending.delete(id)
        }
      })
      createInterface({ input: c.stdout! }).on('line', (line) => {
        let msg: ControlAnswer | ReadyLine
        try { msg = JSON.parse(line) } catch { return }
        if ('ready' in msg) {
          clearTimeout(timer)
          resolve(msg.port)
          return
        }
        const p = pending.get(msg.id)
        if (p === undefined) return
        pending.delete(msg.id)
        clearTimeout(p.timer)
        if (msg.ok) p.resolve(msg.result)
        else p.reject(new Error(msg.error))
      })
    })
    try {
      port = await ready
    } catch (err) {
      kill()
      throw new Error(`${(err as Error).message}; log ${join(dir, 'server.log')}:\n${tail(join(dir, 'server.log'))}`)
    }
  }

  const control = (req: ControlOp): Promise<any> => {
    const c = child
    if (!running(c)) return Promise.reject(new Error('kube-api is not running'))
    const id = nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new Error(`kube-api did not answer ${req.op} within ${CONTROL_TIMEOUT_MS} ms (paused?)`))
      }, CONTROL_TIMEOUT_MS)
      pending.set(id, { resolve, reject, timer })
      const wire: ControlRequest = { ...req, id }
      c.stdin!.write(JSON.stringify(wire) + '\n')
    })
  }

  const halt = async (): Promise<void> => {
    const c = child
    if (!running(c)) return
    await stopChild(c, STOP_GRACE_MS, kill)
  }

  const token = randomBytes(16).toString('hex')
  try {
    if (topo !== undefined) {
      const r = await topo.exec(topo.underlayNs, ['ip', 'addr', 'add', `${host}/24`, 'dev', 'br0'], { allowFail: true })
      if (r.code !== 0 && !/exists/i.test(r.stderr)) throw new Error(`kube-api: cannot add ${host}/24 to br0: ${r.stderr.trim()}`)
      addedAddr = r.code === 0
    }
    if (o.tls ?? true) tls = makeTlsFiles({ ips: [host] })
    await launch()
  } catch (err) {
    cleanup()
    forgetOnExit(cleanup)
    throw err
  }
  const url = `${tls === undefined ? 'http' : 'https'}://${host}:${port}`

  return {
    url,
    token,
    caFile: tls?.caFile ?? '',
    dir,
    get pid () { return running(child) ? child.pid : undefined },
    kubeconfig (path, opts = {}) {
      const cluster: Record<string, unknown> = { server: url }
      if (opts.insecure === true) cluster['insecure-skip-tls-verify'] = true
      else if (tls !== undefined) cluster['certificate-authority-data'] = readFileSync(tls.caFile).toString('base64')
      const cfg = {
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'weft-lab', cluster }],
        users: [{ name: 'weft-lab', user: { token: opts.token ?? token } }],
        contexts: [{ name: 'weft-lab', context: { cluster: 'weft-lab', user: 'weft-lab' } }],
        'current-context': 'weft-lab'
      }
      // kubeconfig is YAML, and JSON is YAML
      writeFileSync(path, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 })
      return path
    },
    addNode: async (n) => { await control({ op: 'addNode', node: n }) },
    annotate: async (name, annotations) => { await control({ op: 'annotate', name, annotations }) },
    getNode: async (name) => await control({ op: 'getNode', name }) ?? undefined,
    deleteNode: async (name) => { await control({ op: 'deleteNode', name }) },
    addPod: async (namespace, name, nodeName) => { await control({ op: 'addPod', namespace, name, nodeName }) },
    cutWatches: async (opts = {}) => await control({ op: 'cutWatches', midEvent: opts.midEvent === true }) as number,
    compact: async () => { await control({ op: 'compact' }) },
    deny: async (verb, resource) => { await control({ op: 'deny', verb, resource }) },
    allowAll: async () => { await control({ op: 'allowAll' }) },
    calls: async () => readCalls(join(dir, 'calls.jsonl')),
    requests: async () => await control({ op: 'requests' }) as RequestLine[],
    pause () {
      if (!running(child)) return
      process.kill(child.pid!, 'SIGSTOP')
      waitStopped(child.pid!, 'kube-api')
    },
    resume () { if (running(child)) process.kill(child.pid!, 'SIGCONT') },
    stop: halt,
    async restart () {
      await halt()
      await launch()
    },
    async close () {
      await halt()
      cleanup()
      forgetOnExit(cleanup)
      if (addedAddr && topo !== undefined) {
        await topo.exec(topo.underlayNs, ['ip', 'addr', 'del', `${host}/24`, 'dev', 'br0'], { allowFail: true }).catch(() => {})
      }
    }
  }
}

/** calls.jsonl, skipping a last line still being written */
function readCalls (file: string): KubeApiCall[] {
  if (!existsSync(file)) return []
  const text = readFileSync(file, 'utf8')
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as KubeApiCall)
}

function tail (file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n')
  } catch {
    return '(no log)'
  }
}
