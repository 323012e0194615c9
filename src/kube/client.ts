// The Kubernetes API, as weft uses it: the five calls in calls.ts, through
// the official client (@kubernetes/client-node), which reads kubeconfigs and
// the in-cluster service account, keeps TLS and tokens right, and speaks the
// watch protocol. The client is an ES module; it is loaded when kube mode
// starts, so no other command pays for it.
//
// Every failure becomes a StoreError with a stable code, so the daemon's
// outage accounting and retry loops treat the API server as they treat etcd:
// - EUNAVAILABLE: no answer, a timeout, 429 or 5xx (retried with backoff)
// - EFORBIDDEN / EAUTH: 403 / 401, the message names the verb and resource
// - ENOENT 404, ECOMPACTED 410 (a watch's resourceVersion expired: relist),
//   ETLS (a certificate we cannot verify), ESTORE anything else
import fs from 'node:fs'
import { StoreError } from '../store/store'
import type { StoreErrorCode } from '../store/store'
import type { KubeNode } from './node'

type K8s = typeof import('@kubernetes/client-node', { with: { 'resolution-mode': 'import' } })
type CoreV1Api = InstanceType<K8s['CoreV1Api']>
type KubeConfig = InstanceType<K8s['KubeConfig']>

/** Every call but a watch gives up after this long (a paused API server holds connections open). */
export const CALL_TIMEOUT_MS = 15_000
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

export interface KubeClientOptions {
  /** --kubeconfig-file */
  kubeconfig: string
  /** --kube-api-url: the server, overriding the kubeconfig's or the service account's */
  apiUrl: string
  env?: NodeJS.ProcessEnv
  callTimeoutMs?: number
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK'

export interface WatchHandlers {
  onEvent: (type: WatchEventType, node: KubeNode) => void
  /** the server accepted the watch (the API answers again, even if nothing changes) */
  onConnected?: () => void
}

let loaded: K8s | undefined
function k8s (): K8s {
  // require() of an ES module: Node 20.19+ loads it synchronously
  loaded ??= require('@kubernetes/client-node') as K8s
  return loaded
}

/** How the client finds the API server, as flanneld's clientcmd.BuildConfigFromFlags: the kubeconfig, else the in-cluster account, else the URL alone. */
function loadConfig (o: KubeClientOptions): KubeConfig {
  const env = o.env ?? process.env
  const kc = new (k8s().KubeConfig)()
  try {
    if (o.kubeconfig !== '') {
      kc.loadFromFile(o.kubeconfig)
    } else if (env.KUBERNETES_SERVICE_HOST !== undefined && env.KUBERNETES_SERVICE_HOST !== '' && fs.existsSync(`${SA_DIR}/token`)) {
      kc.loadFromCluster()
    } else if (o.apiUrl !== '') {
      kc.loadFromClusterAndUser({ name: 'api', server: o.apiUrl, skipTLSVerify: false }, { name: 'weft' })
    } else {
      throw new StoreError('ESTORE', 'kube subnet manager: no way to reach the API server: give --kubeconfig-file or --kube-api-url, or run in a pod (KUBERNETES_SERVICE_HOST and the service account token)')
    }
  } catch (err) {
    if (err instanceof StoreError) throw err
    throw new StoreError('ESTORE', `cannot read the Kubernetes client config${o.kubeconfig !== '' ? ` ${o.kubeconfig}` : ''}: ${(err as Error).message}`)
  }
  const cluster = kc.getCurrentCluster()
  if (cluster === null) throw new StoreError('ESTORE', `the Kubernetes client config${o.kubeconfig !== '' ? ` ${o.kubeconfig}` : ''} names no current cluster`)
  if (o.apiUrl !== '' && cluster.server !== o.apiUrl) {
    // --kube-api-url wins over the kubeconfig's server, as in flanneld
    const clusters = kc.clusters.map((c) => c.name === cluster.name ? { ...c, server: o.apiUrl } : c)
    kc.loadFromOptions({ clusters, users: kc.users, contexts: kc.contexts, currentContext: kc.currentContext })
  }
  return kc
}

export class KubeClient {
  private readonly kc: KubeConfig
  private readonly core: CoreV1Api
  private readonly timeoutMs: number
  readonly server: string

