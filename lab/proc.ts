// Child-process primitives for the namespace harness.
//
// Every child runs detached (its own session and process group, pgid == pid),
// so a timeout or teardown can kill the whole group -- including anything it
// forked -- by pid, never by name. Output is kept in bounded buffers so a
// chatty process cannot exhaust memory, and every wait has a deadline.

import { spawn, type ChildProcess } from 'node:child_process'
import { constants as osConstants } from 'node:os'
import type { Writable } from 'node:stream'
import { readdirSync, readFileSync } from 'node:fs'

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Something with a process group the harness may have to kill at teardown. */
export interface Tracked {
  readonly pid: number;
  readonly running: boolean;
  readonly exited: Promise<ExitInfo>;
}

/** Send `signal` to the whole process group led by `pid`; quietly ignores groups that are gone. */
export function killGroup (pid: number, signal: NodeJS.Signals | number = 'SIGTERM'): void {
  try {
    process.kill(-pid, signal)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Resolves true if `p` settles within `ms`, false otherwise (never rejects). */
export async function settlesWithin (p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
  try {
    return await Promise.race([p.then(() => true, () => true), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Keeps the last `max` characters of a stream plus its complete lines (last `maxLines`). */
class OutputBuffer {
  text = ''
  lines: string[] = []
  /** Lines dropped from the front of `lines` so far (keeps scan positions valid). */
  dropped = 0
  private partial = ''
  constructor (private readonly max: number, private readonly maxLines: number) {}

  /** Appends a chunk; returns true if at least one new complete line arrived. */
  push (chunk: string): boolean {
    this.text += chunk
    if (this.text.length > this.max) this.text = this.text.slice(-this.max)
    const parts = (this.partial + chunk).split('\n')
    this.partial = parts.pop() ?? ''
    if (this.partial.length > this.max) this.partial = this.partial.slice(-this.max)
    for (const l of parts) this.lines.push(l.replace(/\r$/, ''))
    const excess = this.lines.length - this.maxLines
    if (excess > 0) {
      this.lines.splice(0, excess)
      this.dropped += excess
    }
    return parts.length > 0
  }

  /** An unterminated last line counts as a line once the stream ends. */
  end (): boolean {
    if (!this.partial) return false
    this.lines.push(this.partial.replace(/\r$/, ''))
    this.partial = ''
    return true
  }
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** 'pipe' exposes `handle.stdin`; default 'ignore'. */
  stdin?: 'pipe' | 'ignore';
  /** Characters of stdout/stderr kept (the tail); default 8 MiB each. */
  maxBuffer?: number;
  /** Complete lines kept per stream (the tail); default 100k. */
  maxLines?: number;
}

export type StreamName = 'stdout' | 'stderr' | 'both'

/** A long-running process inside a namespace. */
export interface ChildHandle extends Tracked {
  readonly argv: readonly string[];
  /** Namespace it runs in. */
  readonly ns: string | undefined;
  readonly stdin: Writable | null;
  /** Collected output (tail, bounded). */
  readonly stdout: string;
  readonly stderr: string;
  readonly stdoutLines: readonly string[];
  readonly stderrLines: readonly string[];
  /**
   * First line (already printed or yet to come) matching `re` on `stream`
   * (default both). Rejects on timeout or if the process exits first.
   */
  waitForLine(re: RegExp, timeoutMs?: number, stream?: StreamName): Promise<string>;
  /** Signal the process group (default SIGTERM). No-op if it is gone. */
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs` (default 1000); resolves with how it exited. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

/** How long to wait for stdio to close after the process itself exited (a grandchild may hold it). */
const STDIO_LINGER_MS = 500

export class ProcHandle implements ChildHandle {
  readonly pid: number
  readonly exited: Promise<ExitInfo>
  readonly stdin: Writable | null
  private readonly out: OutputBuffer
  private readonly err: OutputBuffer
  private exit: ExitInfo | undefined
  private readonly listeners = new Set<() => void>()

  /**
   * Runs `argv` inside namespace `ns` via `ip netns exec`; with `ns`
   * undefined it runs `argv` as is (the harness's own `ip` management calls).
   */
  constructor (readonly argv: readonly string[], readonly ns: string | undefined, opts: SpawnOptions = {}) {
    const max = opts.maxBuffer ?? 8 << 20
    const maxLines = opts.maxLines ?? 100_000
    this.out = new OutputBuffer(max, maxLines)
    this.err = new OutputBuffer(max, maxLines)
    const full = ns === undefined ? argv : ['ip', 'netns', 'exec', ns, ...argv]
    const cp: ChildProcess = spawn(full[0]!, full.slice(1), {
      detached: true, // own session + process group: killable as a unit by pgid
      stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    })
    if (cp.pid === undefined) {
      cp.on('error', () => {}) // reported by the throw below instead
      throw new Error(`failed to spawn ${argv.join(' ')}`)
    }
    this.pid = cp.pid
    this.stdin = cp.stdin
    cp.stdin?.on('error', () => {}) // EPIPE when the process dies is not the test's business
    cp.stdout!.setEncoding('utf8').on('data', (c: string) => this.out.push(c) && this.notify())
    cp.stderr!.setEncoding('utf8').on('data', (c: string) => this.err.push(c) && this.notify())

    this.exited = new Promise<ExitInfo>((resolve) => {
      const settle = (info: ExitInfo) => {
        if (this.exit) return
        this.out.end()
        this.err.end()
        this.exit = info
        this.notify()
        resolve(info)
      }
      cp.on('close', (code, signal) => settle({ code, signal }))
      cp.on('error', () => settle({ code: null, signal: null }))
      // If a grandchild escaped the group and holds our pipes, 'close' never
      // comes: settle shortly after 'exit' and drop the pipes.
      cp.on('exit', (code, signal) => {
        setTimeout(() => {
          cp.stdout?.destroy()
          cp.stderr?.destroy()
          settle({ code, signal })
        }, STDIO_LINGER_MS).unref()
      })
    })
  }

  get running (): boolean {
    return this.exit === undefined
  }

  get stdout (): string {
    return this.out.text
  }

  get stderr (): string {
    return this.err.text
  }

  get stdoutLines (): readonly string[] {
    return this.out.lines
  }

  get stderrLines (): readonly string[] {
    return this.err.lines
  }

  private notify (): void {
    for (const l of [...this.listeners]) l()
  }

  kill (signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) killGroup(this.pid, signal)
  }

  async stop (graceMs = 1000): Promise<ExitInfo> {
    this.kill('SIGTERM')
    if (!(await settlesWithin(this.exited, graceMs))) this.kill('SIGKILL')
    if (!(await settlesWithin(this.exited, 5000))) {
      throw new Error(`pid ${this.pid} (${this.argv.join(' ')}) survived SIGKILL for 5s`)
    }
    return this.exited
  }

  waitForLine (re: RegExp, timeoutMs = 5000, stream: StreamName = 'both'): Promise<string> {
    const bufs = stream === 'both' ? [this.out, this.err] : [stream === 'stdout' ? this.out : this.err]
    // Absolute positions already scanned per buffer, so each line is tested once.
    const seen = bufs.map((b) => b.dropped)
    const scan = (): string | undefined => {
      for (const [i, b] of bufs.entries()) {
        for (let pos = Math.max(seen[i]!, b.dropped); pos < b.dropped + b.lines.length; pos++) {
          const line = b.lines[pos - b.dropped]!
          re.lastIndex = 0 // a /g or /y regex would otherwise carry state between lines
          if (re.test(line)) return line
        }
        seen[i] = b.dropped + b.lines.length
      }
      return undefined
    }
    return new Promise<string>((resolve, reject) => {
      // finish is called by the timer only after it is defined below
      const timer = setTimeout(
        () => finish(new Error(`timed out after ${timeoutMs}ms waiting for ${this.describe()} to print a line matching ${re}${this.tail()}`)),
        timeoutMs
      )
      const finish = (err: Error | undefined, line?: string) => {
        clearTimeout(timer)
        this.listeners.delete(check)
        if (err) reject(err)
        else resolve(line!)
      }
      const check = () => {
        const line = scan()
        if (line !== undefined) return finish(undefined, line)
        if (!this.running) {
          const how = this.exit!.signal ? `signal ${this.exit!.signal}` : `code ${this.exit!.code}`
          finish(new Error(`${this.describe()} exited (${how}) without printing a line matching ${re}${this.tail()}`))
        }
      }
      this.listeners.add(check)
      check()
    })
  }

  private describe (): string {
    return `\`${this.argv.join(' ')}\` (pid ${this.pid})${this.ns === undefined ? '' : ` in ${this.ns}`}`
  }

  private tail (): string {
    const t = (s: string) => s.trim().split('\n').slice(-10).join('\n  ')
    return `\n stdout tail:\n  ${t(this.stdout)}\n stderr tail:\n  ${t(this.stderr)}`
  }
}

export interface ExecOptions {
  /** Kill the process group and reject after this long; default 10000. */
  timeoutMs?: number;
  /** Resolve with the exit code instead of rejecting on non-zero exit (timeouts still reject). */
  allowFail?: boolean;
  /** Written to stdin, which is then closed. */
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  /** Characters of output kept per stream; default 8 MiB. */
  maxBuffer?: number;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit code; 128+n if killed by signal n. */
  code: number;
}

/**
 * Run `argv` to completion in its own process group, tracked in `track`
 * while it runs (so teardown can kill it). `what` names it in errors.
 */
export async function runToCompletion (
  argv: readonly string[],
  ns: string | undefined,
  opts: ExecOptions,
  track: Set<Tracked>,
  what = argv.join(' ')
): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000
  const h = new ProcHandle(argv, ns, {
    env: opts.env,
    stdin: opts.input === undefined ? 'ignore' : 'pipe',
    maxBuffer: opts.maxBuffer,
    maxLines: 1, // exec callers get whole strings; lines are not needed
  })
  track.add(h)
  h.stdin?.end(opts.input)
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    h.kill('SIGKILL')
  }, timeoutMs)
  const exit = await h.exited
  clearTimeout(timer)
  track.delete(h)
  const code = exit.code ?? (exit.signal ? 128 + osConstants.signals[exit.signal] : 255)
  const res = { stdout: h.stdout, stderr: h.stderr, code }
  if (timedOut) throw new Error(`timed out after ${timeoutMs}ms: ${what}${stderrSuffix(res.stderr)}`)
  if (code !== 0 && !opts.allowFail) {
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${code}`
    throw Object.assign(new Error(`${what} ${how}${stderrSuffix(res.stderr)}`), res)
  }
  return res
}

function stderrSuffix (stderr: string): string {
  const s = stderr.trim()
  return s ? `: ${s.length > 2000 ? '…' + s.slice(-2000) : s}` : ' (no stderr)'
}

/**
 * kill(pid, 'SIGSTOP') returns before every thread has stopped; a request
 * sent at once could still be answered. Waits (synchronously, at most 2 s)
 * until each of the process's threads shows state T; `what` names it in the
 * error.
 */
export function waitStopped (pid: number, what: string): void {
  const nap = new Int32Array(new SharedArrayBuffer(4))
  const deadline = Date.now() + 2000
  while (Date.now() < deadline) {
    let all = true
    try {
      for (const t of readdirSync(`/proc/${pid}/task`)) {
        // the state is the first field after "(comm)"
        const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8')
        if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'T') all = false
      }
    } catch { return } // gone
    if (all) return
    Atomics.wait(nap, 0, 0, 5)
  }
  throw new Error(`${what} (pid ${pid}) did not stop within 2 s of SIGSTOP`)
}

/** Processes started outside a topology (etcd, the kube API stand-in): killed by the exit hook if still running. */
const live = new Set<() => void>()
let hooked = false

/** On exit, and on SIGINT/SIGTERM (which skip 'exit'), `kill` runs unless forgotten first. */
export function killOnExit (kill: () => void): void {
  live.add(kill)
  if (hooked) return
  hooked = true
  const killAll = (): void => { for (const k of [...live]) k() }
  process.on('exit', killAll)
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const hook = (): void => {
      killAll()
      process.removeListener(sig, hook)
      // listening replaced Node's default "terminate on signal": restore it
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
    }
    process.on(sig, hook)
  }
}

/** The process is gone: nothing for the exit hook to do. */
export function forgetOnExit (kill: () => void): void {
  live.delete(kill)
}

/**
 * SIGTERM (with SIGCONT: a paused process cannot act on SIGTERM), then
 * `kill` if it has not exited within graceMs; resolves once it has exited.
 */
export async function stopChild (c: ChildProcess, graceMs: number, kill: () => void): Promise<void> {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return
  const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()))
  try {
    process.kill(c.pid, 'SIGTERM')
    process.kill(c.pid, 'SIGCONT')
  } catch { /* gone */ }
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), graceMs) })
  if (await Promise.race([exited.then(() => false), late])) {
    kill()
    await exited
  }
  clearTimeout(timer)
}
