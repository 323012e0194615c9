// lab/kube-api over raw HTTP: the real API's semantics for Nodes that a
// client leans on (resourceVersions, conflicts, the status subresource,
// patches, watches that resume, expire and are cut, Status errors, RBAC
// denials), its faults (stop and restart with the state kept, pause), and
// hostile bodies. kubectl's view of it is in kube-api-kubectl.test.ts, the
// client library's in kube-api-client.test.ts. Runs on 127.0.0.1 without
// root; the last test (in a topology's underlay) needs namespaces.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { after, before, test } from 'node:test'
import { startKubeApi, type KubeApi } from '../../lab/kube-api'
import { withTopology } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'
import { waitFor } from '../../lab/wait'
import { brief, call, watch } from './kube-api-http'

let api: KubeApi
const BOOKMARK_MS = 200

before(async () => { api = await startKubeApi({ bookmarkMs: BOOKMARK_MS }) })
after(async () => { await api?.close() })

const node = (name: string, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ kind: 'Node', apiVersion: 'v1', metadata: { name }, spec: { podCIDR: '10.244.9.0/24' }, ...extra })

const rvOf = (o: any): number => Number(o.metadata.resourceVersion)

test('discovery answers kubectl\'s questions; no token or a wrong one is 401; unknown paths are 404 Statuses', async () => {
  assert.equal((await call(api, 'GET', '/version')).json.major, '1')
  assert.deepEqual((await call(api, 'GET', '/api')).json.versions, ['v1'])
  assert.deepEqual((await call(api, 'GET', '/apis')).json, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] })
  const res = (await call(api, 'GET', '/api/v1')).json.resources
  assert.deepEqual(res.map((r: any) => r.name), ['nodes', 'nodes/status', 'pods'])
  assert.equal(res[0].namespaced, false)
  assert.ok(res[0].verbs.includes('watch') && res[0].verbs.includes('patch'))

  const unauthorized = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 }
  for (const token of [null, 'not-the-token']) {
    const r = await call(api, 'GET', '/api/v1/nodes', { token })
    assert.equal(r.code, 401)
    assert.deepEqual(r.json, unauthorized)
  }
  for (const p of ['/openapi/v2', '/api/v1/services', '/api/v2/nodes', '/api/v1/nodes/a/b/c']) {
    const r = await call(api, 'GET', p)
    assert.equal(r.code, 404, p)
    assert.deepEqual(r.json, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'the server could not find the requested resource', reason: 'NotFound', details: {}, code: 404 })
  }
})

