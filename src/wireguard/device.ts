// A WireGuard interface's protocol side: our identity, the peers, the index
// table and key slots, the cookie checker and the handshake rate limit. It
// sends nothing itself: everything to send is queued as Outgoing datagrams
// the backend sends from its WireGuard socket.
//
// The backend's calls, all taking `now`: one clock for the device, in
// milliseconds since the epoch (Date.now(), or a test's fake clock), because
// the initiation's TAI64N timestamp and peer.lastHandshake are read off it. A
// peer refuses an initiation whose timestamp is not newer than the last it
// took from us, so a clock that restarts from zero would lock us out.
//
//   handshakeMessage(msg, addr, port, now, underLoad)  a type 1-3 datagram
//        → { reason, peer, replies }: what it did, and what to send
//   tick(now) → Outgoing[]           timers: retransmissions, keepalives, rekeys
//   nextDeadline()                   when tick() next has work (ms, Infinity = none)
//   indexes.slotOf(receiverIndex)    hot path: a transport message's key slot, -1 unknown
//   indexes.keypairAt(slot)          hot path: its Keypair (then peer.received(...))
//   peer.send(now, count)            hot path: counters for a batch to a peer (peer.ts)
//   takeOutgoing()                   what send()/received() queued (a handshake they started)
//
// and the hooks it calls synchronously from within those: keypairCreated
// (copy kp.sendKey/receiveKey into the addon's slot kp.slot), keypairRemoved
// (clear that slot; the keys are zeroed right after), sessionReady (the peer
// can send: flush what was held for it).
//
// A refused datagram is a WgDrop reason for the backend to count, never an
// exception. Under load (the caller's judgement, e.g. its handshake queue is
// long) an initiation or response without a valid mac2 is answered with a
// cookie reply (BAD_MAC2) and one with it is rate limited per source.
//
// receiveTransport / sendTransport are a reference path in JavaScript
// (Node's ChaCha20-Poly1305), for tests and tools; the dataplane uses the
// addon with the slots instead.
import { WeftError } from '../errors'
import { INITIATIONS_PER_SECOND } from './constants'
import { CookieChecker, cookieReplyReceiver } from './cookie'
import { IndexTable } from './index-table'
import {
  handshakeSize,
  KEEPALIVE_SIZE,
  MSG_COOKIE_REPLY,
  MSG_INITIATION,
  MSG_TRANSPORT,
  messageType,
  readU32,
  transportCounter,
  transportReceiver,
} from './messages'
import { consumeInitiation, consumeResponse, type LocalStatic } from './noise'
import { Peer, type Outgoing, type PeerHost, type PeerOptions } from './peer'
import { KEY_LEN, privateKeyObject, rawPublicKey } from './primitives'
import { HandshakeRateLimiter } from './ratelimiter'
import { WgDrop, type WgDropCode } from './reasons'
import { type Keypair, openTransport, sealTransport } from './session'

export interface DeviceHooks {
  /** A new keypair holds slot kp.slot: install its keys there. */
  keypairCreated?: (kp: Keypair) => void
  /** kp is gone (its keys are zeroed once this returns) and kp.slot may be reused: clear it. */
  keypairRemoved?: (kp: Keypair) => void
  /** The peer has a usable session again (after send() returned -1). */
  sessionReady?: (peer: Peer) => void
}

export interface DeviceOptions {
  /** our static private key, 32 bytes (keys.ts); the caller keeps ownership */
  privateKey: Buffer
  /** rows of the addon's key table; at most 3 per peer are ever used. Default 3072. */
  keySlots?: number
  hooks?: DeviceHooks
  /** uniform in [0, 1) for the retransmission jitter; default Math.random */
  random?: () => number
}

export interface HandshakeOutcome {
  /** OK or why the message was refused */
  readonly reason: WgDropCode
  /** the peer it concerned, when known */
  readonly peer: Peer | null
  /** what to send now (a response, a cookie reply, a keepalive, plus anything queued before) */
  readonly replies: Outgoing[]
}

export interface TransportOutcome {
  readonly reason: WgDropCode
  readonly peer: Peer | null
  /** the padded plaintext (empty for a keepalive) when reason is OK */
  readonly payload: Buffer | null
}

