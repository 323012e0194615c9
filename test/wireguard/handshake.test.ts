// The handshake between two instances of our own code: both orders, with and
// without a preshared key, the transport keys agreeing; every tampered byte
// refused for the right reason; replays, floods, strangers; the cookie path
// under load; then transport messages: replay, tampering, roaming.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CookieGenerator } from '../../src/wireguard/cookie'
import { INITIATION_SIZE, RESPONSE_SIZE } from '../../src/wireguard/messages'
import type { Outgoing, Peer } from '../../src/wireguard/peer'
import { WgDrop, WG_DROP_NAMES } from '../../src/wireguard/reasons'
import { generateKeyPair } from '../../src/wireguard/keys'
import { Net, summary, T0, type WgNode } from './net'

function pair (o: { psk?: Buffer } = {}): { net: Net, a: WgNode, b: WgNode, ab: Peer, ba: Peer } {
  const net = new Net()
  const a = net.node('a', '198.18.0.1')
  const b = net.node('b', '198.18.0.2')
  const [ab, ba] = net.link(a, b, o)
  return { net, a, b, ab, ba }
}

/** A data message from `from` over `peer`, as an Outgoing for Net.run. */
function data (from: WgNode, peer: Peer, payload: Buffer, now: number): Outgoing {
  const bytes = from.dev.sendTransport(peer, payload, now)
  assert.ok(bytes, `${from.name} has a session to send on`)
  return { kind: 'keepalive', peer, bytes, addr: peer.endpointAddr, port: peer.endpointPort }
}

for (const psk of [undefined, randomBytes(32)]) {
  const withPsk = psk ? 'with a preshared key' : 'without a preshared key'
  for (const initiator of ['a', 'b'] as const) {
    test(`${initiator} initiates, ${withPsk}: initiation, response, confirming keepalive; both hold the same transport keys, crossed`, () => {
      const { net, a, b, ab, ba } = pair({ psk })
      const [i, r, ir, ri] = initiator === 'a' ? [a, b, ab, ba] : [b, a, ba, ab]
      assert.equal(ir.send(T0), -1, 'no session yet: send() refuses and starts a handshake')
      const out = i.dev.takeOutgoing()
      assert.deepEqual(out.map((o) => [o.kind, o.bytes.length]), [['initiation', INITIATION_SIZE]])
      assert.deepEqual(summary(net.run(i, out, T0)), [
        `${i.name}>${r.name} initiation ok`,
        `${r.name}>${i.name} response ok`,
        `${i.name}>${r.name} keepalive ok`,
      ])
      assert.ok(ir.current && ri.current, 'both have a current keypair')
      assert.equal(ri.next, null, 'the keepalive confirmed the responder\'s next keypair')
      assert.equal(ir.current.isInitiator, true)
      assert.equal(ri.current.isInitiator, false)
      assert.deepEqual(ir.current.sendKey, ri.current.receiveKey)
      assert.deepEqual(ir.current.receiveKey, ri.current.sendKey)
      assert.notDeepEqual(ir.current.sendKey, ir.current.receiveKey)
      assert.equal(ir.current.remoteIndex, ri.current.localIndex)
      assert.equal(ri.current.remoteIndex, ir.current.localIndex)
      assert.deepEqual(i.ready, [ir])
      assert.deepEqual(r.ready, [ri])
      assert.deepEqual(i.created.map((k) => k.slot), [0], 'the first keypair takes slot 0')
      assert.equal(ir.lastHandshake, T0)
      // data both ways
      assert.deepEqual(summary(net.run(i, [data(i, ir, Buffer.from('ping'), T0 + 1)], T0 + 1)), [`${i.name}>${r.name} keepalive ok`])
      assert.deepEqual(summary(net.run(r, [data(r, ri, Buffer.from('pong'), T0 + 2)], T0 + 2)), [`${r.name}>${i.name} keepalive ok`])
      assert.equal(r.payloads.at(-1)!.subarray(0, 4).toString(), 'ping')
      assert.equal(r.payloads.at(-1)!.length, 16, 'padded to 16 bytes')
      assert.equal(i.payloads.at(-1)!.subarray(0, 4).toString(), 'pong')
    })
  }
}

test('different preshared keys: the responder accepts the initiation, the initiator refuses the response (decrypt_failed)', () => {
  const net = new Net()
  const a = net.node('a', '198.18.0.1')
  const b = net.node('b', '198.18.0.2')
  const ab = a.dev.addPeer({ publicKey: b.keys.publicKey, presharedKey: randomBytes(32), endpoint: { addr: b.addr, port: b.port } })
  b.dev.addPeer({ publicKey: a.keys.publicKey, presharedKey: randomBytes(32), endpoint: { addr: a.addr, port: a.port } })
  ab.send(T0)
  assert.deepEqual(summary(net.run(a, a.dev.takeOutgoing(), T0)), ['a>b initiation ok', 'b>a response decrypt_failed'])
  assert.equal(ab.current, null)
})

