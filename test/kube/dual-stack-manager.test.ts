// The kube subnet manager in IPv6, against the lab's stand-in API server
// (on 127.0.0.1, no namespaces): our node's IPv6 pod CIDR is our lease's
// subnet6; the annotations are written as flanneld's AcquireLease writes
// them (public-ipv6 and backend-v6-data for a dual-stack host-gw or vxlan
// node, none without IPv6, public-ipv6-overwrite honoured, node-public-ipv6
// read); a pod CIDR outside IPv6Network is refused with flannel's error; and
// peers arrive (and leave) with their subnet6.
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startKubeApi } from '../../lab/kube-api'
import type { KubeApi } from '../../lab/kube-api'
import { waitFor } from '../../lab/wait'
import { annotationNames, DEFAULT_ANNOTATION_PREFIX } from '../../src/kube/annotations'
import { KubeClient } from '../../src/kube/client'
import { KubeSubnetManager } from '../../src/kube/manager'
import type { KubeManagerOptions } from '../../src/kube/manager'
import { parseCidr } from '../../src/packet/net'
import { formatCidr6, parseCidr6 } from '../../src/packet/net6'
import { parseIp4 } from '../../src/packet/ip'
import { StoreOutage } from '../../src/store/outage'
import { leaseKey } from '../../src/subnet/lease'
import type { LeaseAttrs } from '../../src/subnet/lease'
import type { PeerEvent } from '../../src/lease/watcher'
import { captureLogger } from '../helpers/log'

const names = annotationNames(DEFAULT_ANNOTATION_PREFIX)
const P = 'flannel.alpha.coreos.com/'
const NETWORK = parseCidr('10.244.0.0/16')
const NETWORK6 = parseCidr6('fc00::/48')

async function api (t: TestContext): Promise<{ api: KubeApi, client: KubeClient }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-kube6-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const a = await startKubeApi()
  t.after(async () => await a.close())
  return { api: a, client: new KubeClient({ kubeconfig: a.kubeconfig(`${dir}/kubeconfig`), apiUrl: '' }) }
}

function manager (client: KubeClient, attrs: LeaseAttrs, o: Partial<KubeManagerOptions> = {}): { m: KubeSubnetManager, logs: ReturnType<typeof captureLogger> } {
  const logs = captureLogger()
  const m = new KubeSubnetManager({ client, nodeName: 'h1', names, network: NETWORK, network6: NETWORK6, publicIP: attrs.publicIP, attrs, log: logs.log, outage: new StoreOutage(logs.log), ...o })
  return { m, logs }
}

const flannelOnes = (n: { metadata?: { annotations?: Record<string, string> } } | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(n?.metadata?.annotations ?? {}).filter(([k]) => k.startsWith(P)).map(([k, v]) => [k.slice(P.length), v]))

/** flanneld's six annotations of a host-gw node with both public addresses (backend data "null" in each family). */
const hostGwAnnotations = (publicIP: string, publicIPv6: string): Record<string, string> => ({
  'backend-data': 'null',
  'backend-type': 'host-gw',
  'backend-v6-data': 'null',
  'kube-subnet-manager': 'true',
  'public-ip': publicIP,
  'public-ipv6': publicIPv6
})

test('dual stack, host-gw: the lease is both pod CIDRs; flanneld\'s six annotations are written (backend-v6-data "null"); peers come with subnet6 and leave with it', async (t) => {
  const { api: a, client } = await api(t)
  await a.addNode({ name: 'h1', podCIDRs: ['10.244.1.0/24', 'fc00:0:0:1::/64'] })
  await a.addNode({ name: 'h2', podCIDRs: ['fc00:0:0:2::/64', '10.244.2.0/24'], annotations: { [`${P}kube-subnet-manager`]: 'true', [`${P}backend-type`]: 'host-gw', [`${P}backend-data`]: 'null', [`${P}public-ip`]: '198.18.0.2', [`${P}backend-v6-data`]: 'null', [`${P}public-ipv6`]: '2001:2::2' } })
  const { m } = manager(client, { publicIP: parseIp4('198.18.0.1'), publicIPv6: '2001:2::1', backendType: 'host-gw' })
  const lease = await m.acquire()
  assert.equal(leaseKey(lease), '10.244.1.0-24&fc00:0:0:1::-64')
  assert.deepEqual(flannelOnes(await a.getNode('h1')), hostGwAnnotations('198.18.0.1', '2001:2::1'))
  const seen: PeerEvent[] = []
  const ac = new AbortController()
  t.after(() => ac.abort())
  const running = m.run(ac.signal, { onPeers: (e) => seen.push(...e) })
  await waitFor(() => seen.length === 1, { what: 'h2 as a peer', timeoutMs: 5000 })
  assert.equal(seen[0].type, 'added')
  assert.equal(leaseKey(seen[0].lease), '10.244.2.0-24&fc00:0:0:2::-64')
  assert.equal(seen[0].lease.attrs.publicIPv6, '2001:2::2')
  await a.deleteNode('h2')
  await waitFor(() => seen.length === 2, { what: 'h2 gone', timeoutMs: 5000 })
  assert.equal(seen[1].type, 'removed')
  assert.equal(seen[1].lease.subnet6 !== undefined ? formatCidr6(seen[1].lease.subnet6) : '', 'fc00:0:0:2::/64')
  ac.abort()
  await running
})

