// Warnings about things someone else controls (a store writer's keys, a
// sender's address): each thing is named once, in bounded memory, and past a
// rate the rest are only counted and summed up in one line a minute, so no
// writer can fill the log or the heap by inventing new names.
import { LRUCache } from 'lru-cache'
import type { Logger } from '../log'

export interface OnceLogOptions {
  /** distinct names remembered; the oldest may be named again after that many others */
  max?: number
  /** names logged in any one minute; the rest are summed up */
  perMinute?: number
  now?: () => number
  /** default warn */
  level?: 'warn' | 'error'
}

const MINUTE_MS = 60_000

export class OnceLog {
  private readonly seen: LRUCache<string, true>
  private readonly perMinute: number
  private readonly now: () => number
  private readonly level: 'warn' | 'error'
  private windowStart = -Infinity
  private inWindow = 0
  private unnamed = 0
  /** every name warned about, whether logged or only counted */
  total = 0

  constructor (private readonly log: Logger, private readonly msg: string, o: OnceLogOptions = {}) {
    this.seen = new LRUCache({ max: o.max ?? 1024 })
    this.perMinute = o.perMinute ?? 20
    this.now = o.now ?? Date.now
    this.level = o.level ?? 'warn'
  }

  /** Was `name` named already (and not forgotten since)? */
  has (name: string): boolean {
    return this.seen.has(short(name))
  }

  /** Warn about `name` unless it was named already. */
  warn (name: string, fields: Record<string, unknown>): void {
    name = short(name)
    if (this.seen.has(name)) return
    this.seen.set(name, true)
    this.total++
    const now = this.now()
    if (now - this.windowStart >= MINUTE_MS) {
      if (this.unnamed > 0) this.log[this.level]({ unnamed: this.unnamed }, `${this.msg} (and more, not named: past ${this.perMinute} a minute they are only counted)`)
      this.windowStart = now
      this.inWindow = 0
      this.unnamed = 0
    }
    if (this.inWindow >= this.perMinute) {
      this.unnamed++
      return
    }
    this.inWindow++
    this.log[this.level](fields, this.msg)
  }

  /** `name` is gone: name it again if it comes back. */
  forget (name: string): void {
    this.seen.delete(short(name))
  }
}

/** Names are remembered by at most this many characters (with their length), so a writer's huge key costs no more than a short one. */
const NAME_CHARS = 256

function short (name: string): string {
  return name.length > NAME_CHARS ? `${name.slice(0, NAME_CHARS)}...${name.length}` : name
}
