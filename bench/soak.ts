// Soak: three real `weft run` daemons under mixed traffic and churn for
// --minutes (default 10), watching for what only time shows: memory that
// grows (a leak), packets lost when nothing explains it, error logs.
//
// 1. five hosts on the bridge underlay, one SQLite store; daemons on h1, h2
//    and h3 (the core) with two pods each, for the whole run
// 2. every 10 s (a tick), at once:
//    - pings: 40 at 0.25 s between core pods on different nodes (h1->h2,
//      h2->h3, h3->h1), and from h4's and h5's pods while those are up
//    - UDP at a fixed rate: iperf3 -u, 8 s at 20 Mbit/s, h1p2 -> h2p2
//    - every third tick a TCP burst: iperf3, 4 s, between core pods (it
//      fills the dataplane: the load that may cost the other flows packets)
//    - churn, one action per tick on a fixed cycle of six ticks (a minute):
//      h3's daemon restarted (every fourth minute, from the first), h4
//      leaving and joining again (its lease kept, like a reboot), h5 leaving
//      with its lease deleted (decommissioned, so every peer removes it) and
//      joining again (a new lease)
//    - each daemon's RSS (VmRSS of /proc/PID/status), and the kernel's
//      queue drops on the way: each node's TUN tx_dropped (packets the
//      kernel queued for weft that weft did not read in time), UDP
//      RcvbufErrors of each node and of the UDP receiver pod, weft's own
//      drop counters
// 3. every ping and UDP sample is classed by what overlapped it: "churn"
//    (a node of its path was restarting, joining, leaving or being
//    heap-probed), else "loaded" (a TCP burst ran), else "quiet"
// 4. error-level log lines (pino level >= 50) and stderr lines that are not
//    JSON, from every daemon incarnation
// 5. heap probes, after the first minute, every 3 minutes after that and at
//    the end: SIGUSR1 opens each
//    daemon's inspector (on 127.0.0.1:9229 of its own namespace), and a
//    node script run there forces a full GC (HeapProfiler.collectGarbage)
//    and reads process.memoryUsage() before and after it. V8 may run no
//    full GC of its own for many minutes, so RSS alone also counts garbage
//    not yet collected; after a forced full GC, what is left is live
// 6. one progress line per tick on stderr; at the end a summary (RSS start,
//    end, max and slope per core daemon, loss per class, TCP figures, churn
//    timings, error logs, machine load) on stdout and as JSON in --out
//
// Leak verdict, for the daemons that ran through (h1, h2; h3 restarts): from
// the first probe to the last, RSS after the forced GC grew less than
// 2.5 MB ("rssFlat") and the heap in use after it less than 1 MB
// ("heapFlat"); null when the run was too short for two probes. The RSS
// slope over the run is printed beside them. Lost packets are set beside the
// queue drops counted at the same time on their way: loss the kernel
// counted at a queue that was not emptied in time (weft's TUN, a socket) is
// loss the load causes; "unexplained" is what is left. Exits 1 when a
// verdict fails (RSS or heap grew, a quiet ping was lost, UDP loss outside
// churn that no queue counted, an error logged, a churn step or a traffic
// run failed); 0 without root or a tool (with the reason).
//
// Everything is bounded (ping counts, iperf3 durations, exec timeouts, the
// whole run) and torn down at the end, on failure and on Ctrl-C (which also
// writes what was measured so far).
//
// usage: sudo node dist/bench/soak.js [--minutes 10] [--out soak-result.json] [--backend vxlan]
//        (npm run test:soak builds first)
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { formatCidr } from '../src/ip/net'
import { SqliteStore } from '../src/store/sqlite/sqlite-store'
import { cluster } from '../test/backend/daemons'
import type { Cluster, Daemon } from '../test/backend/daemons'
import { waitFor, withTopology } from '../test/helpers/netns'
import type { Host, Topology } from '../test/helpers/netns'
import { addPods } from '../test/helpers/pods'
import type { Pod } from '../test/helpers/pods'
import { netnsSkipReason, toolSkipReason } from '../test/helpers/skip'
import { iperf, ping } from '../test/helpers/traffic'

function arg (name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def
}

const MINUTES = Number(arg('minutes', '10'))
const OUT = path.resolve(arg('out', 'soak-result.json'))
const BACKEND = arg('backend', 'vxlan')
if (!(MINUTES > 0 && MINUTES <= 120)) throw new RangeError(`--minutes must be in (0, 120], got ${arg('minutes', '10')}`)
if (!['vxlan', 'udp', 'ipip'].includes(BACKEND)) throw new RangeError(`--backend takes vxlan, udp or ipip (a TUN backend), got ${BACKEND}`)

