// One peer's protocol state: its handshake, its keypairs and its timers
// (whitepaper §6; wireguard-go device/timers.go, send.go, receive.go,
// noise-protocol.go's BeginSymmetricSession). Time is handed in: every
// event takes `now` (ms, the device's clock) and the timers are deadlines
// that Device.tick(now) fires, so tests drive hours in no time.
//
// Keypairs: `current` sends; `previous` still receives after a rekey; `next`
// is the responder's new keypair, not used for sending until the initiator
// has proven it holds it (its first transport message under it), when it
// becomes `current`. A new keypair replaces them as wireguard-go does, the
// dropped ones removed before the new one takes a slot, so a peer never
// holds more than three.
//
// Timers (each a deadline, Infinity when not armed):
//   retransmit   Rekey-Timeout + jitter after an initiation; resends it,
//                up to 18 times (Rekey-Attempt-Time), then gives up
//   keepalive    Keepalive-Timeout after data is received with nothing sent
//   newHandshake Keepalive-Timeout + Rekey-Timeout + jitter after data is
//                sent with nothing received: the peer may be gone, rekey
//   zeroKeys     3 × Reject-After-Time after the last new session: every
//                key of the peer is zeroed
//   persistent   the persistent keepalive interval after any authenticated
//                packet in either direction
// and a session is rekeyed after Rekey-After-Time by its initiator (when it
// sends, or at 165 s when it only receives), and refused after
// Reject-After-Time. Initiations are sent at most once per Rekey-Timeout
// per peer, and within the device's budget (Device: 50 a second).
//
// The dataplane's calls (allocation-free): send(now, count) before a batch
// to this peer, received(...) for each transport message that
// authenticated. Everything else is the Device's business.
import type { KeyObject } from 'node:crypto'
import { ip4ToString } from '../packet/ip'
import {
  KEEPALIVE_TIMEOUT,
  MAX_COUNTER,
  MAX_TIMER_HANDSHAKES,
  REJECT_AFTER_TIME,
  REKEY_AFTER_MESSAGES,
  REKEY_AFTER_TIME,
  REKEY_ON_RECEIVE_AFTER,
  REKEY_TIMEOUT,
  REKEY_TIMEOUT_JITTER_MAX,
  ZERO_KEYS_AFTER,
} from './constants'
import { CookieGenerator } from './cookie'
import type { IndexTable } from './index-table'
import { createInitiation, createResponse, deriveKeys, Handshake, type LocalStatic } from './noise'
import { dh, KEY_LEN } from './primitives'
import { WgDrop, type WgDropCode } from './reasons'
import { Keypair, sealTransport } from './session'
import { isAfter, nextAfter, tai64n, TIMESTAMP_LEN } from './tai64n'

/** An IPv4 UDP endpoint; addr in host order (as the socket layer reports it). */
export interface Endpoint {
  addr: number
  port: number
}

export function formatEndpoint (addr: number, port: number): string {
  return `${ip4ToString(addr)}:${port}`
}

export type OutgoingKind = 'initiation' | 'response' | 'cookie_reply' | 'keepalive'

/** A datagram for the backend to send from the WireGuard socket. The backend owns `bytes` from now on. */
export interface Outgoing {
  readonly kind: OutgoingKind
  /** null for a cookie reply (sent to whoever asked, peer or not) */
  readonly peer: Peer | null
  readonly bytes: Buffer
  readonly addr: number
  readonly port: number
}

export interface PeerOptions {
  /** 32 bytes */
  publicKey: Buffer
  /** flannel's PSK: 32 bytes; none (zeros) by default */
  presharedKey?: Buffer | null
  /** where to send; unknown by default (learnt from the peer's first authenticated packet) */
  endpoint?: Endpoint | null
  /** seconds, 0 = off (flannel's PersistentKeepaliveInterval) */
  persistentKeepalive?: number
}

