// Runs a command and collects what it prints, as execFile does, but starts
// it with posix_spawn in the addon instead of libuv's fork(): fork() copies
// our page tables first, which in a daemon of ~70 MB RSS stops the thread
// that runs the dataplane for ~4 ms per command (see native/src/spawn.c).
// 1. the addon starts argv on three pipes; stdin gets `input` and is closed
// 2. stdout and stderr are read through libuv pipes until both close
// 3. the child is reaped by polling waitpid (libuv reaps only its own);
//    a timeout kills it with SIGKILL
import net from 'node:net'
import { constants } from 'node:os'
import { native } from '../native/binding'

export interface SpawnResult {
  /** exit status, or null when a signal ended it */
  code: number | null
  /** the signal's name, e.g. 'SIGKILL', or null */
  signal: string | null
  stdout: string
  stderr: string
  timedOut: boolean
  /** printed more than maxBuffer bytes: killed, the output cut */
  tooMuch: boolean
}

export interface SpawnOptions {
  timeoutMs: number
  maxBuffer: number
  input?: string
}

const SIGNAL_NAMES = Object.fromEntries(Object.entries(constants.signals).map(([k, v]) => [v, k])) as Record<number, string>
/** how often an ended child is looked for once its output has closed */
const REAP_POLL_MS = 1

/** Rejects with the errno error (code ENOENT/EACCES: no program to run) if it cannot start. */
export function spawnCapture (argv: readonly string[], opts: SpawnOptions): Promise<SpawnResult> {
  const c = native.spawn(argv)
  return new Promise((resolve) => {
    const out: Buffer[] = []
    const err: Buffer[] = []
    let bytes = 0
    let open = 2
    let timedOut = false
    let tooMuch = false
    let exited: { code: number, signal: number } | null = null
    const kill = (): void => { try { process.kill(c.pid, 'SIGKILL') } catch { /* already gone */ } }
    const timer = setTimeout(() => { timedOut = true; kill() }, opts.timeoutMs)
    const reader = (fd: number, into: Buffer[]): void => {
      const s = new net.Socket({ fd, readable: true, writable: false })
      s.on('data', (d: Buffer) => {
        bytes += d.length
        if (bytes > opts.maxBuffer) { tooMuch = true; kill(); return }
        into.push(d)
      })
      s.on('error', () => {})
      s.on('close', () => { if (--open === 0) reap() })
    }
    const reap = (): void => {
      exited = native.spawnWait(c.pid)
      if (exited === null) { setTimeout(reap, REAP_POLL_MS); return }
      clearTimeout(timer)
      resolve({
        code: exited.signal !== 0 ? null : exited.code,
        signal: exited.signal !== 0 ? (SIGNAL_NAMES[exited.signal] ?? String(exited.signal)) : null,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
        tooMuch
      })
    }
    reader(c.stdout, out)
    reader(c.stderr, err)
    // a command that exits before reading its stdin makes the write fail
    // with EPIPE; its exit status already tells that story
    const input = new net.Socket({ fd: c.stdin, readable: false, writable: true })
    input.on('error', () => {})
    input.end(opts.input ?? '')
  })
}
