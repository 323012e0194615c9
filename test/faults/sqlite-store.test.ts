// The SQLite store's fault handling on real files, in one process: a lock
// held by another connection is waited out without blocking the event loop
// (the dataplane runs on it) and reported by watches; a file deleted or a
// directory moved under open stores is recreated once, without adopting the
// old file's journals, and watches hand over a "recreated" snapshot that
// lease managers answer by putting their own leases back.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { formatCidr, parseCidr } from '../../src/packet/net'
import type { SubnetRange } from '../../src/lease/allocate'
import type { LeaseAttrs } from '../../src/subnet/lease'
import { LeaseManager } from '../../src/lease/manager'
import type { PeerEvent } from '../../src/lease/watcher'
import { parseIp4 } from '../../src/packet/ip'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import type { StoreError, WatchBatch } from '../../src/store/store'
import { waitFor } from '../../lab/netns'
import { captureLogger } from '../helpers/log'
import { tmpDir } from './helpers'

const RANGE: SubnetRange = { network: parseCidr('10.244.0.0/16'), subnetLen: 24, subnetMin: parseIp4('10.244.1.0'), subnetMax: parseIp4('10.244.255.0') }
const attrs = (ip: string): LeaseAttrs => ({ publicIP: parseIp4(ip), publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: 'aa:bb:cc:00:00:01' } })

/** The longest the event loop went without running a 5 ms timer, while `fn` runs. */
async function worstLag<T> (fn: () => Promise<T>): Promise<{ value: T | Error, lagMs: number }> {
  let last = Date.now()
  let worst = 0
  const timer = setInterval(() => { const now = Date.now(); worst = Math.max(worst, now - last); last = now }, 5)
  try {
    return { value: await fn().catch((err: Error) => err), lagMs: worst }
  } finally {
    clearInterval(timer)
  }
}

/** Collects a store watch's batches and its error/recover calls until the returned stop() is called. */
function watch (s: SqliteStore, from = 0): { batches: WatchBatch[], errors: StoreError[], recovered: () => number, stop: () => Promise<void> } {
  const ac = new AbortController()
  const batches: WatchBatch[] = []
  const errors: StoreError[] = []
  let recovered = 0
  const done = (async () => {
    for await (const b of s.watchLeases(from, { signal: ac.signal, onError: (e) => errors.push(e), onRecover: () => { recovered++ } })) batches.push(b)
  })()
  return { batches, errors, recovered: () => recovered, stop: async () => { ac.abort(); await done } }
}

test('a write waits out another process\'s lock without blocking the event loop, and fails EUNAVAILABLE naming the lock once the busy timeout has passed', async (t) => {
  const db = path.join(tmpDir(t, 'sqlite-lock'), 'store.db')
  const store = new SqliteStore({ path: db, busyTimeoutMs: 800 })
  const other = new Database(db)
  try {
    other.exec('BEGIN EXCLUSIVE')
    const t0 = Date.now()
    const { value, lagMs } = await worstLag(async () => await store.createLease(parseCidr('10.244.1.0/24'), attrs('198.18.0.1'), 60))
    const waited = Date.now() - t0
    assert.ok(value instanceof Error)
    assert.equal((value as StoreError).code, 'EUNAVAILABLE')
    assert.match(value.message, /the SQLite store \S+store\.db is locked: another process has held it for more than 800 ms/)
    assert.ok(waited >= 800 && waited < 2000, `gave up after ${waited} ms`)
    assert.ok(lagMs < 250, `the event loop was blocked for up to ${lagMs} ms (a synchronous wait would block it for the whole 800)`)
    t.diagnostic(`locked store: gave up after ${waited} ms; the event loop never stalled more than ${lagMs} ms`)
    // reads go on under WAL
    assert.equal((await store.listLeases()).leases.length, 0)
    // a lock shorter than the busy timeout is simply waited out
    setTimeout(() => other.exec('ROLLBACK'), 300) // how long the lock is held: what is tested, not a wait
    const l = await store.createLease(parseCidr('10.244.1.0/24'), attrs('198.18.0.1'), 60)
    assert.equal(formatCidr(l.subnet), '10.244.1.0/24')
  } finally {
    other.close()
    await store.close()
  }
})

test('a watch notices a lock longer than the busy timeout (reads alone would not), reports it, and recovers when it goes', async (t) => {
  const db = path.join(tmpDir(t, 'sqlite-probe'), 'store.db')
  const store = new SqliteStore({ path: db, busyTimeoutMs: 300, probeMs: 100 })
  const other = new Database(db)
  const w = watch(store)
  try {
    other.exec('BEGIN EXCLUSIVE')
    await waitFor(() => w.errors.length > 0, { what: 'the watch reports the lock', timeoutMs: 3000 })
    assert.match(w.errors[0].message, /is locked: another process has held it for more than 300 ms/)
    assert.equal(w.recovered(), 0)
    other.exec('ROLLBACK')
    await waitFor(() => w.recovered() === 1, { what: 'the watch recovers', timeoutMs: 3000 })
  } finally {
    await w.stop()
    other.close()
    await store.close()
  }
})

