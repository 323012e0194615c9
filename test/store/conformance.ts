// One behaviour, three stores: every Store implementation runs this suite
// (test/store/*.test.ts), so memory, SQLite and etcd agree on what create,
// renew, delete, TTLs, reservations, watches and compaction mean.
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { parseCidr } from '../../src/packet/net'
import { encodeLeaseAttrs } from '../../src/subnet/lease-json'
import type { LeaseAttrs } from '../../src/subnet/lease'
import { parseIp4 } from '../../src/packet/ip'
import { StoreError } from '../../src/store/store'
import type { Store, WatchBatch } from '../../src/store/store'

export interface StoreHarness {
  /** A fresh, empty store. */
  open (): Promise<Store>
  /** Another client of the same store (another connection), for cross-client watches. */
  openPeer (first: Store): Promise<Store>
  /** Write any key (relative to the subnets prefix) and value, as an operator with etcdctl could. */
  putRaw (store: Store, key: string, value: string): Promise<void>
  /** Compact history up to the current revision. */
  compact (store: Store): Promise<void>
  /** Shortest TTL the store honours, in seconds. */
  minTtlSeconds: number
}

const attrs = (ip: string, mac = 'aa:bb:cc:dd:ee:01'): LeaseAttrs => ({
  publicIP: parseIp4(ip), publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac }
})

const S1 = parseCidr('10.244.1.0/24')
const S2 = parseCidr('10.244.2.0/24')

/** Collect watch batches until `until` says stop (bounded by timeoutMs). */
export async function watchUntil (store: Store, from: number, until: (all: WatchBatch[]) => boolean, timeoutMs = 8000): Promise<WatchBatch[]> {
  const ac = new AbortController()
  const timer = setTimeout(() => ac.abort(), timeoutMs) // a bound: the watch ends as soon as `until` holds
  const seen: WatchBatch[] = []
  try {
    for await (const b of store.watchLeases(from, { signal: ac.signal })) {
      seen.push(b)
      if (until(seen)) break
    }
  } finally {
    clearTimeout(timer)
    ac.abort()
  }
  return seen
}

/** Run fn on a fresh store, closed after the test. */
export async function withStore (h: StoreHarness, t: TestContext, fn: (s: Store) => Promise<void>): Promise<void> {
  const s = await h.open()
  t.after(() => s.close())
  await fn(s)
}

