// The soak's verdict: every sample classed by what overlapped it, the
// summary (RSS and heap after forced GCs judged past warm-up by leak.ts,
// loss per class set beside the queue drops counted meanwhile, churn
// timings, error logs), the report on stdout and the one progress line per
// tick.
import os from 'node:os'
import { udpPathDrops } from './sample'
import { fitSlope, floorWindowMinutes, judgeLeak, lastLife, LEAK_RULE, warmupEnd } from './leak'
import type { LeakJudgement, MetricJudgement } from './leak'
import { classify, clock, now, rec, round, startedAt, TICKS_PER_MINUTE, UDP } from './record'
import type { ChurnOp, Class, Incarnation, RssSample } from './record'
import type { Node } from './cluster'

function lossOf (xs: ReadonlyArray<{ sent: number, received: number }>): { sent: number, lost: number, pct: number } {
  const sent = xs.reduce((a, x) => a + x.sent, 0)
  const lost = sent - xs.reduce((a, x) => a + x.received, 0)
  return { sent, lost, pct: sent === 0 ? 0 : (100 * lost) / sent }
}

/** Least-squares slope in MB per minute. */
const slope = (xs: readonly RssSample[]): number => fitSlope(xs) * 60_000

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

/** The leak verdict of one daemon as the JSON and the report show it (times as mm:ss of the run). */
interface LeakSummary {
  /** the process judged: the one probed last (a restarted daemon's last life) */
  pid: number | null
  /** when it started */
  started: string | null
  /** the end of its warm-up (null: the run ended first) */
  warmupEnds: string | null
  /** its first and last probes, warm-up included: never judged, shown so the warm-up's rise is seen */
  life: { from: string, to: string, rssAfterGcMB: [number, number], heapUsedAfterGcMB: [number, number] } | null
  /** the window judged: from its first probe at or after the end of warm-up to its last */
  judged: { from: string, to: string, minutes: number, probes: number, rssAfterGc: MetricJudgement, heapUsedAfterGc: MetricJudgement } | null
  /** why nothing was judged */
  unjudged?: string
}

interface DaemonSummary {
  node: string
  incarnations: number
  rssStartMB: number
  rssEndMB: number
  rssMaxMB: number
  /** fitted to the longest incarnation's samples past its warm-up; it counts garbage not yet collected too, so it is shown, not judged */
  rssSlopeMBPerMin: number
  rssSlopeOver: string
  /** the heap probes of the process judged: [mm:ss, RSS, heap in use] in MB after a forced full GC */
  probes: Array<[string, number, number]>
  /** how many of them came before the end of its warm-up */
  probesInWarmup: number
  /** what the last probe's forced GC freed of the heap */
  garbageCollectedAtLastMB: number | null
  leak: LeakSummary
  /** RSS after GC held past warm-up (null: not judged, see leak.unjudged) */
  rssFlat: boolean | null
  /** the heap in use after GC held past warm-up */
  heapFlat: boolean | null
}

/** The slope over the longest incarnation's samples past its warm-up (all of them when fewer than three are). */
function rssFit (incs: readonly Incarnation[], warmupTicks: number): { slope: number, over: string } {
  const span = (x: Incarnation): number => x.rss.length < 2 ? 0 : x.rss[x.rss.length - 1]!.t - x.rss[0]!.t
  const longest = [...incs].sort((a, b) => span(b) - span(a))[0]
  const end = longest === undefined ? undefined : warmupEnd(longest.started, rec.ticks, warmupTicks)
  const steady = longest === undefined || end === undefined ? [] : longest.rss.filter((s) => s.t >= end)
  const fit = steady.length >= 3 ? steady : (longest?.rss ?? [])
  const over = fit.length > 0 ? `${clock(fit[0]!.t)}-${clock(fit[fit.length - 1]!.t)}, ${fit.length} samples${fit === steady ? ', past warm-up' : ', warm-up included'}` : 'none'
  return { slope: round(slope(fit), 3), over }
}

function leakSummary (j: LeakJudgement, started: number | undefined): LeakSummary {
  return {
    pid: j.pid ?? null,
    started: started === undefined ? null : clock(started),
    warmupEnds: j.warmupEnd === undefined ? null : clock(j.warmupEnd),
    life: j.life === null ? null : { from: clock(j.life.from), to: clock(j.life.to), rssAfterGcMB: j.life.rssMB, heapUsedAfterGcMB: j.life.heapMB },
    judged: j.window === null || j.rss === null || j.heap === null
      ? null
      : { from: clock(j.window.from), to: clock(j.window.to), minutes: round((j.window.to - j.window.from) / 60_000, 1), probes: j.window.probes, rssAfterGc: j.rss, heapUsedAfterGc: j.heap },
    ...(j.unjudged !== undefined ? { unjudged: j.unjudged } : {})
  }
}

/** All true where known; null when nothing is known. */
function allKnown (xs: ReadonlyArray<boolean | null>): boolean | null {
  const known = xs.filter((x): x is boolean => x !== null)
  return known.length === 0 ? null : known.every(Boolean)
}

