// The handshake: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as WireGuard uses it
// (whitepaper §5.4; wireguard-go device/noise-protocol.go), in four steps:
//
//   initiator                               responder
//   createInitiation  ── type 1, 148 B ──▶  consumeInitiation
//   consumeResponse   ◀── type 2,  92 B ──  createResponse
//   deriveKeys                              deriveKeys
//
// Each side keeps one Handshake per peer. The functions here only build and
// check message bodies: mac1/mac2 are written and checked by cookie.ts, the
// timers and indices are the peer's (peer.ts). A refusal is a WgDrop code,
// never an exception: a datagram is untrusted input.
//
// Hash and chaining key start from fixed values: Ck = HASH(construction),
// H = HASH(Ck ‖ identifier). Every intermediate secret is zeroed once it is
// no longer needed; ephemeral private keys are KeyObjects, dropped (they
// cannot be zeroed from JS) when the handshake completes or is cleared.
import type { KeyObject } from 'node:crypto'
import { INITIATION_FLOOD_INTERVAL } from './constants'
import { INITIATION_SIZE, MSG_INITIATION, MSG_RESPONSE, readU32, RESPONSE_SIZE, writeU32 } from './messages'
import { aeadOpen, aeadSeal, dh, generateEphemeral, hash, HASH_LEN, kdf1, kdf2, kdf3, KEY_LEN, TAG_LEN } from './primitives'
import { WgDrop, type WgDropCode } from './reasons'
import { isAfter, TIMESTAMP_LEN } from './tai64n'

export const CONSTRUCTION = 'Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s'
export const IDENTIFIER = 'WireGuard v1 zx2c4 Jason@zx2c4.com'

const INITIAL_CHAIN_KEY = hash(Buffer.from(CONSTRUCTION))
const INITIAL_HASH = hash(INITIAL_CHAIN_KEY, Buffer.from(IDENTIFIER))
const EMPTY = Buffer.alloc(0)

// Field offsets.
const I_SENDER = 4
const I_EPHEMERAL = 8
const I_STATIC = I_EPHEMERAL + KEY_LEN // 40
const I_TIMESTAMP = I_STATIC + KEY_LEN + TAG_LEN // 88
const I_END = I_TIMESTAMP + TIMESTAMP_LEN + TAG_LEN // 116: then mac1, mac2
const R_SENDER = 4
const R_RECEIVER = 8
const R_EPHEMERAL = 12
const R_EMPTY = R_EPHEMERAL + KEY_LEN // 44
const R_END = R_EMPTY + TAG_LEN // 60: then mac1, mac2

export const HandshakeState = {
  ZEROED: 0,
  INITIATION_CREATED: 1,
  INITIATION_CONSUMED: 2,
  RESPONSE_CREATED: 3,
  RESPONSE_CONSUMED: 4,
} as const
export type HandshakeStateCode = (typeof HandshakeState)[keyof typeof HandshakeState]

/** Our long-term identity. */
export interface LocalStatic {
  readonly privateKey: KeyObject
  readonly publicKey: Buffer
}

/** What a handshake needs to know of the peer. */
export interface RemoteStatic {
  readonly publicKey: Buffer
  /** 32 bytes, zeros when none is configured */
  readonly presharedKey: Buffer
  /** DH(our static, their static), computed once; null if their key is a low-order point */
  readonly staticStatic: Buffer | null
}

/** The per-peer handshake state. */
export class Handshake {
  state: HandshakeStateCode = HandshakeState.ZEROED
  hash: Buffer = Buffer.alloc(HASH_LEN)
  chainKey: Buffer = Buffer.alloc(HASH_LEN)
  localEphemeral: KeyObject | null = null
  remoteEphemeral = Buffer.alloc(KEY_LEN)
  /** our index for this handshake (0 when none) */
  localIndex = 0
  /** the peer's index: the receiver field of what we send */
  remoteIndex = 0
  /** newest timestamp of an initiation consumed from this peer */
  lastTimestamp = Buffer.alloc(TIMESTAMP_LEN)
  /** when we last consumed an initiation from this peer (ms) */
  lastInitiationConsumed = -Infinity

