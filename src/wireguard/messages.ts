// The four message layouts (whitepaper §5.4; wireguard-go device/noise-protocol.go).
// Every message starts with a type byte and three zero bytes; integers are
// little-endian.
//
//   1 initiation  148  type | sender | ephemeral 32 | static 32+16 | timestamp 12+16 | mac1 16 | mac2 16
//   2 response     92  type | sender | receiver | ephemeral 32 | empty 0+16 | mac1 16 | mac2 16
//   3 cookie       64  type | receiver | nonce 24 | cookie 16+16
//   4 transport  ≥ 32  type | receiver | counter 8 | ciphertext n+16
import { MAX_COUNTER } from './constants'

export const MSG_INITIATION = 1
export const MSG_RESPONSE = 2
export const MSG_COOKIE_REPLY = 3
export const MSG_TRANSPORT = 4

export const INITIATION_SIZE = 148
export const RESPONSE_SIZE = 92
export const COOKIE_REPLY_SIZE = 64
export const TRANSPORT_HEADER_SIZE = 16
/** A keepalive: a transport message with an empty payload. */
export const KEEPALIVE_SIZE = 32

export const TRANSPORT_OFFSET_RECEIVER = 4
export const TRANSPORT_OFFSET_COUNTER = 8

/** The message type (1-4) or 0 if the datagram is shorter than 4 bytes or its reserved bytes are not zero. */
export function messageType (msg: Uint8Array): number {
  if (msg.length < 4 || msg[1] !== 0 || msg[2] !== 0 || msg[3] !== 0) return 0
  const t = msg[0]!
  return t >= MSG_INITIATION && t <= MSG_TRANSPORT ? t : 0
}

/** The size a handshake message of type `type` must have, or 0 for other types. */
export function handshakeSize (type: number): number {
  return type === MSG_INITIATION ? INITIATION_SIZE : type === MSG_RESPONSE ? RESPONSE_SIZE : type === MSG_COOKIE_REPLY ? COOKIE_REPLY_SIZE : 0
}

/** A little-endian u32 at `off` (the caller has checked the length). */
export function readU32 (b: Uint8Array, off: number): number {
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0
}

export function writeU32 (b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff
  b[off + 1] = (v >>> 8) & 0xff
  b[off + 2] = (v >>> 16) & 0xff
  b[off + 3] = (v >>> 24) & 0xff
}

/** A transport message's receiver index (offset 4). */
export function transportReceiver (msg: Uint8Array): number {
  return readU32(msg, TRANSPORT_OFFSET_RECEIVER)
}

/**
 * A transport message's 64-bit counter as a number, or -1 if it is at or
 * past 2^53 (see MAX_COUNTER: no honest peer gets there, so it is refused).
 * No allocation.
 */
export function transportCounter (msg: Uint8Array, off = TRANSPORT_OFFSET_COUNTER): number {
  const lo = readU32(msg, off)
  const hi = readU32(msg, off + 4)
  const c = hi * 0x1_0000_0000 + lo
  return c > MAX_COUNTER ? -1 : c
}

/** Writes `counter` (0..MAX_COUNTER) little-endian as 64 bits at `off`. No allocation. */
export function writeCounter (b: Uint8Array, off: number, counter: number): void {
  writeU32(b, off, counter >>> 0)
  writeU32(b, off + 4, Math.floor(counter / 0x1_0000_0000))
}