/** What a peer needs of its device (implemented by Device). */
export interface PeerHost {
  readonly local: LocalStatic
  readonly indexes: IndexTable<Peer, Keypair>
  emit: (out: Outgoing) => void
  /** 0 if an initiation may be sent now (and it is counted), else ms until one may */
  initiationWait: (now: number) => number
  keypairCreated: (kp: Keypair) => void
  keypairRemoved: (kp: Keypair) => void
  sessionReady: (peer: Peer) => void
  /** uniform in [0, 1), for the jitter */
  random: () => number
}

const EMPTY = Buffer.alloc(0)

export class Peer {
  readonly publicKey: Buffer
  /** the peer's key, PSK and our precomputed DH with it, as the handshake needs them */
  readonly remote: { readonly publicKey: Buffer, presharedKey: Buffer, readonly staticStatic: Buffer | null }
  readonly handshake = new Handshake()
  readonly cookies: CookieGenerator

  /** Sends. Read `current.slot` and `current.remoteIndex` after send() returned a counter. */
  current: Keypair | null = null
  previous: Keypair | null = null
  next: Keypair | null = null

  /** 0 = unknown */
  endpointAddr = 0
  endpointPort = 0
  /** bumped whenever the endpoint changes (roaming), for a backend caching it */
  endpointVersion = 0
  /** seconds, 0 = off */
  persistentKeepalive = 0
  /** when the last handshake completed (ms, the device's clock), 0 = never */
  lastHandshake = 0
  /** set by Device.removePeer */
  removed = false

  // timers: deadlines in ms, Infinity when not armed
  private retransmitAt = Infinity
  private keepaliveAt = Infinity
  private newHandshakeAt = Infinity
  private zeroKeysAt = Infinity
  private persistentAt = Infinity
  /** an initiation held back by the device's budget */
  private deferredAt = Infinity
  private deferredRetry = false
  private attempts = 0
  private needAnotherKeepalive = false
  private sentLastMinuteHandshake = false
  private lastSentHandshake = -Infinity
  private readonly lastSentTimestamp = Buffer.alloc(TIMESTAMP_LEN)

  constructor (private readonly host: PeerHost, localPrivate: KeyObject, o: PeerOptions) {
    if (o.publicKey.length !== KEY_LEN) throw new RangeError(`a peer's public key is ${KEY_LEN} bytes, got ${o.publicKey.length}`)
    const psk = Buffer.alloc(KEY_LEN)
    if (o.presharedKey) {
      if (o.presharedKey.length !== KEY_LEN) throw new RangeError(`a preshared key is ${KEY_LEN} bytes, got ${o.presharedKey.length}`)
      o.presharedKey.copy(psk)
    }
    this.publicKey = Buffer.from(o.publicKey)
    this.remote = { publicKey: this.publicKey, presharedKey: psk, staticStatic: dh(localPrivate, this.publicKey) }
    this.cookies = new CookieGenerator(this.publicKey)
    if (o.endpoint) this.setEndpoint(o.endpoint)
    this.setPersistentKeepalive(o.persistentKeepalive ?? 0)
  }

  /** False if the peer's public key is a low-order point: no handshake can ever succeed. */
  get usable (): boolean {
    return this.remote.staticStatic !== null
  }

  setEndpoint (ep: Endpoint): void {
    if (ep.addr !== this.endpointAddr || ep.port !== this.endpointPort) {
      this.endpointAddr = ep.addr >>> 0
      this.endpointPort = ep.port
      this.endpointVersion++
    }
  }

  /** Replaces the PSK (32 bytes, or null for none); takes effect from the next handshake. */
  setPresharedKey (psk: Buffer | null): void {
    if (psk && psk.length !== KEY_LEN) throw new RangeError(`a preshared key is ${KEY_LEN} bytes, got ${psk.length}`)
    if (psk) psk.copy(this.remote.presharedKey)
    else this.remote.presharedKey.fill(0)
  }

  /**
   * Seconds between keepalives whatever the traffic, 0 = off. Turning it on
   * sends one at the next tick (starting a handshake if there is no
   * session), as wireguard-go does when it is set.
   */
  setPersistentKeepalive (seconds: number): void {
    if (!Number.isInteger(seconds) || seconds < 0 || seconds > 65535) throw new RangeError(`persistent keepalive must be 0..65535 s, got ${seconds}`)
    const was = this.persistentKeepalive
    this.persistentKeepalive = seconds
    if (seconds === 0) this.persistentAt = Infinity
    else if (was === 0) this.persistentAt = -Infinity
  }