test('create, get, list, update and delete follow the API: resourceVersions, 409s, NotFound, selectors', async () => {
  const c = await call(api, 'POST', '/api/v1/nodes', { body: node('crud1', { metadata: { name: 'crud1', labels: { zone: 'a' } } }) })
  assert.equal(c.code, 201, c.text)
  assert.match(c.json.metadata.uid, /^[0-9a-f-]{36}$/)
  assert.match(c.json.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
  const again = await call(api, 'POST', '/api/v1/nodes', { body: node('crud1') })
  assert.equal(again.code, 409)
  assert.equal(again.json.reason, 'AlreadyExists')
  assert.equal(again.json.message, 'nodes "crud1" already exists')
  await call(api, 'POST', '/api/v1/nodes', { body: node('crud2', { metadata: { name: 'crud2', labels: { zone: 'b' } } }) })

  const missing = await call(api, 'GET', '/api/v1/nodes/h9')
  assert.equal(missing.code, 404)
  assert.deepEqual(missing.json, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'nodes "h9" not found', reason: 'NotFound', details: { name: 'h9', kind: 'nodes' }, code: 404 })

  const list = await call(api, 'GET', '/api/v1/nodes')
  assert.equal(list.json.kind, 'NodeList')
  assert.ok(rvOf(list.json) >= rvOf(c.json))
  assert.equal(list.json.metadata.continue, undefined)
  const crud = list.json.items.filter((n: any) => n.metadata.name.startsWith('crud'))
  assert.deepEqual(crud.map((n: any) => n.metadata.name), ['crud1', 'crud2'])
  assert.equal(crud[0].kind, undefined, 'list items carry no kind, as the server writes them')
  const names = async (q: string): Promise<string[]> => (await call(api, 'GET', `/api/v1/nodes?${q}`)).json.items.map((n: any) => n.metadata.name)
  assert.deepEqual(await names('fieldSelector=metadata.name%3Dcrud2'), ['crud2'])
  assert.deepEqual(await names('labelSelector=zone%3Da'), ['crud1'])
  assert.deepEqual(await names('labelSelector=zone%20in%20(a%2Cb)&limit=1'), ['crud1', 'crud2'])
  assert.equal((await call(api, 'GET', '/api/v1/nodes?fieldSelector=spec.nope%3D1')).code, 400)
  assert.equal((await call(api, 'GET', '/api/v1/nodes?labelSelector=%3D%3D%3D')).code, 400)

  // PUT: a stale resourceVersion is a conflict; none at all is an unconditional update
  const cur = (await call(api, 'GET', '/api/v1/nodes/crud1')).json
  const put1 = await call(api, 'PUT', '/api/v1/nodes/crud1', { body: { ...cur, spec: { podCIDR: '10.244.10.0/24' } } })
  assert.equal(put1.code, 200, put1.text)
  assert.ok(rvOf(put1.json) > rvOf(cur))
  assert.equal(put1.json.metadata.uid, cur.metadata.uid)
  const stale = await call(api, 'PUT', '/api/v1/nodes/crud1', { body: cur })
  assert.equal(stale.code, 409)
  assert.deepEqual(stale.json, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'Operation cannot be fulfilled on nodes "crud1": the object has been modified; please apply your changes to the latest version and try again',
    reason: 'Conflict',
    details: { name: 'crud1', kind: 'nodes' },
    code: 409
  })
  const { resourceVersion: _rv, ...noRv } = put1.json.metadata
  const unconditional = await call(api, 'PUT', '/api/v1/nodes/crud1', { body: { ...put1.json, metadata: { ...noRv, labels: { zone: 'c' } } } })
  assert.equal(unconditional.code, 200)
  assert.deepEqual(unconditional.json.metadata.labels, { zone: 'c' })
  const renamed = await call(api, 'PUT', '/api/v1/nodes/crud1', { body: { ...put1.json, metadata: { name: 'other' } } })
  assert.equal(renamed.code, 400)
  assert.equal(renamed.json.message, 'the name of the object (other) does not match the name on the URL (crud1)')
  assert.equal((await call(api, 'PUT', '/api/v1/nodes/h9', { body: node('h9') })).code, 404)

  const uid2 = (await call(api, 'GET', '/api/v1/nodes/crud2')).json.metadata.uid
  const del = await call(api, 'DELETE', '/api/v1/nodes/crud2')
  assert.equal(del.code, 200)
  assert.deepEqual(del.json, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: 'crud2', kind: 'nodes', uid: uid2 }, code: 200 })
  assert.equal((await call(api, 'GET', '/api/v1/nodes/crud2')).code, 404)
  assert.equal((await call(api, 'DELETE', '/api/v1/nodes/crud2')).code, 404)
  assert.equal((await call(api, 'POST', '/api/v1/nodes/crud1', { body: node('crud1') })).code, 405)
  assert.equal((await call(api, 'POST', '/api/v1/nodes', { body: node('Bad_Name') })).code, 422)
})

const MERGE = 'application/merge-patch+json'
const STRATEGIC = 'application/strategic-merge-patch+json'
const JSONPATCH = 'application/json-patch+json'

