// Nodes become leases the way flanneld's kube subnet manager makes them, and
// their changes become the store events every backend already understands.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { annotationNames, DEFAULT_ANNOTATION_PREFIX } from '../../src/kube/annotations'
import { NodeTable } from '../../src/kube/node-table'
import { nodeToLease } from '../../src/kube/node'
import type { KubeNode } from '../../src/kube/node'
import { formatCidr } from '../../src/packet/net'
import { ip4ToString } from '../../src/packet/ip'
import type { StoreEvent } from '../../src/store/store'

const names = annotationNames(DEFAULT_ANNOTATION_PREFIX)

function node (name: string, cidr: string | undefined, ip: string | undefined, extra: Record<string, string> = {}, mac = '0a:00:00:00:00:01'): KubeNode {
  const a: Record<string, string> = {
    'flannel.alpha.coreos.com/kube-subnet-manager': 'true',
    'flannel.alpha.coreos.com/backend-type': 'vxlan',
    'flannel.alpha.coreos.com/backend-data': `{"VNI":1,"VtepMAC":"${mac}"}`,
    ...(ip !== undefined ? { 'flannel.alpha.coreos.com/public-ip': ip } : {}),
    ...extra
  }
  return { metadata: { name, resourceVersion: '1', annotations: a }, spec: cidr !== undefined ? { podCIDR: cidr } : {} }
}

const show = (events: readonly StoreEvent[]): string[] => events.map((e) => e.type === 'put' ? `put ${formatCidr(e.lease.subnet)} ${ip4ToString(e.lease.attrs.publicIP)}` : `delete ${formatCidr(e.subnet)}`)

test('the prefix is completed and checked as flannel does', () => {
  assert.equal(annotationNames('flannel.alpha.coreos.com').backendData, 'flannel.alpha.coreos.com/backend-data')
  assert.equal(annotationNames('example.com/weft').publicIP, 'example.com/weft-public-ip')
  assert.equal(annotationNames('example.com/weft-').publicIP, 'example.com/weft-public-ip')
  assert.throws(() => annotationNames('a/b/c'), /at most one slash/)
  assert.throws(() => annotationNames('Not_A_DNS'), /fqdn/)
})

test('a node with flannel\'s annotations is a lease: pod CIDR, public IP, backend type and data', () => {
  const made = nodeToLease(node('h2', '10.244.2.0/24', '198.18.0.2'), names)
  assert.ok(made.ok)
  assert.equal(formatCidr(made.subnet), '10.244.2.0/24')
  assert.equal(ip4ToString(made.attrs.publicIP), '198.18.0.2')
  assert.deepEqual(made.attrs.backendData, { VNI: 1, VtepMAC: '0a:00:00:00:00:01' })
})

test('podCIDRs wins over podCIDR and its IPv4 entry is taken; host bits are cleared as Go\'s ParseCIDR does', () => {
  const n = node('h2', '10.9.9.0/24', '198.18.0.2')
  n.spec = { podCIDR: '10.9.9.0/24', podCIDRs: ['fd00:1::/64', '10.244.7.9/24'] }
  const made = nodeToLease(n, names)
  assert.ok(made.ok)
  assert.equal(formatCidr(made.subnet), '10.244.7.0/24')
})

test('malformed nodes are skipped with a reason, never thrown', () => {
  const cases: Array<[KubeNode, RegExp]> = [
    [node('a', undefined, '198.18.0.2'), /not assigned/],
    [node('b', 'garbage', '198.18.0.2'), /not a CIDR/],
    [node('c', '10.244.2.0/24', undefined), /no flannel.alpha.coreos.com\/public-ip/],
    [node('d', '10.244.2.0/24', '999.1.1.1'), /not an IPv4 address/],
    [node('e', '10.244.2.0/24', '198.18.0.2', { 'flannel.alpha.coreos.com/backend-data': '{nope' }), /not JSON/],
    [node('f', '10.244.2.0/24', '198.18.0.2', { 'flannel.alpha.coreos.com/backend-data': 'x'.repeat(10_000) }), /longer than/],
    [{ metadata: { name: 'g', annotations: { 'flannel.alpha.coreos.com/kube-subnet-manager': 'true' } }, spec: { podCIDRs: ['10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24'] } }, /more than two/]
  ]
  for (const [n, why] of cases) {
    const t = new NodeTable(names)
    const c = t.put(n)
    assert.deepEqual(c.events, [])
    assert.equal(c.skipped.length, 1, String(n.metadata?.name))
    assert.match(c.skipped[0].reason, why)
  }
})

