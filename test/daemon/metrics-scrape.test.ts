// A scrape's cost on the dataplane's thread: one status() per scrape, shared
// by every collector, and at most one a second however often /metrics is
// asked for (a counting status function stands in for the network's); and
// what the families make of a made-up status (the WireGuard backend's).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import vm from 'node:vm'
import { Metrics, WIREGUARD_DROP_REASONS } from '../../src/daemon/metrics'
import { WG_DROP_NAMES } from '../../src/wireguard/reasons'
import { COUNT_NAMES } from '../../src/dataplane/stats'
import { Health } from '../../src/daemon/health'
import { captureLogger } from '../helpers/log'
import { flood, get, loop } from '../../lab/raw-http'

function counting (): { calls: () => number, status: () => never } {
  let calls = 0
  let packets = 0
  const status = (): never => {
    calls++
    packets += 10
    return {
      backend: 'vxlan',
      device: 'weft.1',
      mtu: 1450,
      peers: [{ subnet: '10.244.2.0/24', insidePackets: packets, insideBytes: 1, outsidePackets: 2, outsideBytes: 3 }],
      offloads: { tso: true, uso: false, gro: true, gso: true },
      tunQueueDrops: 0,
      counters: { counters: { inside_packets: packets }, drops: {}, tun: {}, sock: {} }
    } as never
  }
  return { calls: () => calls, status }
}

test('one status() per scrape, read by every collector', async () => {
  const c = counting()
  const m = new Metrics(c.status, () => 0, { maxAgeMs: 0 })
  const text = await m.text()
  assert.equal(c.calls(), 1)
  assert.match(text, /^weft_packets_total\{direction="inside"\} 10$/m)
  assert.match(text, /^weft_peer_packets_total\{peer="10\.244\.2\.0\/24",direction="inside"\} 10$/m, 'the same snapshot in every series')
  assert.match(text, /^weft_peers 1$/m)
  assert.match(text, /^weft_offload_enabled\{offload="tso"\} 1$/m)
  await m.text()
  assert.equal(c.calls(), 2)
  // scrapes at once share the render under way
  await Promise.all([m.text(), m.text(), m.text()])
  assert.equal(c.calls(), 3)
})