const TICK_MS = 10_000
const PINGS = { count: 40, intervalS: 0.25, waitS: 1 }
const UDP = { seconds: 8, mbps: 20, port: 5202, len: 1200 }
const TCP_SECONDS = 4
const WARMUP_MS = 60_000
const PROBE_EVERY_MS = 3 * 60_000
const RSS_GROWTH_MB = 2.5
const HEAP_GROWTH_MB = 1

const progress = (msg: string): void => { process.stderr.write(`soak: ${msg}\n`) }
const t0 = Date.now()
const now = (): number => Date.now() - t0
const clock = (ms: number): string => `${String(Math.floor(ms / 60_000)).padStart(2, '0')}:${String(Math.floor(ms / 1000) % 60).padStart(2, '0')}`

// --- what is recorded ------------------------------------------------------

type Class = 'quiet' | 'loaded' | 'churn'
interface Window { node: string, kind: string, from: number, to: number }
interface PingChunk { from: string, to: string, t0: number, t1: number, sent: number, received: number, cls: Class }
interface UdpChunk { t0: number, t1: number, packets: number, lost: number, cls: Class }
interface Burst { t0: number, t1: number, from: string, to: string, gbps: number, retransmits: number }
interface RssSample { t: number, mb: number }
interface Incarnation { node: string, pid: number, started: number, stopped?: number, exit?: number | null, rss: RssSample[], errors: string[], warnings: string[], otherStderr: string[], drops?: Record<string, number> }
/** process.memoryUsage() of a daemon just before and just after a forced full GC, in MB. */
interface Probe { t: number, node: string, pid: number, before: { rss: number, heapUsed: number }, after: { rss: number, heapUsed: number, heapTotal: number, external: number } }
/** Drop counters of one namespace at one moment (cumulative; a restart resets weft's and the TUN's). */
interface Drops { tunTxDropped: number, udpRcvbufErrors: number, udpInErrors: number, weft: number }
interface DropSnapshot { t: number, at: Record<string, Drops> }
interface ChurnOp { t: number, node: string, kind: 'restart' | 'leave' | 'join' | 'decommission' | 'rejoin', ms: number, ok: boolean, note?: string }

const rec = {
  windows: [] as Window[],
  bursts: [] as Burst[],
  pings: [] as PingChunk[],
  udp: [] as UdpChunk[],
  incarnations: [] as Incarnation[],
  churn: [] as ChurnOp[],
  load: [] as Array<{ t: number, loadavg1: number }>,
  drops: [] as DropSnapshot[],
  probes: [] as Probe[],
  failures: [] as string[]
}

function classify (nodes: readonly string[], a: number, b: number): Class {
  if (rec.windows.some((w) => nodes.includes(w.node) && w.from <= b && w.to >= a)) return 'churn'
  if (rec.bursts.some((x) => x.t0 <= b && x.t1 >= a)) return 'loaded'
  return 'quiet'
}

// --- the nodes -------------------------------------------------------------

interface Node {
  host: Host
  daemon: Daemon | undefined
  inc: Incarnation | undefined
  pods: Pod[]
  /** the subnet its pods were made for */
  subnet?: string
}

/** The daemon's node process: `ip netns exec` execs into node, but look, in case it forked. */
function nodePid (pid: number): number {
  const comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim()
  if (comm !== 'ip') return pid
  const kids = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
  return kids[0] ?? pid
}

function rssMb (pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1]) / 1024
  } catch { return undefined }
}

async function start (w: { c: Cluster }, n: Node): Promise<void> {
  const d = await w.c.start(n.host)
  n.daemon = d
  n.inc = { node: n.host.name, pid: nodePid(d.child.pid), started: now(), rss: [], errors: [], warnings: [], otherStderr: [] }
  rec.incarnations.push(n.inc)
}

/** What node prints when its inspector opens (our heap probes): not the daemon's output. */
const INSPECTOR_LINE = /^(Debugger listening on |Debugger attached\.|Debugger ending on |For help, see: https:\/\/nodejs\.org)/

/** What a daemon's stderr says, once it has ended (or at the end of the run). */
function harvest (n: Node): void {
  const d = n.daemon
  const inc = n.inc
  if (d === undefined || inc === undefined) return
  for (const line of d.child.stderrLines) {
    if (line.trim() === '' || INSPECTOR_LINE.test(line)) continue
    let j: { level?: number, msg?: string, err?: unknown } | undefined
    try { j = JSON.parse(line) as typeof j } catch { j = undefined }
    if (j === undefined || typeof j.level !== 'number') {
      inc.otherStderr.push(line.slice(0, 300))
    } else if (j.level >= 50) {
      inc.errors.push(`${j.msg ?? ''}${j.err !== undefined ? `: ${JSON.stringify(j.err)}` : ''}`.slice(0, 300))
    } else if (j.level >= 40) {
      inc.warnings.push(`${j.msg ?? ''}${j.err !== undefined ? `: ${JSON.stringify(j.err)}` : ''}`.slice(0, 300))
    }
  }
}

