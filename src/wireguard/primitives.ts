// The cryptographic primitives WireGuard is built from, and the only file in
// this folder that touches a cipher, a hash or a curve. Nothing is written by
// hand here: Node's crypto (OpenSSL) gives BLAKE2s-256, HMAC-BLAKE2s,
// ChaCha20-Poly1305 and X25519; the addon (src/native/wg.ts) gives the two
// Node lacks: keyed BLAKE2s with a 16-byte output (MAC, for mac1/mac2 and
// the cookie; not a truncated BLAKE2s-256: the output length is part of the
// parameter block) and XChaCha20-Poly1305 (the cookie reply).
//
// All of it is control path (handshakes, cookies, keepalives): it allocates
// freely. The per-packet cipher lives in the addon.
//
// X25519 keys go to OpenSSL as KeyObjects built from the raw 32 bytes behind
// the fixed DER prefix of their PKCS#8 / SubjectPublicKeyInfo encoding
// (RFC 8410); OpenSSL clamps the scalar itself, as X25519 requires.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  timingSafeEqual,
} from 'node:crypto'
import { blake2s, xaeadOpen as nativeXaeadOpen, xaeadSeal as nativeXaeadSeal } from '../native/wg'

export const KEY_LEN = 32
export const HASH_LEN = 32
export const TAG_LEN = 16
export const MAC_LEN = 16
export const XNONCE_LEN = 24

/** HASH(parts…): BLAKE2s-256. */
export function hash (...parts: Uint8Array[]): Buffer {
  const h = createHash('blake2s256')
  for (const p of parts) h.update(p)
  return h.digest()
}

/** HMAC-BLAKE2s-256(key, parts…). */
export function hmac (key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('blake2s256', key)
  for (const p of parts) h.update(p)
  return h.digest()
}

const ONE = Buffer.from([1])
const TWO = Buffer.from([2])
const THREE = Buffer.from([3])

/** KDF1(key, input): HKDF over HMAC-BLAKE2s, first output. */
export function kdf1 (key: Uint8Array, input: Uint8Array): Buffer {
  const prk = hmac(key, input)
  const t0 = hmac(prk, ONE)
  prk.fill(0)
  return t0
}

/** KDF2(key, input): the first two HKDF outputs. */
export function kdf2 (key: Uint8Array, input: Uint8Array): [Buffer, Buffer] {
  const prk = hmac(key, input)
  const t0 = hmac(prk, ONE)
  const t1 = hmac(prk, t0, TWO)
  prk.fill(0)
  return [t0, t1]
}

/** KDF3(key, input): the first three HKDF outputs. */
export function kdf3 (key: Uint8Array, input: Uint8Array): [Buffer, Buffer, Buffer] {
  const prk = hmac(key, input)
  const t0 = hmac(prk, ONE)
  const t1 = hmac(prk, t0, TWO)
  const t2 = hmac(prk, t1, THREE)
  prk.fill(0)
  return [t0, t1, t2]
}

/** MAC(key, parts…): keyed BLAKE2s with a 16-byte output (the addon). */
export function mac (key: Buffer, ...parts: Buffer[]): Buffer {
  return blake2s(16, key, ...parts)
}

/** The 12-byte AEAD nonce: four zero bytes, then the counter as 64 bits little-endian. */
function nonceOf (counter: number): Buffer {
  const n = Buffer.alloc(12)
  n.writeUInt32LE(counter >>> 0, 4)
  n.writeUInt32LE(Math.floor(counter / 0x1_0000_0000), 8)
  return n
}

/** ChaCha20-Poly1305 seal: ciphertext ‖ 16-byte tag. */
export function aeadSeal (key: Uint8Array, counter: number, plaintext: Uint8Array, ad: Uint8Array): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonceOf(counter), { authTagLength: TAG_LEN })
  c.setAAD(ad, { plaintextLength: plaintext.length })
  const head = c.update(plaintext)
  const tail = c.final()
  return Buffer.concat([head, tail, c.getAuthTag()])
}

/** ChaCha20-Poly1305 open of ciphertext ‖ tag; null if it does not authenticate. */
export function aeadOpen (key: Uint8Array, counter: number, sealed: Uint8Array, ad: Uint8Array): Buffer | null {
  if (sealed.length < TAG_LEN) return null
  const n = sealed.length - TAG_LEN
  const d = createDecipheriv('chacha20-poly1305', key, nonceOf(counter), { authTagLength: TAG_LEN })
  d.setAAD(ad, { plaintextLength: n })
  d.setAuthTag(sealed.subarray(n))
  const head = d.update(sealed.subarray(0, n))
  try {
    return Buffer.concat([head, d.final()])
  } catch {
    head.fill(0)
    return null
  }
}

/** XChaCha20-Poly1305 seal (the addon): ciphertext ‖ tag. */
export function xaeadSeal (key: Buffer, nonce: Buffer, plaintext: Buffer, ad: Buffer): Buffer {
  return nativeXaeadSeal(key, nonce, plaintext, ad)
}

/** XChaCha20-Poly1305 open (the addon); null if it does not authenticate. */
export function xaeadOpen (key: Buffer, nonce: Buffer, sealed: Buffer, ad: Buffer): Buffer | null {
  return nativeXaeadOpen(key, nonce, sealed, ad)
}

// --- X25519 ------------------------------------------------------------------

const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex')
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex')

/** An X25519 private key from its raw 32 bytes. */
export function privateKeyObject (raw: Uint8Array): KeyObject {
  if (raw.length !== KEY_LEN) throw new RangeError(`an X25519 private key is ${KEY_LEN} bytes, got ${raw.length}`)
  const der = Buffer.concat([PKCS8_X25519, raw])
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  } finally {
    der.fill(0)
  }
}

function publicKeyObject (raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519, raw]), format: 'der', type: 'spki' })
}

/** The raw 32-byte public key of an X25519 private key. */
export function rawPublicKey (priv: KeyObject): Buffer {
  const der = createPublicKey(priv).export({ format: 'der', type: 'spki' })
  return Buffer.from(der.subarray(der.length - KEY_LEN))
}

/** A fresh ephemeral key pair. */
export function generateEphemeral (): { privateKey: KeyObject, publicKey: Buffer } {
  const { privateKey } = generateKeyPairSync('x25519')
  return { privateKey, publicKey: rawPublicKey(privateKey) }
}

/**
 * X25519(priv, pub) as 32 bytes, or null when the result is all zeros (pub
 * is a low-order point), which OpenSSL refuses and WireGuard treats as an
 * invalid key.
 */
export function dh (priv: KeyObject, pub: Uint8Array): Buffer | null {
  if (pub.length !== KEY_LEN) return null
  try {
    return diffieHellman({ privateKey: priv, publicKey: publicKeyObject(pub) })
  } catch {
    return null
  }
}

/** Constant-time equality of two byte strings (false, at once, if their lengths differ). */
export function equal (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}
