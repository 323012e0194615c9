// lab/kube-api as kubectl sees it: the machine's own kubectl (Debian's, or
// whatever is on PATH) against the server on 127.0.0.1 with a kubeconfig
// the handle writes. If kubectl reads, annotates, patches and watches
// nodes here as it does against a cluster, and words the errors as it
// words a cluster's, the server keeps to the API where kubectl looks.
// Every kubectl has --request-timeout and a time bound of its own; the
// discovery cache is a temp dir, not ~/.kube. WEFT_KUBECTL names another
// kubectl binary to check (e.g. an older one).
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { startKubeApi, type KubeApi } from '../../lab/kube-api'
import { ProcHandle, runToCompletion, type ExecResult, type Tracked } from '../../lab/proc'
import { toolSkipReason } from '../../lab/skip'
import { waitFor } from '../../lab/wait'

const KUBECTL = process.env.WEFT_KUBECTL ?? 'kubectl'
const skip = KUBECTL.includes('/') ? undefined : toolSkipReason(KUBECTL)
let api: KubeApi
let dir: string
let kubeconfig: string
const tracked = new Set<Tracked>()

before(async () => {
  if (skip !== undefined) return
  api = await startKubeApi()
  dir = mkdtempSync(join(tmpdir(), 'weft-kubectl-'))
  kubeconfig = api.kubeconfig(join(dir, 'kubeconfig'))
  await api.addNode({ name: 'k1', podCIDR: '10.244.1.0/24', addresses: [{ type: 'InternalIP', address: '198.18.0.1' }], labels: { 'node-role.kubernetes.io/worker': '' } })
  await api.addNode({ name: 'k2', podCIDR: '10.244.2.0/24' })
})

after(async () => {
  if (skip !== undefined) return
  // what kubectl asked for that is not here (discovery it copes without, e.g. /openapi)
  const missing = (await api.requests()).filter((r) => r.code === 404).map((r) => `${r.method} ${r.url}`)
  if (missing.length > 0) process.stdout.write(`# kube-api: 404s kubectl met: ${JSON.stringify([...new Set(missing)])}\n`)
  await api.close()
  rmSync(dir, { recursive: true, force: true })
})

const env = (): NodeJS.ProcessEnv => ({ ...process.env, HOME: dir, KUBECONFIG: kubeconfig })
const base = (): string[] => [KUBECTL, '--kubeconfig', kubeconfig, '--cache-dir', join(dir, 'cache'), '--request-timeout=10s']

/** kubectl with args; never rejects on a non-zero exit (the code is in the result) */
function kubectl (...args: string[]): Promise<ExecResult> {
  return runToCompletion([...base(), ...args], undefined, { timeoutMs: 20_000, allowFail: true, env: env() }, tracked)
}

