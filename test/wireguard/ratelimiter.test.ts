// Handshakes per source while under load: 20 a second, a burst of 5, as
// wireguard-go's ratelimiter; idle sources forgotten after a second.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { HandshakeRateLimiter } from '../../src/wireguard/ratelimiter'

test('a burst of 5 from one source, then one every 50 ms; other sources are counted apart', () => {
  const r = new HandshakeRateLimiter()
  const at = (n: number, addr: number, now: number) => Array.from({ length: n }, () => r.allow(addr, now))
  assert.deepEqual(at(7, 1, 0), [true, true, true, true, true, false, false])
  assert.deepEqual(at(1, 2, 0), [true])
  assert.deepEqual(at(2, 1, 49), [false, false])
  assert.deepEqual(at(2, 1, 50), [true, false])
  assert.deepEqual(at(3, 1, 150), [true, true, false])
  assert.deepEqual(at(6, 1, 10_000), [true, true, true, true, true, false], 'credit caps at the burst')
})

test('sources idle for a second are forgotten; the table is bounded', () => {
  const r = new HandshakeRateLimiter(3)
  r.allow(1, 0)
  r.allow(2, 0)
  r.allow(3, 500)
  assert.equal(r.allow(4, 500), false, 'full: a new source is refused')
  r.gc(1001)
  assert.equal(r.size, 1)
  assert.equal(r.allow(4, 1001), true)
})
