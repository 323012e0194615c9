// addPods(): pods behind cni0 on a host, as the CNI bridge plugin attaches
// them. Same-host pods reach each other and their gateway; the pods are
// real namespaces of the topology (exec targets, deleted at destroy()).
// Without root this is reported as skipped, with the reason.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { listNamespaces, withTopology, type Host } from '../../lab/netns'
import { addPods, subnetAddr } from '../../lab/pods'
import { netnsSkipReason } from '../../lab/skip'
import { ping, pingMatrix } from '../../lab/traffic'

const skip = netnsSkipReason()

test('subnetAddr numbers addresses from the network address', () => {
  assert.equal(subnetAddr('10.244.3.0/24', 0), '10.244.3.0')
  assert.equal(subnetAddr('10.244.3.7/24', 1), '10.244.3.1')
  assert.equal(subnetAddr('10.244.3.0/24', 254), '10.244.3.254')
  assert.throws(() => subnetAddr('10.244.3.0/24', 255))
  assert.throws(() => subnetAddr('10.244.3.0/33', 1))
})

test('two hosts with two pods each: same-host pods and the gateway answer', { skip }, async (t) => {
  let names: string[] = []
  await withTopology(t, { hosts: 2, label: 'pods' }, async (topo) => {
    const [h1, h2] = topo.hosts as [Host, Host]
    const p1 = await addPods(topo, h1, { subnet: '10.244.1.0/24', count: 2 })
    const p2 = await addPods(topo, h2, { subnet: '10.244.2.0/24', count: 2, mtu: 1400 })
    names = [...topo.namespaces]

    assert.deepEqual(p1.map((p) => [p.name, p.ns, p.ip, p.host.name]), [
      ['h1p1', `wt-${topo.runId}-h1p1`, '10.244.1.2', 'h1'],
      ['h1p2', `wt-${topo.runId}-h1p2`, '10.244.1.3', 'h1'],
    ])
    assert.deepEqual(p2.map((p) => p.ip), ['10.244.2.2', '10.244.2.3'])
    for (const p of [...p1, ...p2]) assert.ok(topo.namespaces.includes(p.ns))

    const br = await topo.exec(h1, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'cni0'])
    assert.match(br.stdout, /inet 10\.244\.1\.1\/24 /)
    assert.equal((await topo.exec(h1, ['sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.trim(), '1')
    const ports = await topo.exec(h1, ['ip', '-o', 'link', 'show', 'master', 'cni0'])
    assert.deepEqual(ports.stdout.split('\n').filter(Boolean).map((l) => l.split(/[:@]/)[1]!.trim()), ['vethh1p1', 'vethh1p2'])
    const pod = await topo.exec(p2[0]!.ns, ['ip', '-o', 'link', 'show', 'eth0'])
    assert.match(pod.stdout, /<[^>]*\bUP\b[^>]*> mtu 1400 /)
    assert.match((await topo.exec(p2[0]!.ns, ['ip', 'route', 'show', 'default'])).stdout, /default via 10\.244\.2\.1 dev eth0/)

    for (const pods of [p1, p2]) {
      const m = await pingMatrix(topo, pods)
      assert.deepEqual(m.failed, [])
      assert.equal(m.ok.length, 2)
      for (const p of pods) {
        const r = await ping(topo, p, subnetAddr(p.ip + '/24', 1), { count: 2 })
        assert.deepEqual([r.sent, r.received], [2, 2], r.output)
      }
    }
    // Pods on different hosts have no route between them yet: that is the backend's job.
    const cross = await ping(topo, p1[0]!, p2[0]!.ip, { count: 1, waitS: 1 })
    assert.equal(cross.received, 0)

    // More pods on the same host continue the numbering and share cni0.
    const more = await addPods(topo, h1, { subnet: '10.244.1.0/24', count: 1 })
    assert.deepEqual(more.map((p) => [p.name, p.ip]), [['h1p3', '10.244.1.4']])
    const r = await ping(topo, more[0]!, p1[0]!.ip, { count: 1 })
    assert.equal(r.received, 1, r.output)
  })
  const left = (await listNamespaces()).filter((n) => names.includes(n))
  assert.deepEqual(left, [], 'pod namespaces must be deleted with the topology')
})
