// bench/args.ts: the parser every bench entry reads its flags with.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { benchArgs, numberFlag, usage } from '../../bench/args'

const FLAGS = { seconds: { type: 'string', default: '3' }, out: { type: 'string', hint: 'FILE.json' }, json: { type: 'boolean', default: false } } as const

test('flags come back as given, defaults where not given', () => {
  assert.deepEqual({ ...benchArgs('x', FLAGS, ['--seconds', '5', '--json']) }, { seconds: '5', json: true })
  assert.deepEqual({ ...benchArgs('x', FLAGS, []) }, { seconds: '3', json: false })
})

test('a misspelt flag stops the run instead of measuring the defaults', () => {
  assert.throws(() => benchArgs('x', FLAGS, ['--second', '5']), /Unknown option '--second'/)
})

test('the usage line is the flag table, with its defaults and hints', () => {
  assert.equal(usage('x', FLAGS), 'usage: node dist/bench/x.js [--seconds 3] [--out FILE.json] [--json]')
})

test('a number flag out of range names the flag, the range and what it got', () => {
  assert.equal(numberFlag('rounds', '3', { min: 0, max: 9, integer: true }), 3)
  assert.throws(() => numberFlag('rounds', '2.5', { min: 0, max: 9, integer: true }), { name: 'RangeError', message: '--rounds must be 0..9, got 2.5' })
  assert.throws(() => numberFlag('seconds', '0', { min: 0, max: 600, above: true }), { message: '--seconds must be in (0, 600], got 0' })
  assert.throws(() => numberFlag('seconds', 'abc', { min: 1, max: 60 }), { message: '--seconds must be 1..60, got abc' })
})
