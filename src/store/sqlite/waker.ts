// Wakes a SQLite watcher when anything in the database's directory changes
// (another process committed to the WAL) or after `pollMs`, whichever is
// first. inotify is only a hint: the poll alone is correct, just slower.
import fs from 'node:fs'
import path from 'node:path'

export class Waker {
  private watcher: fs.FSWatcher | undefined
  private pending: (() => void) | undefined
  private dirty = false

  /** `dbPath`: the database file; its directory is watched. */
  constructor (dbPath: string, private readonly signal: AbortSignal) {
    try {
      this.watcher = fs.watch(path.dirname(dbPath), { persistent: false }, () => this.fire())
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