test('nodes without "kube-subnet-manager": "true" are not peers, and say nothing', () => {
  const t = new NodeTable(names)
  const c = t.put({ metadata: { name: 'plain', annotations: {} }, spec: { podCIDR: '10.244.9.0/24' } })
  assert.deepEqual(c, { events: [], skipped: [] })
  assert.equal(t.put({ metadata: { name: 'weird', annotations: null } }).events.length, 0)
  assert.equal(t.put({}).skipped.length, 1)
})

test('a heartbeat (a change nothing reads) makes no event; a new MAC replaces the lease in one put', () => {
  const t = new NodeTable(names)
  assert.deepEqual(show(t.put(node('h2', '10.244.2.0/24', '198.18.0.2')).events), ['put 10.244.2.0/24 198.18.0.2'])
  const beat = node('h2', '10.244.2.0/24', '198.18.0.2')
  beat.metadata = { ...beat.metadata, resourceVersion: '99' }
  assert.deepEqual(t.put(beat).events, [])
  assert.deepEqual(show(t.put(node('h2', '10.244.2.0/24', '198.18.0.2', {}, '0a:00:00:00:00:02')).events), ['put 10.244.2.0/24 198.18.0.2'])
})

test('a node deleted, stripped of its annotations, or broken is removed', () => {
  const t = new NodeTable(names)
  t.put(node('h2', '10.244.2.0/24', '198.18.0.2'))
  t.put(node('h3', '10.244.3.0/24', '198.18.0.3'))
  t.put(node('h4', '10.244.4.0/24', '198.18.0.4'))
  assert.deepEqual(show(t.delete({ metadata: { name: 'h2' } }).events), ['delete 10.244.2.0/24'])
  assert.deepEqual(show(t.put({ metadata: { name: 'h3', annotations: {} }, spec: { podCIDR: '10.244.3.0/24' } }).events), ['delete 10.244.3.0/24'])
  const broken = t.put(node('h4', '10.244.4.0/24', 'nope'))
  assert.deepEqual(show(broken.events), ['delete 10.244.4.0/24'])
  assert.equal(broken.skipped.length, 1)
  assert.deepEqual(t.leases(), [])
  assert.deepEqual(t.delete({ metadata: { name: 'never-seen' } }).events, [])
})

test('two nodes claiming one pod CIDR: the first keeps it, the second takes over when the first goes', () => {
  const t = new NodeTable(names)
  t.put(node('h2', '10.244.2.0/24', '198.18.0.2'))
  const second = t.put(node('h9', '10.244.2.0/24', '198.18.0.9'))
  assert.deepEqual(second.events, [])
  assert.match(second.skipped[0].reason, /held by node h2/)
  assert.deepEqual(show(t.delete({ metadata: { name: 'h2' } }).events), ['put 10.244.2.0/24 198.18.0.9'])
  assert.deepEqual(show(t.delete({ metadata: { name: 'h9' } }).events), ['delete 10.244.2.0/24'])
})

test('a relist replaces the table: nodes it lacks are deleted, the rest kept as they are', () => {
  const t = new NodeTable(names)
  t.put(node('h2', '10.244.2.0/24', '198.18.0.2'))
  t.put(node('h3', '10.244.3.0/24', '198.18.0.3'))
  const before = t.leases().find((l) => formatCidr(l.subnet) === '10.244.3.0/24')
  const { leases } = t.reset([node('h3', '10.244.3.0/24', '198.18.0.3'), node('h5', '10.244.5.0/24', '198.18.0.5')])
  assert.deepEqual(leases.map((l) => formatCidr(l.subnet)).sort(), ['10.244.3.0/24', '10.244.5.0/24'])
  assert.equal(leases.find((l) => formatCidr(l.subnet) === '10.244.3.0/24')?.revision, before?.revision, 'unchanged nodes keep their revision, so LeaseWatcher sees no change')
})