  constructor (o: KubeClientOptions) {
    this.kc = loadConfig(o)
    this.core = this.kc.makeApiClient(k8s().CoreV1Api)
    this.server = this.kc.getCurrentCluster()?.server ?? ''
    this.timeoutMs = o.callTimeoutMs ?? CALL_TIMEOUT_MS
  }

  async getNode (name: string): Promise<KubeNode> {
    return await this.call('get', 'nodes', name, async (opt) => await this.core.readNode({ name }, opt) as KubeNode)
  }

  async listNodes (): Promise<{ nodes: KubeNode[], resourceVersion: string }> {
    return await this.call('list', 'nodes', undefined, async (opt) => {
      const list = await this.core.listNode({}, opt)
      return { nodes: list.items as KubeNode[], resourceVersion: list.metadata?.resourceVersion ?? '' }
    })
  }

  /** flanneld patches both its annotations and its condition through the status subresource, as a strategic merge patch. */
  async patchNodeStatus (name: string, patch: object): Promise<KubeNode> {
    const { setHeaderOptions, PatchStrategy } = k8s()
    return await this.call('patch', 'nodes/status', name, async (opt) =>
      await this.core.patchNodeStatus({ name, body: patch }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch, opt)) as KubeNode)
  }

  async getPod (namespace: string, name: string): Promise<{ spec?: { nodeName?: string } }> {
    return await this.call('get', 'pods', `${namespace}/${name}`, async (opt) => await this.core.readNamespacedPod({ name, namespace }, opt) as { spec?: { nodeName?: string } })
  }

  /**
   * Watch nodes from resourceVersion until the stream ends (resolves), the
   * server says the version expired (throws ECOMPACTED) or fails (throws).
   * Ends by itself after timeoutSeconds, as client-go's watches do, and if
   * nothing (not even a bookmark) arrives for idleMs.
   */
  async watchNodes (resourceVersion: string, h: WatchHandlers, signal: AbortSignal, o: { timeoutSeconds: number, idleMs: number }): Promise<void> {
    const watch = new (k8s().Watch)(this.kc)
    let failure: StoreError | undefined
    let idle: NodeJS.Timeout | undefined
    let abort: AbortController | undefined
    /** the client called done: the request failed or the stream ended */
    let ended = false
    await new Promise<void>((resolve) => {
      const finish = (err?: StoreError): void => {
        failure ??= err
        clearTimeout(idle)
        signal.removeEventListener('abort', onAbort)
        abort?.abort()
        resolve()
      }
      const onAbort = (): void => finish()
      const touch = (): void => {
        clearTimeout(idle)
        idle = setTimeout(() => finish(new StoreError('EUNAVAILABLE', `the watch of nodes was silent for ${Math.round(o.idleMs / 1000)} s`)), o.idleMs)
      }
      if (signal.aborted) { resolve(); return }
      signal.addEventListener('abort', onAbort)
      touch()
      watch.watch('/api/v1/nodes', { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: o.timeoutSeconds }, (type: string, obj: unknown) => {
        touch()
        if (failure !== undefined) return
        if (type === 'ERROR') {
          const s = obj as { code?: number, message?: string, reason?: string }
          finish(s.code === 410 ? new StoreError('ECOMPACTED', `the watch of nodes expired: ${String(s.message ?? s.reason)}`) : kubeError(statusError(s), 'watch', 'nodes'))
          return
        }
        if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED' && type !== 'BOOKMARK') return
        if (obj === null || typeof obj !== 'object') return
        try {
          h.onEvent(type, obj as KubeNode)
        } catch (err) {
          finish(new StoreError('ESTORE', `handling a node event: ${(err as Error).message}`))
        }
      }, (err: unknown) => { ended = true; finish(err === null || err === undefined ? undefined : kubeError(err, 'watch', 'nodes')) }).then((c) => {
        abort = c
        if (signal.aborted || failure !== undefined || ended) c.abort()
        else h.onConnected?.()
      }, (err: unknown) => finish(kubeError(err, 'watch', 'nodes')))
    })
    if (failure !== undefined) throw failure
  }

