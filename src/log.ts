// pino JSON logs on stderr, so stdout stays free for what a command prints
// for people (tables, status) and for CNI results.
import pino from 'pino'
import type { Logger } from 'pino'

export type { Logger }

export interface LogOptions {
  level?: string
  name?: string
}

export function createLogger (opts: LogOptions = {}): Logger {
  return pino({ name: opts.name ?? 'weft', level: opts.level ?? process.env.WEFT_LOG_LEVEL ?? 'info' }, pino.destination({ fd: 2, sync: true }))
}
