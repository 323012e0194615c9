// The lease manager with IPv6: dual-stack and IPv6-only allocation (a free
// candidate in each family, exhaustion, the previous subnet.env's subnets,
// reuse by public address), the race retry, revocation, and peers keyed by
// both halves of their key.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatCidr, parseCidr } from '../../src/packet/net'
import { formatCidr6, parseCidr6, parseIp6 } from '../../src/packet/net6'
import { fitsRange6, freeCandidates6, leaseFits, peerMisfit, range6, takenSubnets } from '../../src/lease/allocate'
import { previousSubnets } from '../../src/subnet/env'
import type { SubnetRange } from '../../src/lease/allocate'
import { leaseKey } from '../../src/subnet/lease'
import type { Lease, LeaseAttrs } from '../../src/subnet/lease'
import { LeaseManager } from '../../src/lease/manager'
import type { LeaseManagerOptions } from '../../src/lease/manager'
import type { PeerEvent } from '../../src/lease/watcher'
import { LeaseWatcher } from '../../src/lease/watcher'
import { parseIp4 } from '../../src/packet/ip'
import { networkConfigFromJson } from '../../src/subnet/config'
import { MemoryStore } from '../../src/store/memory/memory-store'
import { waitFor } from '../../lab/netns'
import { captureLogger } from '../helpers/log'

