// Traffic between pods/hosts of a topology: ping, an all-pairs ping matrix,
// iperf3 throughput (with per-interval figures, to see a flow stall), and a
// background ping probe that keeps when each reply came (to see how long a
// path was down). Backend tests and benchmarks use these to prove
// reachability and measure a dataplane. Everything is bounded: ping by count
// and deadline, iperf3 by duration or byte count plus a hard exec timeout,
// and the iperf3 server is always stopped.

import type { Host, Topology } from './netns'
import { waitFor } from './netns'
import { settlesWithin } from './proc'
import type { Pod } from './pods'

/** Anything with a namespace of the topology. */
export type Endpoint = Pod | Host

export interface PingOptions {
  count: number
  /** Seconds between echo requests; default 0.2. */
  intervalS?: number
  /** Seconds to wait for the last reply; default 1. */
  waitS?: number
  /** Keep every reply's round-trip time (ping prints one line per reply; default off: summary only). */
  rtts?: boolean
}

export interface PingResult {
  sent: number
  received: number
  output: string
  /** With `rtts`: each reply's round-trip time in ms, in arrival order. */
  rtts?: number[]
}

/** `ping -c count -i intervalS -W waitS toIp` from `from`; never throws on loss. */
export async function ping (topo: Topology, from: Endpoint, toIp: string, opts: PingOptions): Promise<PingResult> {
  const { count } = opts
  const intervalS = opts.intervalS ?? 0.2
  const waitS = opts.waitS ?? 1
  if (!Number.isInteger(count) || count < 1 || count > 10_000) throw new RangeError(`ping: count must be 1..10000, got ${count}`)
  const timeoutMs = Math.ceil((count * intervalS + waitS) * 1000) + 5000
  const argv = ['ping', '-n', ...(opts.rtts === true ? [] : ['-q']), '-c', String(count), '-i', String(intervalS), '-W', String(waitS), toIp]
  const r = await topo.exec(from.ns, argv, { allowFail: true, timeoutMs })
  const output = r.stdout + r.stderr
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(output)
  const result: PingResult = { sent: m ? Number(m[1]) : 0, received: m ? Number(m[2]) : 0, output }
  if (opts.rtts === true) result.rtts = [...r.stdout.matchAll(/ time=([\d.]+) ms/g)].map((x) => Number(x[1]))
  return result
}

export interface PingMatrixOptions {
  /** Replies wanted from each pair; default 2. */
  count?: number
  /** Seconds a pair may take beyond count * 0.2 s; default 2. */
  timeoutS?: number
  /** Pairs pinging at once; default 4. */
  concurrency?: number
  /** 6: ping each pod's IPv6 address (Pod.ip6; a pod without one fails); default 4 */
  family?: 4 | 6
}

export interface PingMatrixResult {
  /** [from pod name, to pod name] */
  ok: Array<[string, string]>
  /** [from, to, ping's output] */
  failed: Array<[string, string, string]>
}

/**
 * Every pod pings every other pod (ordered pairs). A pair is ok when
 * `count` replies arrive within its deadline; lost requests are re-sent
 * until then (`ping -c count -w deadline`), so one dropped first packet,
 * e.g. while a neighbour resolves, does not fail the pair.
 */
export async function pingMatrix (topo: Topology, pods: readonly Pod[], opts: PingMatrixOptions = {}): Promise<PingMatrixResult> {
  const count = opts.count ?? 2
  const timeoutS = opts.timeoutS ?? 2
  const concurrency = Math.max(1, opts.concurrency ?? 4)
  const deadlineS = Math.ceil(count * 0.2 + timeoutS)
  const pairs: Array<[Pod, Pod]> = []
  for (const a of pods) for (const b of pods) if (a !== b) pairs.push([a, b])
  const results: Array<{ from: string, to: string, ok: boolean, output: string }> = new Array(pairs.length)

  let next = 0
  const worker = async (): Promise<void> => {
    while (next < pairs.length) {
      const i = next++
      const [a, b] = pairs[i]!
      const to = opts.family === 6 ? b.ip6 : b.ip
      if (to === undefined) { results[i] = { from: a.name, to: b.name, ok: false, output: `${b.name} has no IPv6 address` }; continue }
      const argv = ['ping', '-n', '-q', '-c', String(count), '-i', '0.2', '-W', String(timeoutS), '-w', String(deadlineS), to]
      const r = await topo.exec(a.ns, argv, { allowFail: true, timeoutMs: deadlineS * 1000 + 5000 })
      results[i] = { from: a.name, to: b.name, ok: r.code === 0, output: (r.stdout + r.stderr).trim() }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, pairs.length) }, worker))

  const out: PingMatrixResult = { ok: [], failed: [] }
  for (const r of results) {
    if (r.ok) out.ok.push([r.from, r.to])
    else out.failed.push([r.from, r.to, r.output])
  }
  return out
}