test('the pacer\'s waits are exported (weft_udp_pacing_waits_total), with a HELP that names WEFT_UDP_PACING', async () => {
  const status = (): never => ({ peers: [], counters: { counters: { outside_paced: 7 }, drops: {}, tun: {}, sock: {} } }) as never
  const text = await new Metrics(status, () => 0, { maxAgeMs: 0 }).text()
  assert.match(text, /^# TYPE weft_udp_pacing_waits_total counter$/m)
  assert.match(text, /^# HELP weft_udp_pacing_waits_total .*WEFT_UDP_PACING.*TCP is never held/m)
  assert.match(text, /^weft_udp_pacing_waits_total 7$/m)
  // a dataplane without the counter (host-gw) exports 0
  const none = await new Metrics(() => ({ peers: [], counters: { counters: {} } }) as never, () => 0, { maxAgeMs: 0 }).text()
  assert.match(none, /^weft_udp_pacing_waits_total 0$/m)
})

test('every dataplane counter /metrics reads is one the dataplane keeps (a misspelt name would export 0 for ever)', async () => {
  const read = new Set<string>()
  // the snapshot's counters record which names the collectors ask for
  const counters = new Proxy({}, { get (_o, k) { if (typeof k === 'string') read.add(k); return 1 } })
  const status = (): never => ({ peers: [], counters: { counters, drops: {}, tun: {}, sock: {} } }) as never
  await new Metrics(status, () => 0, { maxAgeMs: 0 }).text()
  const unknown = [...read].filter((k) => !COUNT_NAMES.includes(k))
  assert.deepEqual(unknown, [], `read but not in COUNT_NAMES: ${unknown.join(', ')}`)
  for (const k of ['outside_paced', 'busy_poll_caught', 'outside_coalesced']) assert.ok(read.has(k), `${k} is exported`)
})

/** A wireguard node's status as the daemon serves it (src/backend/tun/network.ts with loops.ts's peerStatus and snapshot). */
function wireguardStatus (wireguard: unknown): () => never {
  return () => ({
    backend: 'wireguard',
    device: 'weft-wg',
    mtu: 1420,
    peers: [
      { subnet: '10.244.2.0/24', publicIP: '192.0.2.2', insidePackets: 3, insideBytes: 300, outsidePackets: 4, outsideBytes: 400, publicKey: 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=', endpoint: '192.0.2.2:51820', latestHandshake: '2026-12-07T03:00:00.250Z', session: true, persistentKeepalive: 0 },
      { subnet: '10.244.3.0/24', publicIP: '192.0.2.3', insidePackets: 0, insideBytes: 0, outsidePackets: 0, outsideBytes: 0, publicKey: 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=', endpoint: '192.0.2.3:51820', latestHandshake: null, session: false, persistentKeepalive: 25 },
      { subnet: '10.244.4.0/24', publicIP: '192.0.2.4', insidePackets: 0, insideBytes: 0, outsidePackets: 0, outsideBytes: 0, wireguard: 'no peer (its key is another lease\'s, or ours)' }
    ],
    counters: { counters: {}, drops: {}, tun: {}, sock: {}, wireguard }
  }) as never
}

test('a wireguard node: handshakes, rekeys, peers, every drop reason (0 until it happens), each peer\'s latest handshake', async () => {
  const text = await new Metrics(wireguardStatus({ handshakes: 9, rekeys: 4, drops: { bad_mac1: 3, replay: 2 }, peers: 2 }), () => 0, { maxAgeMs: 0 }).text()
  assert.match(text, /^# TYPE weft_wireguard_handshakes_total counter$/m)
  assert.match(text, /^weft_wireguard_handshakes_total 9$/m)
  assert.match(text, /^weft_wireguard_rekeys_total 4$/m)
  assert.match(text, /^weft_wireguard_peers 2$/m)
  assert.match(text, /^weft_wireguard_drops_total\{reason="bad_mac1"\} 3$/m)
  assert.match(text, /^weft_wireguard_drops_total\{reason="replay"\} 2$/m)
  const series = [...text.matchAll(/^weft_wireguard_drops_total\{reason="([a-z0-9_]+)"\} (\d+)$/gm)]
  assert.deepEqual(series.map((m) => m[1]), WG_DROP_NAMES.slice(1), 'one series per reason, none for "ok"')
  assert.equal(series.filter((m) => m[2] !== '0').length, 2)
  // a peer with a handshake: its time; one with none yet: 0; a lease that is no WireGuard peer: no series
  assert.match(text, /^weft_wireguard_peer_last_handshake_timestamp_seconds\{peer="10\.244\.2\.0\/24"\} 1796612400\.25$/m)
  assert.match(text, /^weft_wireguard_peer_last_handshake_timestamp_seconds\{peer="10\.244\.3\.0\/24"\} 0$/m)
  assert.doesNotMatch(text, /weft_wireguard_peer_last_handshake_timestamp_seconds\{peer="10\.244\.4\.0\/24"\}/)
  assert.match(text, /^weft_peers 3$/m, 'the table holds the lease weft_wireguard_peers leaves out')
})

test('a drop reason newer than WG_DROP_NAMES still gets its series', async () => {
  const text = await new Metrics(wireguardStatus({ handshakes: 0, rekeys: 0, drops: { some_new_reason: 5 }, peers: 0 }), () => 0, { maxAgeMs: 0 }).text()
  assert.match(text, /^weft_wireguard_drops_total\{reason="some_new_reason"\} 5$/m)
})

test('a node on another backend has no weft_wireguard_* series (HELP and TYPE only)', async () => {
  const text = await new Metrics(counting().status, () => 0, { maxAgeMs: 0 }).text()
  const series = text.split('\n').filter((l) => l.startsWith('weft_wireguard_'))
  assert.deepEqual(series, [])
  assert.match(text, /^# TYPE weft_wireguard_handshakes_total counter$/m)
})

test('every WireGuard number /metrics reads is one the backend\'s snapshot has, and the drops HELP explains every reason', async () => {
  // the keys of loops.ts's snapshot().wireguard (the lab test in
  // health-metrics.test.ts reads them from a running node)
  const read = new Set<string>()
  const wireguard = new Proxy({}, { get (_o, k) { if (typeof k === 'string') read.add(k); return k === 'drops' ? {} : 1 } })
  await new Metrics(wireguardStatus(wireguard), () => 0, { maxAgeMs: 0 }).text()
  const known = ['handshakes', 'rekeys', 'drops', 'peers']
  assert.deepEqual([...read].filter((k) => !known.includes(k)), [])
  for (const k of known) assert.ok(read.has(k), `${k} is exported`)
  assert.deepEqual(WIREGUARD_DROP_REASONS, WG_DROP_NAMES.filter((n) => n !== 'ok'))
  const help = /^# HELP weft_wireguard_drops_total (.*)$/m.exec(await new Metrics(wireguardStatus({}), () => 0, { maxAgeMs: 0 }).text())?.[1] ?? ''
  const missing = WIREGUARD_DROP_REASONS.filter((r) => !new RegExp(`\\b${r}\\b`).test(help))
  assert.deepEqual(missing, [], `reasons the HELP does not mention: ${missing.join(', ')}`)
})

test('a scrape loop calls status() at most once per maxAgeMs (a fake clock)', async () => {
  let now = 0
  const c = counting()
  const m = new Metrics(c.status, () => 0, { now: () => now })
  for (let i = 0; i < 1000; i++) await m.text()
  assert.equal(c.calls(), 1)
  now = 999
  await m.text()
  assert.equal(c.calls(), 1)
  now = 1000
  assert.match(await m.text(), /^weft_packets_total\{direction="inside"\} 20$/m)
  assert.equal(c.calls(), 2)
  for (let s = 2; s <= 10; s++) {
    now = s * 1000
    for (let i = 0; i < 50; i++) await m.text()
  }
  assert.equal(c.calls(), 11, 'one a second')
})

test('within the second a snapshot serves, the control plane\'s counters are still read fresh', async () => {
  const now = 0
  const c = counting()
  const m = new Metrics(c.status, () => 0, { now: () => now })
  assert.match(await m.text(), /^weft_store_outages_total 0$/m)
  m.storeOutages.inc()
  m.storeUp.set(0)
  m.httpRefused.inc({ server: 'healthz', reason: 'rate' })
  const text = await m.text()
  assert.match(text, /^weft_store_outages_total 1$/m)
  assert.match(text, /^weft_store_up 0$/m)
  assert.match(text, /^weft_http_refused_total\{server="healthz",reason="rate"\} 1$/m)
  assert.match(text, /^weft_packets_total\{direction="inside"\} 10$/m, 'the dataplane\'s from the snapshot')
  assert.equal(c.calls(), 1)
})

test('a status() that throws fails that scrape only: the next one asks again', async () => {
  let fail = true
  const m = new Metrics(() => {
    if (fail) throw new Error('no status')
    return undefined
  }, () => 0)
  await assert.rejects(m.text(), /no status/)
  fail = false
  assert.match(await m.text(), /^weft_peers 0$/m)
})

test('/metrics hammered over HTTP: status() once a second at most, and every request answered', async (t) => {
  const c = counting()
  const m = new Metrics(c.status, () => 0)
  const log = captureLogger('info')
  // limits raised so that every request reaches the render path
  const health = new Health({ log: log.log, limits: { ratePerSecond: 1e6, burst: 1e6 } })
  health.setMetrics(() => m.text())
  const port = await health.listen('127.0.0.1', 0)
  t.after(async () => await health.close())
  const to = { host: '127.0.0.1', port }
  const t0 = performance.now()
  const by = await flood(to, '/metrics', 3000, 4, 10_000)
  const seconds = (performance.now() - t0) / 1000
  assert.equal(by['200'], 3000, JSON.stringify(by))
  assert.ok(c.calls() <= Math.ceil(seconds) + 1, `${c.calls()} status() calls in ${seconds.toFixed(2)} s`)
  t.diagnostic(`3000 scrapes in ${seconds.toFixed(2)} s (${Math.round(3000 / seconds)}/s): ${c.calls()} status() calls`)
  assert.equal((await get(to, '/healthz')).status, 200)
})

test('scrape loops and pipelined floods, served and refused, leave nothing behind in the JS heap', async (t) => {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  const c = counting()
  const m = new Metrics(c.status, () => 0, { maxAgeMs: 0 })
  const log = captureLogger('info')
  const refusing = new Health({ log: log.log })
  const serving = new Health({ log: log.log, limits: { ratePerSecond: 1e6, burst: 1e6 } })
  const ports: number[] = []
  for (const h of [refusing, serving]) {
    h.setMetrics(() => m.text())
    ports.push(await h.listen('127.0.0.1', 0))
    t.after(async () => await h.close())
  }
  const heap: number[] = []
  // each round takes a second or so: a refused loop's connections are held for the second Retry-After says
  for (let round = 0; round < 8; round++) {
    for (const port of ports) {
      const to = { host: '127.0.0.1', port }
      await loop(to, { target: '/metrics', conns: 16, seconds: 0.2, requests: 2000, rate: 0 })
      await flood(to, '/metrics', 1000, 4, 5000)
    }
    gc()
    gc()
    heap.push(process.memoryUsage().heapUsed / 2 ** 20)
  }
  t.diagnostic(`JS heap after a collection, each round: ${heap.map((x) => x.toFixed(2)).join(', ')} MiB; ${c.calls()} renders`)
  // A leak raises every later round; the heap's own noise (code compiled
  // late, a collection that came late) raises one or two (seen: 1.4 and
  // 1.5 MiB). So the least of the last three rounds against the least of
  // rounds 2 to 4: about 3000 requests a round, a leak of 100 bytes a
  // request would add more than 1.2 MiB over the four rounds between.
  const growth = Math.min(...heap.slice(-3)) - Math.min(...heap.slice(1, 4))
  assert.ok(growth < 1.2, `the heap grew by ${growth.toFixed(2)} MiB from rounds 2 to 4 to rounds 6 to 8`)
})
