// The lease manager against the in-memory store: acquiring, reusing,
// renewing, revocation and peers.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatCidr, parseCidr, subnetKey } from '../../src/packet/net'
import type { SubnetRange } from '../../src/lease/allocate'
import type { LeaseAttrs } from '../../src/subnet/lease'
import { LeaseManager } from '../../src/lease/manager'
import type { LeaseManagerOptions } from '../../src/lease/manager'
import type { PeerEvent } from '../../src/lease/watcher'
import { parseIp4 } from '../../src/packet/ip'
import { MemoryStore } from '../../src/store/memory/memory-store'
import { waitFor } from '../../lab/netns'
import { captureLogger } from '../helpers/log'
import { FakeClock } from '../helpers/fake-clock'

const RANGE: SubnetRange = { network: parseCidr('10.244.0.0/16'), subnetLen: 24, subnetMin: parseIp4('10.244.1.0'), subnetMax: parseIp4('10.244.255.0') }
const attrs = (ip: string): LeaseAttrs => ({ publicIP: parseIp4(ip), publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: 'aa:bb:cc:00:00:01' } })

function manager (store: MemoryStore, ip: string, extra: Partial<LeaseManagerOptions> = {}): { m: LeaseManager, logs: ReturnType<typeof captureLogger> } {
  const logs = captureLogger()
  return { m: new LeaseManager({ store, range: RANGE, publicIP: parseIp4(ip), attrs: attrs(ip), log: logs.log, ...extra }), logs }
}

test('acquires a /24 inside SubnetMin..SubnetMax with a 24 h TTL', async () => {
  const store = new MemoryStore()
  const { m } = manager(store, '198.18.0.1')
  const l = await m.acquire()
  assert.equal(l.subnet.prefixLen, 24)
  assert.ok(l.subnet.ip >= RANGE.subnetMin && l.subnet.ip <= RANGE.subnetMax)
  assert.ok(l.expiration !== null && Math.abs(l.expiration - Date.now() - 86_400_000) < 5000)
})

test('a restarted node gets back the lease holding its public IP', async () => {
  const store = new MemoryStore()
  const first = await manager(store, '198.18.0.1').m.acquire()
  const again = await manager(store, '198.18.0.1').m.acquire()
  assert.equal(formatCidr(again.subnet), formatCidr(first.subnet))
  assert.equal((await store.listLeases()).leases.length, 1)
})

test('a node with a new public IP asks for the subnet in its previous subnet.env first', async () => {
  const store = new MemoryStore()
  const prev = parseCidr('10.244.77.0/24')
  const l = await manager(store, '198.18.0.9', { previousSubnet: prev }).m.acquire()
  assert.equal(formatCidr(l.subnet), '10.244.77.0/24')
})

test('a reservation (a lease with no TTL) is reused as a reservation, not turned into a 24 h lease (flannel #1329)', async () => {
  const store = new MemoryStore()
  await store.createLease(parseCidr('10.244.50.0/24'), attrs('198.18.0.5'), 0)
  const l = await manager(store, '198.18.0.5').m.acquire()
  assert.equal(formatCidr(l.subnet), '10.244.50.0/24')
  assert.equal(l.expiration, null)
  assert.equal((await store.listLeases()).leases[0].expiration, null)
})

test('a subnet reserved for another node is never handed out', async () => {
  const store = new MemoryStore()
  const small: SubnetRange = { network: parseCidr('10.9.0.0/26'), subnetLen: 28, subnetMin: parseIp4('10.9.0.16'), subnetMax: parseIp4('10.9.0.48') }
  await store.createLease(parseCidr('10.9.0.16/28'), attrs('198.18.0.200'), 0)
  for (let i = 1; i <= 2; i++) {
    const l = await manager(store, `198.18.0.${i}`, { range: small }).m.acquire()
    assert.notEqual(formatCidr(l.subnet), '10.9.0.16/28')
  }
})