  /** Forgets the handshake in progress (not the replay guard). */
  clear (): void {
    this.hash.fill(0)
    this.chainKey.fill(0)
    this.remoteEphemeral.fill(0)
    this.localEphemeral = null
    this.state = HandshakeState.ZEROED
  }
}

function mixHash (h: Buffer, data: Uint8Array): Buffer {
  const n = hash(h, data)
  h.fill(0)
  return n
}

/** Replaces `old` (zeroing it) with `next`. */
function swap (old: Buffer, next: Buffer): Buffer {
  old.fill(0)
  return next
}

/**
 * Builds an initiation to `remote` (mac1/mac2 left zero for cookie.ts to
 * fill) and moves `hs` to INITIATION_CREATED. `timestamp` is a TAI64N label
 * newer than any sent to this peer before. Returns null only if the peer's
 * key is unusable (a low-order point).
 */
export function createInitiation (local: LocalStatic, remote: RemoteStatic, hs: Handshake, senderIndex: number, timestamp: Uint8Array): Buffer | null {
  if (remote.staticStatic === null) return null
  const eph = generateEphemeral()
  const ss = dh(eph.privateKey, remote.publicKey)
  if (ss === null) return null
  const msg = Buffer.alloc(INITIATION_SIZE)
  msg[0] = MSG_INITIATION
  writeU32(msg, I_SENDER, senderIndex)
  eph.publicKey.copy(msg, I_EPHEMERAL)

  let h = hash(INITIAL_HASH, remote.publicKey)
  let ck = kdf1(INITIAL_CHAIN_KEY, eph.publicKey)
  h = mixHash(h, eph.publicKey)
  let key: Buffer
  ;[ck, key] = rekey(ck, ss)
  ss.fill(0)
  aeadSeal(key, 0, local.publicKey, h).copy(msg, I_STATIC)
  key.fill(0)
  h = mixHash(h, msg.subarray(I_STATIC, I_TIMESTAMP))
  ;[ck, key] = rekey(ck, remote.staticStatic)
  aeadSeal(key, 0, timestamp, h).copy(msg, I_TIMESTAMP)
  key.fill(0)
  h = mixHash(h, msg.subarray(I_TIMESTAMP, I_END))

  hs.clear()
  hs.hash = h
  hs.chainKey = ck
  hs.localEphemeral = eph.privateKey
  hs.localIndex = senderIndex
  hs.state = HandshakeState.INITIATION_CREATED
  return msg
}

/** KDF2(ck, input), zeroing the old chaining key. */
function rekey (ck: Buffer, input: Uint8Array): [Buffer, Buffer] {
  const out = kdf2(ck, input)
  ck.fill(0)
  return out
}

/** What a responder needs to find the peer an initiation claims to come from. */
export interface InitiationCandidate {
  readonly remote: RemoteStatic
  readonly handshake: Handshake
}

export type ConsumeInitiationResult<P> =
  | { readonly reason: typeof WgDrop.OK, readonly peer: P }
  | { readonly reason: WgDropCode, readonly peer: null }

/**
 * Checks an initiation (its macs already checked) and, if it is good,
 * records it in that peer's Handshake (INITIATION_CONSUMED). `lookup` maps
 * the decrypted static public key to a peer. Refusals: DECRYPT_FAILED,
 * BAD_KEY, UNKNOWN_PEER, STALE_TIMESTAMP (not newer than the last one
 * consumed from that peer), HANDSHAKE_FLOOD (within 20 ms of the last).
 * A refused initiation leaves every peer's state untouched.
 */
