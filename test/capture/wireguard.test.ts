// `weft capture` on WireGuard (flannel's wireguard backend, UDP 51820),
// without root: each message type built by hand from the whitepaper's layout
// decodes to its kind, indices and counter; wrong sizes, types and reserved
// bytes are named as malformed; the payload, being ciphertext, is never
// looked into; lines and --json carry the fields.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'

import { DEFAULT_DECODE, LINKTYPE_ETHERNET, LINKTYPE_RAW, PLAIN_DECODE, decodePacket, podAddresses, type Decoded, type DecodeOptions } from '../../src/capture/decode'
import { decodeOptionsFor, matchesPods, parseAddressOrNet } from '../../src/capture/filter'
import { describePacket, formatJson, formatLine } from '../../src/capture/format'
import { ETH_HLEN, IPV4_MIN_HLEN, UDP_HLEN } from '../../src/packet'
import {
  NODE1, NODE2, POD1, POD2, icmpPacket, outerUdp, wgCookieReply, wgInitiation, wgResponse, wgTransport, wireguardFrame
} from './frames'

process.env.TZ = 'UTC'

const decode = (buf: Buffer, opts: DecodeOptions = DEFAULT_DECODE): Decoded => decodePacket(buf, LINKTYPE_ETHERNET, opts)
const line = (buf: Buffer, opts: DecodeOptions = DEFAULT_DECODE): string => describePacket(decode(buf, opts))
const EP = '198.18.0.1:51820 > 198.18.0.2:51820'

test('handshake initiation (type 1, 148 bytes): the sender index', () => {
  const d = decode(wireguardFrame(wgInitiation(0x1a2b3c4d)))
  assert.deepEqual(d.ip?.encap, { type: 'wireguard', srcPort: 51820, dstPort: 51820, message: 'initiation', senderIndex: 0x1a2b3c4d, length: 148 })
  assert.equal(d.ip?.inner, undefined)
  assert.equal(d.malformed, undefined)
  assert.equal(describePacket(d), `${EP} WireGuard initiation sender 0x1a2b3c4d len 148`)
})

test('handshake response (type 2, 92 bytes): sender and receiver indices', () => {
  const d = decode(wireguardFrame(wgResponse(7, 0x1a2b3c4d)))
  assert.deepEqual(d.ip?.encap, { type: 'wireguard', srcPort: 51820, dstPort: 51820, message: 'response', senderIndex: 7, receiverIndex: 0x1a2b3c4d, length: 92 })
  assert.equal(describePacket(d), `${EP} WireGuard response sender 0x00000007 receiver 0x1a2b3c4d len 92`)
})

test('cookie reply (type 3, 64 bytes): the receiver index', () => {
  const d = decode(wireguardFrame(wgCookieReply(0xdeadbeef)))
  assert.deepEqual(d.ip?.encap, { type: 'wireguard', srcPort: 51820, dstPort: 51820, message: 'cookie', receiverIndex: 0xdeadbeef, length: 64 })
  assert.equal(describePacket(d), `${EP} WireGuard cookie reply receiver 0xdeadbeef len 64`)
})

test('transport data (type 4): receiver index and counter, little-endian; the payload is not decoded', () => {
  // 1408 = 88 * 16: a padded packet; 1420: a full-size one on a 1420 MTU,
  // which senders leave unpadded (padding never goes past the MTU): both valid.
  for (const plaintext of [1408, 1420, 1]) {
    const d = decode(wireguardFrame(wgTransport(0x1a2b3c4d, 17n, plaintext)))
    assert.deepEqual(d.ip?.encap, { type: 'wireguard', srcPort: 51820, dstPort: 51820, message: 'transport', receiverIndex: 0x1a2b3c4d, counter: 17, length: 32 + plaintext })
    assert.equal(d.malformed, undefined)
    assert.equal(describePacket(d), `${EP} WireGuard transport receiver 0x1a2b3c4d counter 17 len ${32 + plaintext}`)
  }
  // Even when the "ciphertext" happens to be an IPv4 packet, nothing inner is read.
  const msg = wgTransport(1, 2n, 0)
  const fake = Buffer.concat([msg.subarray(0, 16), icmpPacket(POD1, POD2, 1, 1), Buffer.alloc(16)])
  const d = decode(wireguardFrame(fake))
  assert.equal(d.ip?.inner, undefined)
  assert.equal(podAddresses(d), undefined)
  assert.equal(describePacket(d), `${EP} WireGuard transport receiver 0x00000001 counter 2 len 116`)
})

