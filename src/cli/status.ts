// `weft status`: the running daemon's lease, backend, device, peers and live
// counters, read over its control socket. A WireGuard node's peers are shown
// the way `wg show` shows them (key, endpoint, allowed IPs, latest
// handshake, transfer, keepalive), then its handshakes and drops by reason.
import { parseArgs } from 'node:util'
import { WeftError } from '../errors'
import { fetchStatus } from '../daemon/control'
import type { Command } from './command'

interface Status {
  lease?: { subnet: string, publicIP: string, expiration: number | null, subnet6?: string, publicIPv6?: string | null }
  ready?: boolean
  store?: string
  backend?: string
  device?: string
  mtu?: number
  peers?: Array<Record<string, unknown>>
  counters?: { drops?: Record<string, number>, counters?: Record<string, number>, workers?: Array<Record<string, number>>, wireguard?: WireguardCounters }
  /** a dual-stack node's IPv6 half (its own device, table and counters) */
  ipv6?: Status
}

/** The table of a TUN backend's peers, IPv4 or IPv6 entries alike. */
function peerTable (peers: Array<Record<string, unknown>>): string[] {
  // the peer offload: of OUT PKTS and IN PKTS, those the kernel carried for us
  const offload = peers.some((p) => p.sendOffload !== undefined || p.receiveOffload !== undefined)
  const rows = [['SUBNET', 'PUBLIC IP', 'VTEP MAC', 'OUT PKTS', 'IN PKTS', ...(offload ? ['OUT BY KERNEL', 'IN BY KERNEL'] : [])]]
  for (const p of peers) rows.push([String(p.subnet ?? p.subnet6), String(p.publicIP ?? p.publicIPv6), String(p.vtepMAC ?? '-'), String(p.insidePackets ?? '-'), String(p.outsidePackets ?? '-'), ...(offload ? [String(p.offloadPackets ?? '-'), String(p.offloadInPackets ?? '-')] : [])])
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) => '  ' + r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd())
}

/** The WireGuard backend's counters (src/backend/wireguard/loops.ts); publicKey and listenPort when the daemon gives them. */
interface WireguardCounters {
  handshakes?: number
  rekeys?: number
  drops?: Record<string, number>
  peers?: number
  publicKey?: string
  listenPort?: number
}

/** How long ago, as `wg show` says it but shorter: "12 s", "3 min 4 s", "2 h 5 min", "3 d 4 h". */
export function formatAge (seconds: number): string {
  const s = Math.max(0, Math.floor(seconds))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 !== 0 ? ` ${s % 60} s` : ''}`
  if (s < 86400) return `${Math.floor(s / 3600)} h${Math.floor(s / 60) % 60 !== 0 ? ` ${Math.floor(s / 60) % 60} min` : ''}`
  return `${Math.floor(s / 86400)} d${Math.floor(s / 3600) % 24 !== 0 ? ` ${Math.floor(s / 3600) % 24} h` : ''}`
}

/** Bytes as `wg show` prints them: "512 B", "1.50 KiB", "3.20 MiB", ... */
export function formatBytes (n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  if (n < 1024) return `${n} B`
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++ }
  return `${v.toFixed(2)} ${units[u]}`
}

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`

/** One peer of a WireGuard node, as `wg show` shows a peer (plus its lease and packet counts). */
function wireguardPeer (p: Record<string, unknown>, now: number): string[] {
  if (typeof p.publicKey !== 'string') return [`  lease ${String(p.subnet)} of ${String(p.publicIP)}: ${typeof p.wireguard === 'string' ? p.wireguard : 'no WireGuard peer'}`]
  const lines = [`  peer: ${p.publicKey}`]
  lines.push(`    endpoint: ${typeof p.endpoint === 'string' ? p.endpoint : '(none)'}`)
  const allowed = [p.subnet, p.subnet6].filter((x) => typeof x === 'string').join(', ')
  lines.push(`    allowed ips: ${allowed} (the lease of ${String(p.publicIP ?? p.publicIPv6)})`)
  const at = typeof p.latestHandshake === 'string' ? Date.parse(p.latestHandshake) : NaN
  const session = p.session === true ? '' : ' (no session now)'
  lines.push(`    latest handshake: ${Number.isFinite(at) ? `${formatAge((now - at) / 1000)} ago${session}` : 'none yet'}`)
  const n = (k: string): number => Number(p[k] ?? 0)
  lines.push(`    transfer: ${formatBytes(n('outsideBytes'))} received, ${formatBytes(n('insideBytes'))} sent (${n('outsidePackets')} / ${n('insidePackets')} packets)`)
  const keepalive = Number(p.persistentKeepalive ?? 0)
  lines.push(`    persistent keepalive: ${keepalive > 0 ? `every ${keepalive} s` : 'off'}`)
  return lines
}