export function consumeInitiation<P extends InitiationCandidate> (
  local: LocalStatic,
  msg: Buffer,
  now: number,
  lookup: (publicKey: Buffer) => P | undefined
): ConsumeInitiationResult<P> {
  if (msg.length !== INITIATION_SIZE || msg[0] !== MSG_INITIATION) return { reason: WgDrop.BAD_LENGTH, peer: null }
  const e = msg.subarray(I_EPHEMERAL, I_STATIC)
  const ss = dh(local.privateKey, e)
  if (ss === null) return { reason: WgDrop.BAD_KEY, peer: null }
  let h = hash(INITIAL_HASH, local.publicKey)
  h = mixHash(h, e)
  let ck = kdf1(INITIAL_CHAIN_KEY, e)
  let key: Buffer
  ;[ck, key] = rekey(ck, ss)
  ss.fill(0)
  const staticKey = aeadOpen(key, 0, msg.subarray(I_STATIC, I_TIMESTAMP), h)
  key.fill(0)
  const fail = (reason: WgDropCode): ConsumeInitiationResult<P> => {
    h.fill(0)
    ck.fill(0)
    return { reason, peer: null }
  }
  if (staticKey === null) return fail(WgDrop.DECRYPT_FAILED)
  h = mixHash(h, msg.subarray(I_STATIC, I_TIMESTAMP))
  const peer = lookup(staticKey)
  if (peer === undefined) return fail(WgDrop.UNKNOWN_PEER)
  if (peer.remote.staticStatic === null) return fail(WgDrop.BAD_KEY)
  ;[ck, key] = rekey(ck, peer.remote.staticStatic)
  const timestamp = aeadOpen(key, 0, msg.subarray(I_TIMESTAMP, I_END), h)
  key.fill(0)
  if (timestamp === null) return fail(WgDrop.DECRYPT_FAILED)
  h = mixHash(h, msg.subarray(I_TIMESTAMP, I_END))

  const hs = peer.handshake
  if (!isAfter(timestamp, hs.lastTimestamp)) return fail(WgDrop.STALE_TIMESTAMP)
  if (now - hs.lastInitiationConsumed <= INITIATION_FLOOD_INTERVAL) return fail(WgDrop.HANDSHAKE_FLOOD)

  hs.clear()
  hs.hash = h
  hs.chainKey = ck
  e.copy(hs.remoteEphemeral)
  hs.remoteIndex = readU32(msg, I_SENDER)
  timestamp.copy(hs.lastTimestamp)
  hs.lastInitiationConsumed = now
  hs.state = HandshakeState.INITIATION_CONSUMED
  return { reason: WgDrop.OK, peer }
}

/**
 * Builds the response to the initiation consumed into `hs` (macs left zero)
 * and moves it to RESPONSE_CREATED. Null if `hs` holds no consumed
 * initiation or a key is unusable.
 */
export function createResponse (remote: RemoteStatic, hs: Handshake, senderIndex: number): Buffer | null {
  if (hs.state !== HandshakeState.INITIATION_CONSUMED) return null
  const eph = generateEphemeral()
  const ee = dh(eph.privateKey, hs.remoteEphemeral)
  const es = dh(eph.privateKey, remote.publicKey)
  if (ee === null || es === null) return null
  const msg = Buffer.alloc(RESPONSE_SIZE)
  msg[0] = MSG_RESPONSE
  writeU32(msg, R_SENDER, senderIndex)
  writeU32(msg, R_RECEIVER, hs.remoteIndex)
  eph.publicKey.copy(msg, R_EPHEMERAL)

  let h = mixHash(hs.hash, eph.publicKey)
  let ck = swap(hs.chainKey, kdf1(hs.chainKey, eph.publicKey))
  ck = swap(ck, kdf1(ck, ee))
  ck = swap(ck, kdf1(ck, es))
  ee.fill(0)
  es.fill(0)
  const [ck2, tau, key] = kdf3(ck, remote.presharedKey)
  ck.fill(0)
  h = mixHash(h, tau)
  tau.fill(0)
  aeadSeal(key, 0, EMPTY, h).copy(msg, R_EMPTY)
  key.fill(0)
  h = mixHash(h, msg.subarray(R_EMPTY, R_END))

  hs.hash = h
  hs.chainKey = ck2
  hs.localEphemeral = null
  hs.localIndex = senderIndex
  hs.state = HandshakeState.RESPONSE_CREATED
  return msg
}