test('a tampered initiation: any byte of the header or body breaks mac1; with mac1 recomputed, each field fails for its own reason', () => {
  const { a, b, ab } = pair()
  ab.send(T0)
  const [init] = a.dev.takeOutgoing()
  const good = init!.bytes
  const at = (msg: Buffer, now: number) => WG_DROP_NAMES[b.dev.handshakeMessage(msg, a.addr, a.port, now, false).reason]
  const remac = new CookieGenerator(b.keys.publicKey)
  const expected = (i: number): [string, string] => {
    if (i < 4) return ['bad_type', 'bad_type']
    if (i < 8) return ['bad_mac1', 'ok'] // the sender index is covered by mac1 alone
    if (i < 116) return ['bad_mac1', 'decrypt_failed'] // ephemeral, static, timestamp
    if (i < 132) return ['bad_mac1', 'ok'] // mac1 itself: recomputing it repairs it
    return ['ok', 'ok'] // mac2 is only read under load
  }
  let now = T0
  for (let i = 0; i < INITIATION_SIZE; i++) {
    const [plain, remacced] = expected(i)
    if (plain === 'ok' || remacced === 'ok') continue // these would consume the initiation: checked below
    const t = Buffer.from(good)
    t[i]! ^= 0x01
    assert.equal(at(t, now += 100), plain, `byte ${i}`)
    remac.addMacs(t, now)
    assert.equal(at(t, now += 100), remacced, `byte ${i}, mac1 recomputed`)
  }
  // the genuine one still works after all that, then a mac2-tampered copy is a replay
  assert.equal(at(good, now += 100), 'ok')
  const t = Buffer.from(good)
  t[140]! ^= 1
  assert.equal(at(t, now += 100), 'stale_timestamp', 'not under load mac2 is not read; the timestamp is old')
})

test('a tampered response: header and body break mac1; with mac1 recomputed, the receiver index or the body fail; the genuine one still completes', () => {
  const { a, b, ab } = pair()
  ab.send(T0)
  const r1 = b.dev.handshakeMessage(a.dev.takeOutgoing()[0]!.bytes, a.addr, a.port, T0, false)
  const good = r1.replies[0]!.bytes
  assert.equal(good.length, RESPONSE_SIZE)
  const at = (msg: Buffer) => WG_DROP_NAMES[a.dev.handshakeMessage(msg, b.addr, b.port, T0, false).reason]
  const remac = new CookieGenerator(a.keys.publicKey)
  for (let i = 0; i < RESPONSE_SIZE; i++) {
    const t = Buffer.from(good)
    t[i]! ^= 0x80
    if (i < 4) { assert.equal(at(t), 'bad_type', `byte ${i}`); continue }
    if (i >= 76) continue // mac2: not read when not under load (would complete the handshake)
    assert.equal(at(t), 'bad_mac1', `byte ${i}`)
    if (i < 8 || i >= 60) continue // sender index and mac1: a recomputed mac1 makes them acceptable
    remac.addMacs(t, T0)
    assert.equal(at(t), i < 12 ? 'unknown_receiver_index' : 'decrypt_failed', `byte ${i}, mac1 recomputed`)
  }
  assert.equal(ab.current, null)
  assert.equal(at(good), 'ok')
  assert.ok(ab.current)
  assert.equal(at(good), 'unknown_receiver_index', 'the same response again: no initiation outstanding')
})

