// The embedded store (the default): a SQLite file that several weft processes
// on one host share safely.
//
// 1. every write is one IMMEDIATE transaction: expire what is due, check,
//    write the row, append to the log (which numbers the revision)
// 2. TTLs: whoever writes or lists first after a lease is due deletes it and
//    logs the delete, so every watcher hears of the expiry exactly once
// 3. watches read the log from their revision; they wake on an inotify event
//    on the database directory (another process committed) or after a short
//    poll, so a change reaches them well under a second later
//
// better-sqlite3 is synchronous. Reads never wait under WAL; a write waits at
// most `busyTimeoutMs` for another process's write to finish, which is short
// because every transaction here is a handful of statements.
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { formatCidr, subnetKey } from '../../ip/net'
import type { Ip4Net } from '../../ip/net'
import { encodeLeaseAttrs } from '../../lease/json'
import type { Lease, LeaseAttrs, Skipped } from '../../lease/lease'
import { isSkipped, leaseFromEntry, sleep, subnetFromKey } from '../decode'
import { StoreError, backoffMs } from '../store'
import type { LeaseList, Store, StoreEvent, WatchBatch, WatchOptions } from '../store'
import { LOG_KEEP, SCHEMA, SCHEMA_VERSION } from './schema'

export interface SqliteStoreOptions {
  path: string
  busyTimeoutMs?: number
  /** fallback poll interval for watches (inotify usually wakes them first) */
  pollMs?: number
  now?: () => number
}

interface KvRow { key: string, value: string, expires_at: number | null, mod_rev: number }
interface LogRow { rev: number, key: string, value: string | null, expires_at: number | null }