test('a keepalive is a 32-byte transport message', () => {
  const d = decode(wireguardFrame(wgTransport(0x0badcafe, 3n, 0)))
  assert.deepEqual(d.ip?.encap, { type: 'wireguard', srcPort: 51820, dstPort: 51820, message: 'keepalive', receiverIndex: 0x0badcafe, counter: 3, length: 32 })
  assert.equal(describePacket(d), `${EP} WireGuard keepalive receiver 0x0badcafe counter 3 len 32`)
})

test('indices are unsigned; a counter is a number up to 2^53 - 1 and an exact decimal string above', () => {
  const top = decode(wireguardFrame(wgResponse(0xffffffff, 0x80000000)))
  assert.equal(top.ip?.encap?.type === 'wireguard' && top.ip.encap.senderIndex, 0xffffffff)
  assert.match(describePacket(top), /sender 0xffffffff receiver 0x80000000 /)
  const counter = (c: bigint): unknown => {
    const e = decode(wireguardFrame(wgTransport(1, c, 16))).ip?.encap
    return e?.type === 'wireguard' ? e.counter : undefined
  }
  assert.equal(counter(0n), 0)
  assert.equal(counter(2n ** 53n - 1n), Number.MAX_SAFE_INTEGER)
  assert.equal(counter(2n ** 53n), '9007199254740992')
  assert.equal(counter(2n ** 64n - 1n), '18446744073709551615')
  assert.match(line(wireguardFrame(wgTransport(1, 2n ** 60n, 16))), / counter 1152921504606846976 len 48$/)
})

test('which datagrams are WireGuard: either port 51820 (a roaming or NATed peer), or the port asked for', () => {
  assert.match(line(wireguardFrame(wgInitiation(1), 40001, 51820)), /^198\.18\.0\.1:40001 > 198\.18\.0\.2:51820 WireGuard initiation /)
  assert.match(line(wireguardFrame(wgResponse(2, 1), 51820, 40001)), /^198\.18\.0\.1:51820 > 198\.18\.0\.2:40001 WireGuard response /)
  const other = wireguardFrame(wgInitiation(1), 51999, 51999)
  assert.equal(line(other), '198.18.0.1:51999 > 198.18.0.2:51999 UDP len 148')
  assert.match(line(other, decodeOptionsFor('wireguard', 51999, 'underlay')), /WireGuard initiation sender 0x00000001 len 148$/)
  // Only the backend asked for is decoded; on a VTEP nothing is a tunnel.
  assert.equal(line(wireguardFrame(wgInitiation(1)), decodeOptionsFor('vxlan', undefined, 'underlay')), `${EP} UDP len 148`)
  const bare = outerUdp(NODE1, NODE2, 51820, 51820, wgInitiation(1))
  assert.equal(describePacket(decodePacket(bare, LINKTYPE_RAW, PLAIN_DECODE)), `${EP} UDP len 148`)
  assert.match(describePacket(decodePacket(bare, LINKTYPE_RAW)), /WireGuard initiation/)
})

test('malformed: wrong sizes, short transport, unknown types, non-zero reserved bytes, no type at all', () => {
  const cases: Array<[Buffer, string]> = [
    [wgInitiation(1).subarray(0, 147), 'WireGuard initiation malformed wireguard: bad_wireguard_length (147 bytes)'],
    [Buffer.concat([wgInitiation(1), Buffer.alloc(1)]), 'WireGuard initiation malformed wireguard: bad_wireguard_length (149 bytes)'],
    [Buffer.concat([wgResponse(1, 2), Buffer.alloc(16)]), 'WireGuard response malformed wireguard: bad_wireguard_length (108 bytes)'],
    [wgCookieReply(1).subarray(0, 48), 'WireGuard cookie reply malformed wireguard: bad_wireguard_length (48 bytes)'],
    [wgTransport(1, 1n, 0).subarray(0, 31), 'WireGuard transport malformed wireguard: bad_wireguard_length (31 bytes)'],
    [wgTransport(1, 1n, 0).subarray(0, 4), 'WireGuard transport malformed wireguard: bad_wireguard_length (4 bytes)'],
    [Buffer.from([5, 0, 0, 0, ...Buffer.alloc(28)]), 'WireGuard malformed wireguard: bad_wireguard_type (32 bytes)'],
    [Buffer.from([0, 0, 0, 0, ...Buffer.alloc(28)]), 'WireGuard malformed wireguard: bad_wireguard_type (32 bytes)'],
    [Buffer.from([0x45, 0, 0, 0x54, ...Buffer.alloc(80)]), 'WireGuard malformed wireguard: bad_wireguard_type (84 bytes)'],
    [Buffer.from([1, 0, 0]), 'WireGuard malformed wireguard: truncated (3 bytes)'],
    [Buffer.alloc(0), 'WireGuard malformed wireguard: truncated (0 bytes)']
  ]
  for (const at of [1, 2, 3]) {
    const m = wgTransport(1, 1n, 16)
    m[at] = 1
    cases.push([m, 'WireGuard transport malformed wireguard: bad_wireguard_reserved (48 bytes)'])
  }
  const init = wgInitiation(1)
  init.writeUInt32LE(0x01000001, 0) // type 1 as a byte, not as the 32-bit word receivers read
  cases.push([init, 'WireGuard initiation malformed wireguard: bad_wireguard_reserved (148 bytes)'])
  for (const [msg, want] of cases) {
    const d = decode(wireguardFrame(msg))
    assert.equal(describePacket(d), `${EP} ${want}`, want)
    assert.equal(d.malformed?.layer, 'wireguard')
    assert.equal(d.ip?.encap?.type, 'wireguard')
    const e = d.ip?.encap
    assert.ok(e?.type === 'wireguard' && e.senderIndex === undefined && e.receiverIndex === undefined && e.counter === undefined, 'no fields read from a malformed message')
    assert.equal(e.length, msg.length)
  }
})

