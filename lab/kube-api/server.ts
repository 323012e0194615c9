// The stand-in API server: authentication (one bearer token), RBAC denials
// a test sets, routing to discovery, nodes (and nodes/status) and pods, the
// call log in RBAC's terms, and the control operations main.ts takes from
// stdin. Every answer is JSON, every error a Status; nothing a client sends
// can throw past handle().
import { appendFileSync } from 'node:fs'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import type { ControlOp, KubeApiCall, RequestLine } from './control'
import { API_GROUPS, apiVersions, CORE_RESOURCES, VERSION } from './discovery'
import { boolParam, dryRunParam, includeObject, mediaType, negotiate, parseJson, parseRv, readBody, type Negotiated } from './http'
import type { Json, JsonObject } from './json'
import { createNode, deleteNode, getNode, NODE_SELECTABLE, nodeFields, PATCH_TYPES, patchNode, updateNode, type PatchType } from './nodes'
import { nameOf, Store } from './objects'
import { parseFieldSelector, parseLabelSelector, type Selector } from './select'
import { alreadyExists, badRequest, forbidden, internal, KubeError, methodNotAllowed, notFound, pathNotFound, unauthorized, unsupportedMediaType } from './status'
import { toTable } from './table'
import { serveWatch, Watches } from './watch'

export interface KubeServerOptions {
  token: string
  /** the user the token authenticates as */
  user: string
  bookmarkMs: number
  stateFile?: string
  callsFile?: string
  /** PEM; absent: plain HTTP */
  tls?: { cert: string | Buffer, key: string | Buffer }
}

type Resource = 'nodes' | 'nodes/status' | 'pods'

interface Target {
  resource: Resource
  name?: string
  namespace?: string
  /** /api/v1/watch/... */
  legacyWatch: boolean
}

const REQUEST_LOG = 2000
const POD_SELECTABLE = ['metadata.name', 'metadata.namespace', 'spec.nodeName', 'status.phase'] as const

/** The API path after /api/v1 as a resource, or undefined when there is no such resource here. */
function target (segs: string[]): Target | undefined {
  const legacyWatch = segs[0] === 'watch'
  const s = legacyWatch ? segs.slice(1) : segs
  if (s[0] === 'nodes' && s.length <= 3) {
    if (s.length === 3 && (s[2] !== 'status' || legacyWatch)) return undefined
    return { resource: s.length === 3 ? 'nodes/status' : 'nodes', name: s[1], legacyWatch }
  }
  if (legacyWatch) return undefined
  if (s[0] === 'pods' && s.length === 1) return { resource: 'pods', legacyWatch }
  if (s[0] === 'namespaces' && s.length >= 3 && s.length <= 4 && s[2] === 'pods') return { resource: 'pods', namespace: s[1], name: s[3], legacyWatch }
  return undefined
}

/** RBAC's verb for a request on a target */
function verbOf (method: string, t: Target, q: URLSearchParams): string {
  switch (method) {
    case 'GET': return t.legacyWatch || (t.name === undefined && boolParam(q, 'watch')) ? 'watch' : t.name === undefined ? 'list' : 'get'
    case 'POST': return 'create'
    case 'PUT': return 'update'
    case 'PATCH': return 'patch'
    case 'DELETE': return t.name === undefined ? 'deletecollection' : 'delete'
    default: return method.toLowerCase()
  }
}

const ALLOWED: Record<Resource, { named: string[], collection: string[] }> = {
  nodes: { named: ['get', 'update', 'patch', 'delete'], collection: ['list', 'watch', 'create'] },
  'nodes/status': { named: ['get', 'update', 'patch'], collection: [] },
  pods: { named: ['get'], collection: ['list'] }
}

/** One request: answers it once, logging it (and its call, if it is one). */
class Exchange {
  call: Omit<KubeApiCall, 'code'> | undefined
  constructor (readonly req: IncomingMessage, readonly res: ServerResponse, private readonly server: KubeServer) {}

