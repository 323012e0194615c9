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
// Faults, which a daemon must live through while it keeps forwarding:
// - locked: better-sqlite3 is synchronous, and SQLite's busy handler would
//   block the event loop (and so the dataplane) while another process holds
//   the write lock. So SQLite waits only a few ms; the rest of the busy
//   timeout is waited here, asynchronously, and then the call fails
//   EUNAVAILABLE. Under WAL a lock does not stop reads, so a watch would not
//   notice one: it checks every probeMs that the store takes writes.
// - removed: a file deleted (or its directory moved) under us would go on
//   working for us alone, on an orphan inode. Every call first checks that
//   the path still names the file we opened; if not, it opens the file at
//   the path, creating it empty if there is none (file.ts), and watches hand
//   over a snapshot marked "recreated" so that holders put their leases back.
import Database from 'better-sqlite3'
import { makeSubnetKey } from '../../packet/net'
import type { Ip4Net } from '../../packet/net'
import type { Ip6Net } from '../../packet/net6'
import { encodeLeaseAttrs } from '../../subnet/lease-json'
import { describeSubnets } from '../../subnet/lease'
import type { Lease, LeaseAttrs, Skipped } from '../../subnet/lease'
import { conflictingKey } from '../conflict'
import { deleteFromKey, isSkipped, leaseFromEntry } from '../decode'
import { sleep } from '../../util/sleep'
import { StoreError, backoffMs } from '../store'
import type { LeaseList, SnapshotReason, Store, StoreEvent, WatchBatch, WatchOptions } from '../store'
import { ensureDbFile, fileIdentity } from './file'
import { LOG_KEEP, SCHEMA, SCHEMA_VERSION } from './schema'
import { Waker } from './waker'

export interface SqliteStoreOptions {
  path: string
  /** how long a call waits for another process's lock before failing EUNAVAILABLE (default 2000) */
  busyTimeoutMs?: number
  /** fallback poll interval for watches (inotify usually wakes them first) */
  pollMs?: number
  /** how often a watch checks that the store takes writes (default 2000) */
  probeMs?: number
  now?: () => number
}

interface KvRow { key: string, value: string, expires_at: number | null, mod_rev: number }
interface LogRow { rev: number, key: string, value: string | null, expires_at: number | null }

