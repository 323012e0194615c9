// mac1, mac2 and cookies: WireGuard's defence against handshake floods
// (whitepaper §5.4.4, §5.4.7; wireguard-go device/cookie.go).
//
// Every handshake message ends in mac1 and mac2 (16 bytes each):
//   mac1 = MAC(HASH("mac1----" ‖ receiver's public key), message up to mac1)
//   mac2 = MAC(cookie, message up to mac2), or zeros without a cookie
// mac1 proves the sender knows whom it is talking to; it is always checked.
// A responder under load (the caller decides when it is) answers a message
// without a valid mac2 with a cookie reply (type 3, 64 bytes) instead:
//   cookie = MAC(secret, the sender's IP address and port), the secret
//            rotated every 120 s
//   reply  = XChaCha20-Poly1305(HASH("cookie--" ‖ responder's public key),
//            random nonce, cookie, ad = the mac1 of the message answered)
// The initiator decrypts it, keeps the cookie for 120 s and puts mac2 on its
// next message, proving it receives at its source address.
//
// CookieChecker is the receiving side (one per device, keyed by our public
// key); CookieGenerator the sending side (one per peer, keyed by theirs).
import { randomBytes } from 'node:crypto'
import { COOKIE_REFRESH_TIME } from './constants'
import { COOKIE_REPLY_SIZE, MSG_COOKIE_REPLY, readU32, writeU32 } from './messages'
import { equal, hash, MAC_LEN, mac, TAG_LEN, XNONCE_LEN, xaeadOpen, xaeadSeal } from './primitives'

const LABEL_MAC1 = Buffer.from('mac1----')
const LABEL_COOKIE = Buffer.from('cookie--')
const C_RECEIVER = 4
const C_NONCE = 8
const C_COOKIE = C_NONCE + XNONCE_LEN // 32

/** Where mac1 starts in a handshake message of this length. */
function mac1At (len: number): number {
  return len - 2 * MAC_LEN
}

/** IPv4 address (host order) and port as 6 bytes: the input of the cookie MAC. */
export function sourceBytes (addr: number, port: number): Buffer {
  const b = Buffer.alloc(6)
  b.writeUInt32BE(addr >>> 0, 0)
  b.writeUInt16BE(port & 0xffff, 4)
  return b
}

export class CookieChecker {
  private readonly mac1Key: Buffer
  private readonly cookieKey: Buffer
  private readonly secret = Buffer.alloc(32)
  private secretSetAt = -Infinity

  constructor (localPublicKey: Buffer) {
    this.mac1Key = hash(LABEL_MAC1, localPublicKey)
    this.cookieKey = hash(LABEL_COOKIE, localPublicKey)
  }

  /** True if the message's mac1 is right for our public key. */
  checkMac1 (msg: Buffer): boolean {
    const at = mac1At(msg.length)
    if (at < 0) return false
    return equal(mac(this.mac1Key, msg.subarray(0, at)), msg.subarray(at, at + MAC_LEN))
  }

  /** True if the message carries a mac2 made with the cookie we currently give its source. */
  checkMac2 (msg: Buffer, addr: number, port: number, now: number): boolean {
    const at = mac1At(msg.length) + MAC_LEN
    if (at < MAC_LEN || now - this.secretSetAt > COOKIE_REFRESH_TIME) return false
    const cookie = mac(this.secret, sourceBytes(addr, port))
    const ok = equal(mac(cookie, msg.subarray(0, at)), msg.subarray(at, at + MAC_LEN))
    cookie.fill(0)
    return ok
  }

  /** A cookie reply to `msg` (an initiation or response) from addr:port; the secret is renewed first if it is older than 120 s. */
  createReply (msg: Buffer, addr: number, port: number, now: number): Buffer {
    if (now - this.secretSetAt > COOKIE_REFRESH_TIME) {
      randomBytes(32).copy(this.secret)
      this.secretSetAt = now
    }
    const at = mac1At(msg.length)
    const cookie = mac(this.secret, sourceBytes(addr, port))
    const reply = Buffer.alloc(COOKIE_REPLY_SIZE)
    reply[0] = MSG_COOKIE_REPLY
    writeU32(reply, C_RECEIVER, readU32(msg, 4)) // the sender index of what we answer
    const nonce = randomBytes(XNONCE_LEN)
    nonce.copy(reply, C_NONCE)
    xaeadSeal(this.cookieKey, nonce, cookie, msg.subarray(at, at + MAC_LEN)).copy(reply, C_COOKIE)
    cookie.fill(0)
    return reply
  }

  /** Forgets the secret. */
  clear (): void {
    this.secret.fill(0)
    this.secretSetAt = -Infinity
  }
}

export class CookieGenerator {
  private readonly mac1Key: Buffer
  private readonly cookieKey: Buffer
  private readonly cookie = Buffer.alloc(MAC_LEN)
  private cookieSetAt = -Infinity
  private readonly lastMac1 = Buffer.alloc(MAC_LEN)
  private hasLastMac1 = false

  constructor (remotePublicKey: Buffer) {
    this.mac1Key = hash(LABEL_MAC1, remotePublicKey)
    this.cookieKey = hash(LABEL_COOKIE, remotePublicKey)
  }

  /** True while a cookie from the peer is fresh (mac2 will be sent). */
  hasCookie (now: number): boolean {
    return now - this.cookieSetAt <= COOKIE_REFRESH_TIME
  }

  /** Writes mac1, and mac2 if we hold a fresh cookie, into the last 32 bytes of `msg`. */
  addMacs (msg: Buffer, now: number): void {
    const at = mac1At(msg.length)
    mac(this.mac1Key, msg.subarray(0, at)).copy(msg, at)
    msg.copy(this.lastMac1, 0, at, at + MAC_LEN)
    this.hasLastMac1 = true
    if (this.hasCookie(now)) mac(this.cookie, msg.subarray(0, at + MAC_LEN)).copy(msg, at + MAC_LEN)
    else msg.fill(0, at + MAC_LEN, at + 2 * MAC_LEN)
  }

  /** Takes the cookie from a reply to our last message; false if it does not decrypt. */
  consumeReply (reply: Buffer, now: number): boolean {
    if (!this.hasLastMac1 || reply.length !== COOKIE_REPLY_SIZE) return false
    const c = xaeadOpen(this.cookieKey, reply.subarray(C_NONCE, C_COOKIE), reply.subarray(C_COOKIE, C_COOKIE + MAC_LEN + TAG_LEN), this.lastMac1)
    if (c === null || c.length !== MAC_LEN) return false
    c.copy(this.cookie)
    c.fill(0)
    this.cookieSetAt = now
    return true
  }

  /** Forgets the cookie. */
  clear (): void {
    this.cookie.fill(0)
    this.cookieSetAt = -Infinity
    this.hasLastMac1 = false
  }
}

/** The receiver index of a cookie reply. */
export function cookieReplyReceiver (reply: Buffer): number {
  return readU32(reply, C_RECEIVER)
}
