// What a /metrics scrape loop costs forwarding. The scrape runs on the
// dataplane's thread (the daemon's main thread), so a client scraping in a
// loop competes with the pods' traffic for it.
// 1. weft vxlan between two nodes (paths.ts), a pod on each, both daemons
//    with --healthz-port 8081 (on 0.0.0.0, the default); warmed with pings
// 2. --rounds rounds; in each, one iperf3 TCP stream pod h1 -> pod h2 for
//    --seconds under each of three loads, in an order that rotates every
//    round (the machine drifts; alternating short runs and taking the median
//    of the per-round ratios leaves mostly the difference):
//    - quiet: nothing scrapes
//    - paced: a scrape loop at --paced-rate (20/s: the per-address rate
//      limit, so every scrape is served; a Prometheus scrapes every 15 s)
//    - hammer: --conns (16, the most one address may hold) connections, each sending its next
//      request as soon as the last was answered, for as long as the iperf3
//      run (bounded also by --requests); most are refused 429 by the rate limit
//    The scraper (lab/raw-http.js, a 'loop') runs in h2's namespace
//    and scrapes h1's daemon, the sender's, across the underlay.
// 3. per load: each round's Gbit/s and its ratio to the same round's quiet
//    run, the median ratio, the daemon's main-thread CPU (cores) and what
//    the scraper got (requests/s, by status); one JSON line at the end.
// The scraper shares the two cores with everything else: the hammer's own
// CPU is part of what it costs, and the daemon's main-thread CPU says how
// much of it was weft's.
//
// usage: sudo node dist/bench/scrape.js [--rounds 5] [--seconds 4] [--paced-rate 20] [--conns 16] [--requests 200000] [--congestion cubic]
import path from 'node:path'
import { iperf, ping } from '../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../lab/skip'
import { cpuOf } from '../lab/cpu'
import { cleanUpOnInterrupt, proveReachable, withPath } from './paths'
import type { PathDef, PathSetup } from './paths'
import { WARM_UP_PINGS } from './rounds'
import { benchArgs, congestionOption, numberFlag } from './args'
import { median } from './stats'
import type { LoopResult as ScrapeResult } from '../lab/raw-http'

const PORT = 8081
const SCRAPER = path.join(__dirname, '..', 'lab', 'raw-http.js')
const progress = (msg: string): void => { process.stderr.write(`scrape: ${msg}\n`) }

// --- the bench -------------------------------------------------------------------

type Load = 'quiet' | 'paced' | 'hammer'
const LOADS: Load[] = ['quiet', 'paced', 'hammer']

interface Options { rounds: number, seconds: number, pacedRate: number, conns: number, requests: number, congestion: string | undefined }

interface Run { load: Load, gbps: number, retransmits: number, mainCores: number, cores: number, scrape?: ScrapeResult }

function options (argv: string[]): Options {
  const values = benchArgs('scrape', {
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '4' },
    'paced-rate': { type: 'string', default: '20' },
    conns: { type: 'string', default: '16' },
    requests: { type: 'string', default: '200000' },
    congestion: { type: 'string', default: 'cubic' }
  }, argv)
  return {
    rounds: numberFlag('rounds', values.rounds, { min: 1, max: 20, integer: true }),
    seconds: numberFlag('seconds', values.seconds, { min: 1, max: 30 }),
    pacedRate: numberFlag('paced-rate', values['paced-rate'], { min: 0, max: 1000, above: true }),
    conns: numberFlag('conns', values.conns, { min: 1, max: 64, integer: true }),
    requests: numberFlag('requests', values.requests, { min: 1, max: 10_000_000, integer: true }),
    congestion: congestionOption(values.congestion)
  }
}

/** weft vxlan as paths.ts sets it up, with --healthz-port on both daemons. */
const SCRAPED = { name: 'vxlan', key: 'weftVxlan', label: 'weft vxlan --healthz-port', backend: 'vxlan', flags: ['--healthz-port', String(PORT)] } as const

