// The soak's nodes and their churn: starting and stopping a daemon (one
// incarnation each, its stderr harvested when it ends), and the churn
// actions of a tick (restart, leave, decommission, join, rejoin), each timed
// and marked as a window that the samples overlapping it are classed by.
import { formatCidr } from '../../src/packet/net'
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { nodePid } from '../../lab/cpu'
import type { Cluster, Daemon } from '../../lab/daemons'
import { waitFor } from '../../lab/netns'
import type { Host, Topology } from '../../lab/netns'
import { addPods } from '../../lab/pods'
import type { Pod } from '../../lab/pods'
import { ping } from '../../lab/traffic'
import { clock, now, rec } from './record'
import type { ChurnOp, Incarnation, Window } from './record'

export interface Node {
  host: Host
  daemon: Daemon | undefined
  inc: Incarnation | undefined
  pods: Pod[]
  /** the subnet its pods were made for */
  subnet?: string
}

export async function start (w: { c: Cluster }, n: Node): Promise<void> {
  const d = await w.c.start(n.host)
  n.daemon = d
  n.inc = { node: n.host.name, pid: nodePid(d.child.pid), started: now(), rss: [], errors: [], warnings: [], otherStderr: [] }
  rec.incarnations.push(n.inc)
}

/** What node prints when its inspector opens (our heap probes): not the daemon's output. */
const INSPECTOR_LINE = /^(Debugger listening on |Debugger attached\.|Debugger ending on |For help, see: https:\/\/nodejs\.org)/

/** What a daemon's stderr says, once it has ended (or at the end of the run). */
export function harvest (n: Node): void {
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

export async function stop (n: Node): Promise<number | null> {
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

export interface World { topo: Topology, c: Cluster, nodes: Node[], store: SqliteStore }

async function timed (node: string, kind: ChurnOp['kind'], fn: () => Promise<string | undefined>): Promise<void> {
  // part of the schedule, not a wait for an event: a quiet second so this
  // change's window does not begin inside the previous one's
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
export function churnFor (w: World, tick: number): Promise<void> | undefined {
  const [, , h3, h4, h5] = w.nodes as [Node, Node, Node, Node, Node]
  const minute = Math.floor(tick / 6)
  switch (tick % 6) {
    case 2: return minute % 4 === 0 ? restart(w, h3) : undefined
    case 3: return h4.daemon !== undefined ? leave(w, h4, false) : join(w, h4, h4.pods.length === 0 ? 'join' : 'rejoin')
    case 5: return h5.daemon !== undefined ? leave(w, h5, true) : join(w, h5, h5.pods.length === 0 ? 'join' : 'rejoin')
    default: return undefined
  }
}