export interface IperfOptions {
  /** Address the client connects to (the server's pod or host address). */
  serverIp: string
  /** Test length in seconds (`-t`); default 2 unless `bytes` is given. */
  seconds?: number
  /** Amount to send instead of a duration (`-n`, e.g. '100M'). */
  bytes?: string
  /** default 5201 */
  port?: number
  /** Parallel streams (`-P`); default 1. */
  parallel?: number
  /** Hard limit on the client run; default seconds + 20 s, or 60 s with `bytes`. */
  timeoutMs?: number
  /** UDP instead of TCP (`-u`), at this rate (`-b`, e.g. '1G'; '0' = as fast as it can) with datagrams of `length` bytes (`-l`). */
  udp?: { bitrate: string, length: number }
  /** Seconds per reported interval (`-i`, 0.1 at the finest); default iperf3's 1. */
  intervalS?: number
  /** The client's TCP congestion control (`-C`, e.g. 'cubic'); default the namespace's. */
  congestion?: string
}

/** What `congestion` may be: a kernel algorithm name (TCP_CA_NAME_MAX is 16 with the NUL). */
export const CONGESTION_NAME = /^[a-z0-9_]{1,15}$/

/** One of iperf3's per-interval reports (all streams summed), times in seconds from the start. */
export interface IperfInterval {
  start: number
  end: number
  bytes: number
}

export interface IperfResult {
  /** Receiver-side throughput (end.sum_received.bits_per_second) in Gbit/s. */
  gbps: number
  /** TCP retransmissions seen by the sender (end.sum_sent.retransmits). */
  retransmits: number
  /** With `udp`: what the sender sent and what the receiver lost (end.sum). */
  udp?: { sentGbps: number, packets: number, lostPackets: number, lostPercent: number }
  /** What the sender reported per interval (`intervals[].sum`). */
  intervals: IperfInterval[]
}

/** One iperf3 TCP run from `client` to a one-off server in `server`'s namespace. */
export async function iperf (topo: Topology, server: Endpoint, client: Endpoint, opts: IperfOptions): Promise<IperfResult> {
  const port = opts.port ?? 5201
  const parallel = opts.parallel ?? 1
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 128) throw new RangeError(`iperf: parallel must be 1..128, got ${parallel}`)
  if (opts.seconds !== undefined && opts.bytes !== undefined) throw new Error('iperf: give seconds or bytes, not both')
  const seconds = opts.bytes === undefined ? (opts.seconds ?? 2) : undefined
  if (seconds !== undefined && !(seconds > 0 && seconds <= 600)) throw new RangeError(`iperf: seconds must be in (0, 600], got ${seconds}`)
  const timeoutMs = opts.timeoutMs ?? (seconds !== undefined ? seconds * 1000 + 20_000 : 60_000)
  if (opts.intervalS !== undefined && !(opts.intervalS >= 0.1 && opts.intervalS <= 60)) throw new RangeError(`iperf: intervalS must be in [0.1, 60], got ${opts.intervalS}`)
  const interval = opts.intervalS === undefined ? [] : ['-i', String(opts.intervalS)]
  if (opts.congestion !== undefined && !CONGESTION_NAME.test(opts.congestion)) throw new RangeError(`iperf: congestion must name an algorithm, got ${JSON.stringify(opts.congestion)}`)
  const congestion = opts.congestion === undefined ? [] : ['-C', opts.congestion]

  const srv = topo.spawn(server.ns, ['iperf3', '-s', '-1', '-p', String(port)])
  try {
    await waitFor(async () => {
      if (!srv.running) throw new Error(`iperf3 server exited: ${srv.stdout}${srv.stderr}`)
      const ss = await topo.exec(server.ns, ['ss', '-Hltn', `sport = :${port}`], { timeoutMs: 5000 })
      return ss.stdout.trim() !== ''
    }, { timeoutMs: 5000, intervalMs: 50, what: `iperf3 server in ${server.ns} to listen on port ${port}` })

    const len = seconds !== undefined ? ['-t', String(seconds)] : ['-n', opts.bytes!]
    const udp = opts.udp !== undefined ? ['-u', '-b', opts.udp.bitrate, '-l', String(opts.udp.length)] : []
    const argv = ['iperf3', '-c', opts.serverIp, '-p', String(port), '-J', '-P', String(parallel), '--connect-timeout', '3000', ...udp, ...congestion, ...interval, ...len]
    const r = await topo.exec(client.ns, argv, { allowFail: true, timeoutMs })
    let j: IperfJson
    try {
      j = JSON.parse(r.stdout) as IperfJson
    } catch {
      throw new Error(`iperf3 client (exit ${r.code}) printed no JSON: ${r.stdout.slice(0, 500)}${r.stderr.slice(0, 500)}`)
    }
    if (j.error || r.code !== 0) throw new Error(`iperf3 client failed (exit code ${r.code}): ${j.error ?? r.stderr.trim()}`)
    const bps = j.end?.sum_received?.bits_per_second
    if (typeof bps !== 'number') throw new Error('iperf3 JSON has no end.sum_received.bits_per_second')
    const intervals = (j.intervals ?? []).map((i) => ({ start: i.sum.start, end: i.sum.end, bytes: i.sum.bytes }))
    const result: IperfResult = { gbps: bps / 1e9, retransmits: j.end?.sum_sent?.retransmits ?? 0, intervals }
    const sum = j.end?.sum
    if (opts.udp !== undefined) {
      result.udp = { sentGbps: (j.end?.sum_sent?.bits_per_second ?? NaN) / 1e9, packets: sum?.packets ?? 0, lostPackets: sum?.lost_packets ?? 0, lostPercent: sum?.lost_percent ?? 0 }
    }
    return result
  } finally {
    await srv.stop(500)
  }
}

