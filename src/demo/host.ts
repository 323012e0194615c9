// The demo's little world: network namespaces on this host, joined by a
// bridge underlay in 198.18.0.0/24 (a range reserved for benchmarking, so it
// never collides with a real network). Everything is named with the run's
// prefix so `weft demo clean` can find what a killed run left behind.
import { execFile, spawn } from 'node:child_process'
import fs from 'node:fs'
import { WeftError } from '../errors'

export const DEMO_PREFIX = 'weft-demo-'

export function sh (argv: string[], opts: { input?: string, env?: NodeJS.ProcessEnv, timeoutMs?: number, allowFail?: boolean } = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(argv[0], argv.slice(1), { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
      if (code !== 0 && opts.allowFail !== true) reject(new WeftError('EDEMO', `${argv.join(' ')}: ${stderr.trim() || (err as Error).message}`))
      else resolve({ code, stdout, stderr })
    })
    if (opts.input !== undefined) child.stdin?.end(opts.input)
  })
}

export const inNs = (ns: string, argv: string[]): string[] => ['ip', 'netns', 'exec', ns, ...argv]

export class DemoNet {
  readonly underlay: string
  readonly namespaces: string[] = []
  private readonly pids: number[] = []

  constructor (readonly prefix: string, private readonly pidFile: string) {
    this.underlay = `${prefix}u`
  }

  async addNamespace (name: string): Promise<string> {
    await sh(['ip', 'netns', 'add', name])
    this.namespaces.push(name)
    await sh(inNs(name, ['ip', 'link', 'set', 'lo', 'up']))
    return name
  }

  async init (): Promise<void> {
    await this.addNamespace(this.underlay)
    await sh(['ip', '-n', this.underlay, 'link', 'add', 'br0', 'type', 'bridge'])
    await sh(['ip', '-n', this.underlay, 'link', 'set', 'br0', 'up'])
  }

  /** Node i: namespace with eth0 = 198.18.0.i/24 on the underlay bridge (and 2001:2::i/64 with ipv6). */
  async addNode (i: number, ipv6 = false): Promise<string> {
    const ns = await this.addNamespace(`${this.prefix}n${i}`)
    await sh(['ip', '-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `u${i}`, 'netns', this.underlay])
    await sh(['ip', '-n', this.underlay, 'link', 'set', `u${i}`, 'master', 'br0', 'up'])
    await sh(['ip', '-n', ns, 'addr', 'add', `198.18.0.${i}/24`, 'dev', 'eth0'])
    if (ipv6) await sh(['ip', '-n', ns, 'addr', 'add', `${DEMO_UNDERLAY6}${i.toString(16)}/64`, 'dev', 'eth0', 'nodad'])
    await sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'up'])
    return ns
  }

  /** A long-running process in a namespace; killed by PID at teardown. `ip netns exec` execs it: the PID is the process's own. */
  spawn (ns: string, argv: string[], logFile: string, env?: NodeJS.ProcessEnv): number {
    const out = fs.openSync(logFile, 'a')
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', out, out], detached: true, env: env ?? process.env })
    fs.closeSync(out)
    child.unref()
    if (child.pid === undefined) throw new WeftError('EDEMO', `could not start ${argv.join(' ')}`)
    this.pids.push(child.pid)
    fs.appendFileSync(this.pidFile, `${child.pid}\n`)
    return child.pid
  }

  /** Stop every process (SIGTERM, then SIGKILL) and delete every namespace. */
  async destroy (): Promise<void> {
    await stopPids(this.pids)
    for (const ns of [...this.namespaces].reverse()) await sh(['ip', 'netns', 'delete', ns], { allowFail: true })
    this.namespaces.length = 0
  }
}

/** The demo's IPv6 underlay (--ipv6): 2001:2::/64, from RFC 5180's benchmarking range. */
export const DEMO_UNDERLAY6 = '2001:2::'

export async function stopPids (pids: number[]): Promise<void> {
  const alive = (p: number): boolean => { try { process.kill(p, 0); return true } catch { return false } }
  for (const p of pids) { try { process.kill(-p, 'SIGTERM') } catch { try { process.kill(p, 'SIGTERM') } catch { /* gone */ } } }
  const deadline = Date.now() + 5000
  while (pids.some(alive) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  for (const p of pids) { try { process.kill(-p, 'SIGKILL') } catch { /* gone */ } }
}
