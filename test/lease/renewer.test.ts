// The renewer on a fake clock: when it renews, how it retries, and when it
// stays quiet. Time is moved by hand, so a 24 h lease costs no real time.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseCidr } from '../../src/packet/net'
import { parseIp4 } from '../../src/packet/ip'
import type { Lease } from '../../src/subnet/lease'
import { StoreError } from '../../src/store/store'
import type { StoreErrorCode } from '../../src/store/store'
import { Renewer } from '../../src/lease/renewer'
import type { Renewable } from '../../src/lease/renewer'
import { FakeClock } from '../helpers/fake-clock'
import { captureLogger } from '../helpers/log'

const HOUR = 3_600_000

/** A lease holder whose store fails the next `failures` renewals with `code`, then renews for `ttlMs`. */
function holder (clock: FakeClock, expiration: number | null, ttlMs: number): Renewable & { calls: number[], counted: string[], failures: number, code: StoreErrorCode } {
  let lease: Lease = { subnet: parseCidr('10.244.7.0/24'), attrs: { publicIP: parseIp4('198.18.0.7'), publicIPv6: null, backendType: 'vxlan' }, expiration, revision: 1 }
  const h = {
    calls: [] as number[],
    counted: [] as string[],
    failures: 0,
    code: 'EUNAVAILABLE' as StoreErrorCode,
    get lease () { return lease },
    renew: async () => {
      h.calls.push(clock.now())
      if (h.failures > 0) { h.failures--; throw new StoreError(h.code, 'the store is locked') }
      lease = { ...lease, expiration: lease.expiration === null ? null : clock.now() + ttlMs, revision: lease.revision + 1 }
      return lease
    },
    countError: (err: StoreError, op: string) => { h.counted.push(`${err.code} ${op}`) }
  }
  return h
}

test('a 24 h lease is renewed an hour before it ends, and again an hour before the new end', async () => {
  const clock = new FakeClock(0)
  const logs = captureLogger()
  const h = holder(clock, 24 * HOUR, 24 * HOUR)
  const renewed: Lease[] = []
  const r = new Renewer(h, { signal: new AbortController().signal, retryMs: 60_000, marginS: 3600, log: logs.log, clock, onRenewed: (l) => renewed.push(l) })
  r.schedule()
  await clock.advance(23 * HOUR - 1)
  assert.deepEqual(h.calls, [], 'not before the margin')
  await clock.advance(1)
  assert.deepEqual(h.calls, [23 * HOUR])
  assert.equal(renewed[0]?.expiration, 47 * HOUR)
  await clock.advance(23 * HOUR)
  assert.deepEqual(h.calls, [23 * HOUR, 46 * HOUR])
  assert.equal(logs.find(/renewed the lease/).length, 2)
  r.cancel()
  assert.equal(clock.timers, 0)
})

test('a failed renewal is retried every retryMs, warned about once and counted each time; the first success says so', async () => {
  const clock = new FakeClock(0)
  const logs = captureLogger()
  const h = holder(clock, 10_000, 10_000)
  h.failures = 3
  const r = new Renewer(h, { signal: new AbortController().signal, retryMs: 1000, marginS: 4, log: logs.log, clock })
  r.schedule()
  await clock.advance(9500)
  assert.deepEqual(h.calls, [6000, 7000, 8000, 9000])
  assert.deepEqual(h.counted, ['EUNAVAILABLE renew', 'EUNAVAILABLE renew', 'EUNAVAILABLE renew'])
  assert.equal(logs.find(/lease renewal failed; retrying every 1 s/).length, 1)
  assert.equal(logs.find(/lease renewal works again/).length, 1)
  assert.equal(h.lease.expiration, 19_000)
  r.cancel()
})

test('a reservation (no TTL) is never renewed', async () => {
  const clock = new FakeClock(0)
  const h = holder(clock, null, 0)
  const r = new Renewer(h, { signal: new AbortController().signal, retryMs: 500, marginS: 4, log: captureLogger().log, clock })
  r.schedule()
  assert.equal(clock.timers, 0)
  await clock.advance(48 * HOUR)
  assert.deepEqual(h.calls, [])
})

test('a lease gone from the store (ENOENT) is left to the watch: no retry, no warning', async () => {
  const clock = new FakeClock(0)
  const logs = captureLogger()
  const h = holder(clock, 10_000, 10_000)
  h.failures = 1
  h.code = 'ENOENT'
  const r = new Renewer(h, { signal: new AbortController().signal, retryMs: 500, marginS: 4, log: logs.log, clock })
  r.schedule()
  await clock.advance(60_000)
  assert.deepEqual(h.calls, [6000])
  assert.deepEqual(h.counted, [])
  assert.equal(logs.find(/lease renewal failed/).length, 0)
  assert.equal(clock.timers, 0)
})

test('once the signal aborts, nothing more is scheduled', async () => {
  const clock = new FakeClock(0)
  const ac = new AbortController()
  const h = holder(clock, 10_000, 10_000)
  const r = new Renewer(h, { signal: ac.signal, retryMs: 500, marginS: 4, log: captureLogger().log, clock })
  ac.abort()
  r.schedule()
  assert.equal(clock.timers, 0)
})
