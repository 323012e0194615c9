// `weft status`: the running daemon's lease, backend, device, peers and live
// counters, read over its control socket.
import { parseArgs } from 'node:util'
import { WeftError } from '../errors'
import { fetchStatus } from '../daemon/control'
import type { Command } from './command'

interface Status {
  lease?: { subnet: string, publicIP: string, expiration: number | null }
  ready?: boolean
  store?: string
  backend?: string
  device?: string
  mtu?: number
  peers?: Array<Record<string, unknown>>
  counters?: { drops?: Record<string, number>, counters?: Record<string, number>, workers?: Array<Record<string, number>> }
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
    io.out(`lease     ${s.lease?.subnet ?? '-'} (public IP ${s.lease?.publicIP ?? '-'}, ${s.lease?.expiration === null ? 'reservation' : `expires ${new Date(s.lease?.expiration ?? 0).toISOString()}`})`)
    io.out(`ready     ${s.ready === true ? 'yes' : 'no'}`)
    io.out(`store     ${s.store ?? '-'}`)
    io.out(`backend   ${s.backend ?? '-'} on ${s.device ?? '-'} (MTU ${s.mtu ?? '-'})`)
    const peers = s.peers ?? []
    io.out(`peers     ${peers.length}`)
    if (peers.length > 0) {
      const rows = [['SUBNET', 'PUBLIC IP', 'VTEP MAC', 'OUT PKTS', 'IN PKTS']]
      for (const p of peers) rows.push([String(p.subnet), String(p.publicIP), String(p.vtepMAC ?? '-'), String(p.insidePackets ?? '-'), String(p.outsidePackets ?? '-')])
      const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
      for (const r of rows) io.out('  ' + r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd())
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
    const drops = Object.entries(s.counters?.drops ?? {})
    io.out(`drops     ${drops.length === 0 ? 'none' : drops.map(([k, v]) => `${k}=${v}`).join(' ')}`)
    return 0
  }
}
