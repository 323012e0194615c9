// A store writer inventing junk without end (issue 17, item 5): thousands of
// distinct entries that are not leases (keys that do not parse, values that
// are not lease JSON or too large), leases for subnets outside the network
// and leases claiming our own public IP, each written and deleted again.
// Two real `weft run` daemons in namespaces, a pod behind each pinging the
// other throughout: every ping is answered, each node keeps exactly its one
// real peer (the junk never enters a table), the log names at most its per-minute share of each kind (plus
// one summary line), and the daemon's RSS stays where it was.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { memoryOf, nodePid } from '../../lab/cpu'
import { waitFor, withTopology } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'
import { ping } from '../../lab/traffic'
import { logs, pair } from '../backend/mesh'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const ROUNDS = 4
/** distinct junk entries of each kind per round */
const EACH = 250
/** OnceLog's per-minute share of each kind of warning */
const PER_MINUTE = 20

test('a store writer\'s junk, thousands of distinct entries written and deleted, leaves forwarding, the peer tables, the log and RSS as they were', { skip: netnsSkipReason(), timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'junk-store', timeoutMs: 110_000 }, async (topo) => {
    const { c, a, b, pa, pb } = await pair(t, topo, CONFIG)
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    t.after(() => store.close())
    const pid = nodePid(a.child.pid)
    const value = (ip: string): string => `{"PublicIP":"${ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:99"}}`
    // subnets of the network nobody holds (the junk must not overwrite A's or B's lease)
    const held = [a, b].map((d) => (d.env().subnet.ip >>> 8) & 255)
    const free = Array.from({ length: 200 }, (_, i) => i + 20).filter((x) => !held.includes(x) && x !== 250 && x !== 251)
    const junk = (round: number): Array<[string, string]> => {
      const out: Array<[string, string]> = []
      for (let i = 0; i < EACH; i++) {
        const n = round * EACH + i
        out.push([`junk-${n}`, '{}']) // a key that is no subnet
        out.push([`10.${100 + (n >> 8)}.${n & 255}.0-24`, value('198.18.0.99')]) // outside the network
        out.push([`10.244.${free[n % free.length]}.0-24`, n % 2 === 0 ? 'not json' : `{"PublicIP":"${'x'.repeat(70_000)}"}`]) // not a lease value
      }
      // a lease claiming A's own public IP, put again and again
      out.push(['10.244.250.0-24', value(a.host.underlayIp)])
      return out
    }

    const pinging = ping(topo, pb, pa.ip, { count: 600, intervalS: 0.02 })
    const rss: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      const entries = junk(round)
      for (const [k, v] of entries) store.putRaw(k, v, 86400)
      for (const [k] of entries) {
        const subnet = parseKey(k)
        if (subnet !== undefined) await store.deleteLease(subnet)
      }
      // a real lease after the junk: once A lists it, A has taken in everything before it
      const mac = `02:00:00:00:aa:${(round + 16).toString(16)}`
      store.putRaw('10.244.251.0-24', value('198.18.0.250').replace('02:00:00:00:00:99', mac), 86400)
      await waitFor(async () => (await a.status()).peers.some((x) => x.vtepMAC === mac), { what: `A to take in round ${round + 1}`, timeoutMs: 20_000 })
      rss.push(memoryOf(pid).rssMiB)
    }
    const p = await pinging
    await store.deleteLease({ ip: (10 << 24 | 244 << 16 | 251 << 8) >>> 0, prefixLen: 24 })
    await waitFor(async () => (await a.status()).peers.length === 1 && (await b.status()).peers.length === 1, { what: 'each node back to its one real peer', timeoutMs: 10_000 })

    const lines = logs(a).filter((l) => /not a valid lease|not a subnet of this network|our own public IP/.test(l.msg))
    const byMsg = new Map<string, number>()
    for (const l of lines) byMsg.set(l.msg, (byMsg.get(l.msg) ?? 0) + 1)
    t.diagnostic(`${ROUNDS} rounds of ${3 * EACH + 1} junk entries; pings ${p.received}/${p.sent}; A's warnings ${JSON.stringify(Object.fromEntries(byMsg))}; A's RSS after each round ${rss.map((x) => x.toFixed(1)).join(', ')} MiB`)
    assert.equal(p.received, p.sent, 'every ping answered while the junk came and went')
    assert.equal(a.child.running && b.child.running, true)
    for (const [msg, n] of byMsg) assert.ok(n <= 2 * (PER_MINUTE + 1), `"${msg}" logged ${n} times`)
    assert.ok(rss[rss.length - 1] - rss[0] < 16, `RSS grew from ${rss[0].toFixed(1)} to ${rss[rss.length - 1].toFixed(1)} MiB`)
  })
})

function parseKey (k: string): import('../../src/packet/net').Ip4Net | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)-(\d+)$/.exec(k)
  if (m === null) return undefined
  return { ip: ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0, prefixLen: Number(m[5]) }
}
