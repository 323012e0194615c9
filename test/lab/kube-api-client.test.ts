// lab/kube-api as @kubernetes/client-node 1.4 (the library weft's kube
// subnet manager uses) sees it: list, read, merge patches of a node and its
// status, a pod, and its Watch class through events, bookmarks, a 410
// Expired, a cut and a denial. What the Watch callbacks receive in each case
// is asserted, so the client side can rely on it:
//   410: callback('ERROR', Status{code: 410, reason: 'Expired'}), then done(null)
//   cut: done(Error('Premature close'))   timeoutSeconds: done(null)
//   403 at the start: done(Error('Forbidden')) with err.statusCode 403
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { startKubeApi, type KubeApi } from '../../lab/kube-api'
import { waitFor } from '../../lab/wait'

// ESM, loaded through require (Node 20's require(esm)); a static import does not type-check in this CommonJS project
const k8s = require('@kubernetes/client-node') as typeof import('@kubernetes/client-node', { with: { 'resolution-mode': 'import' } })

let api: KubeApi
let dir: string
let kc: InstanceType<typeof k8s.KubeConfig>

before(async () => {
  api = await startKubeApi({ bookmarkMs: 200 })
  dir = mkdtempSync(join(tmpdir(), 'weft-kube-client-'))
  kc = new k8s.KubeConfig()
  kc.loadFromFile(api.kubeconfig(join(dir, 'kubeconfig')))
  await api.addNode({ name: 'c1', podCIDR: '10.244.1.0/24', addresses: [{ type: 'InternalIP', address: '198.18.0.1' }] })
  await api.addNode({ name: 'c2', podCIDR: '10.244.2.0/24' })
})

after(async () => {
  await api?.close()
  rmSync(dir, { recursive: true, force: true })
})

const merge = (): ReturnType<typeof k8s.setHeaderOptions> => k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)

interface Seen { events: Array<[string, any]>, done: Promise<unknown>, abort: () => void }

async function watch (path: string, query: Record<string, string | boolean | number>): Promise<Seen> {
  const events: Array<[string, any]> = []
  let finish: (err: unknown) => void = () => {}
  const done = new Promise<unknown>((resolve) => { finish = resolve })
  const ctl = await new k8s.Watch(kc).watch(path, query, (type, obj) => { events.push([type, obj]) }, (err) => finish(err))
  return { events, done, abort: () => ctl.abort() }
}

const within = async <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<T>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

test('CoreV1Api lists, reads and merge-patches nodes and their status, reads a pod; errors are ApiExceptions', async () => {
  const core = kc.makeApiClient(k8s.CoreV1Api)
  const list = await core.listNode()
  assert.deepEqual(list.items.map((n) => n.metadata?.name), ['c1', 'c2'])
  assert.match(list.metadata?.resourceVersion ?? '', /^\d+$/)
  assert.equal((await core.readNode({ name: 'c1' })).spec?.podCIDR, '10.244.1.0/24')

  const patched = await core.patchNode({ name: 'c1', body: { metadata: { labels: { tier: 'x' } }, spec: { unschedulable: true } } }, merge())
  assert.equal(patched.spec?.unschedulable, true)
  // flanneld's write: its annotations and the NetworkUnavailable condition through the status subresource
  const status = await core.patchNodeStatus({
    name: 'c1',
    body: {
      metadata: { annotations: { 'flannel.alpha.coreos.com/public-ip': '198.18.0.1' } },
      status: { conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'FlannelIsUp', message: 'Flannel is running on this node' }] }
    }
  }, merge())
  assert.equal(status.metadata?.annotations?.['flannel.alpha.coreos.com/public-ip'], '198.18.0.1')
  assert.equal(status.status?.conditions?.[0]?.reason, 'FlannelIsUp')
  assert.equal(status.spec?.unschedulable, true)

  await api.addPod('kube-flannel', 'kube-flannel-ds-abc', 'c2')
  assert.equal((await core.readNamespacedPod({ name: 'kube-flannel-ds-abc', namespace: 'kube-flannel' })).spec?.nodeName, 'c2')

  await assert.rejects(core.readNode({ name: 'nope' }), (err: any) => {
    assert.equal(err.code, 404)
    assert.equal(JSON.parse(err.body).message, 'nodes "nope" not found')
    return true
  })
  await api.deny('patch', 'nodes/status')
  try {
    await assert.rejects(core.patchNodeStatus({ name: 'c1', body: {} }, merge()), (err: any) => err.code === 403 && /cannot patch resource "nodes\/status"/.test(JSON.parse(err.body).message))
  } finally {
    await api.allowAll()
  }
  assert.deepEqual((await api.calls()).map((c) => `${c.verb} ${c.resource} ${c.code}`), [
    'list nodes 200', 'get nodes 200', 'patch nodes 200', 'patch nodes/status 200', 'get pods 200', 'get nodes 404', 'patch nodes/status 403'
  ])
})