async function ok (...args: string[]): Promise<string> {
  const r = await kubectl(...args)
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

test('kubectl reads nodes: -o json, the default table, -o wide, jsonpath; a missing node is NotFound', { skip }, async (t) => {
  const v = await kubectl('version', '--client', '-o', 'json')
  t.diagnostic(`kubectl ${JSON.parse(v.stdout).clientVersion.gitVersion as string}`)
  const list = JSON.parse(await ok('get', 'nodes', '-o', 'json'))
  assert.deepEqual(list.items.map((n: any) => n.metadata.name), ['k1', 'k2'])
  const table = (await ok('get', 'nodes')).trim().split('\n').map((l) => l.split(/\s+/))
  assert.deepEqual(table[0], ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION'])
  assert.deepEqual(table.slice(1).map((r) => r.slice(0, 3)), [['k1', 'Unknown', 'worker'], ['k2', 'Unknown', '<none>']])
  assert.match(table[1]![3]!, /^\d+s$/)
  const wide = (await ok('get', 'nodes', '-o', 'wide')).split('\n')
  assert.match(wide[0]!, /INTERNAL-IP\s+EXTERNAL-IP/)
  assert.match(wide[1]!, /^k1\s.*198\.18\.0\.1\s+<none>/)
  assert.equal(await ok('get', 'node', 'k1', '-o', 'jsonpath={.spec.podCIDR} {.status.addresses[0].address}'), '10.244.1.0/24 198.18.0.1')
  assert.equal((await ok('get', 'node', 'k2', '-o', 'name')).trim(), 'node/k2')
  const nope = await kubectl('get', 'node', 'nope')
  assert.equal(nope.code, 1)
  assert.equal(nope.stderr.trim(), 'Error from server (NotFound): nodes "nope" not found')
})

test('kubectl annotate: adds, refuses to overwrite without --overwrite, overwrites, removes', { skip }, async () => {
  const ann = async (): Promise<Record<string, string>> => JSON.parse(await ok('get', 'node', 'k1', '-o', 'json')).metadata.annotations ?? {}
  // (kubectl 1.27 says "annotate")
  assert.match((await ok('annotate', 'node', 'k1', 'weft.example/x=1')).trim(), /^node\/k1 annotated?$/)
  assert.equal((await ann())['weft.example/x'], '1')
  const refused = await kubectl('annotate', 'node', 'k1', 'weft.example/x=2')
  assert.notEqual(refused.code, 0)
  assert.match(refused.stderr, /already has a value \(1\)/)
  await ok('annotate', '--overwrite', 'node', 'k1', 'weft.example/x=2')
  assert.equal((await ann())['weft.example/x'], '2')
  await ok('annotate', 'node', 'k1', 'weft.example/x-')
  assert.equal((await ann())['weft.example/x'], undefined)
  // kubectl annotate reads the node and sends a merge patch of the difference (then ann() reads again)
  assert.deepEqual((await api.calls()).slice(-3, -1).map((c) => `${c.verb} ${c.resource} ${c.name ?? ''}`), ['get nodes k1', 'patch nodes k1'])
})

test('kubectl patch: merge, strategic and json; a repeat is "(no change)"; conditions merge through the status subresource', { skip }, async (t) => {
  assert.equal((await ok('patch', 'node', 'k2', '--type', 'merge', '-p', '{"metadata":{"labels":{"tier":"a"}}}')).trim(), 'node/k2 patched')
  const rv = (await api.getNode('k2')).metadata.resourceVersion
  assert.equal((await ok('patch', 'node', 'k2', '--type', 'merge', '-p', '{"metadata":{"labels":{"tier":"a"}}}')).trim(), 'node/k2 patched (no change)')
  assert.equal((await api.getNode('k2')).metadata.resourceVersion, rv)
  await ok('patch', 'node', 'k2', '--type', 'strategic', '-p', '{"spec":{"unschedulable":true,"podCIDRs":["10.244.20.0/24"]}}')
  const n = await api.getNode('k2')
  assert.equal(n.spec.unschedulable, true)
  assert.deepEqual(n.spec.podCIDRs, ['10.244.2.0/24', '10.244.20.0/24'])
  assert.match(await ok('get', 'node', 'k2', '--no-headers'), /^k2\s+Unknown,SchedulingDisabled\s/)
  await ok('patch', 'node', 'k2', '--type', 'json', '-p', '[{"op":"test","path":"/spec/unschedulable","value":true},{"op":"remove","path":"/spec/unschedulable"}]')
  assert.equal((await api.getNode('k2')).spec.unschedulable, undefined)
  const failed = await kubectl('patch', 'node', 'k2', '--type', 'json', '-p', '[{"op":"test","path":"/spec/podCIDR","value":"10.9.9.0/24"}]')
  assert.equal(failed.code, 1)
  // kubectl before 1.2x prints the reason alone, later ones add the real server's own words for an empty details
  assert.match(failed.stderr.trim(), /^The request is invalid(: the server rejected our request due to an error in our request)?$/)

  const help = await kubectl('patch', '--help')
  const sub = help.stdout.includes('--subresource') ? undefined : 'this kubectl has no `patch --subresource` (new in 1.24)'
  await t.test('conditions by type through --subresource=status', { skip: sub }, async () => {
    const patch = (conds: unknown[]): Promise<string> => ok('patch', 'node', 'k2', '--subresource=status', '--type', 'strategic', '-p', JSON.stringify({ status: { conditions: conds } }))
    await patch([{ type: 'Ready', status: 'False', reason: 'Booting' }, { type: 'NetworkUnavailable', status: 'True' }])
    await patch([{ type: 'NetworkUnavailable', status: 'False', reason: 'FlannelIsUp' }])
    assert.deepEqual((await api.getNode('k2')).status.conditions, [
      { type: 'Ready', status: 'False', reason: 'Booting' }, { type: 'NetworkUnavailable', status: 'False', reason: 'FlannelIsUp' }
    ])
    assert.match(await ok('get', 'node', 'k2', '--no-headers'), /^k2\s+NotReady\s/)
    // the main resource leaves status alone
    await ok('patch', 'node', 'k2', '--type', 'merge', '-p', '{"status":{"conditions":null}}')
    assert.equal((await api.getNode('k2')).status.conditions.length, 2)
  })
})

test('kubectl get --watch sees every add, change and delete', { skip, timeout: 60_000 }, async () => {
  const w = new ProcHandle([...base().map((a) => a === '--request-timeout=10s' ? '--request-timeout=40s' : a), 'get', 'nodes', '--watch', '-o', 'json', '--output-watch-events'], undefined, { env: env() })
  tracked.add(w)
  try {
    const events = (): Array<{ type: string, object: any }> => splitJson(w.stdout)
    await waitFor(() => events().length >= 2, { what: `kubectl's initial list (${w.stderr})`, timeoutMs: 15_000 })
    await api.addNode({ name: 'kw' })
    await waitFor(() => events().length >= 3, { what: 'ADDED kw', timeoutMs: 10_000 })
    await api.annotate('kw', { seen: 'yes' })
    await api.deleteNode('kw')
    await waitFor(() => events().length >= 5, { what: `five events (${JSON.stringify(events().map((e) => e.type))})`, timeoutMs: 10_000 })
    assert.deepEqual(events().map((e) => `${e.type} ${e.object.metadata.name as string}`), ['ADDED k1', 'ADDED k2', 'ADDED kw', 'MODIFIED kw', 'DELETED kw'])
    assert.equal(events()[3]!.object.metadata.annotations.seen, 'yes')
  } finally {
    await w.stop()
    tracked.delete(w)
  }
})

test('a wrong token is Unauthorized; a denied verb is Forbidden in the real words', { skip }, async () => {
  const bad = api.kubeconfig(join(dir, 'bad-token'), { token: 'wrong' })
  const r = await runToCompletion([KUBECTL, '--kubeconfig', bad, '--cache-dir', join(dir, 'cache-bad'), '--request-timeout=10s', 'get', 'nodes'], undefined,
    { timeoutMs: 20_000, allowFail: true, env: { ...env(), KUBECONFIG: bad } }, tracked)
  assert.equal(r.code, 1)
  // kubectl words it from the Status up to 1.25 or so; later ones, reading discovery, from the code alone (as against a cluster)
  assert.match(r.stderr, /error: You must be logged in to the server \((Unauthorized|the server has asked for the client to provide credentials)\)/)

  await api.deny('get', 'nodes')
  await api.deny('patch', 'nodes')
  try {
    const get = await kubectl('get', 'node', 'k1')
    assert.equal(get.stderr.trim(), 'Error from server (Forbidden): nodes "k1" is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot get resource "nodes" in API group "" at the cluster scope')
    const list = await kubectl('get', 'nodes')
    assert.equal(list.code, 0, 'list is another verb')
    const patch = await kubectl('patch', 'node', 'k1', '--type', 'merge', '-p', '{}')
    assert.notEqual(patch.code, 0)
    assert.match(patch.stderr, /cannot (get|patch) resource "nodes" in API group "" at the cluster scope/)
  } finally {
    await api.allowAll()
  }
})

/** The JSON values one after another in `text` (kubectl writes one a line, or indented over several); the last is skipped if incomplete. */
function splitJson (text: string): any[] {
  const out: any[] = []
  let depth = 0
  let start = -1
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]
    if (inString) {
      if (ch === '\\') i++
      else if (ch === '"') inString = false
      continue
    }
    if (ch === '"') inString = true
    else if (ch === '{') {
      if (depth++ === 0) start = i
    } else if (ch === '}' && --depth === 0) {
      out.push(JSON.parse(text.slice(start, i + 1)))
    }
  }
  return out
}
