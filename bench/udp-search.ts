// UDP: the highest steady rate each path carries with at most 1 % loss
// (issue 19, item 2), beside the bench's loss at one fixed offered rate.
// 1. kernel VXLAN, weft vxlan and weft udp (those of --paths) set up at
//    once, each proven and warmed, pod on h1 -> pod on h2 as everywhere
// 2. for each path a search over offered rates (RateSearch): iperf3 -u -b
//    RATE in full-size datagrams for a few seconds per probe; from
//    START_MBPS it doubles while a probe loses at most LOSS_LIMIT % and
//    halves while it loses more, then bisects (geometrically) between the
//    highest rate that passed and the lowest that failed, until they are
//    within RESOLUTION of each other, MAX_PROBES probes were run, or the
//    time budget is spent. The paths' probes alternate, one each in turn
//    (the order reversed every step), so the machine's drift falls on all
//    alike. A sender that cannot send what is offered (sent < SENDER_SHORT
//    of it) sets the path's rate itself: a pass there ends the search
//    (the path carries at least that), a fail bounds the search by what
//    was sent
// 3. at kernel VXLAN's rate (the highest it carried within the limit):
//    AT_RATE_ROUNDS rounds of one probe through each path in turn, for the
//    loss each path has where the kernel's has (at most) LOSS_LIMIT
// Each probe also reads where datagrams went missing: the receiving pod's
// UdpRcvbufErrors (its socket buffer was full), and on weft the receiving
// daemon's pacing waits (outside_paced) and drops. The daemons take
// WEFT_UDP_PACING from the bench's environment (unset: the pacer's default).
import type { Topology } from '../lab/netns'
import { iperf } from '../lab/traffic'
import { backgroundLoad, coresBetween, machineTicks } from '../lab/cpu'
import { weftCounters } from './paths'
import type { PathDef, PathSetup, WeftCounters } from './paths'
import type { Panel } from './chart'
import { withPathsUp } from './rounds'
import { median } from './stats'

/** A probe passes when it lost at most this many percent of its datagrams. */
export const LOSS_LIMIT = 1
/** The first probe's offered rate, Mbit/s; doubled or halved from there. */
export const START_MBPS = 500
/** Offered rates stay within these, Mbit/s. */
export const MIN_MBPS = 50
export const MAX_MBPS = 8000
/** The search ends when the lowest failing rate is within this factor of the highest passing one. */
export const RESOLUTION = 1.1
/** Probes per path at most (from 500 Mbit/s: doubling to 1 and 2 Gbit/s and bisecting to within 10 % takes 5 or 6). */
export const MAX_PROBES = 6
/** Seconds per probe. */
export const PROBE_SECONDS = 2
/** A probe whose sender sent less than this share of the offered rate was limited by the sender, not by loss. */
export const SENDER_SHORT = 0.95
/** Rounds at kernel VXLAN's rate. */
export const AT_RATE_ROUNDS = 2
/** All the searches' probes together stop after this many seconds (what was found so far is reported, marked unfinished). */
export const SEARCH_BUDGET_S = 75

export interface UdpProbe {
  offeredMbps: number
  /** what the sender sent, and what arrived (iperf3's sender and receiver sums) */
  sentMbps: number
  receivedMbps: number
  lostPercent: number
  packets: number
  lostPackets: number
  /** the receiving pod's UdpRcvbufErrors over the probe: datagrams its socket buffer had no room for */
  podRcvbufErrors: number
  /** weft: the receiving daemon's pacing waits over the probe (outside_paced) */
  pacingWaits?: number
  /** weft: what the receiving daemon dropped over the probe, by reason (tun_tx_dropped: its TUN's) */
  drops?: Record<string, number>
  /**
   * weft: the receiving node's UdpRcvbufErrors (the daemon's underlay socket
   * was full). Counted per skb: with UDP_GRO one drop can be a whole batch of
   * up to 64 datagrams, so this undercounts the datagrams lost there.
   */
  underlayRcvbufErrors?: number
  /** weft: the sending node's TUN tx_dropped (the pod's datagrams its daemon did not read in time) */
  senderTunDropped?: number
  /** the whole machine's busy cores over the probe (of all of them: the traffic's own ends, the daemons, and anything else running) */
  machineCores: number
  /** the sender sent less than SENDER_SHORT of the offered rate */
  senderBound: boolean
  /** lost at most LOSS_LIMIT % */
  pass: boolean
}