async function measure (s: PathSetup, load: Load, o: Options): Promise<Run> {
  const [client, server] = s.pods
  const pid = s.weft!.pids[0]
  const to = { host: s.hosts[0].underlayIp, port: PORT }
  // the scraper starts first and runs a second longer than iperf3 on each side
  const step = { kind: 'loop', target: '/metrics', seconds: o.seconds + 2, rate: load === 'paced' ? o.pacedRate : 0, conns: load === 'paced' ? 1 : o.conns, requests: o.requests }
  const scraper = load === 'quiet' ? undefined : s.topo.spawn(s.hosts[1], [process.execPath, SCRAPER, JSON.stringify({ to, step })])
  // time for it to start (node) and connect, so iperf3 runs inside its loop
  if (scraper !== undefined) await new Promise((resolve) => setTimeout(resolve, 500))
  const c0 = cpuOf(pid)
  const t0 = performance.now()
  const r = await iperf(s.topo, server, client, { serverIp: server.ip, seconds: o.seconds, congestion: o.congestion })
  const wall = (performance.now() - t0) / 1000
  const c1 = cpuOf(pid)
  let scrape: ScrapeResult | undefined
  if (scraper !== undefined) {
    const line = await scraper.waitForLine(/"requests":/, (o.seconds + 10) * 1000, 'stdout')
    scrape = JSON.parse(line) as ScrapeResult
  }
  return { load, gbps: r.gbps, retransmits: r.retransmits, mainCores: (c1.main - c0.main) / wall, cores: (c1.user + c1.sys - c0.user - c0.sys) / wall, ...(scrape !== undefined ? { scrape } : {}) }
}

async function bench (argv: string[]): Promise<void> {
  const o = options(argv)
  const skip = netnsSkipReason() ?? toolSkipReason('iperf3')
  if (skip !== undefined) { console.log(`scrape: skipped: ${skip}`); return }
  cleanUpOnInterrupt()
  const rounds: Run[][] = []
  const timeoutMs = (o.rounds * LOADS.length * (o.seconds + 15) + 120) * 1000
  await withPath(SCRAPED as unknown as PathDef, { label: 'bench-scrape', timeoutMs, progress }, async (s) => {
    await proveReachable(s.topo, s.pods[0], s.pods[1], SCRAPED.label)
    await ping(s.topo, s.pods[0], s.pods[1].ip, { count: WARM_UP_PINGS, intervalS: 0.002, waitS: 1 })
    for (let r = 0; r < o.rounds; r++) {
      const order = LOADS.map((_, k) => LOADS[(k + r) % LOADS.length])
      const runs: Run[] = []
      for (const load of order) runs.push(await measure(s, load, o))
      rounds.push(runs)
      const line = order.map((l) => {
        const x = runs.find((y) => y.load === l)!
        return `${l} ${x.gbps.toFixed(2)} Gbit/s (weft main ${x.mainCores.toFixed(2)} cores${x.scrape !== undefined ? `, ${Math.round(x.scrape.requests / x.scrape.seconds)} req/s ${JSON.stringify(x.scrape.byStatus)}` : ''})`
      })
      progress(`round ${r + 1} of ${o.rounds}: ${line.join('; ')}`)
    }
  })

  const of = (load: Load): Run[] => rounds.map((runs) => runs.find((x) => x.load === load)!)
  const quiet = of('quiet')
  console.log(`/metrics scrape loops against iperf3 TCP, 1 stream pod -> pod through weft vxlan, ${o.rounds} rounds of ${o.seconds} s per load`)
  console.log('load     Gbit/s (median)  ratio to quiet (median, per round)           weft main thread  scraper')
  const summary: Record<string, unknown> = {}
  for (const load of LOADS) {
    const runs = of(load)
    const ratios = runs.map((x, i) => x.gbps / quiet[i].gbps)
    const reqs = runs.map((x) => x.scrape === undefined ? 0 : x.scrape.requests / x.scrape.seconds)
    const statuses: Record<string, number> = {}
    for (const x of runs) for (const [k, v] of Object.entries(x.scrape?.byStatus ?? {})) statuses[k] = (statuses[k] ?? 0) + v
    summary[load] = { gbps: runs.map((x) => x.gbps), ratios, medianRatio: median(ratios), mainCores: runs.map((x) => x.mainCores), reqPerS: reqs, byStatus: statuses }
    console.log(`${load.padEnd(8)} ${median(runs.map((x) => x.gbps)).toFixed(2).padStart(6)}           ${load === 'quiet' ? '-'.padEnd(44) : `${median(ratios).toFixed(3)} (${ratios.map((x) => x.toFixed(2)).join(', ')})`.padEnd(44)} ${median(runs.map((x) => x.mainCores)).toFixed(2)} cores        ${load === 'quiet' ? '-' : `${Math.round(median(reqs))} req/s, ${JSON.stringify(statuses)}`}`)
  }
  console.log(JSON.stringify({ bench: 'scrape', rounds: o.rounds, seconds: o.seconds, pacedRate: o.pacedRate, conns: o.conns, ...summary }))
}

bench(process.argv.slice(2)).catch((err) => { console.error(err); process.exitCode = 1 })