export function summarize (backend: string, minutesRun: number, interrupted: boolean, warmupTicks: number): Record<string, unknown> {
  reclassify()
  const core = ['h1', 'h2', 'h3']
  const daemons: DaemonSummary[] = core.map((name) => {
    const incs = rec.incarnations.filter((x) => x.node === name && x.rss.length > 0)
    const all = incs.flatMap((x) => x.rss)
    const fit = rssFit(incs, warmupTicks)
    // the process probed last (a restarted daemon: its last life), judged past its warm-up
    const probed = lastLife(rec.probes.filter((p) => p.node === name))
    const inc = rec.incarnations.filter((x) => x.node === name && x.pid === probed[0]?.pid).pop()
    // a pid the kernel gave out again is not the same life
    const mine = probed.filter((p) => inc !== undefined && p.t >= inc.started)
    const last = mine[mine.length - 1]
    const end = inc === undefined ? undefined : warmupEnd(inc.started, rec.ticks, warmupTicks)
    const j = judgeLeak(mine.map((p) => ({ t: p.t, pid: p.pid, rssMB: p.after.rss, heapMB: p.after.heapUsed })), end)
    return {
      node: name,
      incarnations: incs.length,
      rssStartMB: round(all[0]?.mb ?? 0),
      rssEndMB: round(all[all.length - 1]?.mb ?? 0),
      rssMaxMB: round(Math.max(0, ...all.map((x) => x.mb))),
      rssSlopeMBPerMin: fit.slope,
      rssSlopeOver: fit.over,
      probes: mine.map((p) => [clock(p.t), p.after.rss, p.after.heapUsed]),
      probesInWarmup: mine.filter((p) => end === undefined || p.t < end).length,
      garbageCollectedAtLastMB: last === undefined ? null : round(last.before.heapUsed - last.after.heapUsed, 2),
      leak: leakSummary(j, inc?.started),
      rssFlat: j.rssFlat,
      heapFlat: j.heapFlat
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
    // past warm-up, over the daemons judged (null: none was, the run was too short; h3 restarts too often to be)
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
    leakRule: { warmupTicks, warmupMinutesOfSchedule: round(warmupTicks / TICKS_PER_MINUTE, 2), ...LEAK_RULE, fitExtrapolatedToMinutes: 60, floorBelowWindowMinutes: round(floorWindowMinutes(LEAK_RULE.rss), 1) },
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
  const rule = s.leakRule as typeof LEAK_RULE & { warmupTicks: number, floorBelowWindowMinutes: number }
  const signed = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(2)}`
  const judged = (m: MetricJudgement): string =>
    `${m.fromMB.toFixed(2)} -> ${m.toMB.toFixed(2)} MB, ${signed(m.growthMB)}; fitted line ${signed(m.fitRiseMB)} across the window, ${signed(m.fitPerHourMB)} MB/h: ${m.ok ? 'flat' : `GROWS (${m.failed.join('; ')})`}`
  out(`leak verdict, per daemon, on memoryUsage() after a forced full GC, past warm-up (its first ${rule.warmupTicks} ticks): RSS grows < ${rule.rss.growthMB} MB from the first probe to the last and its fitted line < ${rule.rss.growthMB} MB/h ` +
    `(or, over a window under ${rule.floorBelowWindowMinutes} min, rises < ${rule.rss.floorMB} MB across it); heap in use the same with ${rule.heap.growthMB} MB, ${rule.heap.growthMB} MB/h, ${rule.heap.floorMB} MB`)
  out('daemon  incarnations  RSS MB start  end     max     VmRSS slope MB/min, garbage included, not judged (over)')
  for (const x of d) {
    out(`${x.node.padEnd(8)}${String(x.incarnations).padEnd(14)}${x.rssStartMB.toFixed(1).padEnd(14)}${x.rssEndMB.toFixed(1).padEnd(8)}${x.rssMaxMB.toFixed(1).padEnd(8)}${x.rssSlopeMBPerMin.toFixed(3)} (${x.rssSlopeOver})`)
    const l = x.leak
    if (l.judged !== null) {
      out(`        judged past warm-up, ${l.judged.from} -> ${l.judged.to} (${l.judged.minutes} min, ${l.judged.probes} probes): RSS after GC ${judged(l.judged.rssAfterGc)}`)
      out(`            heap in use after GC ${judged(l.judged.heapUsedAfterGc)}`)
    } else {
      const which = x.incarnations > 1 && l.started !== null ? `its last life (started ${l.started}): ` : ''
      out(`        not judged: ${which}${l.unjudged ?? 'was never probed'}${l.warmupEnds !== null ? ` (warm-up ended ${l.warmupEnds})` : ''}`)
    }
    if (l.life !== null) {
      out(`        whole life, warm-up included, not judged, ${l.life.from} -> ${l.life.to}: RSS after GC ${l.life.rssAfterGcMB[0]} -> ${l.life.rssAfterGcMB[1]} MB, heap in use ${l.life.heapUsedAfterGcMB[0]} -> ${l.life.heapUsedAfterGcMB[1]} MB; the last GC freed ${x.garbageCollectedAtLastMB ?? '-'} MB`)
    }
    if (x.probes.length > 0) {
      const at = x.probes.map((p) => `${p[0]} ${p[1]}/${p[2]}`)
      if (l.warmupEnds !== null) at.splice(x.probesInWarmup, 0, `[warm-up over ${l.warmupEnds}]`)
      out(`        RSS/heap in use MB after GC at each probe: ${at.join(', ')}`)
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