async function stop (n: Node): Promise<number | null> {
  const d = n.daemon
  if (d === undefined) return null
  // what weft itself dropped in this life, by reason
  const st = await d.status().catch(() => undefined)
  if (n.inc !== undefined && st !== undefined) n.inc.drops = st.counters.drops
  const exit = await d.child.stop(5000)
  if (n.inc !== undefined) { n.inc.stopped = now(); n.inc.exit = exit.code }
  harvest(n)
  n.daemon = undefined
  return exit.code
}

// --- traffic ---------------------------------------------------------------

interface UdpResult { packets: number, lost: number }

/** One bounded iperf3 UDP run at a fixed rate; the server reports what arrived. */
async function udpRun (topo: Topology, server: Pod, client: Pod): Promise<UdpResult> {
  const srv = topo.spawn(server.ns, ['iperf3', '-s', '-1', '-p', String(UDP.port)])
  try {
    await waitFor(async () => (await topo.exec(server.ns, ['ss', '-Hltn', `sport = :${UDP.port}`], { timeoutMs: 5000 })).stdout.trim() !== '',
      { timeoutMs: 5000, intervalMs: 50, what: `iperf3 server in ${server.name}` })
    const r = await topo.exec(client.ns, ['iperf3', '-u', '-c', server.ip, '-p', String(UDP.port), '-b', `${UDP.mbps}M`, '-l', String(UDP.len),
      '-t', String(UDP.seconds), '-J', '--connect-timeout', '3000'], { allowFail: true, timeoutMs: UDP.seconds * 1000 + 20_000 })
    const j = JSON.parse(r.stdout) as { error?: string, end?: { sum?: { packets?: number, lost_packets?: number } } }
    if (j.error !== undefined || j.end?.sum?.packets === undefined) throw new Error(`iperf3 -u: ${j.error ?? r.stderr.trim()}`)
    return { packets: j.end.sum.packets, lost: j.end.sum.lost_packets ?? 0 }
  } finally {
    await srv.stop(500)
  }
}

async function pingChunk (topo: Topology, from: Pod, to: Pod): Promise<void> {
  const a = now()
  const r = await ping(topo, from, to.ip, PINGS)
  const b = now()
  rec.pings.push({ from: from.name, to: to.name, t0: a, t1: b, sent: r.sent, received: r.received, cls: 'quiet' })
}

async function udpChunk (topo: Topology, server: Pod, client: Pod): Promise<void> {
  const a = now()
  try {
    const r = await udpRun(topo, server, client)
    rec.udp.push({ t0: a, t1: now(), packets: r.packets, lost: r.lost, cls: 'quiet' })
  } catch (err) {
    rec.failures.push(`${clock(a)} UDP ${client.name} -> ${server.name}: ${(err as Error).message}`)
  }
}

async function burst (topo: Topology, server: Pod, client: Pod): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const a = now()
  // the window is the whole run, server start-up included: it is when the load may be felt
  const w: Burst = { t0: a, t1: a + (TCP_SECONDS + 5) * 1000, from: client.name, to: server.name, gbps: 0, retransmits: 0 }
  rec.bursts.push(w)
  try {
    const r = await iperf(topo, server, client, { serverIp: server.ip, seconds: TCP_SECONDS, port: 5201 })
    w.gbps = r.gbps
    w.retransmits = r.retransmits
  } catch (err) {
    rec.failures.push(`${clock(a)} TCP ${client.name} -> ${server.name}: ${(err as Error).message}`)
  }
  w.t1 = now()
}

// --- churn -----------------------------------------------------------------

interface World { topo: Topology, c: Cluster, nodes: Node[], store: SqliteStore, nextProbe: number }

async function timed (node: string, kind: ChurnOp['kind'], fn: () => Promise<string | undefined>): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const a = now()
  const win: Window = { node, kind, from: a, to: Infinity }
  rec.windows.push(win)
  let ok = true
  let note: string | undefined
  try {
    note = await fn()
  } catch (err) {
    ok = false
    note = (err as Error).message.slice(0, 500)
    rec.failures.push(`${clock(a)} ${kind} ${node}: ${note}`)
  }
  // a second for the peers to settle after the change
  win.to = now() + 1000
  rec.churn.push({ t: a, node, kind, ms: now() - a, ok, ...(note !== undefined ? { note } : {}) })
}

