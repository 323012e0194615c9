// The conformance suite's IPv6 half: dual-stack ("10.244.1.0-24&fc00:0:0:1::-64")
// and IPv6-only ("0.0.0.0-0&fc00:0:0:1::-64") leases through every store:
// create, the race, renew, delete, watch, expiry, reservations, compaction.
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { formatCidr, parseCidr } from '../../src/packet/net'
import { formatCidr6, parseCidr6 } from '../../src/packet/net6'
import type { Ip6Net } from '../../src/packet/net6'
import { encodeLeaseAttrs } from '../../src/subnet/lease-json'
import { leaseKey } from '../../src/subnet/lease'
import type { Lease, LeaseAttrs } from '../../src/subnet/lease'
import { parseIp4 } from '../../src/packet/ip'
import { StoreError } from '../../src/store/store'
import type { Store } from '../../src/store/store'
import { watchUntil, withStore } from './conformance'
import type { StoreHarness } from './conformance'

const attrs = (n: number): LeaseAttrs => ({
  publicIP: parseIp4(`198.18.0.${n}`),
  publicIPv6: `2001:2::${n}`,
  backendType: 'vxlan',
  backendData: { VNI: 1, VtepMAC: `aa:bb:cc:dd:ee:0${n}` },
  backendV6Data: { VNI: 1, VtepMAC: `aa:bb:cc:dd:ff:0${n}` }
})

const V4 = parseCidr('10.244.1.0/24')
const V4B = parseCidr('10.244.2.0/24')
const NONE = { ip: 0, prefixLen: 0 }
const A6 = parseCidr6('fc00:0:0:1::/64')
const B6 = parseCidr6('fc00:0:0:2::/64')
const C6 = parseCidr6('fc00:0:0:3::/64')

const names = (ls: readonly Lease[]): string[] => ls.map((l) => leaseKey(l)).sort()

const isEexist = (e: unknown): boolean => e instanceof StoreError && e.code === 'EEXIST'

/** Extra for the IPv6 half: whether the store refuses a lease that repeats either subnet of another key (the embedded stores do; etcd keys alone). */
export interface StoreHarness6 extends StoreHarness {
  readonly refusesSameSubnetOtherKey: boolean
}

