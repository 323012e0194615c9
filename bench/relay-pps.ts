// Packets per second through the smoke relay (lab/fixtures/relay.ts) at
// batch size 1 and 64, beside the kernel's own VXLAN carrying the same flood
// between the same two namespaces in the same run.
//
// 1. two hosts on a bridge underlay (198.18.0.0/24), a relay on each
// 2. h2 floods UDP at a non-local address behind h1's tunnel (10.244.1.200);
//    h2's kernel routes it into its TUN, the relay carries it to h1, h1's
//    relay writes it to h1's TUN, and h1's kernel drops it (not for it)
// 3. delivered pps = packets h1's relay wrote to its TUN / flood seconds
// 4. the same flood through kernel VXLAN devices (vx0) gives the reference
//
// usage: node dist/bench/relay-pps.js [--seconds 3] [--sizes 64,1372]
import path from 'node:path'
import { createTopology } from '../lab/netns'
import type { Host, Topology } from '../lab/netns'
import { netnsSkipReason } from '../lab/skip'
import { benchArgs } from './args'

const RELAY = path.join(__dirname, '..', 'lab', 'fixtures', 'relay.js')
const FLOOD = path.join(__dirname, 'udp-flood.js')
const MTU = 1400

const flags = benchArgs('relay-pps', {
  seconds: { type: 'string', default: '3' },
  sizes: { type: 'string', default: '64,1372' }
})
const seconds = Number(flags.seconds)
const sizes = flags.sizes.split(',').map(Number)

interface Row { path: string, batch: string, size: number, offered: number, delivered: number, avgBatch: string }

function lastJson<T> (text: string, key: string): T {
  const line = text.split('\n').reverse().find((l) => l.startsWith(`{"${key}"`))
  if (line === undefined) throw new Error(`no ${key} line in: ${text.slice(-500)}`)
  return (JSON.parse(line) as Record<string, T>)[key]
}

async function flood (topo: Topology, from: Host, to: string, size: number): Promise<{ sent: number, seconds: number }> {
  const r = await topo.exec(from, [process.execPath, FLOOD, '--to', to, '--size', String(size), '--batch', '64', '--seconds', String(seconds)], { timeoutMs: (seconds + 20) * 1000 })
  return lastJson(r.stdout, 'flood')
}

async function relayRun (topo: Topology, batch: number, size: number): Promise<Row> {
  const [h1, h2] = topo.hosts
  const start = (self: Host, peer: Host) => topo.spawn(self, [process.execPath, RELAY, '--tun', 'wt0',
    '--addr', `10.244.${self.index}.1/16`, '--mtu', String(MTU), '--batch', String(batch),
    '--listen', `${self.underlayIp}:8472`, '--peer', `${peer.underlayIp}:8472`])
  const r1 = start(h1, h2)
  const r2 = start(h2, h1)
  await r1.waitForLine(/"ready"/, 10_000)
  await r2.waitForLine(/"ready"/, 10_000)
  const f = await flood(topo, h2, '10.244.1.200:9', size)
  await new Promise((resolve) => setTimeout(resolve, 300)) // let queues drain
  await r1.stop(2000)
  await r2.stop(2000)
  const s1 = lastJson<{ tun: Record<string, number> }>(r1.stdout, 'stats')
  const s2 = lastJson<{ tun: Record<string, number> }>(r2.stdout, 'stats')
  return {
    path: 'weft relay',
    batch: String(batch),
    size,
    offered: f.sent / f.seconds,
    delivered: s1.tun.txPackets / f.seconds,
    avgBatch: (s2.tun.rxPackets / Math.max(1, s2.tun.rxBatches)).toFixed(1)
  }
}

async function setupKernelVxlan (topo: Topology): Promise<void> {
  const [h1, h2] = topo.hosts
  const macs: string[] = []
  for (const [self, peer] of [[h1, h2], [h2, h1]] as const) {
    await topo.exec(self, ['ip', 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'local', self.underlayIp, 'dev', 'eth0', 'dstport', '4789', 'nolearning'])
    await topo.exec(self, ['ip', 'link', 'set', 'vx0', 'mtu', String(MTU), 'up'])
    await topo.exec(self, ['ip', 'addr', 'add', `10.245.${self.index}.1/16`, 'dev', 'vx0'])
    await topo.exec(self, ['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx0', 'dst', peer.underlayIp])
    macs.push((await topo.exec(self, ['cat', '/sys/class/net/vx0/address'])).stdout.trim())
  }
  // h2 sends to 10.245.1.200 as if it lived behind h1's VTEP
  await topo.exec(h2, ['ip', 'neigh', 'add', '10.245.1.200', 'lladdr', macs[0], 'dev', 'vx0', 'nud', 'permanent'])
}

async function kernelRun (topo: Topology, size: number): Promise<Row> {
  const [h1, h2] = topo.hosts
  const rx = async () => Number((await topo.exec(h1, ['cat', '/sys/class/net/vx0/statistics/rx_packets'])).stdout)
  const before = await rx()
  const f = await flood(topo, h2, '10.245.1.200:9', size)
  await new Promise((resolve) => setTimeout(resolve, 300))
  return { path: 'kernel VXLAN', batch: '-', size, offered: f.sent / f.seconds, delivered: (await rx() - before) / f.seconds, avgBatch: '-' }
}

async function main (): Promise<void> {
  const skip = netnsSkipReason()
  if (skip !== undefined) { console.log(`relay-pps: skipped: ${skip}`); return }
  const topo = await createTopology({ hosts: 2, label: 'bench-relay' })
  const rows: Row[] = []
  try {
    await setupKernelVxlan(topo)
    for (const size of sizes) {
      for (const batch of [1, 64]) {
        process.stderr.write(`relay batch ${batch}, ${size} B payloads, ${seconds} s ...\n`)
        rows.push(await relayRun(topo, batch, size))
      }
      process.stderr.write(`kernel VXLAN, ${size} B payloads, ${seconds} s ...\n`)
      rows.push(await kernelRun(topo, size))
    }
  } finally {
    await topo.destroy()
  }
  const kpps = (x: number) => (x / 1000).toFixed(0).padStart(8)
  console.log('\npath          batch  payload  offered kpps  delivered kpps  Mbit/s (payload)  avg read batch  vs kernel')
  for (const r of rows) {
    const kernel = rows.find((k) => k.path === 'kernel VXLAN' && k.size === r.size)
    const ratio = kernel !== undefined ? (r.delivered / kernel.delivered).toFixed(2) : '-'
    console.log(`${r.path.padEnd(13)} ${r.batch.padStart(5)}  ${String(r.size).padStart(7)}  ${kpps(r.offered)}      ${kpps(r.delivered)}        ${(r.delivered * r.size * 8 / 1e6).toFixed(0).padStart(8)}          ${r.avgBatch.padStart(6)}       ${ratio}`)
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