interface IperfJson {
  error?: string
  intervals?: Array<{ sum: { start: number, end: number, bytes: number } }>
  end?: {
    sum_received?: { bits_per_second?: number }
    sum_sent?: { retransmits?: number, bits_per_second?: number }
    /** UDP: the receiver's loss as the sender learnt it */
    sum?: { packets?: number, lost_packets?: number, lost_percent?: number }
  }
}

/**
 * The longest stretch of consecutive intervals in which the flow moved less
 * than `fraction` (default 1%) of its median interval: how long a flow
 * stalled, in seconds, and when the stall began.
 */
export function longestStall (intervals: readonly IperfInterval[], fraction = 0.01): { seconds: number, from: number } {
  const sorted = intervals.map((i) => i.bytes).sort((a, b) => a - b)
  const floor = (sorted[Math.floor(sorted.length / 2)] ?? 0) * fraction
  let best = { seconds: 0, from: 0 }
  let from: number | undefined
  for (const i of intervals) {
    if (i.bytes > floor) { from = undefined; continue }
    from ??= i.start
    if (i.end - from > best.seconds) best = { seconds: i.end - from, from }
  }
  return best
}

export interface PingProbeOptions {
  /** Hard limit: ping stops by itself after this many seconds. */
  maxS: number
  /** Seconds between requests; default 0.1 (below 0.2 needs root, which namespace tests have). */
  intervalS?: number
}

export interface PingTimeline {
  sent: number
  /** When each reply arrived (ms since the epoch, ping's own -D stamps), in order. */
  replies: number[]
  /** When the probe started and was stopped (ms since the epoch). */
  startedAt: number
  endedAt: number
  output: string
}

export interface PingProbe {
  /** Reply times so far (ms since the epoch), in order. */
  replies: () => number[]
  /** Stop pinging (SIGINT, so ping prints its summary) and return the timeline. */
  stop: () => Promise<PingTimeline>
}

const REPLY_RE = /^\[(\d+\.\d+)\] \d+ bytes from /

/**
 * A continuous probe: `ping -D -i intervalS` in the background that keeps
 * when every reply arrived, so that a test can say how long a path was down
 * while something happened around it (see longestGapMs). Bounded by maxS
 * (as a count) even if nobody stops it; the topology's teardown kills it in
 * any case.
 */
export function startPing (topo: Topology, from: Endpoint, toIp: string, opts: PingProbeOptions): PingProbe {
  const intervalS = opts.intervalS ?? 0.1
  if (!(opts.maxS > 0 && opts.maxS <= 600)) throw new RangeError(`startPing: maxS must be in (0, 600], got ${opts.maxS}`)
  if (!(intervalS >= 0.01 && intervalS <= 10)) throw new RangeError(`startPing: intervalS must be in [0.01, 10], got ${intervalS}`)
  const count = Math.ceil(opts.maxS / intervalS)
  const startedAt = Date.now()
  // No -w: with a deadline, ping quits at the first ICMP error (a "net
  // unreachable" while a route is down), which is exactly what we watch for.
  const child = topo.spawn(from.ns, ['ping', '-n', '-D', '-c', String(count), '-i', String(intervalS), '-W', '1', toIp])
  const replies = (): number[] => {
    const out: number[] = []
    for (const l of child.stdoutLines) {
      const m = REPLY_RE.exec(l)
      if (m !== null) out.push(Math.round(Number(m[1]) * 1000))
    }
    return out
  }
  return {
    replies,
    stop: async () => {
      const endedAt = Date.now()
      child.kill('SIGINT')
      if (!(await settlesWithin(child.exited, 3000))) await child.stop(500)
      const s = /(\d+) packets transmitted/.exec(child.stdout)
      return { sent: s !== null ? Number(s[1]) : 0, replies: replies(), startedAt, endedAt, output: child.stdout + child.stderr }
    }
  }
}

/**
 * The longest time without a reply within [from, to]: between consecutive
 * replies, and from `from` to the first and the last to `to` (so a path that
 * never answers, or stops answering, shows as one long gap).
 */
export function longestGapMs (replies: readonly number[], from: number, to: number): { ms: number, at: number } {
  const t = [from, ...replies.filter((r) => r > from && r < to), to]
  let best = { ms: 0, at: from }
  for (let i = 1; i < t.length; i++) if (t[i]! - t[i - 1]! > best.ms) best = { ms: t[i]! - t[i - 1]!, at: t[i - 1]! }
  return best
}