test('Watch: events from a resourceVersion, bookmarks, the end at timeoutSeconds', async () => {
  const core = kc.makeApiClient(k8s.CoreV1Api)
  const rv = (await core.listNode()).metadata!.resourceVersion!
  const w = await watch('/api/v1/nodes', { allowWatchBookmarks: true, resourceVersion: rv })
  try {
    await core.patchNodeStatus({ name: 'c2', body: { metadata: { annotations: { seen: 'yes' } } } }, merge())
    await waitFor(() => w.events.some(([t]) => t === 'BOOKMARK'), { what: 'a bookmark', timeoutMs: 3000 })
    const [type, obj] = w.events[0]!
    assert.equal(type, 'MODIFIED')
    assert.equal(obj.metadata.annotations.seen, 'yes')
    assert.ok(Number(obj.metadata.resourceVersion) > Number(rv))
    const mark = w.events.find(([t]) => t === 'BOOKMARK')![1]
    assert.equal(mark.metadata.resourceVersion, obj.metadata.resourceVersion)
  } finally {
    w.abort()
  }
  const timed = await watch('/api/v1/nodes', { timeoutSeconds: 1 })
  assert.equal(await within(timed.done, 5000, 'the end at timeoutSeconds'), null)
  assert.deepEqual(timed.events.map(([t]) => t), ['ADDED', 'ADDED'])
})

test('Watch: 410 Expired arrives as an ERROR event then done(null); a cut as done(Premature close); a denial as done(403)', async () => {
  const core = kc.makeApiClient(k8s.CoreV1Api)
  const old = (await core.listNode()).metadata!.resourceVersion!
  await api.annotate('c1', { bump: '1' })
  await api.compact()
  const expired = await watch('/api/v1/nodes', { resourceVersion: old })
  assert.equal(await within(expired.done, 5000, 'done after 410'), null)
  assert.equal(expired.events.length, 1)
  const [type, status] = expired.events[0]!
  assert.equal(type, 'ERROR')
  assert.equal(status.kind, 'Status')
  assert.equal(status.code, 410)
  assert.equal(status.reason, 'Expired')
  assert.match(status.message, new RegExp(`^too old resource version: ${old} \\(\\d+\\)$`))

  for (const midEvent of [false, true]) {
    const w = await watch('/api/v1/nodes', {})
    await waitFor(() => w.events.length === 2, { what: 'the initial ADDED events' })
    assert.equal(await api.cutWatches({ midEvent }), 1)
    const err = await within(w.done, 5000, 'done after a cut')
    assert.ok(err instanceof Error)
    assert.match(err.message, /Premature close/)
    assert.equal(w.events.length, 2, 'half an event is no event')
  }

  await api.deny('watch', 'nodes')
  try {
    const denied = await watch('/api/v1/nodes', {})
    const err = await within(denied.done, 5000, 'done after 403') as { statusCode?: number, message?: string }
    assert.equal(err.statusCode, 403)
    assert.equal(err.message, 'Forbidden')
  } finally {
    await api.allowAll()
  }
})
