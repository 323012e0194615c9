// OnceLog: each name warned about once, in bounded memory, and past a rate
// only counted and summed up, on a fake clock.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { OnceLog } from '../../src/util/log-once'
import { captureLogger } from '../helpers/log'

test('a name is warned about once, and again only after it was forgotten', () => {
  const logs = captureLogger()
  const once = new OnceLog(logs.log, 'ignoring junk')
  for (let i = 0; i < 10; i++) once.warn('k1', { key: 'k1' })
  once.warn('k2', { key: 'k2' })
  assert.deepEqual(logs.find(/ignoring junk/).map((l) => l.key), ['k1', 'k2'])
  once.forget('k1')
  once.warn('k1', { key: 'k1' })
  assert.equal(logs.find(/ignoring junk/).length, 3)
  assert.equal(once.total, 3)
})

test('a writer inventing names without end: memory holds `max` names, the log `perMinute` a minute plus one summary line', () => {
  const logs = captureLogger()
  let now = 0
  const once = new OnceLog(logs.log, 'ignoring junk', { max: 100, perMinute: 5, now: () => now })
  for (let i = 0; i < 10_000; i++) once.warn(`k${i}`, { key: `k${i}` })
  assert.equal(logs.lines.length, 5, 'five named in the first minute')
  assert.equal(once.total, 10_000, 'every one counted')
  now += 60_000
  once.warn('another', { key: 'another' })
  const summary = logs.find(/and more, not named/)
  assert.equal(summary.length, 1)
  assert.equal(summary[0].unnamed, 9_995)
  assert.equal(logs.lines.length, 7, 'the summary, then the first name of the new minute')
  // bounded memory: the earliest names were evicted, so k0 may be named again
  once.warn('k0', { key: 'k0' })
  assert.equal(logs.find(/ignoring junk$/).filter((l) => l.key === 'k0').length, 2)
})