export function storeConformance (name: string, h: StoreHarness, skip?: string): void {
  const it = (title: string, fn: (s: Store, t: TestContext) => Promise<void>): void => {
    test(`${name}: ${title}`, { skip }, async (t) => { await withStore(h, t, (s) => fn(s, t)) })
  }

  it('has no config until one is put, then returns it verbatim', async (s) => {
    assert.equal(await s.getConfig(), undefined)
    const text = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
    await s.putConfig(text)
    assert.equal(await s.getConfig(), text)
  })

  it('creates a lease only if the subnet is free', async (s) => {
    const before = await s.listLeases()
    const l = await s.createLease(S1, attrs('198.18.0.1'), 3600)
    assert.ok(l.revision > before.revision)
    assert.ok(l.expiration !== null && Math.abs(l.expiration - (Date.now() + 3600_000)) < 5000)
    await assert.rejects(s.createLease(S1, attrs('198.18.0.2'), 3600), (e: unknown) => e instanceof StoreError && e.code === 'EEXIST')
    const list = await s.listLeases()
    assert.equal(list.leases.length, 1)
    assert.deepEqual(list.leases[0].subnet, S1)
    assert.equal(encodeLeaseAttrs(list.leases[0].attrs), encodeLeaseAttrs(attrs('198.18.0.1')))
    assert.ok(list.revision >= l.revision)
  })

  it('renews a lease with new attributes and a fresh TTL, but not one that is gone', async (s) => {
    const l = await s.createLease(S1, attrs('198.18.0.1'), 60)
    const r = await s.renewLease(S1, attrs('198.18.0.1', 'aa:bb:cc:dd:ee:02'), 7200)
    assert.ok(r.revision > l.revision)
    assert.ok(r.expiration !== null && l.expiration !== null && r.expiration > l.expiration + 3000_000)
    const list = await s.listLeases()
    assert.deepEqual(list.leases[0].attrs.backendData, { VNI: 1, VtepMAC: 'aa:bb:cc:dd:ee:02' })
    await assert.rejects(s.renewLease(S2, attrs('198.18.0.2'), 60), (e: unknown) => e instanceof StoreError && e.code === 'ENOENT')
  })

  it('deletes idempotently', async (s) => {
    await s.createLease(S1, attrs('198.18.0.1'), 60)
    await s.deleteLease(S1)
    await s.deleteLease(S1)
    assert.equal((await s.listLeases()).leases.length, 0)
  })

  it('keeps a reservation (TTL 0) with no expiration, also across renewal', async (s) => {
    const l = await s.createLease(S1, attrs('198.18.0.1'), 0)
    assert.equal(l.expiration, null)
    const r = await s.renewLease(S1, attrs('198.18.0.1'), 0)
    assert.equal(r.expiration, null)
    const list = await s.listLeases()
    assert.equal(list.leases[0].expiration, null)
  })

  it('expires a lease after its TTL and tells watchers', async (s) => {
    const start = await s.listLeases()
    await s.createLease(S1, attrs('198.18.0.1'), h.minTtlSeconds)
    await s.createLease(S2, attrs('198.18.0.2'), 0)
    const batches = await watchUntil(s, start.revision, (all) => all.some((b) => b.events.some((e) => e.type === 'delete')), (h.minTtlSeconds + 8) * 1000)
    const del = batches.flatMap((b) => b.events).find((e) => e.type === 'delete')
    assert.ok(del !== undefined && del.type === 'delete', 'a delete event arrived')
    assert.deepEqual(del.subnet, S1)
    const list = await s.listLeases()
    assert.deepEqual(list.leases.map((l) => l.subnet), [S2], 'the reservation stays')
  })

  it('watches from a revision: every later change, in order, with increasing revisions', async (s) => {
    const start = await s.listLeases()
    await s.createLease(S1, attrs('198.18.0.1'), 600)
    await s.createLease(S2, attrs('198.18.0.2'), 600)
    await s.renewLease(S1, attrs('198.18.0.1', 'aa:bb:cc:dd:ee:09'), 600)
    await s.deleteLease(S2)
    const batches = await watchUntil(s, start.revision, (all) => all.flatMap((b) => b.events).length >= 4)
    const events = batches.flatMap((b) => b.events)
    assert.deepEqual(events.map((e) => e.type), ['put', 'put', 'put', 'delete'])
    const revs = events.map((e) => (e.type === 'put' ? e.lease.revision : e.revision))
    assert.deepEqual([...revs].sort((a, b) => a - b), revs)
    assert.equal(new Set(revs).size, revs.length)
    const third = events[2]
    assert.ok(third.type === 'put')
    assert.deepEqual(third.lease.attrs.backendData, { VNI: 1, VtepMAC: 'aa:bb:cc:dd:ee:09' })
  })

  it('delivers a change made through another client promptly', async (s) => {
    const peer = await h.openPeer(s)
    try {
      const start = await s.listLeases()
      const watching = watchUntil(s, start.revision, (all) => all.some((b) => b.events.length > 0), 5000)
      const t0 = Date.now()
      await peer.createLease(S1, attrs('198.18.0.7'), 600)
      const batches = await watching
      assert.ok(batches.some((b) => b.events.some((e) => e.type === 'put')), 'the put arrived')
      assert.ok(Date.now() - t0 < 2000, 'within two seconds (latency is measured in bench/, not here)')
    } finally { await peer.close() }
  })

  it('after a compaction, a watch from an old revision gets a fresh snapshot and carries on', async (s) => {
    const start = await s.listLeases()
    await s.createLease(S1, attrs('198.18.0.1'), 600)
    await s.createLease(S2, attrs('198.18.0.2'), 600)
    await s.deleteLease(S1)
    await h.compact(s)
    const batches = await watchUntil(s, start.revision, (all) => all.some((b) => b.snapshot !== undefined))
    const snap = batches.find((b) => b.snapshot !== undefined)
    assert.ok(snap?.snapshot !== undefined)
    assert.deepEqual(snap.snapshot.map((l) => l.subnet), [S2])
  })

  it('skips values that are not leases and keys that do not parse, naming them, and keeps the rest', async (s) => {
    await s.createLease(S1, attrs('198.18.0.1'), 600)
    await h.putRaw(s, '10.244.9.0-24', 'this is not json')
    await h.putRaw(s, 'not-a-subnet', encodeLeaseAttrs(attrs('198.18.0.9')))
    const list = await s.listLeases()
    assert.deepEqual(list.leases.map((l) => l.subnet), [S1])
    assert.deepEqual(list.skipped.map((x) => x.key).sort(), ['10.244.9.0-24', 'not-a-subnet'])
    assert.match(list.skipped.find((x) => x.key === '10.244.9.0-24')?.reason ?? '', /not JSON/)
  })
}