export interface UdpSearchResult {
  name: string
  label: string
  /** in the order they ran */
  probes: UdpProbe[]
  /** what arrived in the highest offered probe that passed, Mbit/s; NaN: none passed */
  maxMbps: number
  /** that probe's offered rate */
  maxOfferedMbps: number
  /** that probe's sender could not send faster: the path carries at least maxMbps */
  senderBound: boolean
  /** the search converged (or the sender ended it); false: it ran out of probes or time */
  finished: boolean
  error?: string
}

export interface UdpAtRate {
  name: string
  label: string
  /** each round's probe */
  probes: UdpProbe[]
  medianLostPercent: number
  error?: string
}

export interface UdpMaxRate {
  lossLimitPercent: number
  probeSeconds: number
  /** the datagrams' payload, bytes (pod MTU - 28) */
  datagramBytes: number
  /** WEFT_UDP_PACING as the daemons got it ('' when unset: the default factor) */
  pacing: string
  /** cores busy before the paths were set up, and after the last probe (a second each, nothing of ours running but idle daemons) */
  background: number[]
  paths: UdpSearchResult[]
  /** kernel VXLAN's rate (the lesser of its best probe's offered and sent), and each path's loss there */
  atKernelRate?: { offeredMbps: number, paths: UdpAtRate[] }
  seconds: number
}

/**
 * One path's search over offered rates: next() says what to offer (undefined:
 * done), record() takes the probe. Pure arithmetic, so tests drive it.
 */
export class RateSearch {
  /** highest offered rate that passed, lowest bound that failed */
  private lo: number | undefined
  private hi: number | undefined
  private best: UdpProbe | undefined
  private ended = false
  readonly probes: UdpProbe[] = []

  constructor (private readonly o: { start: number, min: number, max: number, resolution: number, maxProbes: number } = { start: START_MBPS, min: MIN_MBPS, max: MAX_MBPS, resolution: RESOLUTION, maxProbes: MAX_PROBES }) {}

  /** Converged, or the sender ended it (not: out of probes). */
  get finished (): boolean { return this.ended }

  next (): number | undefined {
    if (this.ended || this.probes.length >= this.o.maxProbes) return undefined
    const { lo, hi } = this
    let r: number
    if (lo === undefined && hi === undefined) r = this.o.start
    else if (lo === undefined) r = Math.max(this.o.min, hi! / 2)
    else if (hi === undefined) r = Math.min(this.o.max, lo * 2)
    else r = Math.sqrt(lo * hi)
    r = Math.round(r / 10) * 10
    // nothing left between the bounds (or nowhere further to go)
    if ((lo !== undefined && r <= lo) || (hi !== undefined && r >= hi) || (lo === undefined && hi !== undefined && hi <= this.o.min) || (hi === undefined && lo !== undefined && lo >= this.o.max)) {
      this.ended = true
      return undefined
    }
    return r
  }

  record (p: UdpProbe): void {
    this.probes.push(p)
    if (p.pass) {
      if (this.best === undefined || p.offeredMbps > this.best.offeredMbps) this.best = p
      this.lo = Math.max(this.lo ?? 0, p.offeredMbps)
      // offering more sends no more
      if (p.senderBound) this.ended = true
    } else {
      // above what the sender managed, a higher offer would send no more
      const bound = p.senderBound ? Math.min(p.offeredMbps, p.sentMbps) : p.offeredMbps
      this.hi = Math.min(this.hi ?? Infinity, bound)
    }
    const { lo, hi } = this
    // converged, or the bounds crossed (loss is noisy near the limit): what passed highest stands
    if (lo !== undefined && hi !== undefined && hi / lo <= this.o.resolution) this.ended = true
  }

  result (name: string, label: string, error?: string): UdpSearchResult {
    const b = this.best
    return {
      name,
      label,
      probes: this.probes,
      maxMbps: b?.receivedMbps ?? NaN,
      maxOfferedMbps: b?.offeredMbps ?? NaN,
      senderBound: b?.senderBound ?? false,
      finished: this.ended,
      ...(error !== undefined ? { error } : {})
    }
  }
}

/** The rate to hold every path to in the at-rate rounds: what kernel VXLAN's best probe actually sent, rounded to 10 Mbit/s. */
export function kernelRate (k: UdpSearchResult): number | undefined {
  const b = k.probes.find((p) => p.pass && p.offeredMbps === k.maxOfferedMbps)
  if (b === undefined) return undefined
  return Math.round(Math.min(b.offeredMbps, b.sentMbps) / 10) * 10
}