async function restart (w: World, n: Node): Promise<void> {
  await timed(n.host.name, 'restart', async () => {
    const code = await stop(n)
    if (code !== 0) throw new Error(`exit ${String(code)} on SIGTERM`)
    await start(w, n)
    return undefined
  })
}

/** A joining node: daemon up, its pod (made once, kept across leaves), then reachable from a core pod. */
async function join (w: World, n: Node, kind: 'join' | 'rejoin'): Promise<void> {
  await timed(n.host.name, kind, async () => {
    await start(w, n)
    const d = n.daemon as Daemon
    const subnet = formatCidr(d.env().subnet)
    if (n.pods.length === 0) {
      n.pods = await addPods(w.topo, n.host, { subnet, count: 1, mtu: d.env().mtu })
      n.subnet = subnet
    } else if (subnet !== n.subnet) {
      // subnet.env names the old subnet, so a rejoining node asks for it back first
      throw new Error(`rejoined with another subnet (${subnet}) than its pod's (${String(n.subnet)})`)
    }
    const core = w.nodes[0]!.pods[0]!
    const a = Date.now()
    await waitFor(async () => (await ping(w.topo, n.pods[0]!, core.ip, { count: 1, waitS: 1 })).received === 1, { what: `${n.pods[0]!.name} reaches ${core.name}`, timeoutMs: 10_000, intervalMs: 100 })
    return `${subnet}, reachable ${Date.now() - a} ms after its daemon ran`
  })
}

async function leave (w: World, n: Node, decommission: boolean): Promise<void> {
  await timed(n.host.name, decommission ? 'decommission' : 'leave', async () => {
    const subnet = n.daemon?.env().subnet
    const code = await stop(n)
    if (code !== 0) throw new Error(`exit ${String(code)} on SIGTERM`)
    if (decommission && subnet !== undefined) {
      await w.store.deleteLease(subnet)
      return `lease ${formatCidr(subnet)} deleted`
    }
    return undefined
  })
}

/** The churn action of a tick: a fixed cycle of six ticks (a minute). */
function churnFor (w: World, tick: number): Promise<void> | undefined {
  const [, , h3, h4, h5] = w.nodes as [Node, Node, Node, Node, Node]
  const minute = Math.floor(tick / 6)
  switch (tick % 6) {
    case 2: return minute % 4 === 0 ? restart(w, h3) : undefined
    case 3: return h4.daemon !== undefined ? leave(w, h4, false) : join(w, h4, h4.pods.length === 0 ? 'join' : 'rejoin')
    case 5: return h5.daemon !== undefined ? leave(w, h5, true) : join(w, h5, h5.pods.length === 0 ? 'join' : 'rejoin')
    default: return undefined
  }
}

// --- the run ---------------------------------------------------------------

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