test('initiations: a replay is stale_timestamp; a newer one within 20 ms is handshake_flood; lengths and types are checked first', () => {
  const { net, a, b, ab, ba } = pair()
  ab.send(T0)
  const init = a.dev.takeOutgoing()[0]!.bytes
  assert.deepEqual(summary(net.run(a, [{ kind: 'initiation', peer: ab, bytes: init, addr: b.addr, port: b.port }], T0)).slice(0, 1), ['a>b initiation ok'])
  const at = (msg: Buffer, now: number) => WG_DROP_NAMES[b.dev.handshakeMessage(msg, a.addr, a.port, now, false).reason]
  assert.equal(at(init, T0 + 5000), 'stale_timestamp')
  assert.equal(at(init.subarray(0, 147), T0), 'bad_length')
  assert.equal(at(Buffer.concat([init, Buffer.alloc(1)]), T0), 'bad_length')
  const four = Buffer.from(init)
  four[0] = 4
  assert.equal(at(four, T0), 'bad_type', 'a transport message is not a handshake message')
  assert.equal(at(Buffer.alloc(3), T0), 'bad_type')

  // "a" restarts (same key, fresh state) and initiates 17 ms after its last:
  // a newer TAI64N label (a new 2^24 ns step), but within 20 ms of the last consumed
  const net2 = new Net()
  const a2 = net2.node('a2', '198.18.0.1', 51820, {}, a.keys)
  const a2b = a2.dev.addPeer({ publicKey: b.keys.publicKey, endpoint: { addr: b.addr, port: b.port } })
  const restart = ba.handshake.lastInitiationConsumed
  a2b.send(restart + 17)
  assert.equal(at(a2.dev.takeOutgoing()[0]!.bytes, restart + 17), 'handshake_flood')
  a2b.send(restart + 5017 + 100)
  assert.equal(at(a2.dev.takeOutgoing()[0]!.bytes, restart + 5117), 'ok', 'later it is accepted')
})

test('an initiation from a stranger is unknown_peer; one made for another key fails mac1', () => {
  const net = new Net()
  const b = net.node('b', '198.18.0.2')
  const c = net.node('c', '198.18.0.3')
  const cb = c.dev.addPeer({ publicKey: b.keys.publicKey, endpoint: { addr: b.addr, port: b.port } })
  cb.send(T0)
  assert.deepEqual(summary(net.run(c, c.dev.takeOutgoing(), T0)), ['c>b initiation unknown_peer'])
  const d = net.node('d', '198.18.0.4')
  const db = d.dev.addPeer({ publicKey: generateKeyPair().publicKey, endpoint: { addr: b.addr, port: b.port } })
  db.send(T0)
  assert.deepEqual(summary(net.run(d, d.dev.takeOutgoing(), T0)), ['d>b initiation bad_mac1'])
})

test('under load: an initiation without mac2 gets a cookie reply; the retry carries mac2 and completes', () => {
  const { net, a, b, ab } = pair()
  net.underLoad.add(b)
  ab.send(T0)
  assert.deepEqual(summary(net.run(a, a.dev.takeOutgoing(), T0)), [
    'a>b initiation bad_mac2',
    'b>a cookie_reply ok',
  ])
  assert.ok(ab.cookies.hasCookie(T0))
  assert.equal(ab.current, null)
  // the retransmission after Rekey-Timeout (+ jitter: random() is 0.5 here) carries mac2
  assert.deepEqual(summary(net.advance(T0 + 100, T0 + 5100, 100)), [])
  assert.deepEqual(summary(net.tick(T0 + 5200)), [
    'a>b initiation ok',
    'b>a response ok',
    'a>b keepalive ok',
  ])
  assert.ok(ab.current)
})

test('under load, handshakes from one source beyond a burst of 5 are rate_limited', () => {
  const { a, b, ab } = pair()
  ab.send(T0)
  const first = a.dev.takeOutgoing()[0]!.bytes
  // get a cookie for a's address
  const reply = b.dev.handshakeMessage(first, a.addr, a.port, T0, true).replies[0]!
  assert.equal(reply.kind, 'cookie_reply')
  assert.equal(a.dev.handshakeMessage(reply.bytes, b.addr, b.port, T0, false).reason, WgDrop.OK)
  ab.cookies.addMacs(first, T0) // the same initiation, now with mac2
  const reasons = []
  for (let i = 0; i < 7; i++) reasons.push(WG_DROP_NAMES[b.dev.handshakeMessage(first, a.addr, a.port, T0 + 1, true).reason])
  assert.deepEqual(reasons, ['ok', 'stale_timestamp', 'stale_timestamp', 'stale_timestamp', 'stale_timestamp', 'rate_limited', 'rate_limited'])
  assert.equal(WG_DROP_NAMES[b.dev.handshakeMessage(first, a.addr, a.port, T0 + 51, true).reason], 'stale_timestamp', '50 ms later one more is let through')
  assert.equal(WG_DROP_NAMES[b.dev.handshakeMessage(first, a.addr, a.port + 1, T0 + 51, true).reason], 'bad_mac2', 'the cookie is bound to the source port too')
})