/** Udp: RcvbufErrors from a namespace's /proc/net/snmp. */
async function rcvbufErrors (topo: Topology, ns: string): Promise<number> {
  const lines = (await topo.exec(ns, ['cat', '/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'))
  if (lines.length < 2) throw new Error(`no Udp counters in ${ns}'s /proc/net/snmp`)
  const keys = lines[0].trim().split(/\s+/)
  const values = lines[1].trim().split(/\s+/).map(Number)
  return values[keys.indexOf('RcvbufErrors')] ?? 0
}

/** One probe: `offeredMbps` of full-size datagrams, pod on h1 -> pod on h2, for `seconds`. */
async function probe (s: PathSetup, offeredMbps: number, seconds: number): Promise<UdpProbe> {
  const [client, server] = s.pods
  const rcv0 = await rcvbufErrors(s.topo, server.ns)
  const under0 = s.weft !== undefined ? await rcvbufErrors(s.topo, s.hosts[1].ns) : 0
  const c0: WeftCounters | undefined = s.weft !== undefined ? await weftCounters(s.topo, s.weft) : undefined
  const m0 = machineTicks()
  const u = await iperf(s.topo, server, client, { serverIp: server.ip, seconds, udp: { bitrate: `${offeredMbps}M`, length: s.podMtu - 28 } })
  const m1 = machineTicks()
  const rcv1 = await rcvbufErrors(s.topo, server.ns)
  const under1 = s.weft !== undefined ? await rcvbufErrors(s.topo, s.hosts[1].ns) : 0
  const c1: WeftCounters | undefined = s.weft !== undefined ? await weftCounters(s.topo, s.weft) : undefined
  const sentMbps = (u.udp?.sentGbps ?? NaN) * 1000
  const lostPercent = u.udp?.lostPercent ?? NaN
  const p: UdpProbe = {
    offeredMbps,
    sentMbps,
    receivedMbps: u.gbps * 1000,
    lostPercent,
    packets: u.udp?.packets ?? 0,
    lostPackets: u.udp?.lostPackets ?? 0,
    podRcvbufErrors: rcv1 - rcv0,
    machineCores: coresBetween(m0, m1).busy,
    senderBound: sentMbps < SENDER_SHORT * offeredMbps,
    pass: lostPercent <= LOSS_LIMIT
  }
  if (c0 !== undefined && c1 !== undefined) {
    // the receiving daemon: h2's, the second
    p.pacingWaits = (c1.counters[1].outside_paced ?? 0) - (c0.counters[1].outside_paced ?? 0)
    const drops: Record<string, number> = {}
    for (const [k, v] of Object.entries(c1.drops[1])) if (v - (c0.drops[1][k] ?? 0) > 0) drops[k] = v - (c0.drops[1][k] ?? 0)
    drops.tun_tx_dropped = c1.tunTxDropped[1] - c0.tunTxDropped[1]
    if (drops.tun_tx_dropped === 0) delete drops.tun_tx_dropped
    p.drops = drops
    p.underlayRcvbufErrors = under1 - under0
    p.senderTunDropped = c1.tunTxDropped[0] - c0.tunTxDropped[0]
  }
  return p
}

function probeLine (p: UdpProbe): string {
  const weft = p.pacingWaits !== undefined ? `, ${p.underlayRcvbufErrors ?? 0} drops (GRO batches) in weft's socket, ${p.senderTunDropped ?? 0} at the sender's TUN${Object.keys(p.drops ?? {}).length > 0 ? `, weft dropped ${JSON.stringify(p.drops)}` : ''}; ${p.pacingWaits} pacing waits` : ''
  return `${p.offeredMbps} Mbit/s offered: ${p.receivedMbps.toFixed(0)} arrived, ${p.lostPercent.toFixed(2)} % lost (${p.podRcvbufErrors} in the pod's socket${weft}; ${p.machineCores.toFixed(2)} cores busy)${p.senderBound ? `, the sender sent only ${p.sentMbps.toFixed(0)}` : ''}`
}

export interface UdpSearchOptions {
  progress: (msg: string) => void
  seconds?: number
  budgetS?: number
  rounds?: number
}

/** The search on kernel VXLAN and the weft paths given, all set up at once, then the at-rate rounds. */
export async function udpMaxRate (kernel: PathDef, wefts: PathDef[], o: UdpSearchOptions): Promise<UdpMaxRate> {
  const seconds = o.seconds ?? PROBE_SECONDS
  const budgetS = o.budgetS ?? SEARCH_BUDGET_S
  const rounds = o.rounds ?? AT_RATE_ROUNDS
  const all = [kernel, ...wefts]
  const t0 = performance.now()
  const background = [await backgroundLoad()]
  const timeoutMs = (budgetS + all.length * (rounds * (seconds + 3) + 60) + 60) * 1000
  const setups: Array<PathSetup | undefined> = all.map(() => undefined)
  const errors: Array<string | undefined> = all.map(() => undefined)
  const searches = all.map(() => new RateSearch())
  let datagramBytes = NaN

  const measure = async (): Promise<UdpMaxRate> => {
    const deadline = performance.now() + budgetS * 1000
    datagramBytes = (setups.find((s) => s !== undefined)?.podMtu ?? NaN) - 28
    for (let step = 0; ; step++) {
      const order = all.map((_, k) => step % 2 === 0 ? k : all.length - 1 - k)
      let ran = false
      for (const k of order) {
        const s = setups[k]
        if (s === undefined || errors[k] !== undefined) continue
        const rate = searches[k].next()
        if (rate === undefined) continue
        if (performance.now() > deadline) break
        ran = true
        try {
          const p = await probe(s, rate, seconds)
          searches[k].record(p)
          o.progress(`  UDP search, ${all[k].label}: ${probeLine(p)}: ${p.pass ? 'within' : 'over'} ${LOSS_LIMIT} %`)
        } catch (err) {
          errors[k] = (err as Error).message
          o.progress(`  UDP search, ${all[k].label}: failed: ${(err as Error).message.split('\n')[0]}`)
        }
      }
      if (!ran) break
    }
    const paths = all.map((d, k) => searches[k].result(d.name, d.label, errors[k]))
    const out: UdpMaxRate = { lossLimitPercent: LOSS_LIMIT, probeSeconds: seconds, datagramBytes, pacing: process.env.WEFT_UDP_PACING ?? '', background, paths, seconds: 0 }
    for (const p of paths) o.progress(`UDP search, ${p.label}: ${Number.isFinite(p.maxMbps) ? `${p.maxMbps.toFixed(0)} Mbit/s within ${LOSS_LIMIT} % loss${p.senderBound ? ' (sender-bound: at least)' : ''}` : `nothing within ${LOSS_LIMIT} % loss`}${p.finished ? '' : ', unfinished'}`)
    const rate = errors[0] === undefined ? kernelRate(paths[0]) : undefined
    if (rate !== undefined && rounds > 0) {
      const probes: UdpProbe[][] = all.map(() => [])
      const atErrors: Array<string | undefined> = [...errors]
      for (let r = 0; r < rounds; r++) {
        o.progress(`UDP at kernel VXLAN's rate, ${rate} Mbit/s: round ${r + 1} of ${rounds}, ${seconds} s through each path ...`)
        const order = all.map((_, k) => r % 2 === 0 ? k : all.length - 1 - k)
        for (const k of order) {
          const s = setups[k]
          if (s === undefined || atErrors[k] !== undefined) continue
          try {
            const p = await probe(s, rate, seconds)
            probes[k].push(p)
            o.progress(`  ${all[k].label}: ${probeLine(p)}`)
          } catch (err) {
            atErrors[k] = (err as Error).message
          }
        }
      }
      out.atKernelRate = {
        offeredMbps: rate,
        paths: all.map((d, k) => ({ name: d.name, label: d.label, probes: probes[k], medianLostPercent: median(probes[k].map((p) => p.lostPercent)), ...(atErrors[k] !== undefined ? { error: atErrors[k] } : {}) }))
      }
    }
    background.push(await backgroundLoad())
    out.seconds = (performance.now() - t0) / 1000
    return out
  }

  return await withPathsUp(all, { label: 'bench-udp', what: 'UDP search', timeoutMs, progress: o.progress }, setups, errors, measure)
}

// --- report ----------------------------------------------------------------------

const f0 = (x: number | undefined): string => x !== undefined && Number.isFinite(x) ? x.toFixed(0) : '-'
const f2 = (x: number | undefined): string => x !== undefined && Number.isFinite(x) ? x.toFixed(2) : '-'

/** What WEFT_UDP_PACING the daemons ran with, in words. */
export function pacingLabel (pacing: string): string {
  return pacing === '' ? 'weft UDP pacing on (the default, factor 2)' : pacing === 'off' || pacing === '0' ? 'weft UDP pacing OFF (WEFT_UDP_PACING=off)' : `weft UDP pacing factor ${pacing} (WEFT_UDP_PACING)`
}

/** The searches' table: each path's rate within the limit, its probes, where its loss went; then the at-rate rounds. */
export function printUdpMaxRate (u: UdpMaxRate, print: (l: string) => void): void {
  print(`\nUDP: the highest rate each path carries with at most ${u.lossLimitPercent} % loss (iperf3 -u, ${f0(u.datagramBytes)}-byte datagrams, ${u.probeSeconds} s probes, the paths set up at once and probed in turn; ${pacingLabel(u.pacing)})`)
  const kernel = u.paths.find((p) => p.name === 'kernel-vxlan')
  print(`path            within ${u.lossLimitPercent} % loss  x kernel   lost in pod socket   weft socket drops   pacing waits   probes: offered Mbit/s loss % (*: the sender sent less)`)
  for (const p of u.paths) {
    const rate = `${f0(p.maxMbps)} Mbit/s${p.senderBound ? '*' : ' '}${p.finished ? ' ' : '?'}`
    const ratio = kernel !== undefined && p !== kernel && Number.isFinite(p.maxMbps) && Number.isFinite(kernel.maxMbps) ? `${f2(p.maxMbps / kernel.maxMbps)}x` : ''
    const lost = p.probes.reduce((a, x) => a + x.lostPackets, 0)
    const inPod = p.probes.reduce((a, x) => a + x.podRcvbufErrors, 0)
    const share = lost > 0 ? `${f0(100 * Math.min(1, inPod / lost))} % of ${lost}` : 'none lost'
    const weft = p.probes.some((x) => x.pacingWaits !== undefined)
    const waits = weft ? String(p.probes.reduce((a, x) => a + (x.pacingWaits ?? 0), 0)) : '-'
    const under = weft ? String(p.probes.reduce((a, x) => a + (x.underlayRcvbufErrors ?? 0), 0)) : '-'
    const probes = p.probes.map((x) => `${x.offeredMbps} ${f2(x.lostPercent)}${x.senderBound ? '*' : ''}`).join(', ')
    print(`${p.label.padEnd(15)} ${rate.padStart(14)} ${ratio.padStart(9)}   ${share.padStart(18)}   ${under.padStart(17)}   ${waits.padStart(12)}   ${probes}${p.error !== undefined ? `  failed: ${p.error.split('\n')[0]}` : ''}`)
  }
  const busiest = Math.max(0, ...(u.background ?? []))
  if (busiest > 0.25) print(`note: the machine was not idle: ${(u.background ?? []).map((b) => b.toFixed(2)).join(' and ')} cores busy before and after (every path shared the cores with that load)`)
  print(`(Mbit/s that arrived in the highest offered probe within ${u.lossLimitPercent} %; *: its sender could not send faster, the path carries at least that; ?: the search ran out of probes or time before it converged; lost in pod socket: the receiving pod's UdpRcvbufErrors over all probes, as a share of the datagrams iperf3 counted lost; weft socket drops: the receiving node's UdpRcvbufErrors, weft's own socket full, each drop up to a GRO batch of 64 datagrams)`)
  const a = u.atKernelRate
  if (a === undefined) return
  const n = Math.max(0, ...a.paths.map((p) => p.probes.length))
  print(`\nUDP at kernel VXLAN's rate, ${a.offeredMbps} Mbit/s offered, ${n} rounds through each path in turn`)
  print(`path            ${Array.from({ length: n }, (_, i) => `round ${i + 1}: arrived, loss %`.padEnd(26)).join('')}median loss %   lost in pod socket`)
  for (const p of a.paths) {
    const cells = p.probes.map((x) => `${f0(x.receivedMbps)}, ${f2(x.lostPercent)}`.padEnd(26)).join('')
    const lost = p.probes.reduce((s, x) => s + x.lostPackets, 0)
    const inPod = p.probes.reduce((s, x) => s + x.podRcvbufErrors, 0)
    print(`${p.label.padEnd(15)} ${cells.padEnd(26 * n)}${f2(p.medianLostPercent).padStart(13)}   ${lost > 0 ? `${f0(100 * Math.min(1, inPod / lost))} % of ${lost}` : 'none lost'}${p.error !== undefined ? `  failed: ${p.error.split('\n')[0]}` : ''}`)
  }
}

/** A chart panel: each path's rate within the limit, kernel VXLAN's as the reference line. */
export function udpPanel (u: UdpMaxRate): Panel {
  const kernel = u.paths.find((p) => p.name === 'kernel-vxlan')
  return {
    title: `UDP: the highest rate carried with at most ${u.lossLimitPercent} % loss (${pacingLabel(u.pacing)})`,
    unit: 'Mbit/s',
    bars: u.paths.map((p) => ({ label: p.label, value: p.maxMbps, kind: p.name === 'kernel-vxlan' ? 'reference' as const : 'weft' as const, ...(p.senderBound ? { note: 'sender-bound: at least' } : {}) })),
    ...(kernel !== undefined && Number.isFinite(kernel.maxMbps) ? { reference: kernel.maxMbps, referenceLabel: 'kernel VXLAN' } : {})
  }
}
