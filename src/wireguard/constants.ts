// The protocol's numbers, from the whitepaper (§6.1, "Protocol constants")
// and wireguard-go's device/constants.go. Times are milliseconds: every
// timer in this folder runs on a `now` handed in, never on the wall clock.

export const REKEY_AFTER_TIME = 120_000
export const REJECT_AFTER_TIME = 180_000
export const REKEY_ATTEMPT_TIME = 90_000
export const REKEY_TIMEOUT = 5_000
/** Up to this much (exclusive) is added to each Rekey-Timeout, so peers do not retry in lockstep. */
export const REKEY_TIMEOUT_JITTER_MAX = 334
export const KEEPALIVE_TIMEOUT = 10_000
/** After this long without a new handshake, every key of the peer is zeroed (3 × Reject-After-Time). */
export const ZERO_KEYS_AFTER = 3 * REJECT_AFTER_TIME
/** Retransmissions of an initiation before giving up (Rekey-Attempt-Time / Rekey-Timeout). */
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME / REKEY_TIMEOUT
/** An initiator that is only receiving rekeys this long into the session (Reject − Keepalive − Rekey-Timeout). */
export const REKEY_ON_RECEIVE_AFTER = REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT
/** A responder ignores a second initiation from a peer within this long of the last (wireguard-go's HandshakeInitationRate). */
export const INITIATION_FLOOD_INTERVAL = 20
/** The cookie secret's lifetime, and a received cookie's. */
export const COOKIE_REFRESH_TIME = 120_000

/**
 * Rekey-After-Messages (2^60) and Reject-After-Messages (2^64 − 2^13 − 1).
 * Counters here are plain numbers, exact below 2^53 (MAX_COUNTER): at ten
 * million packets a second a sender needs 28 years to reach 2^53, and every
 * key is dropped after Reject-After-Time (180 s), so a real counter never
 * gets near it. 2^60 is exact as a double; Reject-After-Messages is not, and
 * is kept as a bigint for reference only: MAX_COUNTER is the working limit.
 */
export const REKEY_AFTER_MESSAGES = 2 ** 60
export const REJECT_AFTER_MESSAGES = (1n << 64n) - (1n << 13n) - 1n
/** The largest counter sent or accepted (Number.MAX_SAFE_INTEGER); anything above is refused. */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER

/** Initiations the device may send per second, all peers together, and its burst. */
export const INITIATIONS_PER_SECOND = 50
