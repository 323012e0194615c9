// The pieces the fault handling is made of, on their own: the retry backoff,
// the outage tracker (one warning per outage, one info line with its
// length), the lease TTL knob, and the watcher's merge after a store was
// recreated.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseCidr } from '../../src/packet/net'
import type { Lease } from '../../src/subnet/lease'
import { leaseTiming } from '../../src/lease/timing'
import { LeaseWatcher } from '../../src/lease/watcher'
import { parseIp4 } from '../../src/packet/ip'
import { StoreOutage } from '../../src/store/outage'
import { backoffMs, StoreError } from '../../src/store/store'
import { captureLogger } from '../helpers/log'

test('retry pauses double from 100 ms to a 5 s cap, each somewhere in the upper half of its step', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 10, 50].map((n) => backoffMs(n, () => 1)), [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000])
  assert.deepEqual([0, 1, 6, 50].map((n) => backoffMs(n, () => 0)), [50, 100, 2500, 2500])
  const spread = new Set(Array.from({ length: 50 }, () => backoffMs(3)))
  assert.ok(spread.size > 10, 'jittered: nodes that failed together do not retry together')
  for (const v of spread) assert.ok(v >= 400 && v <= 800)
})

test('an outage is logged once at warn however many calls fail, and once at info when it ends, with its length', () => {
  const logs = captureLogger()
  let now = 1000
  const changes: boolean[] = []
  const errors: string[] = []
  const o = new StoreOutage(logs.log, { onChange: (up) => changes.push(up), onError: (_e, op) => errors.push(op) }, () => now)
  const err = new StoreError('EUNAVAILABLE', 'etcd at http://x is unreachable')
  for (let i = 0; i < 5; i++) { o.failed(err, 'watch', 'lost the store; retrying'); now += 500 }
  assert.equal(o.up, false)
  assert.equal(o.reason, 'etcd at http://x is unreachable')
  assert.equal(o.downForMs, 2500)
  o.counted(err, 'renew')
  o.answered()
  o.answered()
  assert.deepEqual(changes, [false, true])
  assert.deepEqual(errors, ['watch', 'watch', 'watch', 'watch', 'watch', 'renew'])
  assert.equal(logs.find(/lost the store/).length, 1)
  assert.equal(logs.find(/lost the store/)[0].level, 40)
  const back = logs.find(/the store is back/)
  assert.equal(back.length, 1)
  assert.equal(back[0].level, 30)
  assert.equal(back[0].outageMs, 2500)
  assert.equal(back[0].failedCalls, 5)
  assert.equal(o.downForMs, 0)
})

test('a TLS refusal (ETLS) is named once at error as a certificate problem, also when the outage began as an unreachable store', () => {
  const logs = captureLogger()
  const o = new StoreOutage(logs.log)
  const tls = new StoreError('ETLS', 'etcd at https://x failed the TLS handshake: ... (etcd rejected our client certificate: ...)')
  for (let i = 0; i < 3; i++) o.failed(tls, 'watch', 'lost the store; retrying')
  assert.equal(o.up, false)
  assert.deepEqual(logs.lines.map((l) => [l.level, l.code]), [[50, 'ETLS']])
  assert.match(String(logs.lines[0].msg), /certificate, which waiting will not fix/)
  assert.equal(logs.find(/lost the store/).length, 0, 'not called an outage')
  o.answered()
  // etcd down first, then back with a certificate we refuse
  o.failed(new StoreError('EUNAVAILABLE', 'etcd at https://x is unreachable'), 'watch', 'lost the store; retrying')
  o.failed(tls, 'watch', 'lost the store; retrying')
  o.failed(tls, 'watch', 'lost the store; retrying')
  assert.equal(logs.find(/lost the store/).length, 1)
  assert.equal(logs.find(/which waiting will not fix/).length, 2, 'once per outage')
})

test('a failed renewal is counted but neither starts nor ends an outage (the watch decides, so the state cannot flap)', () => {
  const logs = captureLogger()
  const changes: boolean[] = []
  const o = new StoreOutage(logs.log, { onChange: (up) => changes.push(up) })
  o.counted(new StoreError('EUNAVAILABLE', 'locked'), 'renew')
  assert.equal(o.up, true)
  assert.deepEqual(changes, [])
  assert.equal(logs.lines.length, 0)
})

test('WEFT_LEASE_TTL shortens leases for tests: the renew margin is at most half of it, retries come faster; anything else is refused by name', () => {
  assert.deepEqual(leaseTiming(60, {}), { ttlSeconds: 86_400, renewMarginSeconds: 3600, renewRetryMs: 60_000, overridden: false })
  assert.deepEqual(leaseTiming(60, { WEFT_LEASE_TTL: '8' }), { ttlSeconds: 8, renewMarginSeconds: 4, renewRetryMs: 1333, overridden: true })
  assert.deepEqual(leaseTiming(1, { WEFT_LEASE_TTL: '600' }), { ttlSeconds: 600, renewMarginSeconds: 60, renewRetryMs: 20_000, overridden: true })
  for (const bad of ['1', '0', '-5', '2.5', 'ten', '86401']) {
    assert.throws(() => leaseTiming(60, { WEFT_LEASE_TTL: bad }), (e: unknown) => (e as { code: string }).code === 'EFLAG' && /WEFT_LEASE_TTL=.*whole number of seconds from 2 to 86400/.test((e as Error).message))
  }
})

const lease = (subnet: string, ip: string, revision: number): Lease =>
  ({ subnet: parseCidr(subnet), attrs: { publicIP: parseIp4(ip), publicIPv6: null, backendType: 'vxlan' }, expiration: null, revision })

test('after a store is recreated, peers it lacks are kept until the grace ends; those put back meanwhile stay, the others go', () => {
  const w = new LeaseWatcher(parseCidr('10.244.1.0/24'))
  w.reset([lease('10.244.1.0/24', '198.18.0.1', 1), lease('10.244.2.0/24', '198.18.0.2', 2), lease('10.244.3.0/24', '198.18.0.3', 3)])
  // the new store holds only what has been put back so far: our own
  assert.deepEqual(w.merge([lease('10.244.1.0/24', '198.18.0.1', 1)]), [])
  assert.equal(w.peers().length, 2, 'nothing removed yet: forwarding goes on')
  // one peer puts its lease back
  const again = lease('10.244.2.0/24', '198.18.0.2', 2)
  assert.deepEqual(w.update([{ type: 'put', lease: again }]).map((e) => e.type), ['added'])
  const gone = w.dropUnconfirmed()
  assert.deepEqual(gone.map((e) => [e.type, e.lease.attrs.publicIP]), [['removed', parseIp4('198.18.0.3')]])
  assert.deepEqual(w.peers().map((l) => l.attrs.publicIP), [parseIp4('198.18.0.2')])
  assert.deepEqual(w.dropUnconfirmed(), [], 'only once')
})