  private async call<T> (verb: string, resource: string, name: string | undefined, fn: (opt: object) => Promise<T>): Promise<T> {
    const timeout = this.timeoutMs
    // the object-parameter API runs middleware as its observables (anything with toPromise)
    const opt = {
      middleware: [{
        pre: (ctx: { setSignal: (s: AbortSignal) => void }) => { ctx.setSignal(AbortSignal.timeout(timeout)); return { toPromise: async () => ctx } },
        post: (r: unknown) => ({ toPromise: async () => r })
      }],
      middlewareMergeStrategy: 'append'
    }
    try {
      return await fn(opt)
    } catch (err) {
      throw kubeError(err, verb, resource, name)
    }
  }
}

function statusError (s: { code?: number, message?: string }): Error & { code?: number, body?: unknown } {
  return Object.assign(new Error(s.message ?? 'error'), { code: s.code, body: s })
}

const TLS_CODES = new Set(['DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID'])

/** The status code and the server's own message from whatever the client threw (ApiException, the watch's Error, node-fetch's FetchError). */
export function kubeError (err: unknown, verb: string, resource: string, name?: string): StoreError {
  if (err instanceof StoreError) return err
  const e = err as { code?: unknown, statusCode?: unknown, body?: unknown, message?: string, name?: string, errno?: unknown, cause?: { code?: unknown } }
  const status = typeof e.code === 'number' ? e.code : typeof e.statusCode === 'number' ? e.statusCode : undefined
  const what = `${verb} ${resource}${name !== undefined ? ` ${JSON.stringify(name)}` : ''}`
  if (status !== undefined) {
    const msg = serverMessage(e.body) ?? e.message ?? ''
    const code: StoreErrorCode = status === 401
      ? 'EAUTH'
      : status === 403 ? 'EFORBIDDEN' : status === 404 ? 'ENOENT' : status === 410 ? 'ECOMPACTED' : status === 409 ? 'EEXIST' : status === 429 || status >= 500 ? 'EUNAVAILABLE' : 'ESTORE'
    const why = code === 'EFORBIDDEN'
      ? `the API server forbids weft to ${verb} ${resource} (check the ClusterRole; weft needs exactly the permissions in deploy/kube-weft.yml)`
      : code === 'EAUTH' ? `the API server refused weft's credentials to ${what}` : `the API server answered ${status} to ${what}`
    return new StoreError(code, `${why}: ${clip(msg)}`, { cause: err })
  }
  const sys = typeof e.code === 'string' ? e.code : typeof e.cause?.code === 'string' ? e.cause.code : undefined
  if (sys !== undefined && TLS_CODES.has(sys)) return new StoreError('ETLS', `cannot verify the API server's certificate (${sys}) to ${what}: ${clip(e.message ?? '')}`, { cause: err })
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return new StoreError('EUNAVAILABLE', `the API server did not answer in time to ${what}`, { cause: err })
  return new StoreError('EUNAVAILABLE', `cannot reach the API server to ${what}: ${clip(e.message ?? String(err))}`, { cause: err })
}

function serverMessage (body: unknown): string | undefined {
  let b = body
  if (typeof body === 'string') {
    try { b = JSON.parse(body) } catch { return body.slice(0, 300) }
  }
  if (b !== null && typeof b === 'object' && typeof (b as { message?: unknown }).message === 'string') return (b as { message: string }).message
  return undefined
}

function clip (s: string): string {
  return s.length > 300 ? `${s.slice(0, 300)}...` : s
}