export const status: Command = {
  name: 'status',
  summary: 'show the running daemon\'s lease, backend, peers and counters',
  usage: 'weft status [--state-dir DIR] [--json]',
  async run (argv, io) {
    const { values } = parseArgs({ args: argv, options: { 'state-dir': { type: 'string', default: '/var/lib/weft' }, json: { type: 'boolean' } } })
    let s: Status
    try {
      s = await fetchStatus(values['state-dir'] as string) as Status
    } catch (err) {
      throw new WeftError('ENODAEMON', `no weft daemon answers in ${String(values['state-dir'])}: ${(err as Error).message}`)
    }
    if (values.json === true) { io.out(JSON.stringify(s)); return 0 }
    const v6 = s.lease?.subnet6 !== undefined ? ` and ${s.lease.subnet6} (public IPv6 ${s.lease.publicIPv6 ?? '-'})` : ''
    io.out(`lease     ${s.lease?.subnet ?? '-'} (public IP ${s.lease?.publicIP ?? '-'})${v6}, ${s.lease?.expiration === null ? 'a reservation' : `expires ${new Date(s.lease?.expiration ?? 0).toISOString()}`}`)
    io.out(`ready     ${s.ready === true ? 'yes' : 'no'}`)
    io.out(`store     ${s.store ?? '-'}`)
    io.out(`backend   ${s.backend ?? '-'} on ${s.device ?? '-'} (MTU ${s.mtu ?? '-'})`)
    const peers = s.peers ?? []
    io.out(`peers     ${peers.length}`)
    const wg = s.counters?.wireguard
    if (s.backend === 'wireguard') {
      const now = Date.now()
      for (const p of peers) { io.out(''); for (const l of wireguardPeer(p, now)) io.out(l) }
      if (peers.length > 0) io.out('')
    } else if (peers.length > 0) {
      for (const l of peerTable(peers)) io.out(l)
    }
    const c = s.counters?.counters ?? {}
    io.out(`traffic   out ${c.inside_packets ?? 0} packets / ${c.inside_bytes ?? 0} bytes, in ${c.outside_packets ?? 0} packets / ${c.outside_bytes ?? 0} bytes`)
    const workers = s.counters?.workers
    if (workers !== undefined) io.out(`workers   ${workers.length}, out/in packets each: ${workers.map((w) => `${w.inside_packets ?? 0}/${w.outside_packets ?? 0}`).join(', ')}`)
    // only a daemon run with --busy-poll has polled
    if ((c.busy_poll_ns ?? 0) > 0 || (c.busy_poll_caught ?? 0) > 0 || (c.busy_poll_suspended ?? 0) > 0) {
      io.out(`busy poll ${((c.busy_poll_ns ?? 0) / 1e9).toFixed(3)} s spent polling, ${c.busy_poll_caught ?? 0} batches found the loop awake, held off ${c.busy_poll_suspended ?? 0} times by heavy traffic`)
    }
    // only a node that received UDP faster than it could write it at once has paced
    if ((c.outside_paced ?? 0) > 0) io.out(`paced     UDP to pods waited ${c.outside_paced} times, a backlog read at once written to the TUN in pieces (WEFT_UDP_PACING)`)
    if (wg !== undefined) {
      const id = wg.publicKey !== undefined ? `, public key ${wg.publicKey}${wg.listenPort !== undefined ? `, UDP port ${wg.listenPort}` : ''}` : ''
      io.out(`wireguard ${plural(wg.peers ?? 0, 'peer')}, ${plural(wg.handshakes ?? 0, 'handshake')} completed (${plural(wg.rekeys ?? 0, 'rekey')})${id}`)
      const wgDrops = Object.entries(wg.drops ?? {})
      io.out(`wg drops  ${wgDrops.length === 0 ? 'none' : wgDrops.map(([k, v]) => `${k}=${v}`).join(' ')}`)
    }
    const drops = Object.entries(s.counters?.drops ?? {})
    io.out(`drops     ${drops.length === 0 ? 'none' : drops.map(([k, v]) => `${k}=${v}`).join(' ')}`)
    const h6 = s.ipv6
    if (h6 !== undefined) {
      const peers6 = h6.peers ?? []
      io.out(`ipv6      ${h6.backend ?? '-'} on ${h6.device ?? '-'}, ${plural(peers6.length, 'peer')}`)
      if (h6.backend === 'wireguard') {
        const now = Date.now()
        for (const p of peers6) for (const l of wireguardPeer(p, now)) io.out(l)
        const wg6 = h6.counters?.wireguard
        if (wg6 !== undefined) io.out(`wireguard ${plural(wg6.peers ?? 0, 'peer')}, ${plural(wg6.handshakes ?? 0, 'handshake')} completed (${plural(wg6.rekeys ?? 0, 'rekey')})${wg6.publicKey !== undefined ? `, public key ${wg6.publicKey}${wg6.listenPort !== undefined ? `, UDP port ${wg6.listenPort}` : ''}` : ''}`)
      } else if (peers6.length > 0) for (const l of peerTable(peers6)) io.out(l)
      const c6 = h6.counters?.counters ?? {}
      io.out(`traffic6  out ${c6.inside_packets ?? 0} packets / ${c6.inside_bytes ?? 0} bytes, in ${c6.outside_packets ?? 0} packets / ${c6.outside_bytes ?? 0} bytes`)
      const d6 = Object.entries(h6.counters?.drops ?? {})
      io.out(`drops6    ${d6.length === 0 ? 'none' : d6.map(([k, v]) => `${k}=${v}`).join(' ')}`)
    }
    return 0
  }
}