export class Device implements PeerHost {
  readonly local: LocalStatic
  readonly publicKey: Buffer
  readonly indexes: IndexTable<Peer, Keypair>
  private readonly peersByKey = new Map<string, Peer>()
  private readonly checker: CookieChecker
  private readonly limiter = new HandshakeRateLimiter()
  private readonly hooks: DeviceHooks
  readonly random: () => number
  private outbox: Outgoing[] = []
  // initiation budget: a token bucket of INITIATIONS_PER_SECOND, as many in a burst
  private initiationTokens = INITIATIONS_PER_SECOND
  private initiationRefilledAt = -Infinity
  private closed = false

  constructor (o: DeviceOptions) {
    if (o.privateKey.length !== KEY_LEN) throw new WeftError('EWGKEY', `private key is ${o.privateKey.length} bytes, not ${KEY_LEN}`)
    const privateKey = privateKeyObject(o.privateKey)
    this.publicKey = rawPublicKey(privateKey)
    this.local = { privateKey, publicKey: this.publicKey }
    this.indexes = new IndexTable<Peer, Keypair>(o.keySlots ?? 3072)
    this.checker = new CookieChecker(this.publicKey)
    this.hooks = o.hooks ?? {}
    this.random = o.random ?? Math.random
  }

  // --- peers -----------------------------------------------------------------

  /** Adds a peer; throws WeftError EWGPEER if its public key is already a peer's or is our own. */
  addPeer (o: PeerOptions): Peer {
    const id = o.publicKey.toString('base64')
    if (this.peersByKey.has(id)) throw new WeftError('EWGPEER', `peer ${id} is already configured`)
    if (o.publicKey.equals(this.publicKey)) throw new WeftError('EWGPEER', `peer ${id} is this device's own public key`)
    const peer = new Peer(this, this.local.privateKey, o)
    this.peersByKey.set(id, peer)
    return peer
  }

  /** The peer with this public key (32 bytes or base64). */
  peer (publicKey: Buffer | string): Peer | undefined {
    return this.peersByKey.get(typeof publicKey === 'string' ? publicKey : publicKey.toString('base64'))
  }

  get peers (): IterableIterator<Peer> {
    return this.peersByKey.values()
  }

  /** Removes a peer, zeroing its keys (keypairRemoved is called for each). */
  removePeer (peer: Peer): void {
    if (this.peersByKey.get(peer.publicKey.toString('base64')) !== peer) return
    this.peersByKey.delete(peer.publicKey.toString('base64'))
    peer.removed = true
    peer.close()
    this.outbox = this.outbox.filter((m) => m.peer !== peer)
  }

  // --- events ----------------------------------------------------------------

  /** A handshake datagram (type 1, 2 or 3) from addr:port. */
  handshakeMessage (msg: Buffer, addr: number, port: number, now: number, underLoad: boolean): HandshakeOutcome {
    const { reason, peer } = this.handle(msg, addr >>> 0, port, now, underLoad)
    return { reason, peer, replies: this.takeOutgoing() }
  }

  private handle (msg: Buffer, addr: number, port: number, now: number, underLoad: boolean): { reason: WgDropCode, peer: Peer | null } {
    if (this.closed) return { reason: WgDrop.NO_SESSION, peer: null }
    const type = messageType(msg)
    if (type === 0 || type === MSG_TRANSPORT) return { reason: WgDrop.BAD_TYPE, peer: null }
    if (msg.length !== handshakeSize(type)) return { reason: WgDrop.BAD_LENGTH, peer: null }

    if (type === MSG_COOKIE_REPLY) {
      const peer = this.indexes.peerOf(cookieReplyReceiver(msg))
      if (peer === undefined) return { reason: WgDrop.UNKNOWN_RECEIVER_INDEX, peer: null }
      return { reason: peer.cookies.consumeReply(msg, now) ? WgDrop.OK : WgDrop.BAD_COOKIE, peer }
    }

    if (!this.checker.checkMac1(msg)) return { reason: WgDrop.BAD_MAC1, peer: null }
    if (underLoad) {
      if (!this.checker.checkMac2(msg, addr, port, now)) {
        this.emit({ kind: 'cookie_reply', peer: null, bytes: this.checker.createReply(msg, addr, port, now), addr, port })
        return { reason: WgDrop.BAD_MAC2, peer: null }
      }
      if (!this.limiter.allow(addr, now)) return { reason: WgDrop.RATE_LIMITED, peer: null }
    }

    if (type === MSG_INITIATION) {
      const r = consumeInitiation(this.local, msg, now, (pub) => this.peersByKey.get(pub.toString('base64')))
      if (r.peer === null) return r
      return { reason: r.peer.answerInitiation(now, addr, port), peer: r.peer }
    }
    // a response
    const peer = this.indexes.peerOf(readU32(msg, 8))
    if (peer === undefined) return { reason: WgDrop.UNKNOWN_RECEIVER_INDEX, peer: null }
    const reason = consumeResponse(this.local, peer.remote, peer.handshake, msg)
    if (reason !== WgDrop.OK) return { reason, peer }
    return { reason: peer.completeInitiation(now, addr, port), peer }
  }