export const DEFAULT_SQLITE_PATH = '/var/lib/weft/store.db'

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const
  readonly path: string
  private readonly db: Database.Database
  private readonly now: () => number
  private readonly pollMs: number
  private closed = false
  private readonly closeCtl = new AbortController()

  constructor (opts: SqliteStoreOptions) {
    this.path = opts.path
    this.now = opts.now ?? Date.now
    this.pollMs = opts.pollMs ?? 100
    try {
      fs.mkdirSync(path.dirname(opts.path), { recursive: true, mode: 0o755 })
      // Create the file ourselves so it is not world-readable; SQLite gives
      // the -wal and -shm files the same mode.
      fs.closeSync(fs.openSync(opts.path, 'a', 0o600))
      this.db = new Database(opts.path, { timeout: opts.busyTimeoutMs ?? 2000 })
      this.db.pragma('journal_mode = WAL')
      this.db.pragma('synchronous = NORMAL')
      this.db.exec(SCHEMA)
      this.db.prepare('INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)').run('schema', String(SCHEMA_VERSION))
    } catch (err) {
      throw wrap(err, `cannot open the SQLite store ${opts.path}`)
    }
  }

  async getConfig (): Promise<string | undefined> {
    const row = this.run(() => this.db.prepare('SELECT value FROM meta WHERE name = ?').get('config') as { value: string } | undefined)
    return row?.value
  }

  async putConfig (text: string): Promise<void> {
    this.run(() => this.db.prepare('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value').run('config', text))
  }

  async listLeases (): Promise<LeaseList> {
    return this.run(() => {
      this.expireDue()
      const read = this.db.transaction(() => {
        const rows = this.db.prepare('SELECT key, value, expires_at, mod_rev FROM kv ORDER BY key').all() as KvRow[]
        return { rows, revision: this.revision() }
      })
      const { rows, revision } = read.deferred()
      const leases: Lease[] = []
      const skipped: Skipped[] = []
      for (const r of rows) {
        const l = leaseFromEntry(r.key, r.value, r.expires_at, r.mod_rev)
        if (isSkipped(l)) skipped.push(l)
        else leases.push(l)
      }
      return { leases, revision, skipped }
    })
  }

  async createLease (subnet: Ip4Net, attrs: LeaseAttrs, ttlSeconds: number): Promise<Lease> {
    const key = subnetKey(subnet)
    return this.write(() => {
      if (this.db.prepare('SELECT 1 FROM kv WHERE key = ?').get(key) !== undefined) {
        throw new StoreError('EEXIST', `subnet ${formatCidr(subnet)} is already leased`)
      }
      return this.put(key, subnet, attrs, ttlSeconds)
    })
  }

  async renewLease (subnet: Ip4Net, attrs: LeaseAttrs, ttlSeconds: number): Promise<Lease> {
    const key = subnetKey(subnet)
    return this.write(() => {
      if (this.db.prepare('SELECT 1 FROM kv WHERE key = ?').get(key) === undefined) {
        throw new StoreError('ENOENT', `lease for ${formatCidr(subnet)} is gone`)
      }
      return this.put(key, subnet, attrs, ttlSeconds)
    })
  }

  async deleteLease (subnet: Ip4Net): Promise<void> {
    const key = subnetKey(subnet)
    this.write(() => {
      if (this.db.prepare('DELETE FROM kv WHERE key = ?').run(key).changes > 0) this.log(key, null, null)
    })
  }

  /** Operator/test hook: any key and value, as `etcdctl put` could write them. */
  putRaw (key: string, value: string, ttlSeconds = 0): void {
    this.write(() => {
      const exp = ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 : null
      const rev = this.log(key, value, exp)
      this.db.prepare('INSERT INTO kv (key, value, expires_at, mod_rev) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, mod_rev = excluded.mod_rev').run(key, value, exp, rev)
    })
  }

  /** Trim history up to `revision` (default: all of it), as etcd's compaction does. */
  compact (revision?: number): void {
    this.write(() => this.trim(revision ?? this.revision()))
  }

  async * watchLeases (fromRevision: number, opts: WatchOptions): AsyncIterable<WatchBatch> {
    const signal = AbortSignal.any([opts.signal, this.closeCtl.signal])
    const wake = new Waker(path.dirname(this.path), signal)
    let rev = fromRevision
    let failures = 0
    try {
      while (!signal.aborted) {
        let batch: WatchBatch | undefined
        try {
          batch = this.readChanges(rev)
          if (failures > 0) { failures = 0; opts.onRecover?.() }
        } catch (err) {
          opts.onError?.(wrap(err, 'watching the SQLite store'))
          await sleep(backoffMs(failures++), signal)
          continue
        }
        if (batch !== undefined) {
          rev = batch.revision
          yield batch
          continue
        }
        await wake.next(this.pollMs)
      }
    } finally {
      wake.close()
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.closeCtl.abort()
    this.db.close()
  }

  // -- internals -------------------------------------------------------------

  private readChanges (from: number): WatchBatch | undefined {
    this.expireDue()
    const compacted = Number((this.db.prepare('SELECT value FROM meta WHERE name = ?').get('compacted') as { value: string } | undefined)?.value ?? 0)
    if (from < compacted) {
      const { rows, revision } = this.db.transaction(() => ({
        rows: this.db.prepare('SELECT key, value, expires_at, mod_rev FROM kv ORDER BY key').all() as KvRow[],
        revision: this.revision()
      })).deferred()
      const snapshot: Lease[] = []
      const skipped: Skipped[] = []
      for (const r of rows) {
        const l = leaseFromEntry(r.key, r.value, r.expires_at, r.mod_rev)
        if (isSkipped(l)) skipped.push(l)
        else snapshot.push(l)
      }
      return { events: [], snapshot, revision, skipped }
    }
    const rows = this.db.prepare('SELECT rev, key, value, expires_at FROM log WHERE rev > ? ORDER BY rev LIMIT 1000').all(from) as LogRow[]
    if (rows.length === 0) return undefined
    const events: StoreEvent[] = []
    const skipped: Skipped[] = []
    for (const r of rows) {
      if (r.value === null) {
        const subnet = subnetFromKey(r.key)
        if (subnet !== undefined) events.push({ type: 'delete', subnet, revision: r.rev })
        else skipped.push({ key: r.key, reason: 'key does not parse as a subnet' })
      } else {
        const l = leaseFromEntry(r.key, r.value, r.expires_at, r.rev)
        if (isSkipped(l)) skipped.push(l)
        else events.push({ type: 'put', lease: l })
      }
    }
    return { events, revision: rows[rows.length - 1].rev, skipped }
  }

  private put (key: string, subnet: Ip4Net, attrs: LeaseAttrs, ttlSeconds: number): Lease {
    const value = encodeLeaseAttrs(attrs)
    const exp = ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 : null
    const rev = this.log(key, value, exp)
    this.db.prepare('INSERT INTO kv (key, value, expires_at, mod_rev) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, mod_rev = excluded.mod_rev').run(key, value, exp, rev)
    return { subnet, attrs, expiration: exp, revision: rev }
  }

  private log (key: string, value: string | null, exp: number | null): number {
    const rev = Number(this.db.prepare('INSERT INTO log (key, value, expires_at) VALUES (?, ?, ?)').run(key, value, exp).lastInsertRowid)
    if (rev % 1000 === 0) this.trim(rev - LOG_KEEP)
    return rev
  }

  private trim (upTo: number): void {
    if (upTo <= 0) return
    this.db.prepare('DELETE FROM log WHERE rev <= ?').run(upTo)
    this.db.prepare("INSERT INTO meta (name, value) VALUES ('compacted', ?) ON CONFLICT(name) DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))").run(String(upTo))
  }

  private revision (): number {
    const row = this.db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'log'").get() as { seq: number } | undefined
    return row?.seq ?? 0
  }

  /** Delete leases that are due (checked with a cheap read first, so idle lists do not write). */
  private expireDue (): void {
    const now = this.now()
    if (this.db.prepare('SELECT 1 FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 1').get(now) === undefined) return
    this.db.transaction(() => {
      const due = this.db.prepare('SELECT key FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?').all(now) as Array<{ key: string }>
      for (const { key } of due) {
        this.db.prepare('DELETE FROM kv WHERE key = ?').run(key)
        this.log(key, null, null)
      }
    }).immediate()
  }

  private write<T> (fn: () => T): T {
    return this.run(() => this.db.transaction(() => {
      this.expireDueInTx()
      return fn()
    }).immediate())
  }

  private expireDueInTx (): void {
    const due = this.db.prepare('SELECT key FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?').all(this.now()) as Array<{ key: string }>
    for (const { key } of due) {
      this.db.prepare('DELETE FROM kv WHERE key = ?').run(key)
      this.log(key, null, null)
    }
  }

  private run<T> (fn: () => T): T {
    if (this.closed) throw new StoreError('EUNAVAILABLE', 'the SQLite store is closed')
    try {
      return fn()
    } catch (err) {
      if (err instanceof StoreError) throw err
      throw wrap(err, `SQLite store ${this.path}`)
    }
  }
}

