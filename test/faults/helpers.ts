// What the fault tests share:
// - an etcd in the topology's underlay namespace on 198.18.0.254, which the
//   nodes reach over the underlay as they would a cluster's etcd; it can be
//   stopped, started again on the same data, or started "in private" (on
//   127.0.0.1 of the underlay namespace, where no node can reach it) to
//   change and compact the store behind the nodes' backs
// - reading a node's /readyz and /metrics from inside its namespace
// - the log lines of a daemon, parsed
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { waitFor } from '../../lab/netns'
import type { ChildHandle, Host, Topology } from '../../lab/netns'
import type { Daemon } from '../../lab/daemons'

export const ETCD_IP = '198.18.0.254'
export const EP = `http://${ETCD_IP}:2379`
const PRIVATE_EP = 'http://127.0.0.1:2379'
const GET = path.join(__dirname, '..', 'fixtures', 'http-get.js')

export interface UnderlayEtcd {
  /** where the nodes reach it */
  readonly endpoint: string
  /** start on the same data: reachable by the nodes, or only from the underlay namespace itself */
  start: (where?: 'underlay' | 'private') => Promise<void>
  /** SIGTERM (SIGKILL after 3 s) */
  stop: () => Promise<void>
  /** etcdctl against the running etcd, wherever it listens */
  ctl: (...args: string[]) => Promise<string>
}

export function tmpDir (t: { after: (fn: () => void) => void }, label: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `weft-${label}-`))
  t.after(() => fs.rmSync(d, { recursive: true, force: true }))
  return d
}

export async function etcdInUnderlay (t: { after: (fn: () => void) => void }, topo: Topology): Promise<UnderlayEtcd> {
  const dir = tmpDir(t, 'etcd')
  await topo.exec(topo.underlayNs, ['ip', 'addr', 'add', `${ETCD_IP}/24`, 'dev', 'br0'])
  let proc: ChildHandle | undefined
  let ep = EP
  const ctlAt = async (at: string, args: string[], timeout = '3s'): Promise<{ code: number | null, stdout: string }> =>
    await topo.exec(topo.underlayNs, ['env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints', at, `--command-timeout=${timeout}`, ...args], { timeoutMs: 10_000, allowFail: true })
  const start = async (where: 'underlay' | 'private' = 'underlay'): Promise<void> => {
    ep = where === 'underlay' ? EP : PRIVATE_EP
    // the peer URL stays put: it is part of the member's identity in its data
    proc = topo.spawn(topo.underlayNs, ['etcd', '--name', 'e', '--data-dir', `${dir}/data`, '--listen-client-urls', ep, '--advertise-client-urls', ep,
      '--listen-peer-urls', `http://${ETCD_IP}:2380`, '--initial-advertise-peer-urls', `http://${ETCD_IP}:2380`, '--initial-cluster', `e=http://${ETCD_IP}:2380`,
      '--log-level', 'error'])
    const p = proc
    await waitFor(async () => {
      if (!p.running) throw new Error(`etcd exited: ${p.stderr.slice(-500)}`)
      return (await ctlAt(ep, ['endpoint', 'health'], '1s')).code === 0
    }, { what: `etcd on ${ep} healthy`, timeoutMs: 20_000, intervalMs: 50 })
  }
  await start()
  return {
    endpoint: EP,
    start,
    stop: async () => { await proc?.stop(3000) },
    ctl: async (...args) => {
      const r = await ctlAt(ep, args)
      if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')} failed (${r.code})`)
      return r.stdout
    }
  }
}

export async function httpGet (topo: Topology, h: Host, url: string): Promise<{ status: number, body: string }> {
  const r = await topo.exec(h, [process.execPath, GET, url], { timeoutMs: 10_000 })
  return JSON.parse(r.stdout) as { status: number, body: string }
}

/** A node's health endpoints on 127.0.0.1:port inside its namespace. */
export function healthOf (topo: Topology, h: Host, port: number): { readyz: () => Promise<{ status: number, body: string }>, metrics: () => Promise<string> } {
  return {
    readyz: async () => await httpGet(topo, h, `http://127.0.0.1:${port}/readyz?verbose`),
    metrics: async () => (await httpGet(topo, h, `http://127.0.0.1:${port}/metrics`)).body
  }
}

/** One sample from Prometheus text, e.g. metric(text, 'weft_store_errors_total', 'op="watch"'); undefined if absent. */
export function metric (text: string, name: string, labels?: string): number | undefined {
  const head = labels === undefined ? name : `${name}{${labels}}`
  for (const line of text.split('\n')) {
    if (line.startsWith(`${head} `)) return Number(line.slice(head.length + 1))
  }
  return undefined
}

export interface LogLine { msg: string, time: number, level: number, [k: string]: unknown }

/** Every JSON log line a daemon has written so far (also from an earlier run of the same handle). */
export function logsOf (c: ChildHandle): LogLine[] {
  return c.stderrLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine)
}

export function count (d: Daemon | ChildHandle, pred: (l: LogLine) => boolean): number {
  return logsOf('child' in d ? d.child : d).filter(pred).length
}

/** Subnets in a daemon's peer table (`weft status`, from its control socket). */
export async function peerSubnets (d: Daemon): Promise<string[]> {
  return (await d.status()).peers.map((p) => String(p.subnet)).sort()
}