test('--json carries the fields; a counter past 2^53 as its exact string', () => {
  const ts = Date.UTC(2026, 10, 23, 12, 1, 2) * 1000 + 5
  const o = JSON.parse(formatJson(decode(wireguardFrame(wgTransport(0x1a2b3c4d, 17n, 1420))), ts)) as Decoded & { time: string, summary: string }
  assert.deepEqual(o.ip?.encap, { type: 'wireguard', srcPort: 51820, dstPort: 51820, message: 'transport', receiverIndex: 439041101, counter: 17, length: 1452 })
  assert.equal(o.summary, `${EP} WireGuard transport receiver 0x1a2b3c4d counter 17 len 1452`)
  assert.deepEqual({ src: o.ip?.src, dst: o.ip?.dst }, { src: NODE1, dst: NODE2 })
  const big = JSON.parse(formatJson(decode(wireguardFrame(wgTransport(1, 2n ** 63n + 1n, 0))), ts)) as Decoded
  assert.equal(big.ip?.encap?.type === 'wireguard' && big.ip.encap.counter, '9223372036854775809')
  const bad = JSON.parse(formatJson(decode(wireguardFrame(wgInitiation(1).subarray(0, 100))), ts)) as Decoded
  assert.deepEqual(bad.malformed, { layer: 'wireguard', reason: 'bad_wireguard_length', bytes: 100 })
  assert.equal(formatLine(decode(wireguardFrame(wgInitiation(0x1a2b3c4d))), ts), `12:01:02.000005 ${EP} WireGuard initiation sender 0x1a2b3c4d len 148`)
})

test('--pod never matches WireGuard on the underlay: the pod addresses are encrypted, and the outer ones are nodes\'', () => {
  const d = decode(wireguardFrame(wgTransport(1, 1n, 84)))
  assert.equal(podAddresses(d), undefined)
  assert.equal(matchesPods(d, []), true)
  assert.equal(matchesPods(d, [parseAddressOrNet(NODE1, '--pod')]), false)
  assert.equal(matchesPods(d, [parseAddressOrNet('0.0.0.0/0', '--pod')]), false)
})

test('random bytes as a WireGuard payload: a line for every one, never an exception, fields only when well-formed', () => {
  fc.assert(fc.property(
    fc.uint8Array({ maxLength: 200 }), fc.constantFrom(1, 2, 3, 4, 5),
    fc.integer({ min: 0, max: 3 }),
    (bytes, type, zeros) => {
      const msg = Buffer.from(bytes)
      // Bias towards real types: most random messages would have a bad type.
      if (msg.length > 0) msg[0] = type
      for (let i = 1; i <= zeros && i < msg.length; i++) msg[i] = 0
      const d = decode(wireguardFrame(msg))
      const s = describePacket(d)
      assert.doesNotMatch(s, /decoder_error|undefined|NaN/)
      JSON.parse(formatJson(d, 0))
      const e = d.ip?.encap
      assert.ok(e?.type === 'wireguard')
      assert.equal(d.malformed === undefined, e.receiverIndex !== undefined || e.senderIndex !== undefined)
    }
  ), { numRuns: 3000 })
})

test('a WireGuard frame cut short by the snap length is an IPv4 problem, like any tunnel packet', () => {
  const f = wireguardFrame(wgTransport(1, 1n, 64))
  assert.equal(line(f.subarray(0, ETH_HLEN + IPV4_MIN_HLEN + UDP_HLEN + 10)), '198.18.0.1 > 198.18.0.2 malformed ipv4: bad_total_length (38 bytes)')
})
