// A keypair: one session's transport keys, counters and replay window
// (whitepaper §5.4.6), and transport messages sealed and opened in
// JavaScript for the control path: keepalives, tests. The dataplane's
// cipher is the addon's, keyed by the keypair's slot.
//
// Ownership: the keypair owns sendKey and receiveKey. The backend copies
// them into the addon's key table (slot `slot`) when the device reports the
// keypair created, and clears that row when it reports it removed; the
// device zeroes the buffers at removal. A removed keypair is `dead` and its
// slot may already serve another keypair.
import type { Peer } from './peer'
import { MAX_COUNTER, REJECT_AFTER_TIME } from './constants'
import { KEEPALIVE_SIZE, MSG_TRANSPORT, TRANSPORT_HEADER_SIZE, transportCounter, writeCounter, writeU32 } from './messages'
import type { TransportKeys } from './noise'
import { aeadOpen, aeadSeal, TAG_LEN } from './primitives'
import { ReplayWindow } from './replay'

export class Keypair {
  readonly peer: Peer
  /** row in the addon's key table, set when the index table gives it one; valid until the keypair is removed */
  slot = -1
  /** our index: the receiver field of transport messages sent to us */
  readonly localIndex: number
  /** the peer's index: the receiver field of what we send */
  readonly remoteIndex: number
  readonly sendKey: Buffer
  readonly receiveKey: Buffer
  readonly isInitiator: boolean
  /** when the handshake completed (ms, the device's clock) */
  readonly created: number
  /** next counter to send (never past MAX_COUNTER) */
  sendCounter = 0
  readonly replay = new ReplayWindow()
  /** set when the keypair is removed: nothing may be sent or accepted under it */
  dead = false

  constructor (peer: Peer, keys: TransportKeys, created: number) {
    this.peer = peer
    this.localIndex = keys.localIndex
    this.remoteIndex = keys.remoteIndex
    this.sendKey = keys.sendKey
    this.receiveKey = keys.receiveKey
    this.isInitiator = keys.isInitiator
    this.created = created
  }

  /**
   * True once nothing may be received under this keypair: removed, or
   * older than Reject-After-Time. The dataplane's check before it decrypts
   * (peer.received makes it again). No allocation.
   */
  expired (now: number): boolean {
    return this.dead || now - this.created >= REJECT_AFTER_TIME
  }

  /** Zeroes the keys and marks the keypair dead. */
  destroy (): void {
    this.dead = true
    this.sendKey.fill(0)
    this.receiveKey.fill(0)
    this.sendCounter = MAX_COUNTER + 1
  }
}

const PADDING = 16

/**
 * A transport message carrying `payload` under the keypair's send key and
 * `counter`, the payload zero-padded to a multiple of 16 bytes (not past
 * `mtu`, as wireguard-go's calculatePaddingSize). Control path: allocates.
 */
export function sealTransport (kp: Keypair, counter: number, payload: Uint8Array, mtu = Infinity): Buffer {
  let padded = payload.length === 0 ? 0 : Math.ceil(payload.length / PADDING) * PADDING
  if (padded > mtu) padded = Math.max(payload.length, mtu)
  const plain = Buffer.alloc(padded)
  plain.set(payload)
  const header = Buffer.alloc(TRANSPORT_HEADER_SIZE)
  header[0] = MSG_TRANSPORT
  writeU32(header, 4, kp.remoteIndex)
  writeCounter(header, 8, counter)
  return Buffer.concat([header, aeadSeal(kp.sendKey, counter, plain, Buffer.alloc(0))])
}

/**
 * The padded plaintext of a transport message under the keypair's receive
 * key, or null if it does not authenticate (or its counter is ≥ 2^53). The
 * replay check is the caller's (Peer.received). Control path: allocates.
 */
export function openTransport (kp: Keypair, msg: Buffer): Buffer | null {
  if (msg.length < KEEPALIVE_SIZE || msg.length - TRANSPORT_HEADER_SIZE < TAG_LEN) return null
  const counter = transportCounter(msg)
  if (counter < 0) return null
  return aeadOpen(kp.receiveKey, counter, msg.subarray(TRANSPORT_HEADER_SIZE), Buffer.alloc(0))
}
