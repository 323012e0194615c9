// The per-peer timers on an injected clock (Net.tick / until drive time): no
// real time passes, so minutes of protocol run in milliseconds.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  KEEPALIVE_TIMEOUT,
  MAX_TIMER_HANDSHAKES,
  REJECT_AFTER_TIME,
  REKEY_AFTER_TIME,
  REKEY_ATTEMPT_TIME,
  REKEY_ON_RECEIVE_AFTER,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX,
  ZERO_KEYS_AFTER,
} from '../../src/wireguard/constants'
import type { Outgoing, Peer } from '../../src/wireguard/peer'
import { WgDrop } from '../../src/wireguard/reasons'
import { Net, summary, T0, until, type WgNode } from './net'

/** a and b with a session a initiated at T0 */
function session (o: { keepaliveA?: number } = {}): { net: Net, a: WgNode, b: WgNode, ab: Peer, ba: Peer } {
  const net = new Net()
  const a = net.node('a', '198.18.0.1')
  const b = net.node('b', '198.18.0.2')
  const [ab, ba] = net.link(a, b, o)
  ab.send(T0)
  net.run(a, a.dev.takeOutgoing(), T0)
  assert.ok(ab.current && ba.current)
  return { net, a, b, ab, ba }
}

function data (from: WgNode, peer: Peer, now: number): Outgoing {
  const bytes = from.dev.sendTransport(peer, Buffer.from('data'), now)
  assert.ok(bytes)
  return { kind: 'keepalive', peer, bytes, addr: peer.endpointAddr, port: peer.endpointPort }
}

const JITTER = Math.floor(0.5 * REKEY_TIMEOUT_JITTER_MAX) // Net's devices draw random() = 0.5

test('the initiator rekeys when it sends after Rekey-After-Time (120 s); the responder does not', () => {
  const { net, a, b, ab, ba } = session()
  const first = ab.current!
  assert.ok(ab.send(T0 + REKEY_AFTER_TIME) >= 0)
  assert.equal(a.dev.hasOutgoing, false, 'at 120 s exactly, no rekey yet')
  assert.ok(ba.send(T0 + REKEY_AFTER_TIME + 30_000) >= 0)
  assert.equal(b.dev.hasOutgoing, false, 'the responder never rekeys on time alone')
  assert.ok(ab.send(T0 + REKEY_AFTER_TIME + 1) >= 0, 'the old session still sends')
  const out = a.dev.takeOutgoing()
  assert.deepEqual(out.map((o) => o.kind), ['initiation'])
  assert.deepEqual(summary(net.run(a, out, T0 + REKEY_AFTER_TIME + 1)), ['a>b initiation ok', 'b>a response ok', 'a>b keepalive ok'])
  assert.notEqual(ab.current, first)
  assert.equal(ab.previous, first, 'the old keypair still receives, as previous')
  assert.equal(ab.current!.created, T0 + REKEY_AFTER_TIME + 1)
})

test('after Reject-After-Time (180 s) a keypair neither sends nor receives', () => {
  const { a, b, ab, ba } = session()
  const late = data(a, ab, T0 + REJECT_AFTER_TIME - 1)
  assert.equal(a.dev.takeOutgoing().length, 1, 'sending at 179.999 s started a rekey (the session is past 120 s)')
  assert.equal(ab.send(T0 + REJECT_AFTER_TIME), -1)
  assert.equal(ba.send(T0 + REJECT_AFTER_TIME), -1)
  assert.equal(b.dev.takeOutgoing().map((o) => o.kind).join(), 'initiation', 'the responder starts a handshake instead')
  assert.equal(b.dev.receiveTransport(late.bytes, a.addr, a.port, T0 + REJECT_AFTER_TIME).reason, WgDrop.KEY_EXPIRED)
})

test('an initiator that only receives rekeys at 165 s (Reject − Keepalive − Rekey-Timeout), once', () => {
  const { net, a, b, ab, ba } = session()
  net.drop = (o) => o.kind === 'initiation'
  const fromA = (t: number) => summary(net.run(b, [data(b, ba, t)], t).filter((d) => d.from === 'a'))
  assert.deepEqual(fromA(T0 + REKEY_ON_RECEIVE_AFTER), [])
  assert.deepEqual(fromA(T0 + REKEY_ON_RECEIVE_AFTER + 1), ['a>b initiation lost'])
  assert.deepEqual(fromA(T0 + REKEY_ON_RECEIVE_AFTER + 6000), [], 'not again for every packet received')
  assert.ok(ab.current)
  assert.equal(a.dev.hasOutgoing, false)
})

test('a keepalive goes back Keepalive-Timeout (10 s) after data was received with nothing sent; not if something was sent', () => {
  const { net, a, b, ab, ba } = session()
  net.run(a, [data(a, ab, T0 + 1)], T0 + 1)
  const log = until(net, T0 + 1, T0 + 60_000).filter((d) => d.from === 'b')
  assert.deepEqual(log.map((d) => [d.at - T0, d.kind, d.reason]), [[1 + KEEPALIVE_TIMEOUT, 'keepalive', 'ok']])
  // data received, then data sent back within 10 s: no keepalive
  net.run(a, [data(a, ab, T0 + 70_000)], T0 + 70_000)
  net.run(b, [data(b, ba, T0 + 75_000)], T0 + 75_000)
  const after = until(net, T0 + 75_000, T0 + 90_000).filter((d) => d.from === 'b' && d.kind === 'keepalive')
  assert.deepEqual(after, [])
})

