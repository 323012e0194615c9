// Nodes with IPv6 pod CIDRs become leases as flanneld's nodeToLease makes
// them for the families the network has: spec.podCIDRs' IPv6 entry is the
// lease's subnet6, public-ipv6 its PublicIPv6, backend-v6-data its
// BackendV6Data; an IPv6-only lease's subnet is 0.0.0.0/0; a node missing a
// family the network has is skipped with flannel's reason; the events carry
// subnet6 (a delete too), and two nodes claiming one IPv6 CIDR are a conflict.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { annotationNames, DEFAULT_ANNOTATION_PREFIX } from '../../src/kube/annotations'
import { NodeTable } from '../../src/kube/node-table'
import { nodeToLease, podSubnets, storedVtepMac } from '../../src/kube/node'
import type { KubeNode } from '../../src/kube/node'
import { formatCidr } from '../../src/packet/net'
import { formatCidr6 } from '../../src/packet/net6'
import { leaseKey } from '../../src/subnet/lease'
import type { StoreEvent } from '../../src/store/store'

const names = annotationNames(DEFAULT_ANNOTATION_PREFIX)
const P = 'flannel.alpha.coreos.com/'
const DUAL = { ipv4: true, ipv6: true }
const V6 = { ipv4: false, ipv6: true }

function node (name: string, podCIDRs: string[], a: Record<string, string | undefined> = {}): KubeNode {
  const i = name.slice(1)
  const annotations: Record<string, string> = {}
  const all: Record<string, string | undefined> = {
    [`${P}kube-subnet-manager`]: 'true',
    [`${P}backend-type`]: 'host-gw',
    [`${P}backend-data`]: 'null',
    [`${P}public-ip`]: `198.18.0.${i}`,
    [`${P}backend-v6-data`]: 'null',
    [`${P}public-ipv6`]: `2001:2::${i}`,
    ...a
  }
  for (const [k, v] of Object.entries(all)) if (v !== undefined) annotations[k] = v
  return { metadata: { name, resourceVersion: '1', annotations }, spec: { podCIDR: podCIDRs[0], podCIDRs } }
}

const show = (events: readonly StoreEvent[]): string[] => events.map((e) => e.type === 'put' ? `put ${leaseKey(e.lease)}` : `delete ${leaseKey({ subnet: e.subnet, ...(e.subnet6 !== undefined ? { subnet6: e.subnet6 } : {}) })}`)

