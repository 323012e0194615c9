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
// 5. heap probes, at tick 6 (the first minute over), at the end of warm-up
//    (tick 24), every 18 ticks (3 minutes) from it, and at the end, each
//    before its tick's traffic: SIGUSR1 opens each daemon's inspector (on
//    127.0.0.1:9229 of its own namespace), and a node script run there
//    forces a full GC (HeapProfiler.collectGarbage) and reads
//    process.memoryUsage() before and after it. V8 may run no full GC of
//    its own for many minutes, so RSS alone also counts garbage not yet
//    collected; after a forced full GC, what is left is live
// 6. one progress line per tick on stderr; at the end a summary (RSS start,
//    end, max and slope per core daemon, loss per class, TCP figures, churn
//    timings, error logs, machine load) on stdout and as JSON in --out
//
// Leak verdict (leak.ts), for the daemons that ran through (h1, h2; h3
// restarts every fourth minute, so it never outlives its warm-up): past
// warm-up (a process' first 24 ticks, --warmup minutes of the schedule: by
// then every kind of traffic and churn has come at least once), from the
// first probe to the last, RSS after the forced GC grew less than 2 MB
// ("rssFlat") and the heap in use after it less than 1 MB ("heapFlat"), and
// the least-squares line through those probes rises less than that per hour
// (or, over a window under 30 minutes, less than half of it across the
// window); null when no daemon had two probes 2 minutes apart past its
// warm-up (a run under about 7 minutes). The whole life's figures, warm-up
// included, and the VmRSS slope are printed beside them, not judged.
//
// Lost packets are set beside the queue drops counted at the same time on
// their way: loss the kernel counted at a queue that was not emptied in
// time (weft's TUN, a socket) is loss the load causes; "unexplained" is
// what is left. Exits 1 when a verdict fails (RSS or heap grew past
// warm-up, a quiet ping was lost, UDP loss outside churn that no queue
// counted, an error logged, a churn step or a traffic run failed); 0
// without root or a tool (with the reason), and 0 when the leak verdict is
// null (not judged: the report says so).
//
// Everything is bounded (ping counts, iperf3 durations, exec timeouts, the
// whole run) and torn down at the end, on failure and on Ctrl-C (which also
// writes what was measured so far).
//
//
// The modules: record.ts (the plan and what is recorded), cluster.ts (the
// nodes, their daemons and churn), traffic.ts (pings, UDP, TCP bursts),
// sample.ts (RSS, queue drops, heap probes), leak.ts (the leak verdict:
// warm-up, the judged window, the rule), verdict.ts (classing, summary,
// report). Not part of `npm test` (it is no *.test.ts): `npm run test:soak`;
// the leak verdict's unit tests (leak.test.ts, synthetic series) are.
//
// usage: sudo node dist/test/soak/soak.js [--minutes 10] [--warmup 4] [--out soak-result.json] [--backend vxlan]
//        (npm run test:soak builds first; npm run test:soak -- --minutes 1)
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { formatCidr } from '../../src/packet/net'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { cluster } from '../../lab/daemons'
import { waitFor, withTopology } from '../../lab/netns'
import { addPods } from '../../lab/pods'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { churnFor, harvest, start, stop } from './cluster'
import type { Node, World } from './cluster'
import { now, probeDue, progress, rec, TICK_MS, TICKS_PER_MINUTE, WARMUP_TICKS } from './record'
import { heapProbe, sampleDrops, sampleRss } from './sample'
import { burst, pingChunk, udpChunk } from './traffic'
import { progressLine, report, summarize } from './verdict'

const USAGE = 'usage: sudo node dist/test/soak/soak.js [--minutes 10] [--warmup 4] [--out soak-result.json] [--backend vxlan]'
const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    // in minutes of the schedule (six ticks each): what the leak verdict leaves out
    warmup: { type: 'string', default: String(WARMUP_TICKS / TICKS_PER_MINUTE) },
    out: { type: 'string', default: 'soak-result.json' },
    backend: { type: 'string', default: 'vxlan' },
    help: { type: 'boolean', default: false }
  },
  strict: true
})
if (flags.help) {
  process.stdout.write(`${USAGE}\n`)
  process.exit(0)
}
const MINUTES = Number(flags.minutes)
const OUT = path.resolve(flags.out)
const BACKEND = flags.backend
const WARMUP = Math.round(Number(flags.warmup) * TICKS_PER_MINUTE)
if (!(MINUTES > 0 && MINUTES <= 120)) throw new RangeError(`--minutes must be in (0, 120], got ${flags.minutes}`)
if (!(WARMUP >= 0 && WARMUP <= 120 * TICKS_PER_MINUTE)) throw new RangeError(`--warmup must be in [0, 120] minutes, got ${flags.warmup}`)
if (!['vxlan', 'udp', 'ipip'].includes(BACKEND)) throw new RangeError(`--backend takes vxlan, udp or ipip (a TUN backend), got ${BACKEND}`)

// --- the run ---------------------------------------------------------------

/** One tick: the samples, a heap probe when one is due, then the traffic and churn, at once. */
async function tick (w: World, i: number): Promise<string | undefined> {
  const [h1, h2, h3, h4, h5] = w.nodes as [Node, Node, Node, Node, Node]
  rec.ticks.push(now())
  if (i === WARMUP) progress(`warm-up over (${WARMUP} ticks): the leak verdict judges from here`)
  sampleRss(w.nodes)
  await sampleDrops(w)
  // heap probes (before this tick's traffic): after the first minute, at the end of warm-up, and every three minutes from it
  if (probeDue(i, WARMUP)) await Promise.all([h1, h2, h3].map(async (n) => await heapProbe(w, n)))
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
    const s = summarize(BACKEND, now() / 60_000, interrupted, WARMUP)
    fs.writeFileSync(OUT, JSON.stringify(s, null, 1) + '\n')
    return s
  }
  // Ctrl-C: the namespace harness tears the topology down at once (its own
  // SIGINT hook, which runs after this one); write what was measured and go.
  const onSigint = (): void => {
    interrupted = true
    progress('interrupted: writing what was measured, tearing down')
    try { report(finish(), OUT) } catch (err) { progress(`could not write the summary: ${String(err)}`) }
    for (const fn of cleanups.reverse()) { try { fn() } catch { /* best effort */ } }
    setImmediate(() => process.exit(130))
  }
  process.once('SIGINT', onSigint)
  progress(`${MINUTES} min (warm-up ${WARMUP} ticks), backend ${BACKEND}, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} cores; JSON to ${OUT}`)
  try {
    await withTopology(undefined, { hosts: 5, label: 'soak', timeoutMs: deadline + 5 * 60_000 }, async (topo) => {
      const c = cluster({ after: (fn) => { cleanups.push(fn) } }, topo, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: BACKEND } }))
      const store = new SqliteStore({ path: `${c.dir}/store.db` })
      cleanups.push(() => { void store.close() })
      const nodes: Node[] = topo.hosts.map((host) => ({ host, daemon: undefined, inc: undefined, pods: [] }))
      world = { topo, c, nodes, store }
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
  report(s, OUT)
  return Object.values(s.verdict as Record<string, boolean | null>).every((v) => v !== false) ? 0 : 1
}

main().then((code) => { process.exitCode = code }, (err: unknown) => {
  progress(`failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
  process.exitCode = 1
})
