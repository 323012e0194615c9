// The benches' --congestion option: a kernel algorithm name passed to
// iperf3 -C, or 'default' for the machine's own (no -C at all).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { congestionOption } from '../../bench/args'

test('--congestion takes an algorithm name, and default means none is forced', () => {
  assert.equal(congestionOption('cubic'), 'cubic')
  assert.equal(congestionOption('bbr'), 'bbr')
  assert.equal(congestionOption('default'), undefined)
})

test('--congestion refuses what cannot be an algorithm name, saying what it got', () => {
  for (const bad of ['', 'Cubic', 'cubic -R', 'a_name_far_too_long']) {
    assert.throws(() => congestionOption(bad), (err: Error) => err instanceof RangeError && err.message.includes(`got ${bad}`))
  }
})
