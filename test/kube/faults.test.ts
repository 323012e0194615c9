// Issue 21, faults: the API server away at start and mid-run, watches cut
// mid-event and expired, nodes flapping, RBAC refusing a call. Forwarding
// goes on from the known peers, /readyz says degraded, one warning per
// outage, no peer is lost, and a refusal names the verb and the resource.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { withTopology, waitFor } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { ping } from '../../lab/traffic'
import type { Daemon } from '../../lab/daemons'
import { BIN } from '../../lab/daemons'
import { healthOf, logsOf } from '../faults/helpers'
import { podsFor } from '../backend/mesh'
import { kubeCluster } from './cluster'

const skip = netnsSkipReason() ?? toolSkipReason('ping', 'openssl')
const PORT = 8082
const OUTAGE_MSG = 'lost the Kubernetes API; forwarding continues from the known peers, retrying'

const peersOf = async (d: Daemon): Promise<string[]> => (await d.status()).peers.map((p) => String(p.subnet)).sort()

/** A Node as flanneld annotates it, for a peer that runs nothing (its table entry is what is checked). */
const annotated = (name: string, i: number, mac = '0a:00:00:00:00:01'): Parameters<Awaited<ReturnType<typeof kubeCluster>>['api']['addNode']>[0] => ({
  name,
  podCIDR: `10.244.${i}.0/24`,
  annotations: {
    'flannel.alpha.coreos.com/backend-data': `{"VNI":1,"VtepMAC":"${mac}"}`,
    'flannel.alpha.coreos.com/backend-type': 'vxlan',
    'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
    'flannel.alpha.coreos.com/public-ip': `198.18.1.${i}`
  }
})

test('the API server cut, stopped and compacted under traffic: forwarding goes on, /readyz says degraded, one warning per outage; watches resume or relist, nodes that flapped end as they were left, and no peer is lost', { skip, timeout: 180_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'kube-faults' }, async (topo) => {
    const [h1, h2] = topo.hosts
    const k = await kubeCluster(t, topo)
    await k.addNode(h1)
    await k.addNode(h2)
    const nodes = [await k.start(h1, { extra: ['--healthz-port', String(PORT)] }), await k.start(h2, { extra: ['--healthz-port', String(PORT)] })]
    const health = nodes.map((d) => healthOf(topo, d.host, PORT))
    await waitFor(async () => (await Promise.all(nodes.map(peersOf))).every((p) => p.length === 1), { what: 'both nodes know each other', timeoutMs: 10_000 })
    const [p1] = await podsFor(topo, nodes[0], 1)
    const [p2] = await podsFor(topo, nodes[1], 1)

    // 1. a watch cut mid-event: resumed from the last version, nothing missed
    assert.ok(await k.api.cutWatches({ midEvent: true }) >= 2, 'both daemons were watching')
    await k.api.addNode(annotated('ghost5', 5))
    await waitFor(async () => (await Promise.all(nodes.map(peersOf))).every((p) => p.includes('10.244.5.0/24')), { what: 'a node added after the cut is learnt', timeoutMs: 10_000 })

    // 2. flapping: the last MAC wins everywhere
    for (let i = 0; i < 20; i++) await k.api.annotate('ghost5', { 'flannel.alpha.coreos.com/backend-data': `{"VNI":1,"VtepMAC":"0a:00:00:00:00:${(i + 16).toString(16)}"}` })
    await waitFor(async () => (await Promise.all(nodes.map(async (d) => (await d.status()).peers.find((p) => p.subnet === '10.244.5.0/24')?.vtepMAC))).every((m) => m === '0a:00:00:00:00:23'), { what: 'the last of 20 flaps in every table', timeoutMs: 10_000 })

    // 3. the API server stopped: degraded, forwarding on, one warning
    const pinging = ping(topo, p1, p2.ip, { count: 60, intervalS: 0.1 })
    await k.api.stop()
    for (const h of health) await waitFor(async () => (await h.readyz()).status === 503, { what: '/readyz 503', timeoutMs: 15_000, intervalMs: 100 })
    const during = await pinging
    assert.ok(during.received >= during.sent - 2, `pods keep talking while the API is away (${during.received}/${during.sent})`)

    // 4. back, with history compacted and nodes changed meanwhile: relisted and diffed
    await k.api.restart()
    await k.api.compact()
    await k.api.deleteNode('ghost5')
    await k.api.addNode(annotated('ghost6', 6))
    await k.api.compact()
    for (const h of health) await waitFor(async () => (await h.readyz()).status === 200, { what: '/readyz 200 again', timeoutMs: 20_000, intervalMs: 100 })
    await waitFor(async () => (await Promise.all(nodes.map(peersOf))).every((p) => p.length === 2 && p.includes('10.244.6.0/24') && !p.includes('10.244.5.0/24')), { what: 'the changes made while away are applied', timeoutMs: 20_000 })
    assert.deepEqual(await peersOf(nodes[0]), ['10.244.2.0/24', '10.244.6.0/24'], 'h1 kept h2 and learnt the rest')
    assert.equal((await ping(topo, p1, p2.ip, { count: 3, intervalS: 0.2 })).received, 3)
    for (const d of nodes) {
      const warned = logsOf(d.child).filter((l) => l.msg === OUTAGE_MSG)
      assert.equal(warned.length, 1, `${d.host.name} warned once for the outage`)
    }
  })
})

test('an API server that is not there at start: the daemon waits, says so once and is not ready, and starts when it comes', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'kube-late' }, async (topo) => {
    const [h1] = topo.hosts
    const k = await kubeCluster(t, topo)
    await k.addNode(h1)
    await k.api.stop()
    const starting = k.start(h1, { extra: ['--healthz-port', String(PORT)] })
    const health = healthOf(topo, h1, PORT)
    await waitFor(async () => (await health.readyz().catch(() => ({ status: 0 }))).status === 503, { what: '/readyz 503 while the API is away', timeoutMs: 15_000, intervalMs: 100 })
    await k.api.restart()
    const d = await starting
    assert.equal((await health.readyz()).status, 200)
    assert.equal(d.env().subnet.ip >>> 8 & 0xff, 1)
  })
})

test('RBAC refusing a call: the daemon stops with an error naming the verb and the resource, and touches no device', { skip, timeout: 60_000 }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'kube-rbac' }, async (topo) => {
    const [h1] = topo.hosts
    const k = await kubeCluster(t, topo)
    await k.addNode(h1)
    await k.api.deny('patch', 'nodes/status')
    const r = await topo.exec(h1, ['env', `NODE_NAME=${h1.name}`, process.execPath, BIN, 'run', '--kube-subnet-mgr', '--kubeconfig-file', k.kubeconfig, '--net-config-path', `${k.dir}/net-conf.json`, '--iface', 'eth0', '--subnet-file', `${k.dir}/subnet.env`, '--state-dir', `${k.dir}/h1`], { allowFail: true, timeoutMs: 30_000 })
    assert.notEqual(r.code, 0)
    assert.match(r.stdout + r.stderr, /forbids weft to patch nodes\/status/)
    assert.notEqual((await topo.exec(h1, ['ip', 'link', 'show', 'weft.1'], { allowFail: true })).code, 0, 'no VTEP left behind')
  })
})