export const DEFAULT_SQLITE_PATH = '/var/lib/weft/store.db'
/** what SQLite itself may block the event loop for, per attempt */
const SYNC_BUSY_MS = 20

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const
  readonly path: string
  private db!: Database.Database
  /** dev:ino of the file `db` has open */
  private identity: string | undefined
  /** we created the file, and opening it then failed: the retry that opens it must still say so */
  private createdUnopened = false
  /** bumped each time the file is reopened because it was removed or replaced */
  private generation = 0
  private reopenNote = ''
  private readonly now: () => number
  private readonly pollMs: number
  private readonly probeMs: number
  private readonly busyMs: number
  private closed = false
  /** prepared statements of the open connection, by SQL text (cleared when it is reopened) */
  private readonly statements = new Map<string, Database.Statement>()
  private readonly closeCtl = new AbortController()

  constructor (opts: SqliteStoreOptions) {
    this.path = opts.path
    this.now = opts.now ?? Date.now
    this.pollMs = opts.pollMs ?? 100
    this.probeMs = opts.probeMs ?? 2000
    this.busyMs = opts.busyTimeoutMs ?? 2000
    try {
      // at start-up blocking is harmless: let SQLite wait the whole timeout
      this.open(this.busyMs)
    } catch (err) {
      throw wrap(err, `cannot open the SQLite store ${opts.path}`)
    }
  }

  async getConfig (): Promise<string | undefined> {
    const row = await this.attempt(() => this.sql('SELECT value FROM meta WHERE name = ?').get('config') as { value: string } | undefined)
    return row?.value
  }

  async putConfig (text: string): Promise<void> {
    await this.attempt(() => this.sql('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value').run('config', text))
  }

  async listLeases (): Promise<LeaseList> {
    return await this.attempt(() => {
      this.expireDue()
      return this.readAll()
    })
  }

  async createLease (subnet: Ip4Net, attrs: LeaseAttrs, ttlSeconds: number, subnet6?: Ip6Net): Promise<Lease> {
    const key = makeSubnetKey(subnet, subnet6)
    return await this.write(() => {
      // an IPv4-only key: is it taken; a dual-stack or IPv6 one: is either subnet (conflict.ts)
      const taken = this.sql('SELECT 1 FROM kv WHERE key = ?').get(key) !== undefined
        ? key
        : subnet6 !== undefined || this.hasDualKeys() ? conflictingKey(this.keys(), subnet, subnet6) : undefined
      if (taken !== undefined) {
        throw new StoreError('EEXIST', `subnet ${describeSubnets(subnet, subnet6)} is already leased (key ${taken})`)
      }
      return this.put(key, subnet, subnet6, attrs, ttlSeconds)
    })
  }

  async renewLease (subnet: Ip4Net, attrs: LeaseAttrs, ttlSeconds: number, subnet6?: Ip6Net): Promise<Lease> {
    const key = makeSubnetKey(subnet, subnet6)
    return await this.write(() => {
      if (this.sql('SELECT 1 FROM kv WHERE key = ?').get(key) === undefined) {
        throw new StoreError('ENOENT', `lease for ${describeSubnets(subnet, subnet6)} is gone`)
      }
      return this.put(key, subnet, subnet6, attrs, ttlSeconds)
    })
  }

  async deleteLease (subnet: Ip4Net, subnet6?: Ip6Net): Promise<void> {
    const key = makeSubnetKey(subnet, subnet6)
    await this.write(() => {
      if (this.sql('DELETE FROM kv WHERE key = ?').run(key).changes > 0) this.log(key, null, null)
    })
  }

  /** Operator/test hook: any key and value, as `etcdctl put` could write them. */
  putRaw (key: string, value: string, ttlSeconds = 0): void {
    this.writeSync(() => {
      const exp = ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 : null
      const rev = this.log(key, value, exp)
      this.sql('INSERT INTO kv (key, value, expires_at, mod_rev) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, mod_rev = excluded.mod_rev').run(key, value, exp, rev)
    })
  }

  /** Trim history up to `revision` (default: all of it), as etcd's compaction does. */
  compact (revision?: number): void {
    this.writeSync(() => this.trim(revision ?? this.revision()))
  }

  async * watchLeases (fromRevision: number, opts: WatchOptions): AsyncIterable<WatchBatch> {
    const signal = AbortSignal.any([opts.signal, this.closeCtl.signal])
    let wake = new Waker(this.path, signal)
    let rev = fromRevision
    let gen = this.generation
    let failures = 0
    let probeDue = Date.now() + this.probeMs
    try {
      while (!signal.aborted) {
        let batch: WatchBatch | undefined
        try {
          if (Date.now() >= probeDue) {
            await this.attempt(() => this.db.transaction(() => undefined).immediate())
            probeDue = Date.now() + this.probeMs
          }
          // one synchronous step after the file check, so that a reopen
          // cannot slip between deciding what to read and reading it
          let readGen = gen
          batch = await this.attempt(() => {
            readGen = this.generation
            if (readGen === gen) return this.readChanges(rev)
            this.expireDue()
            return this.snapshot('recreated')
          })
          if (readGen !== gen) {
            // the store we knew is gone: an outage, if a short one
            gen = readGen
            failures++
            opts.onError?.(new StoreError('EUNAVAILABLE', this.reopenNote))
            wake.close()
            wake = new Waker(this.path, signal)
          }
          if (failures > 0) { failures = 0; opts.onRecover?.() }
        } catch (err) {
          if (signal.aborted) return
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

  /**
   * Opens the file at the path (creating it if missing) and makes it the one
   * we use; the previous connection, if any, is closed. Returns whether this
   * call created the file.
   */
  private open (busyMs: number): boolean {
    if (ensureDbFile(this.path)) this.createdUnopened = true
    const db = new Database(this.path, { timeout: busyMs })
    try {
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = NORMAL')
      // only write when something is missing: an existing store may be
      // locked by another process right now, and reading it still works
      if (db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get() === undefined) db.exec(SCHEMA)
      if (db.prepare("SELECT 1 FROM meta WHERE name = 'schema'").get() === undefined) {
        db.prepare('INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)').run('schema', String(SCHEMA_VERSION))
      }
      db.pragma(`busy_timeout = ${SYNC_BUSY_MS}`)
    } catch (err) {
      db.close()
      throw err
    }
    const old = this.db as Database.Database | undefined
    this.db = db
    this.statements.clear()
    this.identity = fileIdentity(this.path)
    try { old?.close() } catch { /* its file is gone; nothing to flush */ }
    const created = this.createdUnopened
    this.createdUnopened = false
    return created
  }

  /**
   * The statement for `text` on the open connection, prepared once: the
   * watch loop runs its queries ten times a second, and parsing them each
   * time was garbage for V8 to collect in the dataplane's thread (an idle
   * daemon's heap grew about 160 KB/s before, 70 KB/s after).
   */
  private sql (text: string): Database.Statement {
    let st = this.statements.get(text)
    if (st === undefined) {
      st = this.db.prepare(text)
      this.statements.set(text, st)
    }
    return st
  }

  /** Reopens if the path no longer names the file we have open. */
  private ensureFile (): void {
    const now = fileIdentity(this.path)
    if (now === this.identity) return
    const created = this.open(SYNC_BUSY_MS)
    this.generation++
    // created: by this call, or by an earlier one whose open failed after creating (the file then exists when this one looks)
    this.reopenNote = created || now === undefined
      ? `the SQLite store ${this.path} was removed while in use; ${created ? 'created a new, empty one' : 'opened the one another process recreated'}`
      : `the SQLite store ${this.path} was replaced by another file while in use (recreated by another process?); opened the new one`
  }

  private readAll (): { rows: KvRow[], revision: number } & LeaseList {
    const { rows, revision } = this.db.transaction(() => ({
      rows: this.sql('SELECT key, value, expires_at, mod_rev FROM kv ORDER BY key').all() as KvRow[],
      revision: this.revision()
    })).deferred()
    const leases: Lease[] = []
    const skipped: Skipped[] = []
    for (const r of rows) {
      const l = leaseFromEntry(r.key, r.value, r.expires_at, r.mod_rev)
      if (isSkipped(l)) skipped.push(l)
      else leases.push(l)
    }
    return { rows, leases, revision, skipped }
  }

  private snapshot (reason: SnapshotReason): WatchBatch {
    const { leases, revision, skipped } = this.readAll()
    return { events: [], snapshot: leases, reason, revision, skipped }
  }

  private readChanges (from: number): WatchBatch | undefined {
    this.expireDue()
    const compacted = Number((this.sql('SELECT value FROM meta WHERE name = ?').get('compacted') as { value: string } | undefined)?.value ?? 0)
    if (from < compacted) return this.snapshot('compacted')
    const rows = this.sql('SELECT rev, key, value, expires_at FROM log WHERE rev > ? ORDER BY rev LIMIT 1000').all(from) as LogRow[]
    if (rows.length === 0) return undefined
    const events: StoreEvent[] = []
    const skipped: Skipped[] = []
    for (const r of rows) {
      if (r.value === null) {
        const d = deleteFromKey(r.key, r.rev)
        if (isSkipped(d)) skipped.push(d)
        else events.push(d)
      } else {
        const l = leaseFromEntry(r.key, r.value, r.expires_at, r.rev)
        if (isSkipped(l)) skipped.push(l)
        else events.push({ type: 'put', lease: l })
      }
    }
    return { events, revision: rows[rows.length - 1].rev, skipped }
  }

  /** Every key held (for the dual-stack conflict check, inside a write's transaction). */
  private keys (): string[] {
    return (this.sql('SELECT key FROM kv').all() as Array<{ key: string }>).map((r) => r.key)
  }

  /** Does any key name an IPv6 subnet? (An IPv4-only store needs no scan.) */
  private hasDualKeys (): boolean {
    return this.sql("SELECT 1 FROM kv WHERE key LIKE '%&%' LIMIT 1").get() !== undefined
  }

  private put (key: string, subnet: Ip4Net, subnet6: Ip6Net | undefined, attrs: LeaseAttrs, ttlSeconds: number): Lease {
    const value = encodeLeaseAttrs(attrs)
    const exp = ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 : null
    const rev = this.log(key, value, exp)
    this.sql('INSERT INTO kv (key, value, expires_at, mod_rev) VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at, mod_rev = excluded.mod_rev').run(key, value, exp, rev)
    return { subnet, ...(subnet6 !== undefined ? { subnet6 } : {}), attrs, expiration: exp, revision: rev }
  }

  private log (key: string, value: string | null, exp: number | null): number {
    const rev = Number(this.sql('INSERT INTO log (key, value, expires_at) VALUES (?, ?, ?)').run(key, value, exp).lastInsertRowid)
    if (rev % 1000 === 0) this.trim(rev - LOG_KEEP)
    return rev
  }

  private trim (upTo: number): void {
    if (upTo <= 0) return
    this.sql('DELETE FROM log WHERE rev <= ?').run(upTo)
    this.sql("INSERT INTO meta (name, value) VALUES ('compacted', ?) ON CONFLICT(name) DO UPDATE SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))").run(String(upTo))
  }

  private revision (): number {
    const row = this.sql("SELECT seq FROM sqlite_sequence WHERE name = 'log'").get() as { seq: number } | undefined
    return row?.seq ?? 0
  }

  /** Delete leases that are due (checked with a cheap read first, so idle lists do not write). */
  private expireDue (): void {
    const now = this.now()
    if (this.sql('SELECT 1 FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT 1').get(now) === undefined) return
    this.db.transaction(() => this.expireDueInTx()).immediate()
  }

  private expireDueInTx (): void {
    const due = this.sql('SELECT key FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?').all(this.now()) as Array<{ key: string }>
    for (const { key } of due) {
      this.sql('DELETE FROM kv WHERE key = ?').run(key)
      this.log(key, null, null)
    }
  }

  private async write<T> (fn: () => T): Promise<T> {
    return await this.attempt(() => this.db.transaction(() => {
      this.expireDueInTx()
      return fn()
    }).immediate())
  }

  /** The test hooks' writes: synchronous, so SQLite itself waits out a lock. */
  private writeSync<T> (fn: () => T): T {
    return this.run(() => {
      this.ensureFile()
      this.db.pragma(`busy_timeout = ${this.busyMs}`)
      try {
        return this.db.transaction(() => {
          this.expireDueInTx()
          return fn()
        }).immediate()
      } finally {
        this.db.pragma(`busy_timeout = ${SYNC_BUSY_MS}`)
      }
    })
  }

  /**
   * Runs fn on the file the path names now; while another process holds a
   * lock, tries again (pausing, not blocking) until the busy timeout.
   */
  private async attempt<T> (fn: () => T): Promise<T> {
    const deadline = Date.now() + this.busyMs
    for (let i = 0; ; i++) {
      try {
        return this.run(() => {
          this.ensureFile()
          return fn()
        })
      } catch (err) {
        // the file went away in the instant between the check and the call
        // (SQLite then says SQLITE_IOERR_FSTAT): check again, which reopens
        if (!isBusy(err) && i < 2 && fileIdentity(this.path) !== this.identity) continue
        if (!isBusy(err)) throw err
        const left = deadline - Date.now()
        if (left <= 0 || this.closed) {
          throw new StoreError('EUNAVAILABLE', `the SQLite store ${this.path} is locked: another process has held it for more than ${this.busyMs} ms`, { cause: err })
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(left, Math.round((2 + Math.random() * 3) * 2 ** Math.min(i, 5)))))
      }
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

/** SQLite's "someone else holds the lock" (SQLITE_BUSY, SQLITE_BUSY_SNAPSHOT, SQLITE_LOCKED...). */
function isBusy (err: unknown): boolean {
  const cause = err instanceof StoreError ? err.cause : err
  return /^SQLITE_(BUSY|LOCKED)/.test(String((cause as { code?: unknown } | undefined)?.code ?? ''))
}

function wrap (err: unknown, what: string): StoreError {
  if (err instanceof StoreError) return err
  const code = (err as { code?: string }).code ?? ''
  const msg = `${what}: ${(err as Error).message ?? String(err)}${code !== '' ? ` (${code})` : ''}`
  return new StoreError(/BUSY|LOCKED|CANTOPEN|IOERR|READONLY|ENOENT|EACCES|NOTADB|CORRUPT/.test(code) ? 'EUNAVAILABLE' : 'ESTORE', msg, { cause: err })
}
