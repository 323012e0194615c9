// Why a WireGuard message was refused (or an operation could not go ahead).
// Small consecutive integers, as src/packet/reason.ts, so the backend can
// count them in a typed array indexed by code; WG_DROP_NAMES[code] labels the
// counter in /metrics. 0 always means "ok". Append new codes at the end: the
// names end up in dashboards.

export const WgDrop = {
  OK: 0,
  /** Wrong size for its type (initiation 148, response 92, cookie reply 64, transport ≥ 32). */
  BAD_LENGTH: 1,
  /** Type byte not 1-4, or the three reserved bytes after it not zero. */
  BAD_TYPE: 2,
  /** mac1 does not verify: not meant for our public key, or corrupted. */
  BAD_MAC1: 3,
  /** We are under load and mac2 is missing or stale: a cookie reply went back instead. */
  BAD_MAC2: 4,
  /** Under load, the source address sent handshakes faster than 20 a second (burst 5). */
  RATE_LIMITED: 5,
  /** A handshake field or a transport message failed authenticated decryption. */
  DECRYPT_FAILED: 6,
  /** An initiation from a static key that is not one of our peers. */
  UNKNOWN_PEER: 7,
  /** An initiation whose TAI64N timestamp is not newer than the last one from that peer (a replay). */
  STALE_TIMESTAMP: 8,
  /** A second initiation from a peer within 20 ms of the last one. */
  HANDSHAKE_FLOOD: 9,
  /** A public key in the message gives an all-zero Diffie-Hellman result (a low-order point). */
  BAD_KEY: 10,
  /** A response, cookie reply or transport message for a receiver index we do not have (or no longer expect). */
  UNKNOWN_RECEIVER_INDEX: 11,
  /** A cookie reply that did not decrypt, or came when we had sent no handshake. */
  BAD_COOKIE: 12,
  /** A transport counter already seen, too far behind the window, or past the limit. */
  REPLAY: 13,
  /** No usable session to send with (a handshake has been started), or a packet for a keypair that is gone. */
  NO_SESSION: 14,
  /** A transport message under a keypair older than Reject-After-Time. */
  KEY_EXPIRED: 15,
  /** Every key slot of the addon's table is taken: the handshake could not complete. */
  NO_KEY_SLOT: 16,
} as const

export type WgDropCode = (typeof WgDrop)[keyof typeof WgDrop]

/** WG_DROP_NAMES[code] is the lower-case name of WgDrop code `code`, for metric labels. */
export const WG_DROP_NAMES: readonly string[] = [
  'ok',
  'bad_length',
  'bad_type',
  'bad_mac1',
  'bad_mac2',
  'rate_limited',
  'decrypt_failed',
  'unknown_peer',
  'stale_timestamp',
  'handshake_flood',
  'bad_key',
  'unknown_receiver_index',
  'bad_cookie',
  'replay',
  'no_session',
  'key_expired',
  'no_key_slot',
]