test('a full network gives a clear "out of subnets" error', async () => {
  const store = new MemoryStore()
  const small: SubnetRange = { network: parseCidr('10.9.0.0/26'), subnetLen: 28, subnetMin: parseIp4('10.9.0.16'), subnetMax: parseIp4('10.9.0.48') }
  for (let i = 1; i <= 3; i++) await manager(store, `198.18.0.${i}`, { range: small }).m.acquire()
  await assert.rejects(manager(store, '198.18.0.4', { range: small }).m.acquire(), (e: unknown) => {
    assert.equal((e as { code: string }).code, 'EOUTOFSUBNETS')
    assert.match((e as Error).message, /out of subnets: all 3 \/28 subnets of 10\.9\.0\.0\/26 are leased/)
    return true
  })
})

test('50 managers racing on one store all get distinct subnets, none lost', async () => {
  const store = new MemoryStore()
  const leases = await Promise.all(Array.from({ length: 50 }, (_, i) => manager(store, `198.18.1.${i + 1}`).m.acquire()))
  assert.equal(new Set(leases.map((l) => formatCidr(l.subnet))).size, 50)
  assert.equal((await store.listLeases()).leases.length, 50)
})

test('peers arrive as Added; a removed peer arrives as Removed with its attributes', async () => {
  const store = new MemoryStore()
  const a = manager(store, '198.18.0.1').m
  await a.acquire()
  const seen: PeerEvent[] = []
  const ac = new AbortController()
  const running = a.run(ac.signal, { onPeers: (ev) => seen.push(...ev) })
  const b = await manager(store, '198.18.0.2').m.acquire()
  await waitFor(() => seen.some((e) => e.type === 'added'), { what: 'peer added', timeoutMs: 3000 })
  await store.deleteLease(b.subnet)
  await waitFor(() => seen.some((e) => e.type === 'removed'), { what: 'peer removed', timeoutMs: 3000 })
  const removed = seen.find((e) => e.type === 'removed')
  assert.equal(removed?.lease.attrs.publicIP, parseIp4('198.18.0.2'))
  assert.ok(seen.every((e) => formatCidr(e.lease.subnet) === formatCidr(b.subnet)), 'never our own subnet')
  ac.abort()
  await running
})

test('a lease deleted under a running manager is noticed, logged, and taken back', async () => {
  const store = new MemoryStore()
  const { m, logs } = manager(store, '198.18.0.1')
  const l = await m.acquire()
  const ac = new AbortController()
  const running = m.run(ac.signal, { onPeers: () => {} })
  const t0 = Date.now()
  await store.deleteLease(l.subnet)
  await waitFor(async () => (await store.listLeases()).leases.length === 1, { what: 're-acquired', timeoutMs: 3000 })
  assert.ok(Date.now() - t0 < 1000, 'within a second')
  assert.equal(logs.find(/lease has been revoked/).length, 1)
  assert.equal(formatCidr(m.lease.subnet), formatCidr(l.subnet), 'the same subnet, since it was free')
  ac.abort()
  await running
})

test('a value with no PublicIP put over our own lease is not ours: the manager leases another subnet and leaves that value alone', async () => {
  const store = new MemoryStore()
  const { m, logs } = manager(store, '198.18.0.1')
  const l = await m.acquire()
  const ac = new AbortController()
  const running = m.run(ac.signal, { onPeers: () => {} })
  store.putRaw(subnetKey(l.subnet), '{}')
  await waitFor(() => formatCidr(m.lease.subnet) !== formatCidr(l.subnet), { what: 'another subnet', timeoutMs: 3000 })
  assert.equal(logs.find(/lease has been revoked/).length, 1)
  ac.abort()
  await running
  // a restart finds no lease with its public IP and does not take that one either
  const again = await manager(store, '198.18.0.1', { previousSubnet: l.subnet }).m.acquire()
  assert.equal(formatCidr(again.subnet), formatCidr(m.lease.subnet))
  const left = (await store.listLeases()).leases.find((x) => formatCidr(x.subnet) === formatCidr(l.subnet))
  assert.deepEqual(left?.attrs, { publicIP: 0, publicIPv6: null, backendType: '' }, 'neither rewritten nor deleted')
})

