// A throwaway node for the CNI plugin, without root or namespaces: a temp
// directory with a CNI_PATH holding a fake `bridge` delegate that logs every
// call and prints a plausible result, a subnet.env, a dataDir, and marker
// programs: executables planted where a hostile config points, each of which
// would create a file in markers/ if anything ever ran it.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { runCni } from '../../src/cni/plugin'

export const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'weft')

export interface Call { code: number, out: Record<string, unknown> | undefined, lines: string[], warnings: string[] }

export interface DelegateCall { command: string, containerId: string, ifname: string, conf: Record<string, unknown> }

export class Sandbox {
  readonly root: string
  /** the CNI_PATH directory, with the fake bridge (and host-local, for ipam.type) */
  readonly bin: string
  readonly data: string
  readonly markers: string

  constructor (prefix = 'weft-cni-hostile-') {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
    this.bin = path.join(this.root, 'bin')
    this.data = path.join(this.root, 'data')
    this.markers = path.join(this.root, 'markers')
    fs.mkdirSync(this.bin)
    fs.mkdirSync(this.markers)
    // MTU 9000: podGsoMaxSize leaves jumbo MTUs alone, so ADD runs no nsenter
    fs.writeFileSync(path.join(this.root, 'subnet.env'), 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=9000\nFLANNEL_IPMASQ=false\n')
    for (const name of ['bridge', 'host-local']) this.script(path.join(this.bin, name), fakeDelegate(path.join(this.root, 'delegate.log')))
  }

  remove (): void {
    fs.rmSync(this.root, { recursive: true, force: true })
  }

  script (file: string, body: string): void {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, body, { mode: 0o755 })
    fs.chmodSync(file, 0o755)
  }

  /** An executable at `file` that leaves markers/<label> behind if it is ever run. */
  marker (file: string, label: string): void {
    this.script(file, `#!/bin/sh\ntouch ${JSON.stringify(path.join(this.markers, label))}\ncat >/dev/null\necho '{"cniVersion":"1.0.0","ips":[]}'\n`)
  }

  /** Forget the markers of earlier runs (so a fuzzer's shrinking sees each run on its own). */
  clearMarkers (): void {
    for (const f of fs.readdirSync(this.markers)) fs.rmSync(path.join(this.markers, f))
  }

  /** The markers left by programs that ran: always empty, or a hostile config got something run. */
  ran (): string[] {
    return fs.readdirSync(this.markers).sort()
  }

  /** The fake delegate's calls, in order. */
  delegateCalls (): DelegateCall[] {
    const log = path.join(this.root, 'delegate.log')
    if (!fs.existsSync(log)) return []
    return fs.readFileSync(log, 'utf8').split('\n').filter((l) => l !== '').map((l) => {
      const [command, containerId, ifname, ...rest] = l.split(' ')
      const text = rest.join(' ')
      return { command, containerId, ifname, conf: text === '' ? {} : JSON.parse(text) as Record<string, unknown> }
    })
  }

  conf (extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { cniVersion: '1.0.0', name: 'net-a', type: 'weft', subnetFile: path.join(this.root, 'subnet.env'), dataDir: this.data, ...extra }
  }

  env (command: string, extra: Record<string, string | undefined> = {}): Record<string, string> {
    const env: Record<string, string | undefined> = { PATH: process.env.PATH, CNI_COMMAND: command, CNI_PATH: this.bin, CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/weft-test-none', CNI_IFNAME: 'eth0', ...extra }
    return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined))
  }

  /** One command through runCni, in this process. */
  call (command: string, conf: Record<string, unknown> | string, env: Record<string, string | undefined> = {}): Call {
    const lines: string[] = []
    const warnings: string[] = []
    const code = runCni({ env: this.env(command, env), stdin: typeof conf === 'string' ? conf : JSON.stringify(conf), out: (t) => lines.push(t), warn: (t) => warnings.push(t) })
    return { code, out: lines.length === 1 ? JSON.parse(lines[0]) as Record<string, unknown> : undefined, lines, warnings }
  }

  /** One command through bin/weft, as a runtime starts it. */
  exec (command: string, conf: Record<string, unknown> | string, env: Record<string, string | undefined> = {}, opts: { cwd?: string, stdinFd?: number } = {}): Call {
    const r = spawnSync(BIN, [], {
      env: this.env(command, env),
      cwd: opts.cwd ?? this.root,
      encoding: 'utf8',
      timeout: 30_000,
      ...(opts.stdinFd !== undefined ? { stdio: [opts.stdinFd, 'pipe', 'pipe'] } : { input: typeof conf === 'string' ? conf : JSON.stringify(conf) })
    })
    if (r.error !== undefined && (r.error as NodeJS.ErrnoException).code !== 'EPIPE') throw r.error
    const lines = r.stdout.split('\n').filter((l) => l !== '')
    return { code: r.status ?? -1, out: lines.length === 1 ? JSON.parse(lines[0]) as Record<string, unknown> : undefined, lines, warnings: r.stderr.split('\n').filter((l) => l !== '') }
  }

  /** A saved delegate config as weft (or an older weft) writes one: 0600. */
  plant (name: string, d: Record<string, unknown>): string {
    fs.mkdirSync(this.data, { recursive: true, mode: 0o700 })
    const file = path.join(this.data, name)
    fs.writeFileSync(file, JSON.stringify(d), { mode: 0o600 })
    fs.chmodSync(file, 0o600)
    return file
  }
}

/** A delegate config as delegate.ts renders it for `network`. */
export function savedConf (network: string, type = 'bridge'): Record<string, unknown> {
  return { cniVersion: '1.0.0', ipMasq: true, ipam: { ranges: [[{ subnet: '10.244.7.0/24' }]], routes: [{ dst: '10.244.0.0/16' }], type: 'host-local' }, isGateway: true, mtu: 9000, name: network, type }
}

/**
 * The fake delegate: logs "COMMAND ID IFNAME <config>" and answers VERSION,
 * ADD (FAKE_ADD overrides the result) and DEL (fails for container IDs
 * starting "fail").
 */
function fakeDelegate (log: string): string {
  return `#!/bin/sh
conf=$(cat)
printf '%s %s %s %s\\n' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_IFNAME" "$conf" >> ${JSON.stringify(log)}
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}' ;;
ADD) if [ -n "$FAKE_ADD" ]; then printf '%s\\n' "$FAKE_ADD"; else echo '{"cniVersion":"1.0.0","ips":[{"address":"10.244.7.2/24","gateway":"10.244.7.1"}]}'; fi ;;
DEL) case "$CNI_CONTAINERID" in fail*) echo '{"cniVersion":"1.0.0","code":11,"msg":"try again later"}'; exit 1 ;; esac ;;
esac
exit 0
`
}

/** A spec error: exit 1 and exactly one JSON object with a numeric code and a message. */
export function specError (c: Call): { code: number, msg: string, details?: string } {
  if (c.code !== 1 || c.out === undefined || c.lines.length !== 1) throw new Error(`not a spec error: exit ${c.code}, stdout ${JSON.stringify(c.lines)}`)
  const o = c.out as { cniVersion?: unknown, code?: unknown, msg?: unknown, details?: string }
  if (typeof o.cniVersion !== 'string' || typeof o.code !== 'number' || typeof o.msg !== 'string') throw new Error(`not a spec error object: ${c.lines[0]}`)
  return { code: o.code, msg: o.msg, ...(o.details !== undefined ? { details: o.details } : {}) }
}