  /** Fires every peer's due timers; returns what to send. */
  tick (now: number): Outgoing[] {
    for (const peer of this.peersByKey.values()) {
      if (peer.nextDeadline() <= now) peer.tick(now)
    }
    this.limiter.gc(now)
    return this.takeOutgoing()
  }

  /** When tick() next has work: the earliest peer deadline (ms), Infinity if none. */
  nextDeadline (): number {
    let t = Infinity
    for (const peer of this.peersByKey.values()) t = Math.min(t, peer.nextDeadline())
    return t
  }

  /** Datagrams queued since the last call (by send(), received(), hooks). */
  takeOutgoing (): Outgoing[] {
    const out = this.outbox
    if (out.length === 0) return out
    this.outbox = []
    return out
  }

  /** Whether takeOutgoing() has anything. */
  get hasOutgoing (): boolean {
    return this.outbox.length > 0
  }

  /** Zeroes every peer's keys and the cookie secret; the device refuses everything afterwards. Idempotent. */
  close (): void {
    if (this.closed) return
    this.closed = true
    for (const peer of this.peersByKey.values()) {
      peer.removed = true
      peer.close()
    }
    this.checker.clear()
    this.outbox = []
  }

  // --- the JavaScript reference transport path -------------------------------

  /**
   * Looks up, decrypts (in JavaScript) and accepts a transport message:
   * what the dataplane does with the addon, for tests and tools.
   */
  receiveTransport (msg: Buffer, addr: number, port: number, now: number): TransportOutcome {
    if (messageType(msg) !== MSG_TRANSPORT) return { reason: WgDrop.BAD_TYPE, peer: null, payload: null }
    if (msg.length < KEEPALIVE_SIZE) return { reason: WgDrop.BAD_LENGTH, peer: null, payload: null }
    const slot = this.indexes.slotOf(transportReceiver(msg))
    const kp = slot < 0 ? undefined : this.indexes.keypairAt(slot)
    if (kp === undefined) return { reason: WgDrop.UNKNOWN_RECEIVER_INDEX, peer: null, payload: null }
    const payload = openTransport(kp, msg)
    if (payload === null) return { reason: WgDrop.DECRYPT_FAILED, peer: kp.peer, payload: null }
    const reason = kp.peer.received(kp, transportCounter(msg), payload.length, now, addr >>> 0, port)
    return { reason, peer: kp.peer, payload: reason === WgDrop.OK ? payload : null }
  }

  /** A transport message to `peer` (encrypted in JavaScript), or null if there is no session yet (one is being made). */
  sendTransport (peer: Peer, payload: Uint8Array, now: number, mtu = Infinity): Buffer | null {
    const counter = peer.send(now, 1)
    if (counter < 0) return null
    return sealTransport(peer.current!, counter, payload, mtu)
  }

  // --- PeerHost ----------------------------------------------------------------

  emit (out: Outgoing): void {
    this.outbox.push(out)
  }

  initiationWait (now: number): number {
    const elapsed = now - this.initiationRefilledAt
    this.initiationTokens = Math.min(INITIATIONS_PER_SECOND, this.initiationTokens + (elapsed * INITIATIONS_PER_SECOND) / 1000)
    this.initiationRefilledAt = now
    if (this.initiationTokens >= 1) {
      this.initiationTokens -= 1
      return 0
    }
    return Math.ceil(((1 - this.initiationTokens) * 1000) / INITIATIONS_PER_SECOND)
  }

  keypairCreated (kp: Keypair): void {
    this.hooks.keypairCreated?.(kp)
  }

  keypairRemoved (kp: Keypair): void {
    this.hooks.keypairRemoved?.(kp)
  }

  sessionReady (peer: Peer): void {
    this.hooks.sessionReady?.(peer)
  }
}
