// The soak's traffic, each run bounded and recorded with its start and end
// so the verdict can class it by what overlapped it: ping chunks between
// pods, a fixed-rate iperf3 UDP run, and TCP bursts that fill the dataplane.
import type { Topology } from '../../lab/netns'
import { waitFor } from '../../lab/netns'
import type { Pod } from '../../lab/pods'
import { iperf, ping } from '../../lab/traffic'
import { clock, now, PINGS, rec, TCP_SECONDS, UDP } from './record'
import type { Burst } from './record'

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

export async function pingChunk (topo: Topology, from: Pod, to: Pod): Promise<void> {
  const a = now()
  const r = await ping(topo, from, to.ip, PINGS)
  const b = now()
  rec.pings.push({ from: from.name, to: to.name, t0: a, t1: b, sent: r.sent, received: r.received, cls: 'quiet' })
}

export async function udpChunk (topo: Topology, server: Pod, client: Pod): Promise<void> {
  const a = now()
  try {
    const r = await udpRun(topo, server, client)
    rec.udp.push({ t0: a, t1: now(), packets: r.packets, lost: r.lost, cls: 'quiet' })
  } catch (err) {
    rec.failures.push(`${clock(a)} UDP ${client.name} -> ${server.name}: ${(err as Error).message}`)
  }
}

export async function burst (topo: Topology, server: Pod, client: Pod): Promise<void> {
  // part of the schedule, not a wait for an event: two quiet seconds so the
  // burst's window does not begin inside whatever came before it
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
