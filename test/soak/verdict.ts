// The soak's verdict: every sample classed by what overlapped it, the
// summary (RSS and heap after forced GCs, loss per class set beside the
// queue drops counted meanwhile, churn timings, error logs), the report on
// stdout and the one progress line per tick.
import os from 'node:os'
import { udpPathDrops } from './sample'
import { classify, clock, HEAP_GROWTH_MB, now, rec, round, RSS_GROWTH_MB, startedAt, UDP, WARMUP_MS } from './record'
import type { ChurnOp, Class, Incarnation, RssSample } from './record'
import type { Node } from './cluster'

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

export function progressLine (i: number, nodes: readonly Node[], churning: string | undefined): string {
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

export function summarize (backend: string, minutesRun: number, interrupted: boolean): Record<string, unknown> {
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
    backend,
    minutes: round(minutesRun, 2),
    interrupted,
    startedAt: new Date(startedAt).toISOString(),
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

export function report (s: Record<string, unknown>, jsonPath: string): void {
  const out = (l: string): void => { process.stdout.write(l + '\n') }
  const d = s.daemons as DaemonSummary[]
  out(`weft soak, ${String(s.backend)}, ${String(s.minutes)} min${s.interrupted === true ? ' (interrupted)' : ''}; machine load (1-min avg) ${JSON.stringify(s.machine)}`)
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
  out(`JSON: ${jsonPath}`)
}
