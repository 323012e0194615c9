// Running weft daemons in topology hosts, for the end-to-end tests and the
// benches: one shared SQLite store file in a temp dir, a state dir and
// subnet.env per node.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { readSubnetEnv } from '../src/subnet/env'
import type { SubnetEnv } from '../src/subnet/env'
import type { Ip4Net } from '../src/packet/net'
import { fetchStatus } from '../src/daemon/control'
import type { ChildHandle, Host, Topology } from './netns'
import type { ExecResult } from './proc'

export const BIN = path.join(__dirname, '..', '..', 'bin', 'weft')

export interface Cluster {
  dir: string
  weft: (...args: string[]) => string
  start: (h: Host, ...extra: string[]) => Promise<Daemon>
}

export interface Daemon {
  host: Host
  child: ChildHandle
  /** the node's subnet.env, which must have its IPv4 half (most tests' networks are IPv4) */
  env: () => SubnetEnv & { network: Ip4Net, subnet: Ip4Net }
  /** the node's subnet.env as written, either family */
  subnetEnv: () => SubnetEnv
  status: () => Promise<Record<string, unknown> & { peers: Array<Record<string, unknown>>, counters: { drops: Record<string, number>, counters: Record<string, number> } }>
  stateDir: string
  /** `wg <args>` against the node's own /run/wireguard (the wireguard backend's socket) */
  wg: (args: readonly string[]) => Promise<ExecResult>
}

export function cluster (t: { after: (fn: () => void) => void }, topo: Topology, config: string): Cluster {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-e2e-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const weft = (...args: string[]): string => execFileSync(BIN, [...args, '--store', `sqlite:${dir}/store.db`], { encoding: 'utf8' })
  weft('config', 'set', config)
  return {
    dir,
    weft,
    start: async (h, ...extra) => await startDaemon(topo, h, { dir, store: ['--store', `sqlite:${dir}/store.db`], extra })
  }
}

export interface StartOptions {
  /** the node's state dir and subnet.env go in <dir>/<host name> */
  dir: string
  /** store flags, e.g. ['--store', 'sqlite:PATH'] or ['--etcd-endpoints', URL] */
  store: string[]
  extra?: string[]
  /** the daemon's whole environment (default this process's) */
  env?: NodeJS.ProcessEnv
  /** how long it may take to log "running" (default 20 s) */
  timeoutMs?: number
}

/** `weft run` on host h, resolved once it logs "running". */
export async function startDaemon (topo: Topology, h: Host, o: StartOptions): Promise<Daemon> {
  const stateDir = `${o.dir}/${h.name}`
  // every node its own WireGuard key (flannel's default file is one per host, and the lab's nodes share a host)
  const env = o.env ?? { ...process.env, WIREGUARD_KEY_FILE: `${stateDir}/wgkey` }
  // and its own /run/wireguard (a tmpfs in the mount namespace `ip netns
  // exec` gives it; `exec` keeps the pid): the wireguard backend's `wg`
  // socket is /var/run/wireguard/weft-wg.sock on every node, and the lab's
  // nodes share one /run. `wg` reaches it through nsenter (Daemon.wg).
  const script = 'mkdir -p /run/wireguard && mount -t tmpfs -o mode=0755,size=64k weft-lab-wg /run/wireguard && exec "$@"'
  const child = topo.spawn(h, ['sh', '-c', script, 'sh', process.execPath, BIN, 'run', ...o.store, '--subnet-file', `${stateDir}/subnet.env`, '--state-dir', stateDir, '--iface', 'eth0', ...(o.extra ?? [])], { env })
  await child.waitForLine(/"msg":"running"/, o.timeoutMs ?? 20_000)
  const readEnv = (): SubnetEnv => {
    const e = readSubnetEnv(`${stateDir}/subnet.env`)
    if (e === undefined) throw new Error(`${h.name} wrote no subnet.env`)
    return e
  }
  return {
    host: h,
    child,
    stateDir,
    env: () => {
      const e = readEnv()
      if (e.subnet === undefined || e.network === undefined) throw new Error(`${h.name} wrote no IPv4 subnet in subnet.env`)
      return e as SubnetEnv & { network: Ip4Net, subnet: Ip4Net }
    },
    subnetEnv: readEnv,
    status: async () => await fetchStatus(stateDir) as Awaited<ReturnType<Daemon['status']>>,
    wg: async (args) => await topo.exec(h, ['nsenter', '-t', String(child.pid), '-m', 'wg', ...args])
  }
}