test('a dual-stack node: both pod CIDRs (either order, host bits cleared), both public addresses (PublicIPv6 in Go\'s form), both backend data', () => {
  const n = node('h2', ['fc00:0:0:2::5/64', '10.244.2.0/24'], { [`${P}public-ipv6`]: '2001:0002:0:0::0002', [`${P}backend-type`]: 'vxlan', [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"0a:00:00:00:00:02"}', [`${P}backend-v6-data`]: '{"VNI":1,"VtepMAC":"0a:00:00:00:06:02"}' })
  const made = nodeToLease(n, names, DUAL)
  assert.ok(made.ok)
  assert.equal(formatCidr(made.subnet), '10.244.2.0/24')
  assert.equal(made.subnet6 !== undefined ? formatCidr6(made.subnet6) : '', 'fc00:0:0:2::/64')
  assert.equal(made.attrs.publicIPv6, '2001:2::2')
  assert.deepEqual(made.attrs.backendData, { VNI: 1, VtepMAC: '0a:00:00:00:00:02' })
  assert.deepEqual(made.attrs.backendV6Data, { VNI: 1, VtepMAC: '0a:00:00:00:06:02' })
  assert.equal(storedVtepMac(n, names, true), '0a:00:00:00:06:02')
  // IPv4-only network: the same node's lease has no IPv6 half
  const v4 = nodeToLease(n, names)
  assert.ok(v4.ok)
  assert.equal(v4.subnet6, undefined)
  assert.equal(v4.attrs.backendV6Data, undefined)
})

test('an IPv6-only node in an IPv6-only network: subnet 0.0.0.0/0, PublicIP 0.0.0.0, the key flannel writes', () => {
  const made = nodeToLease(node('h3', ['fc00:0:0:3::/64'], { [`${P}public-ip`]: undefined }), names, V6)
  assert.ok(made.ok)
  assert.equal(leaseKey(made), '0.0.0.0-0&fc00:0:0:3::-64')
  assert.equal(made.attrs.publicIP, 0)
  assert.equal(made.attrs.publicIPv6, '2001:2::3')
})

test('a node lacking a family the network has is skipped with flannel\'s reason; malformed IPv6 input too', () => {
  const cases: Array<[KubeNode, typeof DUAL, RegExp]> = [
    [node('h2', ['10.244.2.0/24']), DUAL, /missing IPv6 address on spec\.podCIDRs/],
    [node('h2', ['fc00:0:0:2::/64']), DUAL, /missing IPv4 address on spec\.podCIDRs/],
    [node('h2', ['10.244.2.0/24', 'fc00:0:0:2::/64'], { [`${P}public-ipv6`]: undefined }), DUAL, /no flannel\.alpha\.coreos\.com\/public-ipv6 annotation/],
    [node('h2', ['10.244.2.0/24', 'fc00:0:0:2::/64'], { [`${P}public-ipv6`]: '198.18.0.2' }), DUAL, /public-ipv6 "198\.18\.0\.2" is not an IPv6 address/],
    [node('h2', ['10.244.2.0/24', 'fc00:0:0:2::/64'], { [`${P}backend-v6-data`]: '{nope' }), DUAL, /backend-v6-data is not JSON/],
    [node('h2', ['10.244.2.0/24', 'fc00:0:0:2::zz/64']), DUAL, /pod CIDR "fc00:0:0:2::zz\/64" is not a CIDR/],
    [node('h2', ['10.244.2.0/24', 'fc00:0:0:2::/64', 'fc00:0:0:3::/64']), DUAL, /more than two/]
  ]
  for (const [n, fam, why] of cases) {
    const c = new NodeTable(names, fam).put(n)
    assert.deepEqual(c.events, [])
    assert.equal(c.skipped.length, 1)
    assert.match(c.skipped[0].reason, why)
  }
  assert.deepEqual(podSubnets(node('h2', ['fc00::/64', 'fd00::/64'])), { subnet6: { ip: 0xfc00n << 112n, prefixLen: 64 } }, 'the first of a family is taken')
})

test('dual-stack table: puts and deletes carry subnet6; a v6-only change is a put; an IPv6 CIDR held by another node is a conflict until it is let go', () => {
  const t = new NodeTable(names, DUAL)
  assert.deepEqual(show(t.put(node('h2', ['10.244.2.0/24', 'fc00:0:0:2::/64'])).events), ['put 10.244.2.0-24&fc00:0:0:2::-64'])
  // a new public IPv6 is a change peers care about
  assert.deepEqual(show(t.put(node('h2', ['10.244.2.0/24', 'fc00:0:0:2::/64'], { [`${P}public-ipv6`]: '2001:2::22' })).events), ['put 10.244.2.0-24&fc00:0:0:2::-64'])
  assert.equal(t.leases()[0].attrs.publicIPv6, '2001:2::22')
  // another node with a distinct IPv4 CIDR but the same IPv6 one
  const clash = t.put(node('h9', ['10.244.9.0/24', 'fc00:0:0:2::/64']))
  assert.deepEqual(clash.events, [])
  assert.match(clash.skipped[0].reason, /pod CIDR fc00:0:0:2::-64 is held by node h2/)
  assert.equal(t.holderOf6({ ip: 0xfc000000000000020000000000000000n, prefixLen: 64 }), 'h2')
  // h2 goes: its lease is deleted (both halves), h9 takes the IPv6 CIDR with its own key
  assert.deepEqual(show(t.delete({ metadata: { name: 'h2' } }).events), ['delete 10.244.2.0-24&fc00:0:0:2::-64', 'put 10.244.9.0-24&fc00:0:0:2::-64'])
  const del = t.delete({ metadata: { name: 'h9' } }).events[0]
  assert.equal(del.type, 'delete')
  assert.equal(del.type === 'delete' && del.subnet6 !== undefined ? formatCidr6(del.subnet6) : '', 'fc00:0:0:2::/64')
})

test('IPv6-only table: leases of distinct nodes do not collide on 0.0.0.0/0', () => {
  const t = new NodeTable(names, V6)
  t.put(node('h2', ['fc00:0:0:2::/64']))
  t.put(node('h3', ['fc00:0:0:3::/64']))
  assert.deepEqual(t.leases().map(leaseKey).sort(), ['0.0.0.0-0&fc00:0:0:2::-64', '0.0.0.0-0&fc00:0:0:3::-64'])
  assert.deepEqual(show(t.delete({ metadata: { name: 'h2' } }).events), ['delete 0.0.0.0-0&fc00:0:0:2::-64'])
  assert.equal(t.leases().length, 1)
})

test('listing without a network config (\'auto\') takes each node\'s families as it has them', () => {
  const t = new NodeTable(names, 'auto')
  t.put(node('h1', ['10.244.1.0/24']))
  t.put(node('h2', ['10.244.2.0/24', 'fc00:0:0:2::/64']))
  t.put(node('h3', ['fc00:0:0:3::/64'], { [`${P}public-ip`]: undefined }))
  assert.deepEqual(t.leases().map(leaseKey).sort(), ['0.0.0.0-0&fc00:0:0:3::-64', '10.244.1.0-24', '10.244.2.0-24&fc00:0:0:2::-64'])
})
