// Lease races between separate processes sharing one SQLite file, as several
// weft daemons on one host do.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'

const ACQUIRE = path.join(__dirname, '..', 'fixtures', 'acquire.js')

function race (db: string, n: number, network: string, subnetLen: number): Promise<Array<{ lease?: string, error?: string, message?: string }>> {
  const startAt = Date.now() + 2500 // every process is up by then
  return Promise.all(Array.from({ length: n }, (_, i) => new Promise<{ lease?: string, error?: string }>((resolve, reject) => {
    execFile(process.execPath, [ACQUIRE, '--db', db, '--ip', `198.18.${1 + (i >> 8)}.${i & 255}`, '--network', network,
      '--subnet-len', String(subnetLen), '--start-at', String(startAt)], { timeout: 60_000 }, (err, stdout) => {
      if (err !== null) { reject(err); return }
      resolve(JSON.parse(stdout.trim()) as { lease?: string, error?: string })
    })
  })))
}

test('50 processes acquiring at once on one SQLite file all get distinct subnets, and the store holds exactly those', { timeout: 90_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-race-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const db = path.join(dir, 'store.db')
  const results = await race(db, 50, '10.244.0.0/16', 24)
  const errors = results.filter((r) => r.error !== undefined)
  assert.deepEqual(errors, [])
  const subnets = results.map((r) => r.lease)
  assert.equal(new Set(subnets).size, 50)
  const store = new SqliteStore({ path: db })
  try {
    const list = await store.listLeases()
    assert.deepEqual(list.leases.map((l) => `${l.subnet.ip}`).length, 50)
  } finally { await store.close() }
})

test('a full network: the first takers get the subnets, the rest a clear "out of subnets" error, nobody hangs', { timeout: 90_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-race-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  // 10.9.0.0/25 with /28 subnets: SubnetMin skips the first, so 7 subnets for 10 nodes
  const results = await race(path.join(dir, 'store.db'), 10, '10.9.0.0/25', 28)
  const got = results.filter((r) => r.lease !== undefined)
  const refused = results.filter((r) => r.error !== undefined)
  assert.equal(got.length, 7)
  assert.equal(new Set(got.map((r) => r.lease)).size, 7)
  assert.equal(refused.length, 3)
  for (const r of refused) {
    assert.equal(r.error, 'EOUTOFSUBNETS')
    assert.match(r.message ?? '', /out of subnets/)
  }
})
