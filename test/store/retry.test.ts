// The one loop that waits out an unreachable store (src/store/retry.ts), on
// a fake clock: the daemon's start-up and the lease manager's re-acquire and
// restore all go through it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { StoreOutage } from '../../src/store/outage'
import { untilStoreAnswers } from '../../src/store/retry'
import { StoreError } from '../../src/store/store'
import { FakeClock } from '../helpers/fake-clock'
import { captureLogger } from '../helpers/log'

test('an unreachable store is tried again after each backoff pause; the outage is logged once and ends when it answers', async () => {
  const clock = new FakeClock(0)
  const logs = captureLogger()
  const errors: string[] = []
  const outage = new StoreOutage(logs.log, { onError: (_e, op) => errors.push(op) }, clock.now)
  const calls: number[] = []
  const got = untilStoreAnswers({ outage, op: 'config', msg: 'cannot reach the store; retrying', signal: new AbortController().signal, random: () => 1, clock }, async () => {
    calls.push(clock.now())
    if (calls.length < 4) throw new StoreError('EUNAVAILABLE', 'etcd at http://x is unreachable')
    return 'the config'
  })
  await clock.advance(10_000)
  assert.equal(await got, 'the config')
  assert.deepEqual(calls, [0, 100, 300, 700], 'pauses of 100, 200 and 400 ms')
  assert.deepEqual(errors, ['config', 'config', 'config'])
  assert.equal(logs.find(/cannot reach the store; retrying/).length, 1)
  assert.equal(logs.find(/the store is back/)[0]?.outageMs, 700)
  assert.equal(outage.up, true)
})

test('any other error ends the wait at once, a TLS refusal included (it would be refused the same way every time)', async () => {
  const clock = new FakeClock(0)
  const outage = new StoreOutage(captureLogger().log, {}, clock.now)
  let calls = 0
  const fail = async (code: 'ETLS' | 'ESTORE'): Promise<unknown> => await untilStoreAnswers({ outage, op: 'acquire', msg: 'retrying', signal: new AbortController().signal, clock }, async () => {
    calls++
    throw new StoreError(code, 'no')
  })
  await assert.rejects(fail('ETLS'), (e: unknown) => (e as StoreError).code === 'ETLS')
  await assert.rejects(fail('ESTORE'), (e: unknown) => (e as StoreError).code === 'ESTORE')
  assert.equal(calls, 2)
  assert.equal(outage.up, true, 'not an outage')
})

test('a stop (the signal aborting) ends the wait with undefined, in the middle of a pause', async () => {
  const clock = new FakeClock(0)
  const outage = new StoreOutage(captureLogger().log, {}, clock.now)
  const ac = new AbortController()
  let calls = 0
  const got = untilStoreAnswers({ outage, op: 'restore', msg: 'retrying', signal: ac.signal, clock }, async () => {
    calls++
    throw new StoreError('EUNAVAILABLE', 'down')
  })
  await clock.advance(1)
  ac.abort()
  assert.equal(await got, undefined)
  assert.equal(calls, 1)
  assert.equal(clock.timers, 0, 'its pause cleared')
})