  // --- the dataplane's calls -----------------------------------------------

  /**
   * There are `count` packets to send to this peer. Returns the first of
   * `count` consecutive counters reserved on `current` (whose `slot` and
   * `remoteIndex` the caller then uses), or -1 if there is no usable
   * session: the caller holds or drops the packets (NO_SESSION), a
   * handshake has been started, and Device's sessionReady hook says when to
   * try again. Also runs the send-side timers and rekeys when the session
   * is old. No allocation (except when it starts a handshake).
   */
  send (now: number, count = 1): number {
    const kp = this.current
    if (kp === null || kp.sendCounter + count > MAX_COUNTER + 1 || now - kp.created >= REJECT_AFTER_TIME) {
      this.initiate(now, false)
      return -1
    }
    const first = kp.sendCounter
    kp.sendCounter = first + count
    this.anyAuthenticatedTraversal(now)
    this.keepaliveAt = Infinity // any authenticated packet sent
    if (this.newHandshakeAt === Infinity) this.newHandshakeAt = now + KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + this.jitter()
    this.keepKeyFreshSending(kp, now)
    return first
  }

  /**
   * A transport message that authenticated under `kp` (the caller decrypted
   * it with kp's slot) arrived from addr:port carrying `length` bytes of
   * payload (0 = keepalive). Checks the counter against the replay window,
   * confirms a `next` keypair, roams the endpoint, runs the receive-side
   * timers. Returns OK, or REPLAY / KEY_EXPIRED / NO_SESSION: then the
   * payload must be dropped. No allocation (except when it starts a
   * handshake).
   */
  received (kp: Keypair, counter: number, length: number, now: number, addr: number, port: number): WgDropCode {
    if (kp.dead || kp.peer !== this) return WgDrop.NO_SESSION
    if (kp.expired(now)) return WgDrop.KEY_EXPIRED
    if (!kp.replay.check(counter)) return WgDrop.REPLAY
    if (kp === this.next) {
      // key confirmation: the initiator is using the keypair we made for it
      const old = this.previous
      this.previous = this.current
      this.current = kp
      this.next = null
      this.removeKeypair(old)
      this.handshakeComplete(now)
      this.host.sessionReady(this)
    }
    if (addr !== this.endpointAddr || port !== this.endpointPort) {
      this.endpointAddr = addr >>> 0
      this.endpointPort = port
      this.endpointVersion++
    }
    this.keepKeyFreshReceiving(now)
    this.anyAuthenticatedTraversal(now)
    this.newHandshakeAt = Infinity // any authenticated packet received
    if (length > 0) {
      if (this.keepaliveAt === Infinity) this.keepaliveAt = now + KEEPALIVE_TIMEOUT
      else this.needAnotherKeepalive = true
    }
    return WgDrop.OK
  }

  // --- the device's calls --------------------------------------------------

  /** Fires the timers due at `now`; what they send goes to the device's outbox. */
  tick (now: number): void {
    if (now >= this.deferredAt) {
      this.deferredAt = Infinity
      this.initiate(now, this.deferredRetry)
    }
    if (now >= this.retransmitAt) {
      this.retransmitAt = Infinity
      if (this.attempts > MAX_TIMER_HANDSHAKES) {
        // give up until there is something to send again; clear what is left in a while
        this.keepaliveAt = Infinity
        if (this.zeroKeysAt === Infinity) this.zeroKeysAt = now + ZERO_KEYS_AFTER
      } else {
        this.attempts++
        this.initiate(now, true)
      }
    }
    if (now >= this.keepaliveAt) {
      this.keepaliveAt = Infinity
      this.sendKeepalive(now)
      if (this.needAnotherKeepalive) {
        this.needAnotherKeepalive = false
        this.keepaliveAt = now + KEEPALIVE_TIMEOUT
      }
    }
    if (now >= this.newHandshakeAt) {
      this.newHandshakeAt = Infinity
      this.initiate(now, false)
    }
    if (now >= this.zeroKeysAt) {
      this.zeroKeysAt = Infinity
      this.zeroAll()
    }
    if (now >= this.persistentAt) {
      this.persistentAt = Infinity
      if (this.persistentKeepalive > 0) this.sendKeepalive(now)
    }
  }