  /** logs the answer's status (the call too); the caller writes it */
  logged (code: number): void {
    this.server.logRequest({ method: this.req.method ?? '', url: (this.req.url ?? '').slice(0, 300), code }, this.call)
  }

  send (code: number, body: unknown, contentType = 'application/json'): void {
    this.logged(code)
    const text = typeof body === 'string' ? body : JSON.stringify(body)
    this.res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' })
    this.res.end(text)
  }

  fail (err: unknown): void {
    if (this.res.headersSent) {
      this.res.destroy()
      return
    }
    const e = err instanceof KubeError ? err : internal((err as Error).message ?? String(err))
    if (!(err instanceof KubeError)) process.stderr.write(`kube-api: ${(err as Error).stack ?? String(err)}\n`)
    // a body we stopped reading cannot be drained: answer, then close the connection
    if (e.code === 413) this.res.setHeader('Connection', 'close')
    this.send(e.code, e.status)
  }
}

export class KubeServer {
  readonly store: Store
  private readonly watches = new Watches()
  private readonly requests: RequestLine[] = []
  private readonly server: http.Server
  private address = ''

  constructor (private readonly o: KubeServerOptions) {
    this.store = new Store(o.stateFile)
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      res.on('error', () => { /* the client went away */ })
      req.on('error', () => { /* the client went away */ })
      const x = new Exchange(req, res, this)
      this.handle(x).catch((err) => x.fail(err))
    }
    this.server = o.tls === undefined ? http.createServer(handler) : https.createServer({ cert: o.tls.cert, key: o.tls.key }, handler)
    this.server.on('clientError', (_err, sock) => {
      if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
      sock.destroy()
    })
    this.server.on('tlsClientError', () => { /* a client that does not trust us, or speaks no TLS */ })
  }

  /** Listens; resolves the port (0: any free one). */
  listen (host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        const a = this.server.address() as AddressInfo
        this.address = `${host}:${a.port}`
        resolve(a.port)
      })
    })
  }

  close (): Promise<void> {
    this.watches.cut(false)
    return new Promise((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }

  logRequest (line: RequestLine, call: Omit<KubeApiCall, 'code'> | undefined): void {
    this.requests.push(line)
    if (this.requests.length > REQUEST_LOG) this.requests.splice(0, this.requests.length - REQUEST_LOG)
    if (call !== undefined && this.o.callsFile !== undefined) appendFileSync(this.o.callsFile, JSON.stringify({ ...call, code: line.code }) + '\n')
  }

  private authenticated (req: IncomingMessage): boolean {
    const m = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')
    return m !== null && m[1] === this.o.token
  }

  private async handle (x: Exchange): Promise<void> {
    const { req } = x
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://kube-api')
    } catch {
      throw badRequest('malformed request URL')
    }
    if (!this.authenticated(req)) throw unauthorized()
    let segs: string[]
    try {
      segs = url.pathname.split('/').filter((s) => s !== '').map(decodeURIComponent)
    } catch {
      throw badRequest('malformed request path')
    }
    const path = '/' + segs.join('/')
    const method = req.method ?? 'GET'
    const discovery: Record<string, JsonObject | string> = {
      '/': { paths: ['/api', '/api/v1', '/apis', '/healthz', '/livez', '/readyz', '/version'] },
      '/version': VERSION,
      '/api': apiVersions(this.address),
      '/apis': API_GROUPS,
      '/api/v1': CORE_RESOURCES,
      '/healthz': 'ok',
      '/livez': 'ok',
      '/readyz': 'ok'
    }
    const doc = discovery[path]
    if (doc !== undefined) {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed()
      x.send(200, doc, typeof doc === 'string' ? 'text/plain; charset=utf-8' : 'application/json')
      return
    }
    const t = segs[0] === 'api' && segs[1] === 'v1' ? target(segs.slice(2)) : undefined
    if (t === undefined) throw pathNotFound()
    const q = url.searchParams
    const verb = verbOf(method, t, q)
    x.call = { verb, resource: t.resource, ...(t.name === undefined ? {} : { name: t.name }), ...(t.namespace === undefined ? {} : { namespace: t.namespace }) }
    if (this.store.denied.has(`${verb} ${t.resource}`)) throw forbidden(this.o.user, verb, t.resource, t.name, t.namespace)
    // a legacy /watch/nodes/NAME is the one named watch
    const allowed = t.name === undefined || (t.legacyWatch && verb === 'watch') ? ALLOWED[t.resource].collection : ALLOWED[t.resource].named
    if (!allowed.includes(verb)) throw methodNotAllowed()
    if (t.resource === 'pods') this.pods(x, t, verb, q)
    else await this.nodes(x, t, verb, q)
  }

  private async nodes (x: Exchange, t: Target, verb: string, q: URLSearchParams): Promise<void> {
    const sub = t.resource === 'nodes/status' ? 'status' : 'main'
    const dryRun = dryRunParam(q)
    const name = t.name!
    switch (verb) {
      case 'get': {
        const neg = negotiate(x.req.headers.accept)
        const n = getNode(this.store, name)
        x.send(200, neg.table === undefined ? n : toTable('Node', [n], { version: neg.table, include: includeObject(q) }), contentType(neg))
        return
      }
      case 'list': {
        const neg = negotiate(x.req.headers.accept)
        if ((q.get('continue') ?? '') !== '') throw badRequest('invalid continue token: this server never sends one')
        const sel = this.nodeSelector(q)
        const items = this.store.listNodes().filter(sel)
        const rv = String(this.store.resourceVersion)
        const body = neg.table === undefined
          ? { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: rv }, items: items.map(withoutKind) }
          : toTable('Node', items, { version: neg.table, include: includeObject(q), listRv: rv })
        x.send(200, body, contentType(neg))
        return
      }
      case 'watch': {
        const neg = negotiate(x.req.headers.accept)
        const rv = q.get('resourceVersion') ?? ''
        if (rv !== '') parseRv(rv)
        const timeout = q.get('timeoutSeconds')
        if (timeout !== null && !/^[0-9]{1,9}$/.test(timeout)) throw badRequest(`invalid timeoutSeconds: ${JSON.stringify(timeout)}`)
        let selector = this.nodeSelector(q)
        if (t.name !== undefined) {
          const only = t.name
          const rest = selector
          selector = (n) => nameOf(n) === only && rest(n)
        }
        x.logged(200)
        serveWatch(this.store, this.watches, x.res, {
          rv,
          selector,
          bookmarks: boolParam(q, 'allowWatchBookmarks'),
          bookmarkMs: this.o.bookmarkMs,
          initialEvents: boolParam(q, 'sendInitialEvents'),
          ...(timeout === null || timeout === '0' ? {} : { timeoutMs: Number(timeout) * 1000 }),
          ...(neg.table === undefined ? {} : { table: { version: neg.table, include: includeObject(q) } })
        })
        return
      }
      case 'create': {
        x.send(201, createNode(this.store, await jsonBody(x.req), dryRun))
        return
      }
      case 'update': {
        x.send(200, updateNode(this.store, name, await jsonBody(x.req), sub, dryRun))
        return
      }
      case 'patch': {
        const type = mediaType(x.req.headers['content-type'])
        if (!(PATCH_TYPES as readonly string[]).includes(type)) throw unsupportedMediaType(PATCH_TYPES)
        const patch = parseJson(await readBody(x.req))
        x.send(200, patchNode(this.store, name, type as PatchType, patch, sub, dryRun))
        return
      }
      case 'delete': {
        const body = await readBody(x.req)
        const options = body.length === 0 ? null : parseJson(body)
        x.send(200, deleteNode(this.store, name, options, dryRun))
      }
    }
  }

  private nodeSelector (q: URLSearchParams): Selector {
    const labels = parseLabelSelector(q.get('labelSelector'))
    const fields = parseFieldSelector(q.get('fieldSelector'), nodeFields, NODE_SELECTABLE)
    return (n) => labels(n) && fields(n)
  }

  private pods (x: Exchange, t: Target, verb: string, q: URLSearchParams): void {
    const neg = negotiate(x.req.headers.accept)
    if (verb === 'get') {
      const pod = this.store.getPod(t.namespace!, t.name!)
      if (pod === undefined) throw notFound('pods', t.name!)
      x.send(200, neg.table === undefined ? pod : toTable('Pod', [pod], { version: neg.table, include: includeObject(q) }), contentType(neg))
      return
    }
    const labels = parseLabelSelector(q.get('labelSelector'))
    const fields = parseFieldSelector(q.get('fieldSelector'), podFields, POD_SELECTABLE)
    const items = this.store.listPods(t.namespace).filter((p) => labels(p) && fields(p))
    const rv = String(this.store.resourceVersion)
    x.send(200, neg.table === undefined
      ? { kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: rv }, items: items.map(withoutKind) }
      : toTable('Pod', items, { version: neg.table, include: includeObject(q), listRv: rv }), contentType(neg))
  }

  /** A control operation from main.ts's stdin; throws with a message on failure. */
  control (op: ControlOp): unknown {
    switch (op.op) {
      case 'addNode': {
        const n = op.node
        const podCIDRs = n.podCIDRs ?? (n.podCIDR === undefined ? undefined : [n.podCIDR])
        const body: JsonObject = {
          kind: 'Node',
          apiVersion: 'v1',
          metadata: { name: n.name, ...(n.labels === undefined ? {} : { labels: n.labels }), ...(n.annotations === undefined ? {} : { annotations: n.annotations }) },
          spec: { ...(podCIDRs === undefined ? {} : { podCIDR: n.podCIDR ?? podCIDRs[0]!, podCIDRs }) },
          status: n.addresses === undefined ? {} : { addresses: n.addresses }
        }
        return createNode(this.store, body, false)
      }
      case 'annotate':
        return patchNode(this.store, op.name, 'application/merge-patch+json', { metadata: { annotations: op.annotations } }, 'status', false)
      case 'getNode':
        return this.store.getNode(op.name) ?? null
      case 'deleteNode':
        return deleteNode(this.store, op.name, null, false)
      case 'addPod':
        if (this.store.getPod(op.namespace, op.name) !== undefined) throw alreadyExists('pods', op.name)
        return this.store.createPod({
          kind: 'Pod',
          apiVersion: 'v1',
          metadata: { name: op.name, namespace: op.namespace },
          spec: { nodeName: op.nodeName, containers: [] },
          status: { phase: 'Running' }
        })
      case 'cutWatches':
        return this.watches.cut(op.midEvent)
      case 'compact':
        this.store.compact()
        return null
      case 'deny':
        this.store.denied.add(`${op.verb} ${op.resource}`)
        this.store.save()
        return null
      case 'allowAll':
        this.store.denied.clear()
        this.store.save()
        return null
      case 'requests':
        return this.requests
      case 'resourceVersion':
        return String(this.store.resourceVersion)
    }
  }
}

function contentType (neg: Negotiated): string {
  return neg.table === undefined ? 'application/json' : `application/json;as=Table;v=${neg.table};g=meta.k8s.io`
}

/** List items carry no kind or apiVersion, as the server writes them. */
function withoutKind (o: JsonObject): JsonObject {
  const { kind: _k, apiVersion: _a, ...rest } = o
  return rest
}

const podFields = (p: JsonObject): Record<string, string> => {
  const md = p.metadata as JsonObject
  return {
    'metadata.name': String(md.name),
    'metadata.namespace': String(md.namespace),
    'spec.nodeName': String((p.spec as JsonObject | undefined)?.nodeName ?? ''),
    'status.phase': String((p.status as JsonObject | undefined)?.phase ?? '')
  }
}

/** A POST or PUT body: JSON only (absent Content-Type taken as JSON). */
async function jsonBody (req: IncomingMessage): Promise<Json> {
  const type = mediaType(req.headers['content-type'])
  if (type !== '' && type !== 'application/json') throw unsupportedMediaType(['application/json'])
  return parseJson(await readBody(req))
}