function wrap (err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err
  const code = (err as { code?: string }).code ?? ''
  const msg = `${what}: ${(err as Error).message ?? String(err)}${code !== '' ? ` (${code})` : ''}`
  return new StoreError(/BUSY|LOCKED|CANTOPEN|IOERR|READONLY|ENOENT|EACCES|NOTADB|CORRUPT/.test(code) ? 'EUNAVAILABLE' : 'ESTORE', msg, { cause: err })
}

/**
 * Wakes a watcher when anything in the database's directory changes (another
 * process committed to the WAL) or after `pollMs`, whichever is first.
 * inotify is only a hint: the poll alone is correct, just slower.
 */
class Waker {
  private watcher: fs.FSWatcher | undefined
  private pending: (() => void) | undefined
  private dirty = false

  constructor (dir: string, private readonly signal: AbortSignal) {
    try {
      this.watcher = fs.watch(dir, { persistent: false }, () => this.fire())
      this.watcher.on('error', () => { this.watcher?.close(); this.watcher = undefined })
    } catch { this.watcher = undefined }
    signal.addEventListener('abort', this.fire, { once: true })
  }

  private readonly fire = (): void => {
    this.dirty = true
    const p = this.pending
    this.pending = undefined
    p?.()
  }

  next (pollMs: number): Promise<void> {
    if (this.dirty || this.signal.aborted) { this.dirty = false; return Promise.resolve() }
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.pending = undefined; resolve() }, pollMs)
      this.pending = () => { clearTimeout(t); this.dirty = false; resolve() }
    })
  }

  close (): void {
    this.watcher?.close()
    this.signal.removeEventListener('abort', this.fire)
    this.pending?.()
  }
}
