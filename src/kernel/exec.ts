// Runs the kernel-configuration tools (ip, iptables, sysctl) as child
// processes without a shell, so no argument is ever re-parsed, and with a
// timeout, so a wedged tool cannot hang the daemon. They are started with
// posix_spawn (./spawn.ts), not fork(), so that a running node's dataplane
// does not stop for a few milliseconds each time (the iptables resync runs
// four every 5 s). With `netns` set, the
// command runs under `ip netns exec <ns>`: that lets tests drive a namespace
// they created from the root namespace; the daemon itself never sets it.
import { WeftError } from '../errors'
import { spawnCapture } from './spawn'

export interface KernelOptions {
  /** run inside this named network namespace (tests only) */
  netns?: string
}

export interface RunOptions extends KernelOptions {
  /** kill the command and fail after this long; default 10 s */
  timeoutMs?: number
  /** written to the command's stdin, which is then closed */
  input?: string
}

export interface ProbeResult {
  code: number
  stdout: string
  stderr: string
}

const DEFAULT_TIMEOUT_MS = 10_000
// `iptables -S` on a busy Kubernetes node can print a lot; never truncate it.
const MAX_BUFFER = 64 * 1024 * 1024

/**
 * A failed kernel tool. `code` is always EKERNEL; the fields let callers tell
 * "the tool is not installed" from "the tool said no" without parsing text.
 */
export class KernelCommandError extends WeftError {
  readonly argv: readonly string[]
  /** exit status, or null when the command never ran or was killed */
  readonly exitCode: number | null
  readonly stderr: string
  /** the executable itself was not found */
  readonly notFound: boolean

  constructor (argv: readonly string[], exitCode: number | null, stderr: string, notFound: boolean, detail?: string) {
    super('EKERNEL', `${commandLine(argv)}: ${detail ?? (stderr.trim() || `exit status ${String(exitCode)}`)}`)
    this.name = 'KernelCommandError'
    this.argv = argv
    this.exitCode = exitCode
    this.stderr = stderr
    this.notFound = notFound
  }
}

/** argv as a person would type it (quoting only what needs it), for messages. */
export function commandLine (argv: readonly string[]): string {
  return argv.map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`).join(' ')
}

/** The argv actually executed: prefixed with `ip netns exec` when a namespace is given. */
export function inNetns (argv: readonly string[], netns?: string): string[] {
  return netns === undefined ? [...argv] : ['ip', 'netns', 'exec', netns, ...argv]
}

/**
 * Runs argv and resolves with its exit code and output, whatever the exit
 * code: for "does this exist" probes. Still rejects when the command cannot
 * run at all (not installed) or times out, since that answers nothing.
 */
export async function probe (argv: readonly string[], opts: RunOptions = {}): Promise<ProbeResult> {
  const full = inNetns(argv, opts.netns)
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  let r
  try {
    r = await spawnCapture(full, { timeoutMs, maxBuffer: MAX_BUFFER, input: opts.input })
  } catch (err) {
    const code = (err as { code?: unknown }).code
    // EACCES: the search along PATH met a directory we may not read and
    // found no program we may run (seen as an unprivileged user): not found.
    if (code === 'ENOENT' || code === 'EACCES') throw new KernelCommandError(full, null, '', true, 'command not found')
    throw new KernelCommandError(full, null, '', false, (err as Error).message)
  }
  if (r.code === null || r.tooMuch) {
    const why = r.timedOut ? `timed out after ${timeoutMs} ms` : r.tooMuch ? `printed more than ${MAX_BUFFER} bytes` : `killed by ${String(r.signal)}`
    throw new KernelCommandError(full, null, r.stderr, false, why)
  }
  // `ip netns exec` reports a missing program itself (status 1 or 255,
  // depending on the iproute2 version), so recognise its exact words.
  if (r.code !== 0 && opts.netns !== undefined && r.stderr.trim() === `exec of "${argv[0]!}" failed: No such file or directory`) {
    throw new KernelCommandError(full, r.code, r.stderr, true, 'command not found')
  }
  return { code: r.code, stdout: r.stdout, stderr: r.stderr }
}

/** Runs argv and resolves with its stdout; any non-zero exit is a KernelCommandError. */
export async function run (argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await probe(argv, opts)
  if (r.code !== 0) throw new KernelCommandError(inNetns(argv, opts.netns), r.code, r.stderr, false)
  return r.stdout
}