test('the status subresource writes status and metadata only; the main resource leaves status alone', async () => {
  await api.addNode({ name: 'sub1', podCIDR: '10.244.1.0/24', addresses: [{ type: 'InternalIP', address: '198.18.0.1' }] })
  const viaStatus = await call(api, 'PATCH', '/api/v1/nodes/sub1/status', {
    type: MERGE,
    body: { metadata: { annotations: { 'flannel.alpha.coreos.com/public-ip': '198.18.0.1' } }, spec: { podCIDR: '10.9.9.0/24' }, status: { conditions: [{ type: 'NetworkUnavailable', status: 'False' }] } }
  })
  assert.equal(viaStatus.code, 200, viaStatus.text)
  assert.equal(viaStatus.json.spec.podCIDR, '10.244.1.0/24', 'spec is not written through /status')
  assert.deepEqual(viaStatus.json.status.conditions, [{ type: 'NetworkUnavailable', status: 'False' }])
  assert.equal(viaStatus.json.metadata.annotations['flannel.alpha.coreos.com/public-ip'], '198.18.0.1')

  const viaMain = await call(api, 'PATCH', '/api/v1/nodes/sub1', { type: MERGE, body: { spec: { unschedulable: true }, status: { conditions: null }, metadata: { labels: { a: 'b' } } } })
  assert.equal(viaMain.code, 200, viaMain.text)
  assert.equal(viaMain.json.spec.unschedulable, true)
  assert.deepEqual(viaMain.json.status, viaStatus.json.status, 'status is not written through the main resource')
  assert.deepEqual(viaMain.json.metadata.labels, { a: 'b' })

  const put = await call(api, 'PUT', '/api/v1/nodes/sub1/status', { body: { ...viaMain.json, spec: {}, status: { phase: 'Running' } } })
  assert.equal(put.code, 200, put.text)
  assert.deepEqual(put.json.spec, viaMain.json.spec)
  assert.deepEqual(put.json.status, { phase: 'Running' })
  assert.equal((await call(api, 'GET', '/api/v1/nodes/sub1/status')).json.status.phase, 'Running')
})

test('merge, strategic and JSON patches; a no-op patch keeps the resourceVersion and sends no event; others are 415', async () => {
  await api.addNode({ name: 'p1', podCIDR: '10.244.2.0/24', addresses: [{ type: 'InternalIP', address: '198.18.0.2' }, { type: 'Hostname', address: 'p1' }] })
  const start = rvOf(await api.getNode('p1'))
  const w = watch(api, `/api/v1/nodes?watch=true&resourceVersion=${start}&fieldSelector=metadata.name%3Dp1`)
  const patch = async (sub: string, type: string, body: unknown): Promise<any> => {
    const r = await call(api, 'PATCH', `/api/v1/nodes/p1${sub}`, { type, body })
    assert.equal(r.code, 200, r.text)
    return r.json
  }
  // strategic: conditions merge by type, addresses by type, $patch: delete removes one
  await patch('/status', STRATEGIC, { status: { conditions: [{ type: 'Ready', status: 'False' }, { type: 'NetworkUnavailable', status: 'True' }] } })
  let n = await patch('/status', STRATEGIC, { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }], addresses: [{ type: 'ExternalIP', address: '203.0.113.1' }, { type: 'Hostname', $patch: 'delete' }] } })
  assert.deepEqual(n.status.conditions, [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }, { type: 'NetworkUnavailable', status: 'True' }])
  assert.deepEqual(n.status.addresses, [{ type: 'InternalIP', address: '198.18.0.2' }, { type: 'ExternalIP', address: '203.0.113.1' }])
  // spec.taints has no patch strategy in the Go type: a strategic patch replaces it, as the real server does
  await patch('', STRATEGIC, { spec: { taints: [{ key: 'a', effect: 'NoSchedule' }] } })
  n = await patch('', STRATEGIC, { spec: { taints: [{ key: 'b', effect: 'NoSchedule' }], podCIDRs: ['10.244.3.0/24'] } })
  assert.deepEqual(n.spec.taints, [{ key: 'b', effect: 'NoSchedule' }])
  assert.deepEqual(n.spec.podCIDRs, ['10.244.2.0/24', '10.244.3.0/24'], 'podCIDRs is a merge list of primitives')
  // merge patch: lists replace, null deletes
  n = await patch('/status', MERGE, { metadata: { annotations: { x: '1', y: '2' } }, status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } })
  assert.deepEqual(n.status.conditions, [{ type: 'Ready', status: 'Unknown' }])
  n = await patch('/status', MERGE, { metadata: { annotations: { x: null } } })
  assert.deepEqual(n.metadata.annotations, { y: '2' })
  // JSON patch, with the ~1 escape flanneld's keys need
  n = await patch('/status', JSONPATCH, [{ op: 'add', path: '/metadata/annotations/flannel.alpha.coreos.com~1backend-type', value: 'vxlan' }, { op: 'test', path: '/metadata/annotations/y', value: '2' }])
  assert.equal(n.metadata.annotations['flannel.alpha.coreos.com/backend-type'], 'vxlan')

  const before = rvOf(n)
  await waitFor(() => w.events.some((e) => rvOf(e.object) === before), { what: 'the watch to see the last patch' })
  const events = w.events.length
  for (const [type, body] of [[MERGE, { metadata: { annotations: { y: '2' } } }], [STRATEGIC, { status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } }], [JSONPATCH, []]] as const) {
    const same = await patch('/status', type, body)
    assert.equal(rvOf(same), before, `a no-op ${type} keeps the resourceVersion`)
  }
  const failed = await call(api, 'PATCH', '/api/v1/nodes/p1/status', { type: JSONPATCH, body: [{ op: 'test', path: '/metadata/annotations/y', value: 'not-2' }, { op: 'remove', path: '/metadata/annotations/y' }] })
  assert.equal(failed.code, 422)
  assert.deepEqual(failed.json, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'the server rejected our request due to an error in our request', reason: 'Invalid', details: {}, code: 422 })
  assert.equal((await call(api, 'PATCH', '/api/v1/nodes/p1', { type: JSONPATCH, body: { op: 'add' } })).code, 400)
  const staleRv = await call(api, 'PATCH', '/api/v1/nodes/p1', { type: MERGE, body: { metadata: { resourceVersion: String(start), labels: { q: 'r' } } } })
  assert.equal(staleRv.code, 409, 'a patch naming a stale resourceVersion is a conflict')
  assert.equal(rvOf(await api.getNode('p1')), before)
  const last = await patch('', MERGE, { metadata: { labels: { after: 'noop' } } })
  assert.equal(rvOf(last), before + 1)
  await w.until(events + 1)
  assert.deepEqual(w.events.slice(events).map(brief), [`MODIFIED p1@${before + 1}`], 'the no-op patches sent nothing')
  w.close()

  for (const type of ['application/json', 'application/apply-patch+yaml', 'text/plain']) {
    const r = await call(api, 'PATCH', '/api/v1/nodes/p1', { type, body: {} })
    assert.equal(r.code, 415, type)
    assert.equal(r.json.reason, 'UnsupportedMediaType')
  }
})

