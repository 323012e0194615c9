// The addon's WireGuard crypto (src/native/wg.ts, native/src/wg_*.c):
// 1. the primitives against published vectors (BLAKE2s: RFC 7693 and the
//    BLAKE2 reference KAT, keyed 16-byte outputs from Python's hashlib;
//    ChaCha20-Poly1305: RFC 8439 §2.8.2; XChaCha20-Poly1305:
//    draft-irtf-cfrg-xchacha-03 §A.3.1)
// 2. seal -> open of a mixed batch (plain packets, TCP and UDP
//    super-packets, a skipped entry), with and without a vnet header: every
//    message's header, counter and length, its decryption by the one-off
//    aeadOpen (libsodium, a different library from the batch path's), the
//    segments' headers as TSO would cut them, and the in-place open
// 3. what open refuses and what seal refuses, each by its code
// 4. sealed messages across a loopback UDP socket (UDP_SEGMENT coalescing,
//    UDP_GRO reads) open as they were
// 5. 64-packet seal + open batches allocate nothing per packet
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import vm from 'node:vm'
import { PacketBatch, PeerTable } from '../../src/native/batch'
import { openUdp4 } from '../../src/native/socket'
import { probeOffloads } from '../../src/native/offloads'
import { GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from '../../src/native/vnet'
import {
  aeadOpen, aeadOpenNonce, aeadSeal, aeadSealNonce, blake2s, wgNonce, WG_HDR_LEN, WG_OVERHEAD, WgInner, WgKeys,
  WgOpener, WgSealCode, WgSealer, WgStatus, xaeadOpen, xaeadSeal
} from '../../src/native/wg'
import { pseudoHeaderSum4At, fold } from '../../src/packet/checksum'
import { IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_DF, verifyIpv4Checksum, writeIpv4Header } from '../../src/packet/ipv4'
import { parseIp4 } from '../../src/packet/ip'
import { readTcpSeq, setTcp4Checksum, TCP_ACK, TCP_PSH, verifyTcp4Checksum, writeTcpHeader } from '../../src/packet/tcp'
import { setUdp4Checksum, verifyUdp4Checksum, writeUdpHeader } from '../../src/packet/udp'
import { gcCounter, tick } from '../dataplane/gc'
import { makePartial6, tcp6Packet, tcp6WithHopByHop, udp6Packet, verifyL4Checksum6 } from './ip6-ref'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const MTU = 1420
const LOOPBACK = 0x7f000001

function pattern (len: number, tag: number): Buffer {
  const b = Buffer.alloc(len)
  for (let i = 0; i < len; i++) b[i] = (i * 7 + Math.floor(i / 251) * 13 + tag) & 255
  return b
}

function key (tag: number): Buffer {
  return pattern(32, tag)
}

// ------------------------------------------------------------ packets ----

/** IPv4 + TCP (32-byte header with timestamps) carrying `payload` bytes, checksums valid. */
function tcpPacket (payload: number, tag: number, seq = 1000, flags = TCP_ACK | TCP_PSH): Buffer {
  const total = 52 + payload
  const b = Buffer.alloc(total)
  writeIpv4Header(b, 0, 0, Math.min(total, 0xffff), 0x1200 + tag, IPV4_FLAG_DF, 64, IPPROTO_TCP, parseIp4('10.244.1.2'), parseIp4('10.244.2.3'))
  writeTcpHeader(b, 20, 40000 + tag, 5201, seq, 777, flags, 501)
  b[32] = 8 << 4
  Buffer.from([1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0, 0x56, 0x78]).copy(b, 40)
  pattern(payload, tag).copy(b, 52)
  setTcp4Checksum(b, 20, 32 + payload, 0)
  return b
}

/** IPv4 + UDP carrying `payload` bytes, checksum valid. */
function udpPacket (payload: number, tag: number): Buffer {
  const total = 28 + payload
  const b = Buffer.alloc(total)
  writeIpv4Header(b, 0, 0, Math.min(total, 0xffff), 0x3400 + tag, IPV4_FLAG_DF, 64, IPPROTO_UDP, parseIp4('10.244.1.2'), parseIp4('10.244.2.3'))
  writeUdpHeader(b, 20, 30000 + tag, 7000, Math.min(8 + payload, 0xffff))
  pattern(payload, tag).copy(b, 28)
  setUdp4Checksum(b, 20, 8 + payload, 0)
  return b
}

/** IPv4 + ICMP-ish (protocol 1): nothing for open to check. */
function icmpPacket (len: number): Buffer {
  const b = pattern(len, 9)
  writeIpv4Header(b, 0, 0, len, 7, 0, 64, 1, parseIp4('10.244.1.2'), parseIp4('10.244.2.3'))
  return b
}

const padded = (len: number): number => Math.min((len + 15) & ~15, Math.max(len, MTU))

// ---------------------------------------------------------------- rig ----

interface Rig { keys: WgKeys, input: PacketBatch, output: PacketBatch, sealer: WgSealer, vnet: boolean }

function rig (opts: { vnet?: boolean, inputs?: number, outputs?: number, outSlot?: number } = {}): Rig {
  const vnet = opts.vnet === true
  const keys = new WgKeys(8)
  keys.set(0, key(1))
  keys.set(1, key(2))
  const input = new PacketBatch({ size: opts.inputs ?? 8, slotSize: 65600 })
  const output = new PacketBatch({ size: opts.outputs ?? 64, slotSize: opts.outSlot ?? 1536 })
  const sealer = new WgSealer({ keys, input, output, vnet, mtu: MTU })
  return { keys, input, output, sealer, vnet }
}

/** Entry i: packet (behind a vnet header when the rig has them), sealed under slot with counter, gso as given. */
function put (r: Rig, i: number, packet: Buffer, slot: number, counter: number, gso = 0, vflags = 0, csum: [number, number] = [0, 0]): void {
  let at = r.input.offsets[i]
  if (r.vnet) {
    writeVnetHdr(r.input.slab, at, vflags, gso >>> 16, 0, gso & 0xffff, csum[0], csum[1])
    at += VNET_HDR_LEN
  }
  packet.copy(r.input.slab, at)
  r.input.lengths[i] = packet.length + (r.vnet ? VNET_HDR_LEN : 0)
  r.sealer.keySlot[i] = slot
  r.sealer.receiver[i] = (0x11223300 + i) >>> 0
  r.sealer.counter[i] = counter
  r.sealer.gso[i] = gso
  r.sealer.dest[i] = i
}

function message (r: Rig, k: number): Buffer {
  return r.output.slab.subarray(r.output.offsets[k], r.output.offsets[k] + r.output.lengths[k])
}

/** Message k's header names entry i at counter; its ciphertext opens (libsodium) to `plain` + zero padding. */
function assertMessage (r: Rig, k: number, i: number, counter: number, plain: Buffer, what: string): void {
  const m = message(r, k)
  assert.equal(m.length, WG_OVERHEAD + padded(plain.length), `${what}: 16 + padded + 16 bytes`)
  assert.deepEqual([...m.subarray(0, 4)], [4, 0, 0, 0], `${what}: type 4`)
  assert.equal(m.readUInt32LE(4), r.sealer.receiver[i], `${what}: receiver index`)
  assert.equal(m.readBigUInt64LE(8), BigInt(counter), `${what}: counter`)
  assert.equal(r.output.dests[k], i, `${what}: dest`)
  assert.equal(r.output.segs[k], 0, `${what}: segs`)
  const opened = aeadOpen(key(r.sealer.keySlot[i] + 1), BigInt(counter), m.subarray(WG_HDR_LEN))
  assert.ok(opened !== null, `${what}: authenticates under its key and counter`)
  assert.ok(opened.subarray(0, plain.length).equals(plain), `${what}: the packet`)
  assert.ok(opened.subarray(plain.length).every((b) => b === 0), `${what}: zero padding`)
}

/** The segments TSO/USO would cut from `sup` (IPv4 header 20 bytes, l4 header hdr - 20) at mss, checked against message plaintexts. */
function assertSegments (segs: Buffer[], sup: Buffer, mss: number): void {
  const tcp = sup[9] === IPPROTO_TCP
  const hdr = tcp ? 20 + (sup[32] >> 4) * 4 : 28
  const payload = sup.length - hdr
  const n = Math.ceil(payload / mss)
  assert.equal(segs.length, n)
  for (let j = 0; j < n; j++) {
    const chunk = j === n - 1 ? payload - j * mss : mss
    const ip = segs[j]
    assert.equal(ip.length, hdr + chunk, `segment ${j}: length`)
    assert.equal(ip.readUInt16BE(2), hdr + chunk, `segment ${j}: IP total length`)
    assert.equal(ip.readUInt16BE(4), (sup.readUInt16BE(4) + j) & 0xffff, `segment ${j}: IP ID counts up`)
    assert.ok(verifyIpv4Checksum(ip, 0), `segment ${j}: IP checksum`)
    if (tcp) {
      assert.equal(readTcpSeq(ip, 20), (readTcpSeq(sup, 20) + j * mss) >>> 0, `segment ${j}: sequence number`)
      assert.equal(ip[33], j === n - 1 ? sup[33] : sup[33] & ~(TCP_PSH | 1), `segment ${j}: flags`)
      assert.ok(verifyTcp4Checksum(ip, 20, hdr - 20 + chunk, 0), `segment ${j}: TCP checksum`)
    } else {
      assert.equal(ip.readUInt16BE(24), 8 + chunk, `segment ${j}: UDP length`)
      assert.ok(verifyUdp4Checksum(ip, 20, 8 + chunk, 0), `segment ${j}: UDP checksum`)
    }
    assert.ok(ip.subarray(hdr).equals(sup.subarray(hdr + j * mss, hdr + j * mss + chunk)), `segment ${j}: payload`)
  }
}

/** Copy messages 0..n-1 of the output into a receive slab back to back, as a UDP_GRO read lays them, and list them. */
function receiveAll (r: Rig, n: number, opener: WgOpener, slab: Buffer, slots: number[]): void {
  let at = 0
  for (let k = 0; k < n; k++) {
    const m = message(r, k)
    m.copy(slab, at)
    opener.offsets[k] = at
    opener.lengths[k] = m.length
    opener.keySlot[k] = slots[k]
    at += m.length
  }
}

// --------------------------------------------------------- primitives ----

test('blake2s matches RFC 7693, the BLAKE2 reference KAT and hashlib for keyed 16-byte outputs', () => {
  assert.equal(blake2s(32, null, Buffer.from('abc')).toString('hex'), '508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982')
  assert.equal(blake2s(32, null, Buffer.from('a'), Buffer.from(''), Buffer.from('bc')).toString('hex'), '508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982', 'parts are concatenated')
  const k = Buffer.from(Array.from({ length: 32 }, (_, i) => i))
  // blake2s-kat.txt, key 000102..1f: empty input, one byte 00, 64 bytes 00..3f
  assert.equal(blake2s(32, k).toString('hex'), '48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49')
  assert.equal(blake2s(32, k, Buffer.from([0])).toString('hex'), '40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1')
  assert.equal(blake2s(32, k, Buffer.from(Array.from({ length: 64 }, (_, i) => i))).toString('hex'), '8975b0577fd35566d750b362b0897a26c399136df07bababbde6203ff2954ed4')
  // python3: hashlib.blake2s(data, key=key, digest_size=16) (16-byte output is not a truncation)
  assert.equal(blake2s(16, k, Buffer.from('hello '), Buffer.from('world')).toString('hex'), '9dc39de6198d670172a4bf1a20c88f06')
  assert.equal(blake2s(16, Buffer.from(Array.from({ length: 16 }, (_, i) => i + 1)), Buffer.from('mac1----abcdefghijklmnopqrstuvwxyz')).toString('hex'), '9a8066cadd78f3138418b795a0cfc87d')
  assert.throws(() => blake2s(16, null, Buffer.from('x')), RangeError)
  assert.throws(() => blake2s(32, Buffer.alloc(33)), RangeError)
})

const SUNSCREEN = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
const KEY_80 = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f')
const AAD = hex('50515253c0c1c2c3c4c5c6c7')

test('ChaCha20-Poly1305 matches RFC 8439 §2.8.2; WireGuard nonces are 4 zero bytes and the counter LE', () => {
  const nonce = hex('07000000 4041424344454647')
  const sealed = aeadSealNonce(KEY_80, nonce, SUNSCREEN, AAD)
  assert.equal(sealed.subarray(0, SUNSCREEN.length).toString('hex'),
    'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b29' +
    '05d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116')
  assert.equal(sealed.subarray(SUNSCREEN.length).toString('hex'), '1ae10b594f09e26a7e902ecbd0600691')
  assert.ok(aeadOpenNonce(KEY_80, nonce, sealed, AAD)?.equals(SUNSCREEN))
  sealed[3] ^= 1
  assert.equal(aeadOpenNonce(KEY_80, nonce, sealed, AAD), null)
  assert.equal(wgNonce(0x0102030405060708n).toString('hex'), '000000000807060504030201')
  const byCounter = aeadSeal(KEY_80, 0x0102030405060708n, SUNSCREEN)
  assert.ok(byCounter.equals(aeadSealNonce(KEY_80, wgNonce(0x0102030405060708n), SUNSCREEN)))
  assert.ok(aeadOpen(KEY_80, 0x0102030405060708n, byCounter)?.equals(SUNSCREEN))
  assert.equal(aeadOpen(KEY_80, 0x0102030405060709n, byCounter), null, 'another counter')
  assert.equal(aeadSeal(KEY_80, 0n, Buffer.alloc(0)).length, 16, 'an empty plaintext is its tag')
})

test('XChaCha20-Poly1305 matches draft-irtf-cfrg-xchacha-03 §A.3.1', () => {
  const nonce = hex('404142434445464748494a4b4c4d4e4f5051525354555657')
  const sealed = xaeadSeal(KEY_80, nonce, SUNSCREEN, AAD)
  assert.equal(sealed.toString('hex'),
    'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216' +
    'cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e' +
    'c0875924c1c7987947deafd8780acf49')
  assert.ok(xaeadOpen(KEY_80, nonce, sealed, AAD)?.equals(SUNSCREEN))
  assert.equal(xaeadOpen(KEY_80, nonce, sealed, null), null, 'without its associated data')
  sealed[sealed.length - 1] ^= 0x80
  assert.equal(xaeadOpen(KEY_80, nonce, sealed, AAD), null, 'a flipped tag bit')
  assert.equal(xaeadOpen(KEY_80, nonce, Buffer.alloc(15), AAD), null, 'shorter than a tag')
  assert.throws(() => xaeadSeal(KEY_80, Buffer.alloc(12), SUNSCREEN), RangeError)
})

// ------------------------------------------------------ seal and open ----

for (const vnet of [false, true]) {
  test(`seal -> open of plain packets and TCP/UDP super-packets${vnet ? ' behind vnet headers' : ''}`, () => {
    const r = rig({ vnet })
    const plainTcp = tcpPacket(MTU - 52, 1) // exactly the MTU: no room to pad
    const plainUdp = udpPacket(72, 2) // 100 bytes -> 112
    const supTcp = tcpPacket(10 * 1368 + 500, 3, 0xfffff000, TCP_ACK | TCP_PSH) // 11 segments of 52 + 1368 = 1420, the last short; seq wraps
    const odd = udpPacket(MTU - 29, 4) // 1419 bytes: pads to 1420 only, not a multiple of 16
    const supUdp = udpPacket(3 * 1392 + 10, 5) // USO: 4 segments of 28 + 1392
    const icmp = icmpPacket(64)
    put(r, 0, plainTcp, 0, 100)
    put(r, 1, plainUdp, 0, 101)
    put(r, 2, udpPacket(10, 6), -1, 0) // skipped
    put(r, 3, supTcp, 0, 200, (GSO_TCPV4 << 16) | 1368)
    put(r, 4, odd, 1, 2 ** 53 - 20) // a counter near the top of the exact range
    put(r, 5, supUdp, 1, 400, (GSO_UDP_L4 << 16) | 1392)
    put(r, 6, icmp, 1, 500)
    const n = r.sealer.seal(7)
    assert.equal(n, 19)
    assert.deepEqual([...r.sealer.produced.subarray(0, 7)], [1, 1, 0, 11, 1, 4, 1])

    assertMessage(r, 0, 0, 100, plainTcp, 'plain TCP')
    assertMessage(r, 1, 1, 101, plainUdp, 'plain UDP')
    const segs: Buffer[] = []
    for (let j = 0; j < 11; j++) {
      const m = message(r, 2 + j)
      const opened = aeadOpen(key(1), BigInt(200 + j), m.subarray(WG_HDR_LEN))
      assert.ok(opened !== null, `TCP segment ${j} authenticates`)
      const len = opened.readUInt16BE(2)
      segs.push(opened.subarray(0, len))
      assertMessage(r, 2 + j, 3, 200 + j, opened.subarray(0, len), `TCP segment ${j}`)
      if (j < 10) assert.equal(m.length, WG_OVERHEAD + MTU, `full segment ${j}: equal-size messages`)
    }
    assertSegments(segs, supTcp, 1368)
    assertMessage(r, 13, 4, 2 ** 53 - 20, odd, '1419-byte packet')
    assert.equal(message(r, 13).length, WG_OVERHEAD + 1420)
    const usegs: Buffer[] = []
    for (let j = 0; j < 4; j++) {
      const opened = aeadOpen(key(2), BigInt(400 + j), message(r, 14 + j).subarray(WG_HDR_LEN))
      assert.ok(opened !== null)
      usegs.push(opened.subarray(0, opened.readUInt16BE(2)))
      assertMessage(r, 14 + j, 5, 400 + j, usegs[j], `UDP segment ${j}`)
    }
    assertSegments(usegs, supUdp, 1392)
    assertMessage(r, 18, 6, 500, icmp, 'ICMP')

    // open them all in place, as from one receive slab
    const slots = [0, 0, ...Array(11).fill(0), 1, 1, 1, 1, 1, 1]
    const slab = Buffer.alloc(64 * 1500)
    const opener = new WgOpener({ keys: r.keys, slab, max: 64 })
    receiveAll(r, n, opener, slab, slots)
    const expected = [plainTcp, plainUdp, ...segs, odd, ...usegs, icmp]
    const counters = [100, 101, ...Array.from({ length: 11 }, (_, j) => 200 + j), 2 ** 53 - 20, 400, 401, 402, 403, 500]
    assert.equal(opener.open(n), n)
    for (let j = 0; j < n; j++) {
      assert.equal(opener.status[j], WgStatus.OK, `datagram ${j}`)
      assert.equal(opener.counter[j], counters[j], `datagram ${j}: counter`)
      assert.equal(opener.inner[j], j === n - 1 ? WgInner.UNCHECKED : WgInner.GOOD, `datagram ${j}: inner checksum`)
      const at = opener.offsets[j] + WG_HDR_LEN
      assert.ok(slab.subarray(at, at + expected[j].length).equals(expected[j]), `datagram ${j}: decrypted in place`)
    }
  })
}

test('a TUN packet with NEEDS_CSUM has its checksum finished before sealing; an empty one is a keepalive', () => {
  const r = rig({ vnet: true })
  const p = tcpPacket(300, 7)
  // what the TUN hands over: the TCP checksum field holds the folded pseudo-header sum
  p.writeUInt16BE(fold(pseudoHeaderSum4At(p, 0, IPPROTO_TCP, 32 + 300)), 36)
  assert.ok(!verifyTcp4Checksum(p, 20, 332, 0))
  put(r, 0, p, 0, 9, 0, VNET_F_NEEDS_CSUM, [20, 16])
  put(r, 1, Buffer.alloc(0), 0, 10) // a vnet header and nothing else
  assert.equal(r.sealer.seal(2), 2)
  const opened = aeadOpen(key(1), 9n, message(r, 0).subarray(WG_HDR_LEN))
  assert.ok(opened !== null)
  assert.ok(verifyTcp4Checksum(opened, 20, 332, 0), 'checksum finished')
  assert.ok(opened.subarray(52, 352).equals(p.subarray(52)), 'payload untouched')
  // the keepalive: header and tag only, the tag that of an empty plaintext
  assert.equal(r.output.lengths[1], 32)
  assert.ok(message(r, 1).subarray(16).equals(aeadSeal(key(1), 10n, Buffer.alloc(0))))
  const opener = new WgOpener({ keys: r.keys, slab: r.output.slab, max: 2 })
  opener.offsets.set(r.output.offsets.subarray(0, 2))
  opener.lengths.set(r.output.lengths.subarray(0, 2))
  opener.keySlot.fill(0)
  assert.equal(opener.open(2), 2)
  assert.equal(opener.inner[1], WgInner.UNCHECKED)
})

test('inner IPv6: a TCPv6 super-packet is sealed as segments TSO6 would cut, a partial checksum is finished, and open checks IPv6 TCP/UDP (not past an extension header)', () => {
  const r = rig({ vnet: true })
  const mss = MTU - 72
  const sup = tcp6Packet({ payload: pattern(3 * mss + 100, 8), seq: 0xfffffff0 })
  const partial = tcp6Packet({ payload: pattern(300, 9) })
  const whole = Buffer.from(partial)
  makePartial6(partial)
  const udp = udp6Packet(pattern(200, 10))
  const corrupt = udp6Packet(pattern(200, 11))
  corrupt[100] ^= 4
  const ext = tcp6WithHopByHop(pattern(100, 12))
  ext[120] ^= 4 // corrupt too, but behind an extension header: not the opener's to judge
  put(r, 0, sup, 0, 10, (GSO_TCPV6 << 16) | mss, VNET_F_NEEDS_CSUM, [40, 16])
  put(r, 1, partial, 0, 20, 0, VNET_F_NEEDS_CSUM, [40, 16])
  put(r, 2, udp, 0, 21)
  put(r, 3, corrupt, 0, 22)
  put(r, 4, ext, 0, 23)
  const n = r.sealer.seal(5)
  assert.equal(n, 8)
  assert.deepEqual([...r.sealer.produced.subarray(0, 5)], [4, 1, 1, 1, 1])
  const slab = Buffer.alloc(16 * 1500)
  const opener = new WgOpener({ keys: r.keys, slab, max: 16 })
  receiveAll(r, n, opener, slab, Array(n).fill(0))
  assert.equal(opener.open(n), n)
  assert.deepEqual([...opener.inner.subarray(0, n)], [...Array(6).fill(WgInner.GOOD), WgInner.BAD, WgInner.UNCHECKED])
  const plain = (k: number): Buffer => {
    const at = opener.offsets[k] + WG_HDR_LEN
    return slab.subarray(at, at + 40 + slab.readUInt16BE(at + 4))
  }
  for (let j = 0; j < 4; j++) {
    const seg = plain(j)
    const chunk = j < 3 ? mss : 100
    assert.equal(seg.length, 72 + chunk, `segment ${j}: length`)
    assert.equal(seg.readUInt32BE(44), (0xfffffff0 + j * mss) >>> 0, `segment ${j}: sequence number`)
    assert.ok(seg.subarray(72).equals(sup.subarray(72 + j * mss, 72 + j * mss + chunk)), `segment ${j}: payload`)
    assert.ok(verifyL4Checksum6(seg), `segment ${j}: checksum over the IPv6 pseudo-header`)
  }
  assert.ok(plain(4).equals(whole), 'the partial checksum was finished before sealing')
  assert.ok(plain(5).equals(udp))
})

test('messages sealed by another library (libsodium, one-off) open in the batch, unpadded lengths included', () => {
  const keys = new WgKeys(1)
  keys.set(0, key(5))
  const slab = Buffer.alloc(4096)
  const opener = new WgOpener({ keys, slab, max: 3 })
  const packets = [Buffer.alloc(0), udpPacket(36, 1), udpPacket(1391, 2)] // a keepalive, 64 and 1419 bytes
  let at = 0
  packets.forEach((p, j) => {
    const sealed = aeadSeal(key(5), BigInt(77 + j), p)
    slab.writeUInt32LE(4, at)
    slab.writeUInt32LE(0xabcdef, at + 4)
    slab.writeBigUInt64LE(BigInt(77 + j), at + 8)
    sealed.copy(slab, at + WG_HDR_LEN)
    opener.offsets[j] = at
    opener.lengths[j] = WG_HDR_LEN + sealed.length
    opener.keySlot[j] = 0
    at += WG_HDR_LEN + sealed.length
  })
  assert.equal(opener.open(3), 3)
  packets.forEach((p, j) => {
    assert.equal(opener.counter[j], 77 + j)
    assert.ok(slab.subarray(opener.offsets[j] + WG_HDR_LEN, opener.offsets[j] + WG_HDR_LEN + p.length).equals(p))
  })
  assert.deepEqual([...opener.inner], [WgInner.UNCHECKED, WgInner.GOOD, WgInner.GOOD])
})

test('open refuses a flipped bit, a wrong key, truncation, an empty key slot and a slot outside the slab, each by its status', () => {
  const r = rig({ inputs: 9 })
  for (let i = 0; i < 9; i++) put(r, i, udpPacket(200 + i, i), 0, 1000 + i)
  assert.equal(r.sealer.seal(9), 9)
  const slab = Buffer.alloc(16 * 1500)
  const opener = new WgOpener({ keys: r.keys, slab, max: 16 })
  receiveAll(r, 9, opener, slab, Array(9).fill(0))
  slab[opener.offsets[0] + 40] ^= 0x04 // 0: a ciphertext bit
  opener.keySlot[1] = 1 // 1: another session's key
  opener.lengths[2] = 31 // 2: shorter than header + tag
  opener.lengths[3] -= 16 // 3: cut by a block: the tag is elsewhere
  r.keys.set(2, key(9))
  r.keys.clear(2)
  opener.keySlot[4] = 2 // 4: a slot whose key was cleared
  opener.keySlot[5] = 7 // 5: a slot never set
  opener.keySlot[6] = -1 // 6: no session
  opener.offsets[7] = slab.length - 10 // 7: outside the slab
  slab[opener.offsets[8] + 5] ^= 1 // 8: the receiver index is not authenticated (the caller looked it up): opens
  assert.equal(opener.open(9), 1)
  assert.deepEqual([...opener.status.subarray(0, 9)], [
    WgStatus.AUTH_FAILED, WgStatus.AUTH_FAILED, WgStatus.BAD_LENGTH, WgStatus.AUTH_FAILED,
    WgStatus.NO_KEY, WgStatus.NO_KEY, WgStatus.NO_KEY, WgStatus.BAD_SLOT, WgStatus.OK
  ])
  // the counter is authenticated: a replayed message with another counter fails
  receiveAll(r, 1, opener, slab, [0])
  slab.writeBigUInt64LE(2000n, opener.offsets[0] + 8)
  assert.equal(opener.open(1), 0)
  assert.equal(opener.status[0], WgStatus.AUTH_FAILED)
})

test('seal refuses an empty key, a bad counter, a packet too big, a super-packet it cannot cut, and waits when the output is full', () => {
  const r = rig({ outputs: 4 })
  r.keys.clear(1)
  put(r, 0, udpPacket(100, 1), 1, 1) // key cleared
  put(r, 1, udpPacket(100, 1), 5, 1) // never set
  put(r, 2, udpPacket(100, 1), 0, NaN)
  put(r, 3, udpPacket(100, 1), 0, 1.5)
  put(r, 4, udpPacket(100, 1), 0, 2 ** 53 + 2)
  put(r, 5, udpPacket(2000, 1), 0, 1) // longer than an output slot
  put(r, 6, udpPacket(2000, 1), 0, 1, (GSO_TCPV4 << 16) | 1000) // a UDP packet marked TCP
  put(r, 7, tcpPacket(5 * 1368, 1), 0, 1, (GSO_TCPV4 << 16) | 1368) // 5 segments: more than the output's 4 slots
  assert.equal(r.sealer.seal(8), 0)
  assert.deepEqual([...r.sealer.produced], [WgSealCode.NO_KEY, WgSealCode.NO_KEY, WgSealCode.BAD_COUNTER, WgSealCode.BAD_COUNTER,
    WgSealCode.BAD_COUNTER, WgSealCode.TOO_BIG, WgSealCode.BAD_PACKET, WgSealCode.TOO_BIG])

  // an output filling up: the super-packet and everything after it wait for the next call
  put(r, 0, udpPacket(100, 1), 0, 10)
  put(r, 1, udpPacket(100, 2), 0, 11)
  put(r, 2, tcpPacket(3 * 1368, 3), 0, 12, (GSO_TCPV4 << 16) | 1368)
  put(r, 3, udpPacket(100, 4), 0, 15)
  assert.equal(r.sealer.seal(4), 2)
  assert.deepEqual([...r.sealer.produced.subarray(0, 4)], [1, 1, WgSealCode.NO_ROOM, WgSealCode.NO_ROOM])
  assert.equal(r.sealer.seal(2, 2), 4)
  assert.deepEqual([...r.sealer.produced.subarray(2, 4)], [3, 1])
  assert.equal(message(r, 0).readBigUInt64LE(8), 12n)
  assert.equal(message(r, 3).readBigUInt64LE(8), 15n)
  assert.throws(() => r.sealer.seal(8, 1), RangeError)
})

// ------------------------------------------------------ over a socket ----

const offloads = probeOffloads()
const sockSkip = offloads.udpGso && offloads.udpGro ? undefined : 'the kernel refuses UDP_SEGMENT or UDP_GRO'

test('sealed messages cross a loopback socket coalesced (UDP_SEGMENT), come back in UDP_GRO reads and open', { skip: sockSkip }, async () => {
  const r = rig({ outputs: 64 })
  const a = openUdp4({ addr: LOOPBACK, port: 0, batch: 64 })
  const b = openUdp4({ addr: LOOPBACK, port: 0, batch: 64, gro: true, rcvbuf: 8 << 20 })
  try {
    const peers = new PeerTable(8)
    for (let d = 0; d < 8; d++) peers.set(d, LOOPBACK, b.port)
    const sup = tcpPacket(20 * 1368 + 7, 1)
    put(r, 0, sup, 0, 0, (GSO_TCPV4 << 16) | 1368)
    put(r, 1, udpPacket(300, 2), 0, 21)
    const n = r.sealer.seal(2)
    assert.equal(n, 22)
    r.output.dests.fill(0, 0, n) // one peer: the sock_run inner flow of a WireGuard message is 0, so these coalesce
    a.io.sendFrom(r.output, peers, { coalesce: true })
    assert.equal(a.io.send(n), n)
    assert.ok(a.io.stats().txCoalesced > 0, 'equal-size messages went as UDP_SEGMENT sends')
    const rx = new PacketBatch({ size: 64, slotSize: 65600 })
    b.io.receiveInto(rx)
    const opener = new WgOpener({ keys: r.keys, slab: rx.slab, max: 256 })
    const got: Buffer[] = []
    const deadline = Date.now() + 2000
    while (got.length < n && Date.now() < deadline) {
      const m = b.io.read()
      let j = 0
      for (let i = 0; i < m; i++) {
        const step = rx.segs[i] === 0 ? rx.lengths[i] : rx.segs[i]
        for (let at = 0; at < rx.lengths[i]; at += step) {
          opener.offsets[j] = rx.offsets[i] + at
          opener.lengths[j] = Math.min(step, rx.lengths[i] - at)
          opener.keySlot[j] = 0
          j++
        }
      }
      assert.equal(opener.open(j), j, 'every datagram opens')
      for (let k = 0; k < j; k++) {
        assert.equal(opener.inner[k], WgInner.GOOD)
        const at = opener.offsets[k] + WG_HDR_LEN
        got.push(Buffer.from(rx.slab.subarray(at, at + rx.slab.readUInt16BE(at + 2))))
      }
      if (m === 0) await new Promise((resolve) => setTimeout(resolve, 2))
    }
    assert.equal(got.length, n)
    assertSegments(got.slice(0, 21), sup, 1368)
    assert.ok(got[21].equals(udpPacket(300, 2)))
  } finally {
    a.io.close()
    b.io.close()
  }
})

// ------------------------------------------------------- allocation ----

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

test('64-packet seal + open batches cause no more garbage collections than the loop without packets', { timeout: 120_000 }, async (t) => {
  const r = rig({ inputs: 64, outputs: 64 })
  for (let i = 0; i < 64; i++) put(r, i, udpPacket(36, i), 0, 0)
  const opener = new WgOpener({ keys: r.keys, slab: r.output.slab, max: 64 })
  opener.offsets.set(r.output.offsets)
  opener.keySlot.fill(0)
  let counter = 0
  let opened = 0
  const rounds = (n: number, packets: number): void => {
    for (let k = 0; k < n; k++) {
      for (let i = 0; i < packets; i++) r.sealer.counter[i] = counter++
      const m = r.sealer.seal(packets)
      for (let j = 0; j < m; j++) opener.lengths[j] = r.output.lengths[j]
      opened += opener.open(m)
    }
  }
  const gcs = gcCounter(t)
  const counted = async (n: number, packets: number): Promise<number> => {
    gc()
    await tick()
    gcs.reset()
    rounds(n, packets)
    return gcs.count
  }
  rounds(500, 64) // warm up
  const N = 10_000
  const without = await counted(N, 0)
  opened = 0
  const withPackets = await counted(N, 64)
  const semi = (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 2
  t.diagnostic(`${opened} packets sealed and opened; GCs over ${N} batches: ${without} without packets, ${withPackets} with (new space ${semi} bytes per semispace)`)
  assert.equal(opened, N * 64)
  assert.ok(withPackets <= without + 1, `packets added ${withPackets - without} GCs: about ${Math.round(((withPackets - without) * semi) / opened)} bytes per packet`)
})