export function storeConformance6 (name: string, h: StoreHarness6, skip?: string): void {
  const it = (title: string, fn: (s: Store, t: TestContext) => Promise<void>, skipThis?: string): void => {
    test(`${name} (IPv6): ${title}`, { skip: skip ?? skipThis }, async (t) => { await withStore(h, t, (s) => fn(s, t)) })
  }

  it('creates dual-stack and IPv6-only leases under flannel\'s keys, lists them with subnet6 and the IPv6 attributes', async (s) => {
    const dual = await s.createLease(V4, attrs(1), 600, A6)
    assert.deepEqual(dual.subnet6, A6)
    const only = await s.createLease(NONE, attrs(2), 600, B6)
    assert.deepEqual(only.subnet, NONE)
    await s.createLease(V4B, attrs(3), 600)
    const list = await s.listLeases()
    assert.deepEqual(list.skipped, [])
    assert.deepEqual(names(list.leases), ['0.0.0.0-0&fc00:0:0:2::-64', '10.244.1.0-24&fc00:0:0:1::-64', '10.244.2.0-24'])
    const d = list.leases.find((l) => l.subnet6 !== undefined && l.subnet6.ip === A6.ip)
    assert.ok(d !== undefined)
    assert.equal(encodeLeaseAttrs(d.attrs), encodeLeaseAttrs(attrs(1)))
    assert.ok(!('subnet6' in (list.leases.find((l) => leaseKey(l) === '10.244.2.0-24') as object)), 'an IPv4 lease has no subnet6')
  })

  it('two IPv6-only leases (same 0.0.0.0/0 IPv4 half) are different leases; the same key twice is EEXIST', async (s) => {
    await s.createLease(NONE, attrs(1), 600, A6)
    await s.createLease(NONE, attrs(2), 600, B6)
    await assert.rejects(s.createLease(NONE, attrs(3), 600, A6), isEexist)
    // the same IPv6 subnet under a dual-stack key: refused where the store checks both halves
    if (h.refusesSameSubnetOtherKey) await assert.rejects(s.createLease(V4, attrs(3), 600, A6), isEexist)
    assert.equal((await s.listLeases()).leases.filter((l) => l.subnet6?.ip === B6.ip).length, 1)
  })

  it('a race for the same IPv4 subnet with different IPv6 ones: the embedded stores let one in', async (s) => {
    const results = await Promise.allSettled([s.createLease(V4, attrs(1), 600, A6), s.createLease(V4, attrs(2), 600, B6), s.createLease(V4, attrs(3), 600)])
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
    assert.ok(results.every((r) => r.status === 'fulfilled' || isEexist(r.reason)))
    // and the other way round: the same IPv6 subnet with different IPv4 ones
    const again = await Promise.allSettled([s.createLease(V4B, attrs(4), 600, C6), s.createLease(parseCidr('10.244.3.0/24'), attrs(5), 600, C6), s.createLease(NONE, attrs(6), 600, C6)])
    assert.equal(again.filter((r) => r.status === 'fulfilled').length, 1)
    assert.equal((await s.listLeases()).leases.length, 2)
  }, h.refusesSameSubnetOtherKey ? undefined : 'etcd compares one key per transaction, as flannel: the lease manager\'s twin check after its create settles such a race (test/lease/race-etcd)')

  it('renews by the whole key (ENOENT for the IPv4 half alone), deletes by it, idempotently', async (s) => {
    const l = await s.createLease(V4, attrs(1), 60, A6)
    const r = await s.renewLease(V4, { ...attrs(1), publicIPv6: '2001:2::99' }, 7200, A6)
    assert.ok(r.revision > l.revision)
    assert.deepEqual(r.subnet6, A6)
    await assert.rejects(s.renewLease(V4, attrs(1), 60), (e: unknown) => e instanceof StoreError && e.code === 'ENOENT')
    assert.equal((await s.listLeases()).leases[0].attrs.publicIPv6, '2001:2::99')
    await s.deleteLease(V4) // another key: nothing happens
    assert.equal((await s.listLeases()).leases.length, 1)
    await s.deleteLease(V4, A6)
    await s.deleteLease(V4, A6)
    assert.equal((await s.listLeases()).leases.length, 0)
  })

  it('keeps an IPv6-only reservation (TTL 0) a reservation across renewal', async (s) => {
    assert.equal((await s.createLease(NONE, attrs(1), 0, A6)).expiration, null)
    assert.equal((await s.renewLease(NONE, attrs(1), 0, A6)).expiration, null)
    assert.equal((await s.listLeases()).leases[0].expiration, null)
  })

  it('watches: puts carry subnet6, a delete carries both halves of its key, in order', async (s) => {
    const start = await s.listLeases()
    await s.createLease(V4, attrs(1), 600, A6)
    await s.createLease(NONE, attrs(2), 600, B6)
    await s.deleteLease(NONE, B6)
    await s.deleteLease(V4, A6)
    const events = (await watchUntil(s, start.revision, (all) => all.flatMap((b) => b.events).length >= 4)).flatMap((b) => b.events)
    assert.deepEqual(events.map((e) => e.type), ['put', 'put', 'delete', 'delete'])
    const six = (x: Ip6Net | undefined): string => x === undefined ? '-' : formatCidr6(x)
    assert.deepEqual(events.map((e) => e.type === 'put' ? `${formatCidr(e.lease.subnet)} ${six(e.lease.subnet6)}` : `${formatCidr(e.subnet)} ${six(e.subnet6)}`),
      ['10.244.1.0/24 fc00:0:0:1::/64', '0.0.0.0/0 fc00:0:0:2::/64', '0.0.0.0/0 fc00:0:0:2::/64', '10.244.1.0/24 fc00:0:0:1::/64'])
  })

  it('expires an IPv6-only lease after its TTL and tells watchers which one', async (s) => {
    const start = await s.listLeases()
    await s.createLease(NONE, attrs(1), h.minTtlSeconds, A6)
    await s.createLease(NONE, attrs(2), 0, B6)
    const batches = await watchUntil(s, start.revision, (all) => all.some((b) => b.events.some((e) => e.type === 'delete')), (h.minTtlSeconds + 8) * 1000)
    const del = batches.flatMap((b) => b.events).find((e) => e.type === 'delete')
    assert.ok(del !== undefined && del.type === 'delete')
    assert.deepEqual(del.subnet6, A6)
    assert.deepEqual(names((await s.listLeases()).leases), ['0.0.0.0-0&fc00:0:0:2::-64'])
  })

  it('after a compaction, the snapshot has the dual-stack and IPv6-only leases with subnet6', async (s) => {
    const start = await s.listLeases()
    await s.createLease(V4, attrs(1), 600, A6)
    await s.createLease(NONE, attrs(2), 600, B6)
    await s.createLease(NONE, attrs(3), 600, C6)
    await s.deleteLease(NONE, C6)
    await h.compact(s)
    const snap = (await watchUntil(s, start.revision, (all) => all.some((b) => b.snapshot !== undefined))).find((b) => b.snapshot !== undefined)
    assert.ok(snap?.snapshot !== undefined)
    assert.deepEqual(names(snap.snapshot), ['0.0.0.0-0&fc00:0:0:2::-64', '10.244.1.0-24&fc00:0:0:1::-64'])
  })

  it('skips keys whose IPv6 half does not parse or has host bits, and values with a bad PublicIPv6', async (s) => {
    await s.createLease(V4, attrs(1), 600, A6)
    await h.putRaw(s, '10.244.7.0-24&fc00::zz-64', encodeLeaseAttrs(attrs(7)))
    await h.putRaw(s, '10.244.8.0-24&fc00::1-64', encodeLeaseAttrs(attrs(8)))
    await h.putRaw(s, '10.244.9.0-24&fc00:0:0:9::-64', '{"PublicIP":"198.18.0.9","PublicIPv6":"nope"}')
    const list = await s.listLeases()
    assert.deepEqual(names(list.leases), ['10.244.1.0-24&fc00:0:0:1::-64'])
    assert.deepEqual(list.skipped.map((x) => x.key).sort(), ['10.244.7.0-24&fc00::zz-64', '10.244.8.0-24&fc00::1-64', '10.244.9.0-24&fc00:0:0:9::-64'])
  })
}