test('a watch from 0 lists, one from N resumes with exactly the events after N; bookmarks, timeoutSeconds, selectors', async () => {
  await api.addNode({ name: 'w1' })
  const w0 = watch(api, '/api/v1/nodes?watch=1&allowWatchBookmarks=true&fieldSelector=metadata.name%3Dw1')
  assert.equal(await w0.code, 200)
  const [first] = await w0.until(1)
  assert.equal(brief(first!), `ADDED w1@${rvOf(await api.getNode('w1'))}`)
  const from = rvOf(first!.object)
  await api.annotate('w1', { a: '1' })
  await api.annotate('w1', { a: '2' })
  await api.deleteNode('w1')
  await api.addNode({ name: 'w1', labels: { back: 'yes' } })
  const resumed = watch(api, `/api/v1/watch/nodes/w1?resourceVersion=${from}`)
  const seen = await resumed.until(4)
  assert.deepEqual(seen.map((e) => e.type), ['MODIFIED', 'MODIFIED', 'DELETED', 'ADDED'])
  const rvs = seen.map((e) => rvOf(e.object))
  assert.deepEqual(rvs, [...rvs].sort((a, b) => a - b))
  assert.ok(rvs[0]! > from)
  assert.equal(seen[0]!.object.kind, 'Node')
  assert.equal(seen[1]!.object.metadata.annotations.a, '2')
  // the same from the middle: only what came after
  const mid = watch(api, `/api/v1/nodes?watch=true&resourceVersion=${rvs[1]!}&fieldSelector=metadata.name%3Dw1`)
  assert.deepEqual((await mid.until(2)).map(brief), seen.slice(2).map(brief))
  for (const s of [resumed, mid]) s.close()

  // bookmarks carry the current resourceVersion and nothing else
  await w0.until(6, 3000)
  const marks = w0.events.filter((e) => e.type === 'BOOKMARK')
  assert.ok(marks.length >= 1, 'a bookmark within the interval')
  assert.deepEqual(marks[0]!.object, { kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: marks[0]!.object.metadata.resourceVersion } })
  w0.close()

  // timeoutSeconds ends the stream cleanly
  const t0 = Date.now()
  const timed = watch(api, '/api/v1/nodes?watch=true&timeoutSeconds=1')
  assert.equal(await timed.ended, 'end')
  assert.ok(Date.now() - t0 >= 900)

  // a label selector: a node that stops matching is DELETED for this watch, one that starts is ADDED
  const now = (await call(api, 'GET', '/api/v1/nodes')).json.metadata.resourceVersion
  const sel = watch(api, `/api/v1/nodes?watch=true&resourceVersion=${now}&labelSelector=back%3Dyes`)
  await call(api, 'PATCH', '/api/v1/nodes/w1', { type: MERGE, body: { metadata: { labels: { back: 'no' } } } })
  await call(api, 'PATCH', '/api/v1/nodes/w1', { type: MERGE, body: { metadata: { labels: { back: 'yes' } } } })
  assert.deepEqual((await sel.until(2)).map((e) => e.type), ['DELETED', 'ADDED'])
  sel.close()
})