  /** The earliest armed timer (ms), Infinity if none: when tick() next has work. */
  nextDeadline (): number {
    return Math.min(this.deferredAt, this.retransmitAt, this.keepaliveAt, this.newHandshakeAt, this.zeroKeysAt, this.persistentAt)
  }

  /** An initiation from this peer was consumed into `handshake`: answer it. */
  answerInitiation (now: number, addr: number, port: number): WgDropCode {
    this.anyAuthenticatedTraversal(now)
    this.newHandshakeAt = Infinity
    this.setEndpoint({ addr, port })
    const hs = this.handshake
    this.host.indexes.remove(hs.localIndex) // an initiation of ours in flight is superseded
    const index = this.host.indexes.newIndex(this)
    const msg = createResponse(this.remote, hs, index)
    if (msg === null) {
      this.host.indexes.remove(index)
      hs.localIndex = 0
      hs.clear()
      return WgDrop.BAD_KEY
    }
    this.lastSentHandshake = now
    this.cookies.addMacs(msg, now)
    const r = this.beginSession(now)
    if (r !== WgDrop.OK) return r
    this.anyAuthenticatedTraversal(now)
    this.keepaliveAt = Infinity
    this.host.emit({ kind: 'response', peer: this, bytes: msg, addr: this.endpointAddr, port: this.endpointPort })
    return WgDrop.OK
  }

  /** A response to our initiation was consumed into `handshake`: start the session and confirm it with a keepalive. */
  completeInitiation (now: number, addr: number, port: number): WgDropCode {
    this.setEndpoint({ addr, port })
    this.anyAuthenticatedTraversal(now)
    this.newHandshakeAt = Infinity
    const r = this.beginSession(now)
    if (r !== WgDrop.OK) return r
    this.handshakeComplete(now)
    this.sendKeepalive(now)
    this.host.sessionReady(this)
    return WgDrop.OK
  }

  /** Zeroes and drops every keypair and the handshake in progress. */
  zeroAll (): void {
    this.removeKeypair(this.previous)
    this.removeKeypair(this.current)
    this.removeKeypair(this.next)
    this.previous = this.current = this.next = null
    this.host.indexes.remove(this.handshake.localIndex)
    this.handshake.localIndex = 0
    this.handshake.clear()
    this.zeroKeysAt = Infinity
  }

  /** Drops everything and disarms every timer (the peer is being removed). */
  close (): void {
    this.zeroAll()
    this.cookies.clear()
    this.retransmitAt = this.keepaliveAt = this.newHandshakeAt = this.persistentAt = this.deferredAt = Infinity
    this.remote.presharedKey.fill(0)
    this.remote.staticStatic?.fill(0)
  }

  // --- internals -----------------------------------------------------------

  /**
   * Sends an initiation unless one went out less than Rekey-Timeout ago
   * (or the device's budget is spent: then at the next tick it allows).
   * `retry` keeps the attempt count (the retransmit timer's calls).
   */
  private initiate (now: number, retry: boolean): void {
    if (this.removed) return
    if (!retry) this.attempts = 0
    if (now - this.lastSentHandshake < REKEY_TIMEOUT) return
    const wait = this.host.initiationWait(now)
    if (wait > 0) {
      this.deferredAt = Math.min(this.deferredAt, now + wait)
      this.deferredRetry = retry
      return
    }
    this.lastSentHandshake = now
    const hs = this.handshake
    this.host.indexes.remove(hs.localIndex)
    hs.localIndex = 0
    if (this.endpointPort !== 0) {
      // TAI64N from the clock, but never at or before the last one we sent
      // (a clock stepped back would otherwise get us refused until it caught up)
      let ts = tai64n(now)
      if (!isAfter(ts, this.lastSentTimestamp)) ts = nextAfter(this.lastSentTimestamp)
      ts.copy(this.lastSentTimestamp)
      const index = this.host.indexes.newIndex(this)
      const msg = createInitiation(this.host.local, this.remote, hs, index, ts)
      if (msg === null) {
        this.host.indexes.remove(index)
        hs.localIndex = 0
      } else {
        this.cookies.addMacs(msg, now)
        this.host.emit({ kind: 'initiation', peer: this, bytes: msg, addr: this.endpointAddr, port: this.endpointPort })
      }
    }
    // with no endpoint nothing can be sent, but the attempt counts as one
    this.anyAuthenticatedTraversal(now)
    this.keepaliveAt = Infinity
    this.retransmitAt = now + REKEY_TIMEOUT + this.jitter()
  }

