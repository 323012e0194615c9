// What the soak samples each tick: each daemon's RSS, the queue drops on
// the traffic's way (TUN tx_dropped, UDP RcvbufErrors, weft's own drop
// counters), and the heap probes: a forced full GC through the daemon's
// inspector with memoryUsage() around it, so what is left is live memory.
import os from 'node:os'
import { memoryOf } from '../../lab/cpu'
import { waitFor } from '../../lab/netns'
import type { Topology } from '../../lab/netns'
import { clock, now, rec, round } from './record'
import type { Drops, Window } from './record'
import type { Node, World } from './cluster'

const DROPS_SCRIPT = 'cat "/sys/class/net/$1/statistics/tx_dropped" 2>/dev/null || echo 0; grep "^Udp:" /proc/net/snmp'

/** One namespace's drop counters; `dev` is the TUN device (none in a pod). */
async function dropsIn (topo: Topology, ns: string, dev: string): Promise<Drops> {
  const r = await topo.exec(ns, ['sh', '-c', DROPS_SCRIPT, 'drops', dev], { timeoutMs: 5000 })
  const lines = r.stdout.trim().split('\n')
  const udp = lines.filter((l) => l.startsWith('Udp:')).map((l) => l.trim().split(/\s+/))
  const col = (name: string): number => {
    const i = udp[0]?.indexOf(name) ?? -1
    return i > 0 ? Number(udp[1]?.[i] ?? 0) : 0
  }
  return { tunTxDropped: Number(lines[0]) || 0, udpRcvbufErrors: col('RcvbufErrors'), udpInErrors: col('InErrors'), weft: 0 }
}

export async function sampleDrops (w: World): Promise<void> {
  const at: Record<string, Drops> = {}
  const udpServer = w.nodes[1]!.pods[1]!
  await Promise.all([
    ...w.nodes.filter((n) => n.daemon !== undefined).map(async (n) => {
      const st = await n.daemon!.status().catch(() => undefined)
      const dev = String((st as { device?: unknown } | undefined)?.device ?? 'weft.1')
      const drops = await dropsIn(w.topo, n.host.ns, dev)
      drops.weft = Object.values(st?.counters.drops ?? {}).reduce((a, v) => a + Number(v), 0)
      at[n.host.name] = drops
    }),
    (async () => { at[udpServer.name] = await dropsIn(w.topo, udpServer.ns, 'none') })()
  ])
  rec.drops.push({ t: now(), at })
}

/** Counter growth between two snapshots; a counter that went down was reset (a restart): count from zero. */
function dropDelta (a: Drops | undefined, b: Drops | undefined): Drops {
  const z: Drops = { tunTxDropped: 0, udpRcvbufErrors: 0, udpInErrors: 0, weft: 0 }
  if (b === undefined) return z
  const d = (k: keyof Drops): number => { const x = b[k] - (a?.[k] ?? 0); return x >= 0 ? x : b[k] }
  return { tunTxDropped: d('tunTxDropped'), udpRcvbufErrors: d('udpRcvbufErrors'), udpInErrors: d('udpInErrors'), weft: d('weft') }
}

/** Queue drops on the UDP flow's way (h1's TUN, h2's socket, the receiver pod's socket, weft on both) between the snapshots around [a, b]. */
export function udpPathDrops (a: number, b: number): Record<string, number> {
  const before = [...rec.drops].reverse().find((x) => x.t <= a)
  const after = rec.drops.find((x) => x.t >= b)
  if (before === undefined || after === undefined) return {}
  const h1 = dropDelta(before.at.h1, after.at.h1)
  const h2 = dropDelta(before.at.h2, after.at.h2)
  const pod = dropDelta(before.at.h2p2, after.at.h2p2)
  return { h1TunTxDropped: h1.tunTxDropped, h2SocketRcvbufErrors: h2.udpRcvbufErrors, receiverPodRcvbufErrors: pod.udpRcvbufErrors, weftDrops: h1.weft + h2.weft }
}

// Run with node --experimental-websocket inside the daemon's namespace: ask
// the daemon's inspector for process.memoryUsage(), force a full GC, ask again.
const PROBE_SCRIPT = `
const port = Number(process.argv[1])
;(async () => {
  const list = await (await fetch('http://127.0.0.1:' + port + '/json/list')).json()
  const ws = new WebSocket(list[0].webSocketDebuggerUrl)
  const pending = new Map()
  let id = 0
  const call = (method, params = {}) => new Promise((resolve, reject) => {
    const i = ++id
    pending.set(i, { resolve, reject })
    ws.send(JSON.stringify({ id: i, method, params }))
  })
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data)
    const p = pending.get(m.id)
    if (p === undefined) return
    pending.delete(m.id)
    if (m.error) p.reject(new Error(m.error.message)); else p.resolve(m.result)
  }
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('cannot open ' + list[0].webSocketDebuggerUrl)) })
  const usage = async () => JSON.parse((await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true })).result.value)
  const before = await usage()
  await call('HeapProfiler.collectGarbage')
  const after = await usage()
  console.log(JSON.stringify({ before, after }))
  ws.close()
})().catch((e) => { console.error(String(e)); process.exitCode = 1 })
`
const INSPECTOR_PORT = 9229
const MB = 1024 * 1024

/** A forced full GC in one daemon, with memoryUsage() around it (marked as a disturbance of its node). */
export async function heapProbe (w: World, n: Node): Promise<void> {
  const inc = n.inc
  if (n.daemon === undefined || inc === undefined) return
  const a = now()
  const win: Window = { node: n.host.name, kind: 'heap-probe', from: a, to: Infinity }
  rec.windows.push(win)
  try {
    process.kill(inc.pid, 'SIGUSR1') // opens the inspector; a no-op once it is open
    const r = await waitFor(async () => {
      const x = await w.topo.exec(n.host.ns, [process.execPath, '--experimental-websocket', '--no-warnings', '-e', PROBE_SCRIPT, String(INSPECTOR_PORT)], { allowFail: true, timeoutMs: 15_000 })
      return x.code === 0 ? x.stdout : undefined
    }, { what: `${n.host.name}'s inspector`, timeoutMs: 20_000, intervalMs: 200 })
    const m = JSON.parse(r) as { before: Record<string, number>, after: Record<string, number> }
    rec.probes.push({
      t: a,
      node: n.host.name,
      pid: inc.pid,
      before: { rss: round(m.before.rss! / MB, 2), heapUsed: round(m.before.heapUsed! / MB, 2) },
      after: { rss: round(m.after.rss! / MB, 2), heapUsed: round(m.after.heapUsed! / MB, 2), heapTotal: round(m.after.heapTotal! / MB, 2), external: round(m.after.external! / MB, 2) }
    })
  } catch (err) {
    rec.failures.push(`${clock(a)} heap probe ${n.host.name}: ${(err as Error).message}`)
  }
  win.to = now() + 1000
}

export function sampleRss (nodes: readonly Node[]): void {
  for (const n of nodes) {
    if (n.inc === undefined || n.daemon === undefined) continue
    // 0: the process is gone (or a zombie with no VmRSS), nothing to sample
    const mb = memoryOf(n.inc.pid).rssMiB
    if (mb > 0) n.inc.rss.push({ t: now(), mb })
  }
  rec.load.push({ t: now(), loadavg1: os.loadavg()[0]! })
}