/**
 * Checks a response (its macs already checked) against the initiation in
 * `hs`, found by the response's receiver index; on success `hs` moves to
 * RESPONSE_CONSUMED. Refusals: UNKNOWN_RECEIVER_INDEX (no initiation of ours
 * outstanding), BAD_KEY, DECRYPT_FAILED; `hs` is left as it was.
 */
export function consumeResponse (local: LocalStatic, remote: RemoteStatic, hs: Handshake, msg: Buffer): WgDropCode {
  if (msg.length !== RESPONSE_SIZE || msg[0] !== MSG_RESPONSE) return WgDrop.BAD_LENGTH
  if (hs.state !== HandshakeState.INITIATION_CREATED || hs.localEphemeral === null || readU32(msg, R_RECEIVER) !== hs.localIndex) return WgDrop.UNKNOWN_RECEIVER_INDEX
  const e = msg.subarray(R_EPHEMERAL, R_EMPTY)
  const ee = dh(hs.localEphemeral, e)
  const se = dh(local.privateKey, e)
  if (ee === null || se === null) return WgDrop.BAD_KEY

  let h = hash(hs.hash, e)
  let ck = kdf1(hs.chainKey, e)
  ck = swap(ck, kdf1(ck, ee))
  ck = swap(ck, kdf1(ck, se))
  ee.fill(0)
  se.fill(0)
  const [ck2, tau, key] = kdf3(ck, remote.presharedKey)
  ck.fill(0)
  h = mixHash(h, tau)
  tau.fill(0)
  const ok = aeadOpen(key, 0, msg.subarray(R_EMPTY, R_END), h) !== null
  key.fill(0)
  if (!ok) {
    h.fill(0)
    ck2.fill(0)
    return WgDrop.DECRYPT_FAILED
  }
  h = mixHash(h, msg.subarray(R_EMPTY, R_END))

  hs.hash.fill(0)
  hs.chainKey.fill(0)
  hs.hash = h
  hs.chainKey = ck2
  hs.remoteIndex = readU32(msg, R_SENDER)
  hs.state = HandshakeState.RESPONSE_CONSUMED
  return WgDrop.OK
}

export interface TransportKeys {
  /** 32 bytes each; owned by the caller, who zeroes them when the keypair dies */
  readonly sendKey: Buffer
  readonly receiveKey: Buffer
  readonly isInitiator: boolean
  /** our index (the receiver field of what the peer sends us) */
  readonly localIndex: number
  /** the peer's index (the receiver field of what we send) */
  readonly remoteIndex: number
}

/**
 * The transport keys of a finished handshake (RESPONSE_CONSUMED for the
 * initiator, RESPONSE_CREATED for the responder): (T_send, T_recv) =
 * KDF2(Ck, ε), swapped for the responder. Zeroes the handshake; null in
 * any other state.
 */
export function deriveKeys (hs: Handshake): TransportKeys | null {
  let isInitiator: boolean
  if (hs.state === HandshakeState.RESPONSE_CONSUMED) isInitiator = true
  else if (hs.state === HandshakeState.RESPONSE_CREATED) isInitiator = false
  else return null
  const [t0, t1] = kdf2(hs.chainKey, EMPTY)
  const keys: TransportKeys = {
    sendKey: isInitiator ? t0 : t1,
    receiveKey: isInitiator ? t1 : t0,
    isInitiator,
    localIndex: hs.localIndex,
    remoteIndex: hs.remoteIndex,
  }
  hs.clear()
  return keys
}