test('a watch from before the kept history gets 200 and one 410 Expired ERROR event; a list never 410s', async () => {
  await api.addNode({ name: 'old1' })
  const old = rvOf(await api.getNode('old1'))
  await api.annotate('old1', { b: '1' })
  await api.compact()
  const now = Number((await call(api, 'GET', '/api/v1/nodes')).json.metadata.resourceVersion)
  const w = watch(api, `/api/v1/nodes?watch=true&resourceVersion=${old}`)
  assert.equal(await w.code, 200)
  assert.equal(await w.ended, 'end')
  assert.deepEqual(w.events, [{
    type: 'ERROR',
    object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${old} (${now})`, reason: 'Expired', code: 410 }
  }])
  const list = await call(api, 'GET', `/api/v1/nodes?resourceVersion=${old}`)
  assert.equal(list.code, 200)
  // from the compaction point on, watches work again
  const ok = watch(api, `/api/v1/nodes?watch=true&resourceVersion=${now}`)
  await api.annotate('old1', { b: '2' })
  assert.equal((await ok.until(1))[0]!.type, 'MODIFIED')
  ok.close()
  assert.equal((await call(api, 'GET', '/api/v1/nodes?watch=true&resourceVersion=abc')).code, 400)
})

test('cutWatches destroys every open watch, mid-event if asked; new watches work after', async () => {
  const a = watch(api, '/api/v1/nodes?watch=true')
  const b = watch(api, '/api/v1/nodes?watch=true')
  for (const s of [a, b]) assert.equal(await s.code, 200)
  await a.until(1)
  assert.equal(await api.cutWatches(), 2)
  assert.deepEqual([await a.ended, await b.ended], ['cut', 'cut'])
  assert.ok(a.text().endsWith('\n'), 'cut between events')

  const c = watch(api, '/api/v1/nodes?watch=true')
  await c.until(1)
  const whole = c.events.length
  assert.equal(await api.cutWatches({ midEvent: true }), 1)
  assert.equal(await c.ended, 'cut')
  assert.ok(!c.text().endsWith('\n'), 'half an event line, then the connection went')
  assert.equal(c.events.length, whole)
  assert.match(c.text().slice(c.text().lastIndexOf('\n') + 1), /^\{"type":"BOOKMARK"/)
  assert.equal(await api.cutWatches(), 0)
  const d = watch(api, '/api/v1/nodes?watch=true')
  await d.until(1)
  d.close()
})

test('RBAC denials are 403 with the real message; every call is logged in RBAC terms', async () => {
  await api.addNode({ name: 'r1' })
  await api.deny('patch', 'nodes/status')
  await api.deny('list', 'nodes')
  await api.deny('get', 'pods')
  const r = await call(api, 'PATCH', '/api/v1/nodes/r1/status', { type: MERGE, body: {} })
  assert.equal(r.code, 403)
  assert.deepEqual(r.json, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'nodes "r1" is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot patch resource "nodes/status" in API group "" at the cluster scope',
    reason: 'Forbidden',
    details: { name: 'r1', kind: 'nodes' },
    code: 403
  })
  assert.equal((await call(api, 'GET', '/api/v1/nodes')).json.message,
    'nodes is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot list resource "nodes" in API group "" at the cluster scope')
  assert.equal((await call(api, 'GET', '/api/v1/namespaces/kube-flannel/pods/x')).json.message,
    'pods "x" is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot get resource "pods" in API group "" in the namespace "kube-flannel"')
  assert.equal((await call(api, 'PATCH', '/api/v1/nodes/r1', { type: MERGE, body: {} })).code, 200, 'patching the main resource is another permission')
  await api.allowAll()
  assert.equal((await call(api, 'PATCH', '/api/v1/nodes/r1/status', { type: MERGE, body: {} })).code, 200)

  await api.addPod('kube-flannel', 'flannel-x', 'r1')
  const pod = await call(api, 'GET', '/api/v1/namespaces/kube-flannel/pods/flannel-x')
  assert.equal(pod.json.spec.nodeName, 'r1')
  assert.equal((await call(api, 'GET', '/api/v1/namespaces/kube-flannel/pods/nope')).json.message, 'pods "nope" not found')
  const w = watch(api, '/api/v1/nodes?watch=true&resourceVersion=0')
  await w.until(1)
  w.close()
  const calls = (await api.calls()).slice(-8)
  assert.deepEqual(calls, [
    { verb: 'patch', resource: 'nodes/status', name: 'r1', code: 403 },
    { verb: 'list', resource: 'nodes', code: 403 },
    { verb: 'get', resource: 'pods', name: 'x', namespace: 'kube-flannel', code: 403 },
    { verb: 'patch', resource: 'nodes', name: 'r1', code: 200 },
    { verb: 'patch', resource: 'nodes/status', name: 'r1', code: 200 },
    { verb: 'get', resource: 'pods', name: 'flannel-x', namespace: 'kube-flannel', code: 200 },
    { verb: 'get', resource: 'pods', name: 'nope', namespace: 'kube-flannel', code: 404 },
    { verb: 'watch', resource: 'nodes', code: 200 }
  ])
})

test('hostile input: bad JSON, huge and deep bodies, odd keys and paths, raw garbage; the server lives on', async () => {
  const bad = await call(api, 'POST', '/api/v1/nodes', { body: '{"metadata":' })
  assert.equal(bad.code, 400)
  assert.equal(bad.json.reason, 'BadRequest')
  assert.equal((await call(api, 'PATCH', '/api/v1/nodes/r1', { type: MERGE, body: 'nope' })).code, 400)
  const huge = await call(api, 'POST', '/api/v1/nodes', { body: Buffer.alloc(2 << 20, 0x20) })
  assert.equal(huge.code, 413)
  assert.equal(huge.json.reason, 'RequestEntityTooLarge')
  const deep = await call(api, 'PATCH', '/api/v1/nodes/r1', { type: MERGE, body: '['.repeat(100_000) + ']'.repeat(100_000) })
  assert.equal(deep.code, 400)
  assert.equal((await call(api, 'PATCH', '/api/v1/nodes/r1', { type: MERGE, body: { metadata: { annotations: { n: 1 } } } })).code, 400)
  assert.equal((await call(api, 'PATCH', '/api/v1/nodes/r1', { type: MERGE, body: { metadata: { name: 'r2' } } })).code, 400)
  assert.equal((await call(api, 'PATCH', '/api/v1/nodes/r1', { type: MERGE, body: [1, 2] })).code, 400)
  const proto = await call(api, 'PATCH', '/api/v1/nodes/r1/status', { type: MERGE, body: '{"metadata":{"annotations":{"__proto__":"x","constructor":"y"}}}' })
  assert.equal(proto.code, 200, proto.text)
  assert.equal(Object.getOwnPropertyDescriptor(proto.json.metadata.annotations, '__proto__')?.value, 'x', 'a key, not a prototype')
  assert.equal((await call(api, 'GET', '/api/v1/nodes/%zz')).code, 400)
  assert.equal((await call(api, 'GET', '/api/v1/nodes/' + 'a'.repeat(5000))).code, 404)
  assert.equal((await call(api, 'DELETE', '/api/v1/nodes')).code, 405)
  const sock = net.connect(Number(new URL(api.url).port), '127.0.0.1')
  await new Promise<void>((resolve) => {
    sock.on('error', () => resolve())
    sock.on('close', () => resolve())
    sock.on('connect', () => sock.end('GET / HTTP/1.1\r\n\x00\x01garbage\r\n\r\n'))
  })
  assert.equal((await call(api, 'GET', '/api/v1/nodes/r1')).code, 200)
  assert.doesNotMatch(readFileSync(`${api.dir}/server.log`, 'utf8'), /uncaught/)
})

test('stop and restart keep the state on the same address; older watches expire; pause hangs, resume answers', async () => {
  const s = await startKubeApi({ tls: false })
  try {
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/)
    await s.addNode({ name: 'keep', podCIDR: '10.244.7.0/24' })
    await s.annotate('keep', { before: 'restart' })
    await s.deny('delete', 'nodes')
    const before = await s.getNode('keep')
    const w = watch(s, '/api/v1/nodes?watch=true')
    await w.until(1)
    await s.stop()
    assert.equal(await w.ended, 'cut')
    await assert.rejects(s.getNode('keep'), /not running/)
    await s.restart()
    assert.deepEqual(await s.getNode('keep'), before)
    assert.equal((await call(s, 'DELETE', '/api/v1/nodes/keep')).code, 403, 'denials survive a restart')
    const expired = watch(s, `/api/v1/nodes?watch=true&resourceVersion=${rvOf(before) - 1}`)
    assert.equal((await expired.until(1))[0]!.object.code, 410)
    await s.annotate('keep', { after: 'restart' })
    assert.equal(rvOf(await s.getNode('keep')), rvOf(before) + 1, 'the counter goes on')

    s.pause()
    await assert.rejects(call(s, 'GET', '/api/v1/nodes/keep', { timeoutMs: 500 }), /no answer/)
    s.resume()
    assert.equal((await call(s, 'GET', '/api/v1/nodes/keep')).code, 200)
    // the calls of both lives; the GET sent while paused may be served on resume too, to a client gone by then
    const calls = (await s.calls()).map((c) => `${c.verb} ${c.code}`)
    assert.deepEqual(calls.slice(0, 4), ['watch 200', 'delete 403', 'watch 200', 'get 200'])
    assert.deepEqual(new Set(calls.slice(3)), new Set(['get 200']))
  } finally {
    await s.close()
  }
})

test('in a topology\'s underlay: a host reaches the server on 198.18.0.250:6443 over TLS', { skip: netnsSkipReason() }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'kube-api' }, async (topo) => {
    const s = await startKubeApi({ topo })
    try {
      assert.equal(s.url, 'https://198.18.0.250:6443')
      await s.addNode({ name: 'h1' })
      const probe = `const https = require('node:https'); https.get(${JSON.stringify(`${s.url}/api/v1/nodes/h1`)}, { ca: require('node:fs').readFileSync(${JSON.stringify(s.caFile)}), headers: { Authorization: 'Bearer ${s.token}' }, timeout: 3000 }, (r) => { let b = ''; r.on('data', (c) => { b += c }); r.on('end', () => console.log(r.statusCode, JSON.parse(b).metadata.name)) }).on('error', (e) => { console.log('error', e.message); process.exitCode = 1 })`
      const r = await topo.exec(topo.hosts[0]!, [process.execPath, '-e', probe], { timeoutMs: 10_000 })
      assert.equal(r.stdout.trim(), '200 h1')
      s.pause()
      s.resume()
      await s.restart()
      assert.equal((await topo.exec(topo.hosts[0]!, [process.execPath, '-e', probe], { timeoutMs: 10_000 })).stdout.trim(), '200 h1')
    } finally {
      await s.close()
    }
  })
})
