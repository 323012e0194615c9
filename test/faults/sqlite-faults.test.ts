// Issue 8, item 1, on the embedded store: the SQLite file locked by another
// process, then removed (and its directory moved) under running nodes. The
// nodes keep forwarding, say they are degraded, and recover: a lock is
// waited out without blocking the dataplane; a removed file is recreated
// and every node puts its own lease back from memory, once. Real SQLite
// files shared by real daemons in namespaces, real ping.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import Database from 'better-sqlite3'
import { formatCidr } from '../../src/packet/net'
import { withTopology, waitFor } from '../../lab/netns'
import type { Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { ping } from '../../lab/traffic'
import type { Pod } from '../../lab/pods'
import { BIN, startDaemon } from '../../lab/daemons'
import type { Daemon } from '../../lab/daemons'
import { podsFor } from '../backend/mesh'
import { count, healthOf, logsOf, metric, peerSubnets, tmpDir } from './helpers'

const skip = netnsSkipReason() ?? toolSkipReason('ping')
const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const HOLD = path.join(__dirname, 'hold-lock.js')
const PORT = 8081
const LOCK_S = 8

interface Nodes {
  db: string
  weft: (...args: string[]) => string
  /** subnet -> public IP of every lease in the store */
  leases: () => Map<string, string>
  start: (i: number) => Promise<Daemon>
  a: Daemon
  b: Daemon
  pa: Pod
  pb: Pod
}

/** Two nodes on a store in <dir>/db/ (so the directory can be moved), a pod on each, reaching each other. */
async function twoNodes (t: { after: (fn: () => void) => void }, topo: Topology, label: string): Promise<Nodes> {
  const dir = tmpDir(t, label)
  const db = `${dir}/db/store.db`
  const weft = (...args: string[]): string => execFileSync(BIN, [...args, '--store', `sqlite:${db}`], { encoding: 'utf8' })
  weft('config', 'set', CONFIG)
  const start = async (i: number): Promise<Daemon> => await startDaemon(topo, topo.hosts[i], {
    dir, store: ['--store', `sqlite:${db}`], extra: ['--healthz-ip', '127.0.0.1', '--healthz-port', String(PORT)]
  })
  const a = await start(0)
  const b = await start(1)
  await waitFor(async () => (await peerSubnets(a)).length === 1 && (await peerSubnets(b)).length === 1, { what: 'the nodes know each other', timeoutMs: 5000 })
  const [pa] = await podsFor(topo, a, 1)
  const [pb] = await podsFor(topo, b, 1)
  assert.ok((await ping(topo, pa, pb.ip, { count: 3, intervalS: 0.2, waitS: 2 })).received > 0, 'pods reach each other')
  const leases = (): Map<string, string> => new Map((JSON.parse(weft('leases', '--json')) as Array<{ subnet: string, publicIP: string }>).map((l) => [l.subnet, l.publicIP]))
  return { db, weft, leases, start, a, b, pa, pb }
}

function onePerNode (leases: Map<string, string>, ips: string[]): void {
  assert.equal(leases.size, ips.length, `${leases.size} leases: ${JSON.stringify([...leases])}`)
  for (const ip of ips) assert.equal([...leases.values()].filter((v) => v === ip).length, 1, `exactly one lease for ${ip}`)
}

test('a SQLite store locked by another process for 8 s: forwarding goes on, /readyz says why it is degraded, a node starting meanwhile waits and then leases once; all ready again when the lock goes', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'sqlite-locked' }, async (topo) => {
    const { db, leases, start, a, b, pa, pb } = await twoNodes(t, topo, 'sqlite-locked')
    const health = [healthOf(topo, a.host, PORT), healthOf(topo, b.host, PORT)]
    const traffic = ping(topo, pa, pb.ip, { count: (LOCK_S + 4) * 10, intervalS: 0.1, waitS: 1 })
    const locker = topo.spawn(topo.underlayNs, [process.execPath, HOLD, '--db', db, '--seconds', String(LOCK_S)])
    await locker.waitForLine(/^locked$/, 5000)
    const t0 = Date.now()
    const late = start(2)
    late.catch(() => { /* awaited below */ })

    const seen = await Promise.all(health.map(async (h) => {
      await waitFor(async () => (await h.readyz()).status === 503, { what: '/readyz 503 while locked', timeoutMs: (LOCK_S - 1) * 1000, intervalMs: 100 })
      return Date.now() - t0
    }))
    const degraded = await health[0].readyz()
    assert.match(degraded.body, /\[-\]store failed for [\d.]+ s: the SQLite store \S+ is locked: another process has held it for more than 2000 ms/)
    assert.equal(metric(await health[0].metrics(), 'weft_store_up'), 0)

    await locker.waitForLine(/^unlocked$/, (LOCK_S + 5) * 1000)
    const t1 = Date.now()
    const ready = await Promise.all(health.map(async (h) => {
      await waitFor(async () => (await h.readyz()).status === 200, { what: '/readyz 200 after the lock', timeoutMs: 10_000, intervalMs: 100 })
      return Date.now() - t1
    }))
    const c = await late
    const leasedAt = logsOf(c.child).find((l) => l.msg === 'leased a new subnet')!.time
    const pinged = await traffic
    t.diagnostic(`degraded ${seen.join(' and ')} ms into the lock; ready ${ready.join(' and ')} ms after it; the node that started during the lock leased ${leasedAt - t1} ms after it`)
    t.diagnostic(`ping pod -> pod every 100 ms across the lock: ${pinged.received}/${pinged.sent} answered`)
    assert.ok(pinged.sent - pinged.received <= 2, `forwarding went on: ${pinged.sent - pinged.received} of ${pinged.sent} pings lost`)

    assert.equal(count(c, (l) => l.msg === 'cannot reach the store to lease a subnet; retrying'), 1, 'the waiting node warned once')
    const sc = formatCidr(c.env().subnet)
    await waitFor(async () => (await peerSubnets(a)).includes(sc) && (await peerSubnets(b)).includes(sc), { what: 'both learn the new node', timeoutMs: 5000 })
    onePerNode(leases(), ['198.18.0.1', '198.18.0.2', '198.18.0.3'])
    for (const d of [a, b]) {
      assert.equal(count(d, (l) => /lost the store/.test(l.msg)), 1, `${d.host.name}: one warning`)
      const back = logsOf(d.child).filter((l) => l.msg === 'the store is back')
      assert.equal(back.length, 1, `${d.host.name}: one line when it ends`)
      assert.ok(Number(back[0].outageMs) > 1000, `${d.host.name}: with its length (${String(back[0].outageMs)} ms)`)
      assert.equal(count(d, (l) => l.msg === 'peer removed from the FDB'), 0, `${d.host.name}: no peer was dropped`)
      const m = await healthOf(topo, d.host, PORT).metrics()
      assert.equal(metric(m, 'weft_store_up'), 1)
      assert.equal(metric(m, 'weft_store_outages_total'), 1)
    }
  })
})

