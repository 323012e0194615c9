// How long a new lease takes to reach another node's watch, for the embedded
// SQLite store and for etcd, measured in one run.
// 1. two clients of one store: a writer and a watcher (separate connections;
//    for SQLite, what two daemons on one host have)
// 2. 100 times: note the time, create a lease through the writer, wait for
//    the watcher's batch that carries it
// 3. report median, p90 and worst, in milliseconds
// etcd is Debian's etcd-server on a loopback port (skipped, with the reason,
// if it is not installed).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseCidr } from '../src/packet/net'
import { parseIp4 } from '../src/packet/ip'
import { EtcdStore } from '../src/store/etcd/etcd-store'
import { SqliteStore } from '../src/store/sqlite/sqlite-store'
import type { Store } from '../src/store/store'
import { startEtcd } from '../lab/etcd'
import { toolSkipReason } from '../lab/skip'
import { benchArgs } from './args'
import { max, median, percentile } from './stats'

const SAMPLES = Number(benchArgs('watch-latency', { samples: { type: 'string', default: '100' } }).samples) || 100

async function measure (writer: Store, watcher: Store): Promise<number[]> {
  const start = await watcher.listLeases()
  const ac = new AbortController()
  const arrived = new Map<string, number>()
  let wake: (() => void) | undefined
  const watching = (async () => {
    for await (const b of watcher.watchLeases(start.revision, { signal: ac.signal })) {
      const now = performance.now()
      for (const e of b.events) if (e.type === 'put') arrived.set(`${e.lease.subnet.ip}`, now)
      wake?.()
    }
  })()
  const out: number[] = []
  for (let i = 0; i < SAMPLES; i++) {
    const subnet = parseCidr(`10.244.${i + 1}.0/24`)
    const t0 = performance.now()
    await writer.createLease(subnet, { publicIP: parseIp4(`198.18.1.${i + 1}`), publicIPv6: null, backendType: 'vxlan' }, 600)
    const deadline = Date.now() + 5000
    while (!arrived.has(`${subnet.ip}`) && Date.now() < deadline) await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 50) })
    const t1 = arrived.get(`${subnet.ip}`)
    if (t1 === undefined) throw new Error(`lease ${i} never reached the watcher`)
    out.push(t1 - t0)
  }
  ac.abort()
  await watching
  return out
}

function summary (name: string, xs: number[]): Record<string, number | string> {
  return { store: name, samples: xs.length, medianMs: +median(xs).toFixed(2), p90Ms: +percentile(xs, 90).toFixed(2), worstMs: +max(xs).toFixed(2) }
}

async function main (): Promise<void> {
  const rows: Array<Record<string, number | string>> = []
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-watch-'))
  try {
    process.stderr.write(`sqlite: ${SAMPLES} leases ...\n`)
    const a = new SqliteStore({ path: path.join(dir, 'store.db') })
    const b = new SqliteStore({ path: path.join(dir, 'store.db') })
    rows.push(summary('sqlite', await measure(a, b)))
    await a.close()
    await b.close()
  } finally { fs.rmSync(dir, { recursive: true, force: true }) }

  const skip = toolSkipReason('etcd')
  if (skip !== undefined) rows.push({ store: 'etcd', skipped: skip })
  else {
    process.stderr.write(`etcd: ${SAMPLES} leases ...\n`)
    const etcd = await startEtcd()
    try {
      const a = new EtcdStore({ endpoints: [etcd.endpoint] })
      const b = new EtcdStore({ endpoints: [etcd.endpoint] })
      rows.push(summary('etcd', await measure(a, b)))
      await a.close()
      await b.close()
    } finally { await etcd.stop() }
  }
  console.log('\nstore   samples  median ms  p90 ms  worst ms')
  for (const r of rows) {
    if (r.skipped !== undefined) { console.log(`${String(r.store).padEnd(7)} skipped: ${r.skipped}`); continue }
    console.log(`${String(r.store).padEnd(7)} ${String(r.samples).padStart(7)}  ${String(r.medianMs).padStart(9)}  ${String(r.p90Ms).padStart(6)}  ${String(r.worstMs).padStart(8)}`)
  }
  console.log(JSON.stringify({ bench: 'watch-latency', rows }))
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