  private sendKeepalive (now: number): void {
    const kp = this.current
    if (kp === null || kp.sendCounter >= MAX_COUNTER || now - kp.created >= REJECT_AFTER_TIME) {
      this.initiate(now, false)
      return
    }
    if (this.endpointPort !== 0) {
      const counter = kp.sendCounter++
      this.host.emit({ kind: 'keepalive', peer: this, bytes: sealTransport(kp, counter, EMPTY), addr: this.endpointAddr, port: this.endpointPort })
    }
    this.anyAuthenticatedTraversal(now)
    this.keepaliveAt = Infinity
    this.keepKeyFreshSending(kp, now)
  }

  private keepKeyFreshSending (kp: Keypair, now: number): void {
    if (kp.sendCounter > REKEY_AFTER_MESSAGES || (kp.isInitiator && now - kp.created > REKEY_AFTER_TIME)) this.initiate(now, false)
  }

  private keepKeyFreshReceiving (now: number): void {
    if (this.sentLastMinuteHandshake) return
    const kp = this.current
    if (kp !== null && kp.isInitiator && now - kp.created > REKEY_ON_RECEIVE_AFTER) {
      this.sentLastMinuteHandshake = true
      this.initiate(now, false)
    }
  }

  /** Turns the finished handshake into a keypair and rotates the keypairs. */
  private beginSession (now: number): WgDropCode {
    const keys = deriveKeys(this.handshake)
    this.handshake.localIndex = 0
    if (keys === null) return WgDrop.NO_SESSION
    const hadNext = this.next !== null
    if (keys.isInitiator) {
      const dropPrevious = this.previous
      if (hadNext) {
        this.previous = this.next
        this.next = null
        this.removeKeypair(this.current)
      } else {
        this.previous = this.current
      }
      this.current = null
      this.removeKeypair(dropPrevious)
    } else {
      this.removeKeypair(this.next)
      this.removeKeypair(this.previous)
      this.next = null
      this.previous = null
    }
    const kp = new Keypair(this, keys, now)
    const slot = this.host.indexes.attachKeypair(keys.localIndex, kp)
    if (slot < 0) {
      this.host.indexes.remove(keys.localIndex)
      kp.destroy()
      if (keys.isInitiator && !hadNext) {
        // the old current was only moved aside: it still sends
        this.current = this.previous
        this.previous = null
      }
      return WgDrop.NO_KEY_SLOT
    }
    kp.slot = slot
    if (keys.isInitiator) this.current = kp
    else this.next = kp
    this.zeroKeysAt = now + ZERO_KEYS_AFTER // session derived
    this.host.keypairCreated(kp)
    return WgDrop.OK
  }

  private removeKeypair (kp: Keypair | null): void {
    if (kp === null || kp.dead) return
    this.host.indexes.remove(kp.localIndex)
    this.host.keypairRemoved(kp)
    kp.destroy()
  }

  private handshakeComplete (now: number): void {
    this.retransmitAt = Infinity
    this.attempts = 0
    this.sentLastMinuteHandshake = false
    this.lastHandshake = now
  }

  private anyAuthenticatedTraversal (now: number): void {
    if (this.persistentKeepalive > 0) this.persistentAt = now + this.persistentKeepalive * 1000
  }

  private jitter (): number {
    return Math.floor(this.host.random() * REKEY_TIMEOUT_JITTER_MAX)
  }
}