test('dual stack, vxlan: backend-v6-data carries the IPv6 VTEP MAC; public-ipv6-overwrite wins over our address; node-public-ipv6 is read as flanneld reads it', async (t) => {
  const { api: a, client } = await api(t)
  await a.addNode({ name: 'h1', podCIDRs: ['10.244.1.0/24', 'fc00:0:0:1::/64'], annotations: { [`${P}public-ipv6-overwrite`]: '2001:2::77', [`${P}node-public-ipv6`]: '2001:2::1' } })
  const node = await a.getNode('h1') as { metadata: { annotations: Record<string, string> } }
  assert.equal(KubeSubnetManager.storedPublicIPv6(node, names), '2001:2::1')
  const attrs: LeaseAttrs = { publicIP: parseIp4('198.18.0.1'), publicIPv6: '2001:2::1', backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '0a:00:00:00:00:01' }, backendV6Data: { VNI: 1, VtepMAC: '0a:00:00:00:06:01' } }
  const { m, logs } = manager(client, attrs)
  await m.acquire()
  const got = flannelOnes(await a.getNode('h1'))
  assert.equal(got['backend-data'], '{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}')
  assert.equal(got['backend-v6-data'], '{"VNI":1,"VtepMAC":"0a:00:00:00:06:01"}')
  assert.equal(got['public-ipv6'], '2001:2::77')
  assert.equal(got['public-ip'], '198.18.0.1')
  assert.equal(logs.find(/publishing the public IPv6 from the node annotation/).length, 1)
})

test('IPv4 only (no IPv6 in the network): no IPv6 annotation is written, even on a node with an IPv6 pod CIDR', async (t) => {
  const { api: a, client } = await api(t)
  await a.addNode({ name: 'h1', podCIDRs: ['10.244.1.0/24', 'fc00:0:0:1::/64'] })
  const { m } = manager(client, { publicIP: parseIp4('198.18.0.1'), publicIPv6: null, backendType: 'host-gw' }, { network6: undefined })
  const lease = await m.acquire()
  assert.equal(leaseKey(lease), '10.244.1.0-24')
  const got = flannelOnes(await a.getNode('h1'))
  assert.equal(got['public-ipv6'], undefined)
  assert.equal(got['backend-v6-data'], undefined)
  assert.equal(got['public-ip'], '198.18.0.1')
})

test('IPv6 only, host-gw: the lease is 0.0.0.0/0 and the IPv6 pod CIDR; flanneld writes public-ip 0.0.0.0 and backend-data null beside the IPv6 ones', async (t) => {
  const { api: a, client } = await api(t)
  await a.addNode({ name: 'h1', podCIDRs: ['fc00:0:0:1::/64'] })
  const { m } = manager(client, { publicIP: 0, publicIPv6: '2001:2::1', backendType: 'host-gw' }, { enableIPv4: false })
  const lease = await m.acquire()
  assert.equal(leaseKey(lease), '0.0.0.0-0&fc00:0:0:1::-64')
  assert.deepEqual(flannelOnes(await a.getNode('h1')), hostGwAnnotations('0.0.0.0', '2001:2::1'))
})

test('a pod CIDR outside IPv6Network is refused with flannel\'s error; a node without an IPv6 pod CIDR in an IPv6 network is refused clearly; nothing is written', async (t) => {
  const { api: a, client } = await api(t)
  await a.addNode({ name: 'h1', podCIDRs: ['10.244.1.0/24', 'fd00:9::/64'] })
  const attrs: LeaseAttrs = { publicIP: parseIp4('198.18.0.1'), publicIPv6: '2001:2::1', backendType: 'host-gw' }
  await assert.rejects(manager(client, attrs).m.acquire(), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ESUBNET')
    assert.equal(e.message, 'subnet "fc00::/48" specified in the flannel net config doesn\'t contain "fd00:9::/64" IPv6 PodCIDR of the "h1" node')
    return true
  })
  // a /40 inside nothing: wider than IPv6Network
  await a.deleteNode('h1')
  await a.addNode({ name: 'h1', podCIDRs: ['10.244.1.0/24', 'fc00::/40'] })
  await assert.rejects(manager(client, attrs).m.acquire(), /doesn't contain "fc00::\/40" IPv6 PodCIDR/)
  await a.deleteNode('h1')
  await a.addNode({ name: 'h1', podCIDRs: ['10.244.1.0/24'] })
  await assert.rejects(manager(client, attrs).m.acquire(), /has no IPv6 pod CIDR, and the network has IPv6/)
  assert.deepEqual(flannelOnes(await a.getNode('h1')), {})
})
