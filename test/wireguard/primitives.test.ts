// The building blocks against known answers: the KDF chain and keyed
// BLAKE2s-128 against values computed with Python's hashlib/hmac (an
// independent implementation), X25519 against RFC 7748, TAI64N by hand.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createCipheriv } from 'node:crypto'
import { CONSTRUCTION, IDENTIFIER } from '../../src/wireguard/noise'
import { aeadOpen, aeadSeal, dh, hash, kdf1, kdf2, kdf3, mac, privateKeyObject, xaeadOpen, xaeadSeal } from '../../src/wireguard/primitives'
import { isAfter, nextAfter, tai64n } from '../../src/wireguard/tai64n'

const hex = (b: Buffer): string => b.toString('hex')
const seq = (from: number, n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (from + i) & 0xff))

test('the initial chaining key and hash: HASH(construction), HASH(Ck ‖ identifier)', () => {
  const ck = hash(Buffer.from(CONSTRUCTION))
  assert.equal(hex(ck), '60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36')
  assert.equal(hex(hash(ck, Buffer.from(IDENTIFIER))), '2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3')
})

test('KDF1, KDF2, KDF3: HKDF over HMAC-BLAKE2s (values from Python hashlib + hmac)', () => {
  const key = seq(0, 32)
  const input = seq(100, 40)
  assert.equal(hex(kdf1(key, input)), '39361a8d4ee4fd55e6d99fe7d0135bfb5f478cbf96a966a2444382227d63c157')
  assert.deepEqual(kdf2(key, input).map(hex), [
    '39361a8d4ee4fd55e6d99fe7d0135bfb5f478cbf96a966a2444382227d63c157',
    '984c7dfc817c1aa7da33bd9cbe6bc8b6305b2ec657155055c859b68c7d9fe2eb',
  ])
  assert.deepEqual(kdf3(key, Buffer.alloc(0)).map(hex), [
    '7a38c34bf2b8738d7374ca77c44ecb309a11d2b2528304fa86052c365e722624',
    '1a17621f346abdc520746a9fb64d8eb03231d674fc15687537b0780fd9c060fd',
    '4eaf02809ac4b930ef63479de62275f1c55656e61f78a3cc653c18a2223d6c5f',
  ])
})

test('MAC is keyed BLAKE2s with a 16-byte output, not a truncated BLAKE2s-256; the mac1 key is HASH("mac1----" ‖ public key)', () => {
  assert.equal(hex(mac(seq(0, 32), Buffer.from('hello '), Buffer.from('world'))), '9dc39de6198d670172a4bf1a20c88f06')
  assert.equal(hex(hash(Buffer.from('mac1----'), seq(1, 32))), '121b33018813efaa1d3128cdec1392897828e98831f01822c250ddfdf7090183')
})

test('X25519 (RFC 7748 §6.1); a low-order public key gives null, not a zero secret', () => {
  const alice = privateKeyObject(Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex'))
  const bobPub = Buffer.from('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f', 'hex')
  assert.equal(hex(dh(alice, bobPub)!), '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742')
  assert.equal(dh(alice, Buffer.alloc(32)), null)
  assert.equal(dh(alice, Buffer.concat([Buffer.from([1]), Buffer.alloc(31)])), null)
  assert.equal(dh(alice, Buffer.alloc(31)), null)
})

test('ChaCha20-Poly1305 with the counter nonce (4 zero bytes, counter little-endian); tampering or a wrong counter fails', () => {
  const key = seq(7, 32)
  const counter = 0x1_0203_0405
  const sealed = aeadSeal(key, counter, Buffer.from('payload'), Buffer.from('ad'))
  const nonce = Buffer.from('000000000504030201000000', 'hex')
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
  c.setAAD(Buffer.from('ad'), { plaintextLength: 7 })
  assert.deepEqual(sealed, Buffer.concat([c.update('payload'), c.final(), c.getAuthTag()]))
  assert.equal(aeadOpen(key, counter, sealed, Buffer.from('ad'))!.toString(), 'payload')
  assert.equal(aeadOpen(key, counter + 1, sealed, Buffer.from('ad')), null)
  assert.equal(aeadOpen(key, counter, sealed, Buffer.from('ae')), null)
  sealed[0]! ^= 1
  assert.equal(aeadOpen(key, counter, sealed, Buffer.from('ad')), null)
  assert.equal(aeadOpen(key, counter, Buffer.alloc(15), Buffer.alloc(0)), null)
})

test('XChaCha20-Poly1305 (the addon) round-trips and refuses a tampered cookie', () => {
  const key = seq(1, 32)
  const nonce = seq(50, 24)
  const sealed = xaeadSeal(key, nonce, seq(200, 16), seq(9, 16))
  assert.equal(sealed.length, 32)
  assert.deepEqual(xaeadOpen(key, nonce, sealed, seq(9, 16)), seq(200, 16))
  sealed[31]! ^= 1
  assert.equal(xaeadOpen(key, nonce, sealed, seq(9, 16)), null)
})

test('TAI64N: 2^62 + 10 + Unix seconds, nanoseconds rounded down to 2^24; later is greater; nextAfter carries into the seconds', () => {
  assert.equal(hex(tai64n(1_700_000_000_000)), '400000006553f10a00000000')
  assert.equal(hex(tai64n(1_700_000_000_017)), '400000006553f10a01000000', '17 ms: one 2^24 ns step')
  assert.equal(hex(tai64n(1_700_000_000_016)), '400000006553f10a00000000', '16 ms: still the same step')
  assert.ok(isAfter(tai64n(1_700_000_000_017), tai64n(1_700_000_000_000)))
  assert.ok(!isAfter(tai64n(1_700_000_000_000), tai64n(1_700_000_000_000)))
  assert.equal(hex(nextAfter(tai64n(1_700_000_000_000))), '400000006553f10a01000000')
  assert.equal(hex(nextAfter(tai64n(1_700_000_000_999))), '400000006553f10b00000000')
})