async function sampleDrops (w: World): Promise<void> {
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
function udpPathDrops (a: number, b: number): Record<string, number> {
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
async function heapProbe (w: World, n: Node): Promise<void> {
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

function sampleRss (nodes: readonly Node[]): void {
  for (const n of nodes) {
    if (n.inc === undefined || n.daemon === undefined) continue
    const mb = rssMb(n.inc.pid)
    if (mb !== undefined) n.inc.rss.push({ t: now(), mb })
  }
  rec.load.push({ t: now(), loadavg1: os.loadavg()[0]! })
}

async function tick (w: World, i: number): Promise<string | undefined> {
  const [h1, h2, h3, h4, h5] = w.nodes as [Node, Node, Node, Node, Node]
  sampleRss(w.nodes)
  await sampleDrops(w)
  // heap probes once the first minute is over, then every PROBE_EVERY_MS (before this tick's traffic)
  if (now() >= w.nextProbe) {
    w.nextProbe = now() + PROBE_EVERY_MS
    await Promise.all([h1, h2, h3].map(async (n) => await heapProbe(w, n)))
  }
  const jobs: Array<Promise<void>> = []
  const churn = churnFor(w, i)
  const churning = churn !== undefined ? [h3, h4, h5][[2, 3, 5].indexOf(i % 6)]?.host.name : undefined
  for (const [a, b] of [[h1, h2], [h2, h3], [h3, h1]] as const) jobs.push(pingChunk(w.topo, a.pods[0]!, b.pods[0]!))
  // a leaving or joining node's pings belong to its own timing, not here
  for (const [n, to] of [[h4, h1], [h5, h2]] as const) {
    if (n.daemon !== undefined && churning !== n.host.name) jobs.push(pingChunk(w.topo, n.pods[0]!, to.pods[0]!))
  }
  jobs.push(udpChunk(w.topo, h2.pods[1]!, h1.pods[1]!))
  if (i % 3 === 1) {
    const pairs = [[h3.pods[1]!, h1.pods[0]!], [h1.pods[1]!, h3.pods[0]!], [h2.pods[0]!, h3.pods[1]!]] as const
    const [server, client] = pairs[Math.floor(i / 3) % pairs.length]!
    jobs.push(burst(w.topo, server, client))
  }
  if (churn !== undefined) jobs.push(churn)
  jobs.push(new Promise((resolve) => setTimeout(resolve, TICK_MS)))
  await Promise.all(jobs)
  return churning
}

function lossOf (xs: ReadonlyArray<{ sent: number, received: number }>): { sent: number, lost: number, pct: number } {
  const sent = xs.reduce((a, x) => a + x.sent, 0)
  const lost = sent - xs.reduce((a, x) => a + x.received, 0)
  return { sent, lost, pct: sent === 0 ? 0 : (100 * lost) / sent }
}

/** Least-squares slope in MB per minute. */
function slope (xs: readonly RssSample[]): number {
  if (xs.length < 2) return 0
  const n = xs.length
  const mx = xs.reduce((a, s) => a + s.t, 0) / n
  const my = xs.reduce((a, s) => a + s.mb, 0) / n
  const num = xs.reduce((a, s) => a + (s.t - mx) * (s.mb - my), 0)
  const den = xs.reduce((a, s) => a + (s.t - mx) ** 2, 0)
  return den === 0 ? 0 : (num / den) * 60_000
}

function reclassify (): void {
  for (const p of rec.pings) p.cls = classify([p.from.slice(0, 2), p.to.slice(0, 2)], p.t0, p.t1)
  for (const u of rec.udp) u.cls = classify(['h1', 'h2'], u.t0, u.t1)
}

function progressLine (i: number, nodes: readonly Node[], churning: string | undefined): string {
  reclassify()
  const rss = nodes.map((n) => {
    const last = n.inc?.rss[n.inc.rss.length - 1]
    return n.daemon !== undefined && last !== undefined ? `${n.host.name} ${last.mb.toFixed(1)}` : `${n.host.name} -`
  }).join(' ')
  const cls = (c: Class): string => { const l = lossOf(rec.pings.filter((p) => p.cls === c)); return `${c} ${l.lost}/${l.sent}` }
  const udp = rec.udp.reduce((a, u) => ({ p: a.p + u.packets, l: a.l + u.lost }), { p: 0, l: 0 })
  const lastBurst = rec.bursts[rec.bursts.length - 1]
  const op = rec.churn[rec.churn.length - 1]
  const errors = nodes.reduce((a, n) => a + (n.daemon?.child.stderrLines.filter((l) => /^\{"level":(5|6)\d/.test(l)).length ?? 0), 0) +
    rec.incarnations.filter((x) => x.stopped !== undefined).reduce((a, x) => a + x.errors.length, 0)
  return `${clock(now())} tick ${i} | RSS MB ${rss} | ping lost ${cls('quiet')}, ${cls('loaded')}, ${cls('churn')} | UDP lost ${udp.l}/${udp.p}` +
    (lastBurst !== undefined ? ` | TCP ${lastBurst.gbps.toFixed(2)} Gbit/s` : '') +
    (churning !== undefined && op !== undefined ? ` | ${op.kind} ${op.node} ${(op.ms / 1000).toFixed(1)} s${op.ok ? '' : ' FAILED'}` : '') +
    ` | errors ${errors} | load ${os.loadavg()[0]!.toFixed(2)}`
}

interface DaemonSummary {
  node: string
  incarnations: number
  rssStartMB: number
  rssEndMB: number
  rssMaxMB: number
  /** fitted to the longest incarnation's samples after its first minute; it counts garbage not yet collected too */
  rssSlopeMBPerMin: number
  rssSlopeOver: string
  /** the first and last heap probes of one process: memoryUsage() after a forced full GC */
  probes: { from: string, to: string, rssAfterGcMB: [number, number], heapUsedAfterGcMB: [number, number], garbageCollectedAtLastMB: number, heapUsedAfterGcSeries: Array<[string, number]>, heapSlopeMBPerMin: number } | null
  /** RSS after GC grew less than RSS_GROWTH_MB between them (null: no two probes of one process) */
  rssFlat: boolean | null
  /** the heap in use after GC grew less than HEAP_GROWTH_MB */
  heapFlat: boolean | null
}

/** The slope over the longest incarnation's samples after its first minute. */
function rssFit (incs: readonly Incarnation[]): { slope: number, over: string } {
  const span = (x: Incarnation): number => x.rss.length < 2 ? 0 : x.rss[x.rss.length - 1]!.t - x.rss[0]!.t
  const longest = [...incs].sort((a, b) => span(b) - span(a))[0]
  const steady = longest === undefined ? [] : longest.rss.filter((s) => s.t - longest.started >= WARMUP_MS)
  const fit = steady.length >= 3 ? steady : (longest?.rss ?? [])
  return { slope: round(slope(fit), 3), over: fit.length > 0 ? `${clock(fit[0]!.t)}-${clock(fit[fit.length - 1]!.t)} (${fit.length} samples)` : 'none' }
}

/** All true where known; null when nothing is known. */
function allKnown (xs: ReadonlyArray<boolean | null>): boolean | null {
  const known = xs.filter((x): x is boolean => x !== null)
  return known.length === 0 ? null : known.every(Boolean)
}

function summarize (minutesRun: number, interrupted: boolean): Record<string, unknown> {
  reclassify()
  const core = ['h1', 'h2', 'h3']
  const daemons: DaemonSummary[] = core.map((name) => {
    const incs = rec.incarnations.filter((x) => x.node === name && x.rss.length > 0)
    const all = incs.flatMap((x) => x.rss)
    const fit = rssFit(incs)
    // two probes of the same process, the first and the last
    const mine = rec.probes.filter((p) => p.node === name)
    const last = mine[mine.length - 1]
    const first = mine.find((p) => p.pid === last?.pid)
    const two = first !== undefined && last !== undefined && first !== last
    return {
      node: name,
      incarnations: incs.length,
      rssStartMB: round(all[0]?.mb ?? 0),
      rssEndMB: round(all[all.length - 1]?.mb ?? 0),
      rssMaxMB: round(Math.max(0, ...all.map((x) => x.mb))),
      rssSlopeMBPerMin: fit.slope,
      rssSlopeOver: fit.over,
      probes: two
        ? {
            from: clock(first.t),
            to: clock(last.t),
            rssAfterGcMB: [first.after.rss, last.after.rss],
            heapUsedAfterGcMB: [first.after.heapUsed, last.after.heapUsed],
            garbageCollectedAtLastMB: round(last.before.heapUsed - last.after.heapUsed, 2),
            heapUsedAfterGcSeries: mine.filter((p) => p.pid === last.pid).map((p) => [clock(p.t), p.after.heapUsed]),
            heapSlopeMBPerMin: round(slope(mine.filter((p) => p.pid === last.pid).map((p) => ({ t: p.t, mb: p.after.heapUsed }))), 3)
          }
        : null,
      rssFlat: two ? last.after.rss - first.after.rss < RSS_GROWTH_MB : null,
      heapFlat: two ? last.after.heapUsed - first.after.heapUsed < HEAP_GROWTH_MB : null
    }
  })
  const churnNodes = ['h4', 'h5'].map((name) => ({ node: name, rssMaxMB: round(Math.max(0, ...rec.incarnations.filter((x) => x.node === name).flatMap((x) => x.rss.map((r) => r.mb)))) }))
  const ping = Object.fromEntries((['quiet', 'loaded', 'churn'] as const).map((c) => {
    const l = lossOf(rec.pings.filter((p) => p.cls === c))
    return [c, { sent: l.sent, lost: l.lost, lossPct: round(l.pct, 3) }]
  }))
  const udp = Object.fromEntries((['quiet', 'loaded', 'churn'] as const).map((c) => {
    const xs = rec.udp.filter((u) => u.cls === c)
    const packets = xs.reduce((a, u) => a + u.packets, 0)
    const lost = xs.reduce((a, u) => a + u.lost, 0)
    // the queue drops counted meanwhile on the flow's way: loss the load explains
    const queues: Record<string, number> = {}
    let unexplained = 0
    for (const u of xs) {
      const d = udpPathDrops(u.t0, u.t1)
      for (const [k, v] of Object.entries(d)) queues[k] = (queues[k] ?? 0) + v
      unexplained += Math.max(0, u.lost - Object.values(d).reduce((a, v) => a + v, 0))
    }
    return [c, { samples: xs.length, packets, lost, lossPct: round(packets === 0 ? 0 : (100 * lost) / packets, 3), queueDrops: queues, unexplained }]
  }))
  const gbps = rec.bursts.filter((b) => b.gbps > 0).map((b) => b.gbps).sort((a, b) => a - b)
  const byKind = (k: ChurnOp['kind']): Record<string, unknown> => {
    const xs = rec.churn.filter((c) => c.kind === k)
    const ms = xs.map((c) => c.ms).sort((a, b) => a - b)
    return { count: xs.length, failed: xs.filter((c) => !c.ok).length, medianMs: ms[ms.length >> 1] ?? null, maxMs: ms[ms.length - 1] ?? null }
  }
  const errors = rec.incarnations.flatMap((x) => x.errors.map((e) => `${x.node}: ${e}`))
  const other = rec.incarnations.flatMap((x) => x.otherStderr.map((e) => `${x.node}: ${e}`))
  const loads = rec.load.map((l) => l.loadavg1)
  const verdict = {
    // over the daemons probed twice in one life (null: none was, the run was too short)
    rssFlat: allKnown(daemons.map((d) => d.rssFlat)),
    heapFlat: allKnown(daemons.map((d) => d.heapFlat)),
    quietPingLoss: (ping.quiet as { lost: number }).lost === 0,
    // UDP lost outside churn that no queue counted
    noUnexplainedUdpLoss: (['quiet', 'loaded'] as const).every((c) => (udp[c] as { unexplained: number }).unexplained === 0),
    noErrorLogs: errors.length === 0,
    churnOk: rec.churn.every((c) => c.ok),
    noTrafficFailures: rec.failures.length === 0
  }
  return {
    bench: 'soak',
    backend: BACKEND,
    minutes: round(minutesRun, 2),
    interrupted,
    startedAt: new Date(t0).toISOString(),
    machine: { cores: os.cpus().length, loadavg1Min: round(Math.min(...loads), 2), loadavg1Median: round([...loads].sort((a, b) => a - b)[loads.length >> 1] ?? 0, 2), loadavg1Max: round(Math.max(...loads), 2) },
    daemons,
    churnNodes,
    ping,
    udp: { rateMbps: UDP.mbps, ...udp },
    tcpBursts: { count: rec.bursts.length, medianGbps: round(gbps[gbps.length >> 1] ?? 0, 3), minGbps: round(gbps[0] ?? 0, 3), maxGbps: round(gbps[gbps.length - 1] ?? 0, 3), retransmits: rec.bursts.reduce((a, b) => a + b.retransmits, 0) },
    churn: { restart: byKind('restart'), leave: byKind('leave'), join: byKind('join'), rejoin: byKind('rejoin'), decommission: byKind('decommission'), ops: rec.churn },
    logs: { errors: errors.length, firstErrors: errors.slice(0, 10), warnings: rec.incarnations.reduce((a, x) => a + x.warnings.length, 0), firstWarnings: rec.incarnations.flatMap((x) => x.warnings.map((e) => `${x.node}: ${e}`)).slice(0, 10), nonJsonStderrLines: other.length, firstNonJson: [...new Set(other.map((l) => l.replace(/^(h\d): \(node:\d+\)/, '$1: (node)')))].slice(0, 5) },
    failures: rec.failures,
    verdict,
    probes: rec.probes,
    weftDropsByIncarnation: rec.incarnations.filter((x) => x.drops !== undefined && Object.keys(x.drops).length > 0).map((x) => ({ node: x.node, started: clock(x.started), drops: x.drops })),
    rss: Object.fromEntries(rec.incarnations.map((x, i) => [`${x.node}#${i}`, x.rss.map((s) => [Math.round(s.t / 1000), round(s.mb, 1)])]))
  }
}

const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d

function report (s: Record<string, unknown>): void {
  const out = (l: string): void => { process.stdout.write(l + '\n') }
  const d = s.daemons as DaemonSummary[]
  out(`weft soak, ${BACKEND}, ${String(s.minutes)} min${s.interrupted === true ? ' (interrupted)' : ''}; machine load (1-min avg) ${JSON.stringify(s.machine)}`)
  const verdict = (v: boolean | null): string => v === null ? 'n/a' : v ? 'flat' : 'GROWS'
  out('daemon  incarnations  RSS MB start  end     max     slope MB/min (over)')
  for (const x of d) {
    out(`${x.node.padEnd(8)}${String(x.incarnations).padEnd(14)}${x.rssStartMB.toFixed(1).padEnd(14)}${x.rssEndMB.toFixed(1).padEnd(8)}${x.rssMaxMB.toFixed(1).padEnd(8)}${x.rssSlopeMBPerMin.toFixed(3)} (${x.rssSlopeOver})`)
    const p = x.probes
    if (p !== null) {
      out(`        after a forced full GC, ${p.from} -> ${p.to}: RSS ${p.rssAfterGcMB[0]} -> ${p.rssAfterGcMB[1]} MB (${verdict(x.rssFlat)}), heap in use ${p.heapUsedAfterGcMB[0]} -> ${p.heapUsedAfterGcMB[1]} MB (${verdict(x.heapFlat)}); the last GC freed ${p.garbageCollectedAtLastMB} MB`)
      out(`        heap in use after GC at each probe: ${p.heapUsedAfterGcSeries.map(([t, mb]) => `${t} ${mb}`).join(', ')} (${p.heapSlopeMBPerMin} MB/min)`)
    } else {
      out('        not probed twice in one life (restarted, or too short a run)')
    }
  }
  out(`churn nodes max RSS: ${JSON.stringify(s.churnNodes)}`)
  out(`ping loss by class: ${JSON.stringify(s.ping)}`)
  out(`UDP ${UDP.mbps} Mbit/s loss by class: ${JSON.stringify(s.udp)}`)
  out(`TCP bursts: ${JSON.stringify(s.tcpBursts)}`)
  const churn = s.churn as Record<string, unknown>
  out(`churn: restart ${JSON.stringify(churn.restart)} leave ${JSON.stringify(churn.leave)} join ${JSON.stringify(churn.join)} rejoin ${JSON.stringify(churn.rejoin)} decommission ${JSON.stringify(churn.decommission)}`)
  out(`logs: ${JSON.stringify(s.logs)}`)
  if ((s.failures as string[]).length > 0) out(`failures: ${JSON.stringify(s.failures)}`)
  out(`verdict: ${JSON.stringify(s.verdict)}`)
  out(`JSON: ${OUT}`)
}

async function main (): Promise<number> {
  const why = netnsSkipReason() ?? toolSkipReason('iperf3', 'ping', 'ss')
  if (why !== undefined) {
    progress(`skipped: ${why}`)
    return 0
  }
  const deadline = MINUTES * 60_000
  const cleanups: Array<() => void> = []
  let world: World | undefined
  let interrupted = false
  const finish = (): Record<string, unknown> => {
    for (const n of world?.nodes ?? []) harvest(n)
    const s = summarize(now() / 60_000, interrupted)
    fs.writeFileSync(OUT, JSON.stringify(s, null, 1) + '\n')
    return s
  }
  // Ctrl-C: the namespace harness tears the topology down at once (its own
  // SIGINT hook, which runs after this one); write what was measured and go.
  const onSigint = (): void => {
    interrupted = true
    progress('interrupted: writing what was measured, tearing down')
    try { report(finish()) } catch (err) { progress(`could not write the summary: ${String(err)}`) }
    for (const fn of cleanups.reverse()) { try { fn() } catch { /* best effort */ } }
    setImmediate(() => process.exit(130))
  }
  process.once('SIGINT', onSigint)
  progress(`${MINUTES} min, backend ${BACKEND}, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} cores; JSON to ${OUT}`)
  try {
    await withTopology(undefined, { hosts: 5, label: 'soak', timeoutMs: deadline + 5 * 60_000 }, async (topo) => {
      const c = cluster({ after: (fn) => { cleanups.push(fn) } }, topo, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: BACKEND } }))
      const store = new SqliteStore({ path: `${c.dir}/store.db` })
      cleanups.push(() => { void store.close() })
      const nodes: Node[] = topo.hosts.map((host) => ({ host, daemon: undefined, inc: undefined, pods: [] }))
      world = { topo, c, nodes, store, nextProbe: WARMUP_MS }
      for (const n of nodes.slice(0, 3)) {
        await start(world, n)
        n.pods = await addPods(topo, n.host, { subnet: formatCidr(n.daemon!.env().subnet), count: 2, mtu: n.daemon!.env().mtu })
      }
      await waitFor(async () => (await Promise.all(nodes.slice(0, 3).map((n) => n.daemon!.status()))).every((s) => s.peers.length === 2), { what: 'the three core nodes know each other', timeoutMs: 10_000 })
      progress('three nodes up, two pods each; soaking')
      for (let i = 0; now() < deadline && !interrupted; i++) {
        const churning = await tick(world, i)
        progress(progressLine(i, nodes, churning))
      }
      sampleRss(nodes)
      await sampleDrops(world)
      // the last heap probe, with no traffic running
      await Promise.all(nodes.map(async (n) => await heapProbe(world as World, n)))
      for (const n of nodes) await stop(n)
    })
  } catch (err) {
    rec.failures.push(`aborted: ${(err as Error).message}`)
    progress(`aborted: ${(err as Error).stack ?? String(err)}`)
  } finally {
    for (const fn of cleanups.reverse()) {
      try { fn() } catch (err) { progress(`cleanup: ${String(err)}`) }
    }
  }
  if (interrupted) return 130
  const s = finish()
  report(s)
  return Object.values(s.verdict as Record<string, boolean | null>).every((v) => v !== false) ? 0 : 1
}

main().then((code) => { process.exitCode = code }, (err: unknown) => {
  progress(`failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
  process.exitCode = 1
})
