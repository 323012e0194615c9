// The database file itself: which file a path names right now, and creating
// it safely when it is missing.
//
// Why creating needs care: when the file is deleted while processes have it
// open, its -wal and -shm stay behind under their names, still in use by
// those processes through their open descriptors. A new database created at
// the path would adopt them: it would read the old database's pages from the
// old WAL and share the old processes' wal-index, and a write by a process
// that has not noticed yet would corrupt it. So the journals of a missing
// file are removed before the new file is made (their users keep them
// through their descriptors), under a lock so that two processes recreating
// at once cannot remove the journals the other has just created.
//
// Closing a connection to a removed file is safe: SQLite checks that the
// database has not moved before its last close checkpoints and deletes
// "<path>-wal" by name, and skips both when it has.
import fs from 'node:fs'
import path from 'node:path'
import { StoreError } from '../store'

/** A lock older than this was left by a process that died while holding it. */
const STALE_LOCK_MS = 10_000
const LOCK_WAIT_MS = 5000

/** "dev:ino" of the file at `p`, or undefined if there is none. */
export function fileIdentity (p: string): string | undefined {
  try {
    const s = fs.statSync(p)
    return `${s.dev}:${s.ino}`
  } catch {
    return undefined
  }
}

function pause (ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/**
 * Runs fn holding "<p>.create-lock" (a directory: mkdir is atomic). The
 * critical section is a few system calls, so the wait is synchronous.
 */
function withCreateLock<T> (p: string, fn: () => T): T {
  const lock = `${p}.create-lock`
  const deadline = Date.now() + LOCK_WAIT_MS
  for (;;) {
    try {
      fs.mkdirSync(lock, { mode: 0o700 })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > STALE_LOCK_MS) { fs.rmSync(lock, { recursive: true, force: true }); continue }
      } catch { continue } // released meanwhile
      if (Date.now() > deadline) throw new StoreError('EUNAVAILABLE', `cannot create the SQLite store ${p}: ${lock} has been held for more than ${LOCK_WAIT_MS} ms`)
      pause(5)
    }
  }
  try {
    return fn()
  } finally {
    fs.rmSync(lock, { recursive: true, force: true })
  }
}

/**
 * Makes sure a database file exists at `p` (and its directory), mode 0600
 * so that it is not world-readable (SQLite gives -wal and -shm the same
 * mode). Returns true if this call created it. Throws the fs error.
 */
export function ensureDbFile (p: string): boolean {
  fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 })
  if (fs.existsSync(p)) return false
  return withCreateLock(p, () => {
    if (fs.existsSync(p)) return false // another process was first
    // journals of a file that is gone (see above); a stale rollback journal
    // would even be replayed into the new file as "hot"
    for (const j of ['-wal', '-shm', '-journal']) fs.rmSync(p + j, { force: true })
    fs.closeSync(fs.openSync(p, 'wx', 0o600))
    return true
  })
}