test('cookie replies: a tampered one is bad_cookie, one for an unknown index unknown_receiver_index', () => {
  const { a, b, ab } = pair()
  ab.send(T0)
  const init = a.dev.takeOutgoing()[0]!.bytes
  const reply = b.dev.handshakeMessage(init, a.addr, a.port, T0, true).replies[0]!.bytes
  for (const i of [8, 31, 32, 63]) {
    const t = Buffer.from(reply)
    t[i]! ^= 1
    assert.equal(WG_DROP_NAMES[a.dev.handshakeMessage(t, b.addr, b.port, T0, false).reason], 'bad_cookie', `byte ${i}`)
  }
  const t = Buffer.from(reply)
  t[4]! ^= 1
  assert.equal(WG_DROP_NAMES[a.dev.handshakeMessage(t, b.addr, b.port, T0, false).reason], 'unknown_receiver_index')
  assert.equal(ab.cookies.hasCookie(T0), false)
  assert.equal(WG_DROP_NAMES[a.dev.handshakeMessage(reply, b.addr, b.port, T0, false).reason], 'ok')
  assert.equal(ab.cookies.hasCookie(T0 + 120_000), true)
  assert.equal(ab.cookies.hasCookie(T0 + 120_001), false, 'a cookie lasts 120 s')
})

test('both sides initiating at once still end with one working session each way', () => {
  const { net, a, b, ab, ba } = pair()
  ab.send(T0)
  ba.send(T0)
  const fromA = a.dev.takeOutgoing()
  const fromB = b.dev.takeOutgoing()
  net.run(a, fromA, T0)
  net.run(b, fromB, T0)
  net.run(a, [data(a, ab, Buffer.from('x'), T0 + 1)], T0 + 1)
  net.run(b, [data(b, ba, Buffer.from('y'), T0 + 2)], T0 + 2)
  assert.equal(b.payloads.at(-1)![0], 'x'.charCodeAt(0))
  assert.equal(a.payloads.at(-1)![0], 'y'.charCodeAt(0))
})

test('transport: a replayed message is refused, a tampered one fails to decrypt, an unknown index is refused; the endpoint roams with authenticated packets only', () => {
  const { net, a, b, ab, ba } = pair()
  ab.send(T0)
  net.run(a, a.dev.takeOutgoing(), T0)
  const m = data(a, ab, Buffer.from('hello'), T0 + 1)
  const rx = (bytes: Buffer, addr = a.addr, port = a.port) => WG_DROP_NAMES[b.dev.receiveTransport(bytes, addr, port, T0 + 2).reason]
  assert.equal(rx(m.bytes), 'ok')
  assert.equal(rx(m.bytes), 'replay')
  const bad = Buffer.from(data(a, ab, Buffer.from('x'), T0 + 1).bytes)
  bad[bad.length - 1]! ^= 1
  assert.equal(rx(bad), 'decrypt_failed')
  const stranger = Buffer.from(bad)
  stranger.writeUInt32LE((ba.current!.localIndex + 1) >>> 0, 4)
  assert.equal(rx(stranger), 'unknown_receiver_index')
  assert.equal(rx(bad.subarray(0, 31)), 'bad_length')
  // roaming: a forged source is not followed, an authenticated one is
  const version = ba.endpointVersion
  assert.equal(rx(bad, a.addr + 7, 4000), 'decrypt_failed')
  assert.equal(ba.endpointAddr, a.addr)
  assert.equal(rx(data(a, ab, Buffer.from('moved'), T0 + 1).bytes, a.addr + 7, 4000), 'ok')
  assert.equal(ba.endpointAddr, a.addr + 7)
  assert.equal(ba.endpointPort, 4000)
  assert.equal(ba.endpointVersion, version + 1)
})

test('key slots: a keypair takes the lowest free slot and gives it back when it dies; none free is no_key_slot', () => {
  const net = new Net()
  const a = net.node('a', '198.18.0.1', 51820, { keySlots: 1 })
  const b = net.node('b', '198.18.0.2')
  const c = net.node('c', '198.18.0.3')
  const [ab] = net.link(a, b)
  const [ac] = net.link(a, c)
  ab.send(T0)
  net.run(a, a.dev.takeOutgoing(), T0)
  assert.equal(ab.current?.slot, 0)
  ac.send(T0)
  assert.deepEqual(summary(net.run(a, a.dev.takeOutgoing(), T0)), ['a>c initiation ok', 'c>a response no_key_slot'])
  a.dev.removePeer(ab)
  assert.deepEqual(a.removed.map((k) => k.slot), [0])
  assert.ok(a.removed[0]!.sendKey.every((x) => x === 0), 'keys zeroed')
  ac.send(T0 + 6000)
  net.run(a, a.dev.takeOutgoing(), T0 + 6000)
  assert.equal(ac.current?.slot, 0, 'slot 0 reused')
})