const DUAL: SubnetRange = networkConfigFromJson({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fc00::/48' })
const ONLY: SubnetRange = networkConfigFromJson({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48' })
/** three /64s to lease: fc00:0:0:1:: to fc00:0:0:3:: */
const SMALL6: SubnetRange = networkConfigFromJson({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fc00::/48', IPv6SubnetMax: 'fc00:0:0:3::' })

const attrs = (n: number, v4 = true): LeaseAttrs => ({ publicIP: v4 ? parseIp4(`198.18.0.${n}`) : 0, publicIPv6: `2001:2::${n}`, backendType: 'host-gw' })

function manager (store: MemoryStore, n: number, range: SubnetRange, extra: Partial<LeaseManagerOptions> = {}): { m: LeaseManager, logs: ReturnType<typeof captureLogger> } {
  const logs = captureLogger()
  const v4 = range.enableIPv4 !== false
  return { m: new LeaseManager({ store, range, publicIP: v4 ? parseIp4(`198.18.0.${n}`) : 0, attrs: attrs(n, v4), log: logs.log, ...extra }), logs }
}

test('dual stack: a lease gets an IPv4 and an IPv6 subnet, each inside its range, under flannel\'s key', async () => {
  const store = new MemoryStore()
  const l = await manager(store, 1, DUAL).m.acquire()
  assert.equal(l.subnet.prefixLen, 24)
  assert.ok(l.subnet6 !== undefined && leaseFits(l, DUAL))
  assert.equal(l.subnet6.prefixLen, 64)
  const [stored] = (await store.listLeases()).leases
  assert.equal(leaseKey(stored), `${formatCidr(l.subnet).replace('/', '-')}&${formatCidr6(l.subnet6).replace('/', '-')}`)
  assert.equal(stored.attrs.publicIPv6, '2001:2::1')
})

test('IPv6-only: the IPv4 half is 0.0.0.0/0 (flannel\'s key "0.0.0.0-0&..."), and many nodes get distinct IPv6 subnets', async () => {
  const store = new MemoryStore()
  const leases = await Promise.all(Array.from({ length: 30 }, async (_, i) => await manager(store, i + 1, ONLY).m.acquire()))
  assert.ok(leases.every((l) => l.subnet.ip === 0 && l.subnet.prefixLen === 0 && l.subnet6 !== undefined))
  assert.equal(new Set(leases.map((l) => leaseKey(l))).size, 30)
  assert.ok(leases.every((l) => leaseKey(l).startsWith('0.0.0.0-0&fc00:0:0:')))
  assert.equal((await store.listLeases()).leases.length, 30)
})

test('a restart reuses the lease holding our public address: PublicIP in dual stack, PublicIPv6 when IPv6-only', async () => {
  const store = new MemoryStore()
  const a = await manager(store, 1, DUAL).m.acquire()
  const again = await manager(store, 1, DUAL).m.acquire()
  assert.equal(leaseKey(again), leaseKey(a))
  const b = await manager(store, 2, ONLY).m.acquire()
  // two IPv6-only nodes both have PublicIP 0.0.0.0: only PublicIPv6 tells them apart
  const c = await manager(store, 3, ONLY).m.acquire()
  assert.notEqual(leaseKey(b), leaseKey(c))
  const b2 = await manager(store, 2, ONLY).m.acquire()
  assert.equal(leaseKey(b2), leaseKey(b))
  assert.equal((await store.listLeases()).leases.length, 3)
})

test('an IPv4-only lease of ours no longer fits a dual-stack config: deleted and leased again with both families (flannel\'s isIPv6SubnetConfigCompat)', async () => {
  const store = new MemoryStore()
  await store.createLease(parseCidr('10.244.9.0/24'), attrs(1), 600)
  const { m, logs } = manager(store, 1, DUAL, { previousSubnet: parseCidr('10.244.9.0/24') })
  const l = await m.acquire()
  assert.equal(formatCidr(l.subnet), '10.244.9.0/24', 'the IPv4 subnet from subnet.env, free again once the old lease is gone')
  assert.ok(l.subnet6 !== undefined)
  assert.equal(logs.find(/no longer fits the network config; deleting it/).length, 1)
  // the IPv6 half is new, not a previous subnet lost
  assert.equal(logs.find(/leased the subnet from the previous subnet.env/).length, 1)
  assert.equal(logs.find(/held by another node/).length, 0)
  assert.deepEqual((await store.listLeases()).leases.map((x) => leaseKey(x)), [leaseKey(l)])
})

test('the previous subnet.env\'s subnets are asked for first, each family on its own; a taken one is replaced and said', async () => {
  const store = new MemoryStore()
  const prev6 = parseCidr6('fc00:0:0:77::/64')
  const { m, logs } = manager(store, 9, DUAL, { previousSubnet: parseCidr('10.244.77.0/24'), previousSubnet6: prev6 })
  const l = await m.acquire()
  assert.equal(leaseKey(l), '10.244.77.0-24&fc00:0:0:77::-64')
  assert.equal(logs.find(/leased the subnet from the previous subnet.env/).length, 1)
  // IPv6-only: the IPv6 subnet alone (flannel forgets it there: its previous subnet is the empty IPv4 one)
  const only = await manager(store, 10, ONLY, { previousSubnet6: parseCidr6('fc00:0:0:78::/64') }).m.acquire()
  assert.equal(leaseKey(only), '0.0.0.0-0&fc00:0:0:78::-64')
  // another node's previous IPv6 subnet is taken: a free one instead, and a warning naming both
  const t = manager(store, 11, DUAL, { previousSubnet: parseCidr('10.244.79.0/24'), previousSubnet6: prev6 })
  const l3 = await t.m.acquire()
  assert.equal(formatCidr(l3.subnet), '10.244.79.0/24')
  assert.notEqual(formatCidr6(l3.subnet6!), formatCidr6(prev6))
  const said = t.logs.find(/is held by another node/)
  assert.equal(said.length, 1)
  assert.match(String(said[0].msg), /^our previous subnet 10\.244\.79\.0\/24 and fc00:0:0:77::\/64 is held by another node; leased 10\.244\.79\.0\/24 and fc00:0:0:[0-9a-f]+::\/64 instead$/)
})

test('out of IPv6 subnets is a clear error, though IPv4 ones are left', async () => {
  const store = new MemoryStore()
  for (let i = 1; i <= 3; i++) await manager(store, i, SMALL6).m.acquire()
  await assert.rejects(manager(store, 4, SMALL6).m.acquire(), (e: unknown) => {
    assert.equal((e as { code: string }).code, 'EOUTOFSUBNETS')
    assert.match((e as Error).message, /^out of subnets: all 3 \/64 IPv6 subnets of fc00::\/48 are leased$/)
    return true
  })
})

test('a key whose value does not parse still takes its IPv6 subnet; an IPv6-only lease takes no IPv4 one', () => {
  const used = takenSubnets([{ subnet: { ip: 0, prefixLen: 0 }, subnet6: parseCidr6('fc00:0:0:1::/64') }], [{ key: '10.244.5.0-24&fc00:0:0:2::-64', reason: 'not JSON' }])
  assert.deepEqual(used.v4.map(formatCidr), ['10.244.5.0/24'])
  assert.deepEqual(used.v6.map(formatCidr6), ['fc00:0:0:1::/64', 'fc00:0:0:2::/64'])
  const r = range6(DUAL)!
  assert.deepEqual(freeCandidates6(r, used.v6, 2).map(formatCidr6), ['fc00:0:0:3::/64', 'fc00:0:0:4::/64'])
  // a hand-written /52 is stepped over whole, not one /64 at a time
  assert.deepEqual(freeCandidates6(r, [parseCidr6('fc00::/52')], 1).map(formatCidr6), ['fc00:0:0:1000::/64'])
  const wide = range6(networkConfigFromJson({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/16', IPv6SubnetLen: 64, Backend: { Type: 'host-gw' } }))!
  assert.deepEqual(freeCandidates6(wide, [parseCidr6('fc00::/17')], 1).map(formatCidr6), ['fc00:8000::/64'])
  assert.equal(fitsRange6(parseCidr6('fc00:0:0:1::/64'), r), true)
  assert.equal(fitsRange6(parseCidr6('fc00:0:0:1::/65'), r), false)
  assert.equal(fitsRange6(parseCidr6('fc00::/64'), r), false, 'below IPv6SubnetMin')
  assert.equal(fitsRange6(parseCidr6('fc01:0:0:1::/64'), r), false)
})

test('races: nodes that pick the same subnets retry, none lost (dual stack)', async () => {
  const store = new MemoryStore()
  // every node picks the first candidate of each family: they collide until the store refuses
  const leases = await Promise.all(Array.from({ length: 10 }, async (_, i) => await manager(store, i + 1, DUAL, { random: () => 0 }).m.acquire()))
  assert.equal(new Set(leases.map((l) => formatCidr(l.subnet))).size, 10)
  assert.equal(new Set(leases.map((l) => formatCidr6(l.subnet6!))).size, 10)
})

test('peers: an IPv6-only node sees the others (same 0.0.0.0/0 IPv4 half) as distinct peers, added and removed with subnet6', async () => {
  const store = new MemoryStore()
  const a = manager(store, 1, ONLY).m
  const own = await a.acquire()
  const seen: PeerEvent[] = []
  const ac = new AbortController()
  const running = a.run(ac.signal, { onPeers: (ev) => seen.push(...ev) })
  const b = await manager(store, 2, ONLY).m.acquire()
  const c = await manager(store, 3, ONLY).m.acquire()
  await waitFor(() => seen.filter((e) => e.type === 'added').length >= 2, { what: 'two peers', timeoutMs: 3000 })
  await store.deleteLease(b.subnet, b.subnet6)
  await waitFor(() => seen.some((e) => e.type === 'removed'), { what: 'a peer removed', timeoutMs: 3000 })
  assert.deepEqual(seen.map((e) => `${e.type} ${formatCidr6(e.lease.subnet6!)}`), [`added ${formatCidr6(b.subnet6!)}`, `added ${formatCidr6(c.subnet6!)}`, `removed ${formatCidr6(b.subnet6!)}`])
  assert.equal(seen[2].lease.attrs.publicIPv6, '2001:2::2', 'the removed peer carries its cached attributes')
  assert.ok(seen.every((e) => leaseKey(e.lease) !== leaseKey(own)))
  // our own lease deleted: a revocation, and we lease again
  await store.deleteLease(own.subnet, own.subnet6)
  await waitFor(async () => (await store.listLeases()).leases.some((l) => l.attrs.publicIPv6 === '2001:2::1'), { what: 're-acquired', timeoutMs: 3000 })
  assert.equal(leaseKey(a.lease), leaseKey(own), 'the same subnet, since it was free')
  ac.abort()
  await running
})

test('the watcher keys leases by both halves: IPv6-only leases do not collide, and our own is filtered by its key', () => {
  const l = (v6: string, rev: number): Lease => ({ subnet: { ip: 0, prefixLen: 0 }, subnet6: parseCidr6(v6), attrs: attrs(rev, false), expiration: null, revision: rev })
  const w = new LeaseWatcher({ subnet: { ip: 0, prefixLen: 0 }, subnet6: parseCidr6('fc00:0:0:1::/64') })
  const ev = w.reset([l('fc00:0:0:1::/64', 1), l('fc00:0:0:2::/64', 2), l('fc00:0:0:3::/64', 3)])
  assert.deepEqual(ev.map((e) => `${e.type} ${formatCidr6(e.lease.subnet6!)}`), ['added fc00:0:0:2::/64', 'added fc00:0:0:3::/64'])
  const del = w.update([{ type: 'delete', subnet: { ip: 0, prefixLen: 0 }, subnet6: parseCidr6('fc00:0:0:3::/64'), revision: 4 }])
  assert.deepEqual(del.map((e) => `${e.type} ${e.lease.attrs.publicIPv6 ?? ''}`), ['removed 2001:2::3'])
  assert.equal(w.peers().length, 1)
  assert.equal(parseIp6(w.peers()[0].attrs.publicIPv6!), parseIp6('2001:2::2'))
})

test('peers: each half a lease has must fit its family\'s range; an IPv4-only peer in a dual-stack network is fine', () => {
  const p = (v4: string | undefined, v6?: string): { subnet: { ip: number, prefixLen: number }, subnet6?: ReturnType<typeof parseCidr6> } =>
    ({ subnet: v4 === undefined ? { ip: 0, prefixLen: 0 } : parseCidr(v4), ...(v6 !== undefined ? { subnet6: parseCidr6(v6) } : {}) })
  assert.equal(peerMisfit(p('10.244.1.0/24', 'fc00:0:0:1::/64'), DUAL), undefined)
  assert.equal(peerMisfit(p('10.244.1.0/24'), DUAL), undefined)
  assert.equal(peerMisfit(p(undefined, 'fc00:0:0:1::/64'), DUAL), undefined)
  assert.match(peerMisfit(p('10.244.1.0/24', 'fc01:0:0:1::/64'), DUAL) ?? '', /^its IPv6 subnet fc01:0:0:1::\/64 is not a \/64 of the IPv6Network fc00::\/48/)
  assert.match(peerMisfit(p('10.99.1.0/24', 'fc00:0:0:1::/64'), DUAL) ?? '', /^its subnet 10\.99\.1\.0\/24 is not a \/24 of the Network/)
  assert.equal(peerMisfit(p(undefined, 'fc00:0:0:1::/64'), ONLY), undefined)
  assert.match(peerMisfit(p('10.244.1.0/24'), ONLY) ?? '', /no IPv6 subnet, and the network has no IPv4/)
  // a dual-stack peer in an IPv4-only network: its IPv6 half is not used, not a fault
  assert.equal(peerMisfit(p('10.244.1.0/24', 'fd99::/64'), networkConfigFromJson({ Network: '10.244.0.0/16' })), undefined)
})

test('the previous subnet.env: each family\'s subnet, if that family\'s network is still the config\'s', () => {
  const env = { network: parseCidr('10.244.0.0/16'), subnet: parseCidr('10.244.7.0/24'), network6: parseCidr6('fc00::/48'), subnet6: parseCidr6('fc00:0:0:7::/64'), mtu: 1450, ipMasq: false }
  const dual = networkConfigFromJson({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fc00::/48' })
  assert.deepEqual(previousSubnets(env, dual), { previousSubnet: env.subnet, previousSubnet6: env.subnet6 })
  assert.deepEqual(previousSubnets(env, networkConfigFromJson({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fd00::/48' })), { previousSubnet: env.subnet })
  assert.deepEqual(previousSubnets(env, networkConfigFromJson({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48' })), { previousSubnet6: env.subnet6 })
  assert.deepEqual(previousSubnets({ network6: env.network6, subnet6: env.subnet6, mtu: 1450, ipMasq: false }, dual), { previousSubnet6: env.subnet6 })
})