test('a peer that stops answering data is re-handshaken Keepalive-Timeout + Rekey-Timeout (15 s, + jitter) after the data', () => {
  const { net, a, ab } = session()
  net.drop = (o) => o.addr === a.addr // b's answers are lost
  net.run(a, [data(a, ab, T0 + 1)], T0 + 1)
  const log = until(net, T0 + 1, T0 + 16_000).filter((d) => d.from === 'a')
  assert.deepEqual(log.map((d) => [d.at - T0, d.kind]), [[1 + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + JITTER, 'initiation']])
})

test('persistent keepalive: turned on, it brings the session up at once, then a keepalive every N s whatever the traffic', () => {
  const net = new Net()
  const a = net.node('a', '198.18.0.1')
  const b = net.node('b', '198.18.0.2')
  const [ab] = net.link(a, b, { keepaliveA: 25 })
  assert.equal(ab.nextDeadline(), -Infinity, 'due at the first tick')
  const log = until(net, T0, T0 + 100_000).filter((d) => d.from === 'a')
  assert.deepEqual(log.map((d) => [d.at - T0, d.kind, d.reason]), [
    [0, 'initiation', 'ok'],
    [0, 'keepalive', 'ok'], // the handshake's confirmation
    [25_000, 'keepalive', 'ok'],
    [50_000, 'keepalive', 'ok'],
    [75_000, 'keepalive', 'ok'],
    [100_000, 'keepalive', 'ok'],
  ])
  ab.setPersistentKeepalive(0)
  assert.deepEqual(until(net, T0 + 100_001, T0 + 200_000).filter((d) => d.from === 'a' && d.kind === 'keepalive'), [], 'off: no more')
})

test(`an unanswered initiation is resent every Rekey-Timeout + jitter, ${MAX_TIMER_HANDSHAKES + 1} times, then no more (about Rekey-Attempt-Time, 90 s; wireguard-go's count)`, () => {
  const net = new Net()
  const a = net.node('a', '198.18.0.1')
  const b = net.node('b', '198.18.0.2')
  const [ab] = net.link(a, b)
  net.drop = () => true // b is unreachable
  assert.equal(ab.send(T0), -1)
  net.run(a, a.dev.takeOutgoing(), T0)
  const log = until(net, T0, T0 + 400_000)
  const times = [T0, ...log.filter((d) => d.kind === 'initiation').map((d) => d.at)].map((t) => t - T0)
  assert.equal(times.length, MAX_TIMER_HANDSHAKES + 2)
  times.slice(1).forEach((t, i) => assert.equal(t - times[i]!, REKEY_TIMEOUT + JITTER, `retry ${i + 1}`))
  assert.ok(times.at(-1)! <= REKEY_ATTEMPT_TIME + 2 * (REKEY_TIMEOUT + REKEY_TIMEOUT_JITTER_MAX))
  // something to send again starts over
  assert.equal(ab.send(T0 + 400_000), -1)
  assert.deepEqual(a.dev.takeOutgoing().map((o) => o.kind), ['initiation'])
})

test('keys are zeroed 3 × Reject-After-Time (540 s) after the last handshake', () => {
  const { net, a, b, ab, ba } = session()
  const [ka, kb] = [ab.current!, ba.current!]
  assert.deepEqual(until(net, T0, T0 + ZERO_KEYS_AFTER - 1), [])
  assert.equal(ab.current, ka)
  until(net, T0, T0 + ZERO_KEYS_AFTER)
  assert.equal(ab.current, null)
  assert.equal(ba.current, null)
  assert.deepEqual(a.removed, [ka])
  assert.deepEqual(b.removed, [kb])
  for (const k of [ka, kb]) {
    assert.ok(k.dead)
    assert.ok(k.sendKey.every((x) => x === 0) && k.receiveKey.every((x) => x === 0))
  }
  assert.equal(a.dev.indexes.freeSlotCount, a.dev.indexes.slots, 'slots given back')
  assert.equal(a.dev.indexes.size, 0, 'indices forgotten')
})

test('at most one initiation per Rekey-Timeout per peer, and at most 50 a second from the device', () => {
  const net = new Net()
  const a = net.node('a', '198.18.0.1')
  const peers: Peer[] = []
  for (let i = 0; i < 60; i++) peers.push(net.link(a, net.node(`p${i}`, `198.18.1.${i + 1}`))[0])
  net.drop = () => true
  for (const p of peers) p.send(T0)
  for (const p of peers) p.send(T0 + 1)
  assert.equal(a.dev.takeOutgoing().length, 50, 'a burst of 50')
  assert.equal(a.dev.tick(T0 + 100).length, 5, 'then 50 a second')
  assert.equal(a.dev.tick(T0 + 200).length, 5)
  assert.equal(a.dev.tick(T0 + 300).length, 0, 'each peer once')
  assert.equal(peers[0]!.send(T0 + REKEY_TIMEOUT - 1), -1)
  assert.equal(a.dev.hasOutgoing, false, 'not again within Rekey-Timeout')
})