test('with onRevoked "exit", a revocation ends run() after telling the caller', async () => {
  const store = new MemoryStore()
  const { m } = manager(store, '198.18.0.1', { onRevoked: 'exit' })
  const l = await m.acquire()
  let told = false
  const running = m.run(new AbortController().signal, { onPeers: () => {}, onRevoked: () => { told = true } })
  await store.deleteLease(l.subnet)
  await running
  assert.ok(told)
})

test('renews before expiry by the margin, keeping the lease alive past its TTL', async () => {
  // the store expires leases by the same clock the manager renews by
  const clock = new FakeClock()
  const store = new MemoryStore({ now: clock.now })
  const { m } = manager(store, '198.18.0.1', { ttlSeconds: 2, renewMarginSeconds: 1, clock })
  const l = await m.acquire()
  let renewed = 0
  const ac = new AbortController()
  const running = m.run(ac.signal, { onPeers: () => {}, onRenewed: () => { renewed++ } })
  await clock.advance(3500)
  const list = await store.listLeases()
  assert.equal(list.leases.length, 1)
  assert.equal(formatCidr(list.leases[0].subnet), formatCidr(l.subnet))
  assert.ok(renewed >= 2, `renewed ${renewed} times`)
  ac.abort()
  await running
})

test('a renew margin as long as the TTL is refused with a clear message', () => {
  assert.throws(() => manager(new MemoryStore(), '198.18.0.1', { ttlSeconds: 60, renewMarginSeconds: 60 }), /renew-margin/)
})

test('a node that leases between our list and our create still reaches us as a peer', async () => {
  const store = new MemoryStore()
  const b = manager(store, '198.18.0.2').m
  // A's create runs only after B has leased: the race the watch must cover.
  const racing = Object.create(store) as MemoryStore
  let raced = false
  racing.createLease = async (...args) => {
    if (!raced) { raced = true; await b.acquire() }
    return await store.createLease(...args)
  }
  const a = manager(racing, '198.18.0.1').m
  await a.acquire()
  const seen: PeerEvent[] = []
  const ac = new AbortController()
  const running = a.run(ac.signal, { onPeers: (ev) => seen.push(...ev) })
  await waitFor(() => seen.some((e) => e.type === 'added' && e.lease.attrs.publicIP === parseIp4('198.18.0.2')), { what: 'B as a peer', timeoutMs: 3000 })
  ac.abort()
  await running
})

test('our lease rewritten with other attributes (a forged VTEP MAC or WireGuard key) is written back with ours at once, and said once', async () => {
  const store = new MemoryStore()
  const { m, logs } = manager(store, '198.18.0.1')
  const l = await m.acquire()
  const ac = new AbortController()
  const running = m.run(ac.signal, { onPeers: () => {} })
  const forged = JSON.stringify({ PublicIP: '198.18.0.1', PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '66:66:66:66:66:66' } })
  store.putRaw(subnetKey(l.subnet), forged)
  const ours = async (): Promise<boolean> => (await store.listLeases()).leases.some((x) => formatCidr(x.subnet) === formatCidr(l.subnet) && JSON.stringify(x.attrs) === JSON.stringify(attrs('198.18.0.1')))
  await waitFor(ours, { what: 'our attributes back', timeoutMs: 3000 })
  assert.equal(formatCidr(m.lease.subnet), formatCidr(l.subnet), 'the same lease, not a revocation')
  store.putRaw(subnetKey(l.subnet), forged)
  await waitFor(ours, { what: 'our attributes back again', timeoutMs: 3000 })
  assert.equal(logs.find(/someone rewrote our lease/).length, 1)
  assert.equal(logs.find(/lease has been revoked/).length, 0)
  ac.abort()
  await running
})
