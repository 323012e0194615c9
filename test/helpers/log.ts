// A pino logger whose JSON lines land in an array, for tests that check what
// a component logged (and how often).
import pino from 'pino'
import type { Logger } from 'pino'
import { Writable } from 'node:stream'

export interface CapturedLog {
  log: Logger
  lines: Array<Record<string, unknown>>
  /** lines whose msg matches */
  find: (re: RegExp) => Array<Record<string, unknown>>
}

export function captureLogger (level = 'debug'): CapturedLog {
  const lines: Array<Record<string, unknown>> = []
  const sink = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>)
      cb()
    }
  })
  const log = pino({ level }, sink)
  return { log, lines, find: (re) => lines.filter((l) => re.test(String(l.msg))) }
}