test('the SQLite file deleted under running nodes, then its directory moved away: forwarding goes on, the store is recreated, each node puts its own lease back once, the config comes back, and a new node can join', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'sqlite-removed' }, async (topo) => {
    const { db, weft, leases, start, a, b, pa, pb } = await twoNodes(t, topo, 'sqlite-removed')
    const before = leases()
    const traffic = ping(topo, pa, pb.ip, { count: 120, intervalS: 0.1, waitS: 1 })
    const restored = (d: Daemon): number => count(d, (l) => l.msg === 'the store was recreated without our lease; putting it back from memory')

    for (const [round, remove] of [
      // the file only: its -wal and -shm stay behind, still open in the nodes
      [1, () => fs.rmSync(db)],
      [2, () => fs.renameSync(path.dirname(db), `${path.dirname(db)}.moved`)]
    ] as const) {
      const t0 = Date.now()
      remove()
      await waitFor(() => restored(a) === round && restored(b) === round, { what: `round ${round}: both nodes put their leases back`, timeoutMs: 5000, intervalMs: 20 })
      const putBack = Math.max(...[a, b].map((d) => logsOf(d.child).filter((l) => /putting it back from memory/.test(l.msg))[round - 1].time)) - t0
      await waitFor(() => leases().size === 2, { what: 'both leases in the new store', timeoutMs: 3000 })
      assert.deepEqual([...leases()].sort(), [...before].sort(), `round ${round}: the same subnets for the same nodes`)
      assert.equal(weft('config', 'get').trim(), CONFIG, `round ${round}: the network config is back`)
      const check = new Database(db, { readonly: true })
      try { assert.equal(check.pragma('integrity_check', { simple: true }), 'ok') } finally { check.close() }
      for (const d of [a, b]) {
        const n = d.host.name
        const storeLines = JSON.stringify(logsOf(d.child).filter((l) => /store/.test(l.msg)), null, 1)
        assert.equal(count(d, (l) => /lost the store/.test(l.msg) && /was removed while in use|was replaced by another file/.test(String(l.err))), round, `${n}: warned once per loss, naming it: ${storeLines}`)
        assert.equal(count(d, (l) => l.msg === 'the store is back'), round, `${n}: ${storeLines}`)
        assert.equal(count(d, (l) => l.msg === 'peer removed from the FDB'), 0, `${n}: no peer was dropped meanwhile`)
        const m = await healthOf(topo, d.host, PORT).metrics()
        assert.equal(metric(m, 'weft_store_outages_total'), round)
        assert.equal(metric(m, 'weft_store_up'), 1)
        assert.equal((await healthOf(topo, d.host, PORT).readyz()).status, 200)
      }
      t.diagnostic(`round ${round}: both leases back in a new store ${putBack} ms after the ${round === 1 ? 'file was deleted' : 'directory was moved'}`)
    }
    const creators = [a, b].flatMap((d) => logsOf(d.child)).filter((l) => /created a new, empty one/.test(String(l.err))).length
    // if this fails (seen once in CI, 2026-12-06: 1 instead of 2), the notes say which node saw what
    const notes = [a, b].map((d) => `${d.host.name}: ${logsOf(d.child).filter((l) => /lost the store/.test(l.msg)).map((l) => String(l.err)).join(' | ')}`).join('\n')
    assert.equal(creators, 2, `one node created the new file each time; the other opened it:\n${notes}`)
    assert.ok([a, b].some((d) => count(d, (l) => /put back the one this node runs with/.test(l.msg)) > 0), 'the config was put back, and said so')

    const c = await start(2)
    const sc = formatCidr(c.env().subnet)
    await waitFor(async () => (await peerSubnets(a)).includes(sc) && (await peerSubnets(b)).includes(sc), { what: 'both learn the new node', timeoutMs: 5000 })
    onePerNode(leases(), ['198.18.0.1', '198.18.0.2', '198.18.0.3'])
    const pinged = await traffic
    t.diagnostic(`ping pod -> pod every 100 ms across both losses: ${pinged.received}/${pinged.sent} answered`)
    assert.ok(pinged.sent - pinged.received <= 2, `forwarding went on: ${pinged.sent - pinged.received} of ${pinged.sent} pings lost`)
  })
})