test('a file deleted under two open stores (its -wal and -shm left behind) is recreated once and empty; both watches hand over a "recreated" snapshot and carry on together', async (t) => {
  const db = path.join(tmpDir(t, 'sqlite-rm'), 'store.db')
  const s1 = new SqliteStore({ path: db })
  const s2 = new SqliteStore({ path: db })
  await s1.putConfig('{"Network":"10.244.0.0/16"}')
  for (let i = 1; i <= 20; i++) await s1.createLease(parseCidr(`10.244.${i}.0/24`), attrs(`198.18.0.${i}`), 600)
  const w1 = watch(s1, (await s1.listLeases()).revision)
  const w2 = watch(s2, (await s2.listLeases()).revision)
  try {
    fs.rmSync(db)
    assert.ok(fs.existsSync(`${db}-wal`), 'the old journal is still there, in use')
    for (const w of [w1, w2]) {
      await waitFor(() => w.batches.some((b) => b.reason === 'recreated'), { what: 'a recreated snapshot', timeoutMs: 3000 })
      assert.deepEqual(w.batches.find((b) => b.reason === 'recreated')?.snapshot, [], 'the new store is empty: the old journal was not adopted')
      assert.equal(w.errors.length, 1, 'the loss is reported once')
      assert.equal(w.recovered(), 1)
    }
    // one created the file; the other found it missing or already replaced, and opened it
    assert.equal([w1, w2].filter((w) => /was removed while in use; created a new, empty one$/.test(w.errors[0].message)).length, 1)
    assert.equal([w1, w2].filter((w) => /opened the one another process recreated$|was replaced by another file while in use/.test(w.errors[0].message)).length, 1)
    assert.equal(await s2.getConfig(), undefined)
    // the two stores share the new file
    await s2.createLease(parseCidr('10.244.99.0/24'), attrs('198.18.0.99'), 600)
    await waitFor(() => w1.batches.some((b) => b.events.some((e) => e.type === 'put' && formatCidr(e.lease.subnet) === '10.244.99.0/24')), { what: 'the other store\'s write', timeoutMs: 2000 })
    assert.equal((await s1.listLeases()).leases.length, 1)
    const check = new Database(db, { readonly: true })
    try { assert.equal(check.pragma('integrity_check', { simple: true }), 'ok') } finally { check.close() }
  } finally {
    await w1.stop()
    await w2.stop()
    await s1.close()
    await s2.close()
  }
})

test('lease managers whose store is recreated empty put their own leases back, keep forwarding to each other, and drop a peer that never comes back once the grace ends', async (t) => {
  const dir = tmpDir(t, 'sqlite-mv')
  const db = path.join(dir, 'db', 'store.db')
  const nodes = ['198.18.0.1', '198.18.0.2'].map((ip) => {
    const store = new SqliteStore({ path: db })
    const logs = captureLogger()
    return { ip, store, logs, m: new LeaseManager({ store, range: RANGE, publicIP: parseIp4(ip), attrs: attrs(ip), log: logs.log, recreatedGraceMs: 500 }), events: [] as PeerEvent[] }
  })
  // a third node that is down: its lease is in the store, nobody will put it back
  await nodes[0].store.createLease(parseCidr('10.244.250.0/24'), attrs('198.18.0.250'), 600)
  const held = []
  for (const n of nodes) held.push(formatCidr((await n.m.acquire()).subnet))
  const ac = new AbortController()
  const running = nodes.map((n) => n.m.run(ac.signal, { onPeers: (ev) => n.events.push(...ev) }))
  try {
    await waitFor(() => nodes.every((n) => n.events.length === 2), { what: 'each sees the other and the down node', timeoutMs: 3000 })
    fs.renameSync(path.dirname(db), `${path.dirname(db)}.moved`)
    await waitFor(async () => (await nodes[0].store.listLeases()).leases.length === 2, { what: 'both leases back', timeoutMs: 3000 })
    assert.deepEqual((await nodes[0].store.listLeases()).leases.map((l) => formatCidr(l.subnet)).sort(), held.sort(), 'the same subnets')
    for (const n of nodes) {
      assert.equal(n.logs.find(/the store was recreated without our lease; putting it back from memory/).length, 1)
      assert.equal(n.events.filter((e) => e.type === 'removed').length, 0, 'no peer removed while leases come back')
    }
    await waitFor(() => nodes.every((n) => n.events.some((e) => e.type === 'removed')), { what: 'the down node dropped after the grace', timeoutMs: 3000 })
    for (const n of nodes) {
      assert.deepEqual(n.events.filter((e) => e.type === 'removed').map((e) => formatCidr(e.lease.subnet)), ['10.244.250.0/24'])
      assert.equal(n.logs.find(/did not come back after the store was recreated/).length, 1)
    }
  } finally {
    ac.abort()
    await Promise.all(running)
    for (const n of nodes) await n.store.close()
  }
})
