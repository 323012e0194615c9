// Hostile WireGuard traffic for the outside-path fuzz test: recipes for
// datagrams (random bytes; transport messages of the real session, intact,
// mutated on the wire, replayed, re-addressed to receiver indices the node
// never gave out, jumping the counter ahead; every handshake message type,
// genuine or random, mutated, with mac1 recomputed so that a mutation gets
// past it), turned into bytes against the live session (a counter is only
// spent when a batch is built), and a model of what the node must do with
// each datagram: pass exactly which packet to its pods, accept it quietly
// (a cookie reply that decrypts), or drop it for one of which reasons.
//
// The model is written from the protocol (whitepaper §5.4, the message
// layouts) and from what the outside path promises its pods (an IPv4 packet,
// for our subnet, from the sending peer's subnet, its TCP/UDP checksum
// right), not from the code: it keeps its own replay window over the
// counters the node accepted.
import fc from 'fast-check'
import { contains, parseCidr } from '../../src/packet/net'
import { fold, onesSum, pseudoHeaderSum4At } from '../../src/packet/checksum'
import { hash, mac, MAC_LEN } from '../../src/wireguard/primitives'
import { COOKIE_REPLY_SIZE, INITIATION_SIZE, KEEPALIVE_SIZE, RESPONSE_SIZE, writeU32 } from '../../src/wireguard/messages'
import { REPLAY_WINDOW } from '../../src/wireguard/replay'
import { bytes, u32 } from '../packet/builders'
import { mutate, mutation, randomInnerCase, structuredCase } from './frames'
import type { Mutation } from './frames'
import { counterOf, OWN_SUBNET, PEER_SUBNET, receiverOf } from './wireguard-drive'
import type { From, WgDatagram, WgRig } from './wireguard-drive'

const OWN = parseCidr(OWN_SUBNET)
const PEER_NET = parseCidr(PEER_SUBNET)
/** The most handshake messages the outside loop takes from one batch (outside.ts); the rest are rate_limited. */
import { HANDSHAKES_PER_BATCH } from '../../src/backend/wireguard/outside'
export { HANDSHAKES_PER_BATCH }

export type Sample = 'initiation' | 'response' | 'keepalive' | 'stranger' | 'cookie' | 'random-initiation' | 'random-response' | 'random-cookie'

export type Recipe =
  /** random bytes, perhaps behind a valid type byte and zero reserved bytes (so that they reach the checks behind those) */
  | { k: 'random', bytes: Buffer, type: number | null, from: From, glue: boolean }
  /** a packet sealed now by the peer (its counter first pushed ahead by `jump`), perhaps mutated on the wire */
  | { k: 'data', plain: Buffer, wire: Mutation[], from: From, glue: boolean, jump: number }
  /** a packet sealed now, its receiver index replaced */
  | { k: 'reindexed', plain: Buffer, index: number, from: From }
  /** a transport message sealed earlier (delivered or not), sent again */
  | { k: 'replay', pick: number, from: From, glue: boolean }
  /** a handshake message: a genuine sample or random bytes of the right size, its receiver perhaps replaced, mutated, its mac1 perhaps recomputed */
  | { k: 'shake', sample: Sample, noise: Buffer, receiver: 'keep' | 'session' | number, wire: Mutation[], remac: boolean, from: From }

const mostly = <T>(usual: fc.Arbitrary<T>, other: fc.Arbitrary<T>, weight = 6): fc.Arbitrary<T> => fc.oneof({ weight, arbitrary: usual }, { weight: 1, arbitrary: other })
const from: fc.Arbitrary<From> = mostly(fc.constant<From>('peer'), fc.constant<From>('stranger'), 4)
const glue = fc.boolean()
const wire = mostly(fc.constant<Mutation[]>([]), fc.array(mutation, { minLength: 1, maxLength: 3 }), 1)

/** What an authenticated peer might seal: packets for us and not, well-formed and mutated, or random bodies. */
const plain: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 4, arbitrary: structuredCase('udp').map((c) => c.datagram) },
  { weight: 1, arbitrary: randomInnerCase('udp').map((c) => c.datagram) }
)

const randomBytes = fc.oneof(bytes(80, 1), fc.integer({ min: 1, max: 1600 }).chain((n) => bytes(n, n)))

export const randomRecipe: fc.Arbitrary<Recipe> = fc.record({ k: fc.constant('random' as const), bytes: randomBytes, type: fc.option(fc.integer({ min: 0, max: 5 }), { nil: null }), from, glue })

export const dataRecipe: fc.Arbitrary<Recipe> = fc.record({
  k: fc.constant('data' as const),
  plain,
  wire,
  from,
  glue,
  // now and then a jump past the replay window, so that what was sealed before it falls behind
  jump: mostly(fc.constant(0), fc.integer({ min: REPLAY_WINDOW - 100, max: 3 * REPLAY_WINDOW }), 40)
})

export const reindexedRecipe: fc.Arbitrary<Recipe> = fc.record({ k: fc.constant('reindexed' as const), plain, index: u32, from })

export const replayRecipe: fc.Arbitrary<Recipe> = fc.record({ k: fc.constant('replay' as const), pick: fc.nat(), from, glue })

export const shakeRecipe: fc.Arbitrary<Recipe> = fc.record({
  k: fc.constant('shake' as const),
  sample: fc.constantFrom<Sample>('initiation', 'response', 'keepalive', 'stranger', 'cookie', 'random-initiation', 'random-response', 'random-cookie'),
  // the body of a random one
  noise: bytes(INITIATION_SIZE, INITIATION_SIZE),
  receiver: mostly<'keep' | 'session' | number>(fc.constant('keep'), fc.oneof(fc.constant<'session'>('session'), u32), 3),
  wire,
  remac: fc.boolean(),
  from
})

/** Every kind of recipe, transport the most. */
export const anyRecipe: fc.Arbitrary<Recipe> = fc.oneof(
  { weight: 2, arbitrary: randomRecipe },
  { weight: 6, arbitrary: dataRecipe },
  { weight: 1, arbitrary: reindexedRecipe },
  { weight: 2, arbitrary: replayRecipe },
  { weight: 3, arbitrary: shakeRecipe }
)

/** A transport message the peer sealed: its counter and the padded plaintext the node decrypts. */
interface Genuine { counter: number, plain: Buffer }

/** The model's memory across batches: every message sealed, and the node's replay window as the protocol defines it. */
export class WgModel {
  /** every transport message the peer sealed, by hex */
  private readonly genuine = new Map<string, Genuine>()
  /** the same, in the order sealed (what a replay picks from) */
  private readonly pool: Buffer[] = []
  private readonly accepted = new Set<number>()
  private newest = -1
  private readonly mac1Key: Buffer

  constructor (private readonly rig: WgRig) {
    this.mac1Key = hash(Buffer.from('mac1----'), rig.nodeKey)
    // the confirming keepalive of the handshake: counter 0, accepted
    this.remember(rig.samples.keepalive, Buffer.alloc(0))
    this.accept(0)
  }

  private remember (msg: Buffer, plain: Buffer): void {
    this.genuine.set(msg.toString('hex'), { counter: counterOf(msg), plain })
    this.pool.push(msg)
  }

  private accept (counter: number): void {
    this.accepted.add(counter)
    if (counter > this.newest) this.newest = counter
  }

  /** Seal a packet now, as the peer: the message, remembered. */
  private seal (p: Buffer): Buffer {
    const m = this.rig.seal(p)
    const padded = Buffer.alloc(Math.ceil(p.length / 16) * 16)
    p.copy(padded)
    this.remember(m, padded)
    return m
  }

  /** The recipes as datagrams, sealing what they seal now, in order. */
  build (recipes: readonly Recipe[]): WgDatagram[] {
    return recipes.map((r) => {
      if (r.k === 'random') {
        const b = Buffer.from(r.bytes)
        if (r.type !== null) for (let i = 0; i < 4 && i < b.length; i++) b[i] = i === 0 ? r.type : 0
        return { bytes: b, from: r.from, glue: r.glue }
      }
      if (r.k === 'data') {
        if (r.jump > 0) (this.rig.session.current as { sendCounter: number }).sendCounter += r.jump
        // the peer's sealed message, then what the wire did to it (never its first 16 bytes' type alone: mutate picks anywhere)
        return { bytes: mutate(this.seal(r.plain), r.wire, 0, 16), from: r.from, glue: r.glue }
      }
      if (r.k === 'reindexed') {
        const m = Buffer.from(this.seal(r.plain))
        writeU32(m, 4, r.index)
        return { bytes: m, from: r.from }
      }
      if (r.k === 'replay') return { bytes: this.pool[r.pick % this.pool.length], from: r.from, glue: r.glue }
      return { bytes: this.shake(r), from: r.from }
    })
  }

  private shake (r: Extract<Recipe, { k: 'shake' }>): Buffer {
    const s = this.rig.samples
    const random = (type: number, size: number): Buffer => {
      const b = Buffer.from(r.noise.subarray(0, size))
      b[0] = type
      b[1] = b[2] = b[3] = 0
      return b
    }
    const genuine: Record<string, Buffer> = { initiation: s.initiation, response: s.response, keepalive: s.keepalive, stranger: s.stranger, cookie: s.cookie }
    let m: Buffer = Buffer.from(genuine[r.sample] ?? (r.sample === 'random-initiation' ? random(1, INITIATION_SIZE) : r.sample === 'random-response' ? random(2, RESPONSE_SIZE) : random(3, COOKIE_REPLY_SIZE)))
    if (r.receiver !== 'keep' && m.length >= 12) writeU32(m, m[0] === 2 ? 8 : 4, r.receiver === 'session' ? this.rig.nodeIndex() : r.receiver)
    m = mutate(m, r.wire, 0, 0)
    if (r.remac && (m[0] === 1 || m[0] === 2) && m.length >= 2 * MAC_LEN) mac(this.mac1Key, m.subarray(0, m.length - 2 * MAC_LEN)).copy(m, m.length - 2 * MAC_LEN)
    return m
  }

  /**
   * What the node must do with each datagram of one batch, in order (the
   * node's replay window moves as it would). exactBatch: the datagrams are
   * one receive batch, so the handshake cap per batch applies exactly.
   */
  expect (ds: readonly WgDatagram[], exactBatch: boolean): Expectation[] {
    let shakes = 0
    return ds.map(({ bytes: d }) => {
      const set = (...rs: string[]): Expectation => ({ reasons: new Set(rs) })
      // longer than the socket's slot: cut by recvmmsg, never seen by the loop
      if (d.length > this.rig.readSlot) return set('rx_truncated')
      if (d.length === 0) return set('bad_length')
      if (d.length < 4 || (d[1] | d[2] | d[3]) !== 0) return set('bad_type')
      const type = d[0]
      if (type < 1 || type > 4) return set('bad_type')
      if (type !== 4) {
        shakes++
        if (exactBatch && shakes > HANDSHAKES_PER_BATCH) return set('rate_limited')
        const e = this.handshake(d)
        if (!exactBatch) e.reasons.add('rate_limited')
        return e
      }
      if (d.length < KEEPALIVE_SIZE) return set('bad_length')
      if (!this.rig.knowsIndex(receiverOf(d), true)) return set('unknown_receiver_index')
      const g = this.genuine.get(d.toString('hex'))
      if (g === undefined) return set('decrypt_failed')
      // authenticated: the replay window decides, before anything looks inside
      if (this.accepted.has(g.counter) || this.newest - g.counter > REPLAY_WINDOW) return set('replay')
      this.accept(g.counter)
      if (g.plain.length === 0) return { reasons: new Set(), quiet: true, counter: g.counter }
      return { ...innerExpect(g.plain), counter: g.counter }
    })
  }

  /** A type 1-3 datagram the outside loop handed to the protocol. */
  private handshake (d: Buffer): Expectation {
    const set = (...rs: string[]): Expectation => ({ reasons: new Set(rs) })
    const type = d[0]
    const size = type === 1 ? INITIATION_SIZE : type === 2 ? RESPONSE_SIZE : COOKIE_REPLY_SIZE
    if (d.length !== size) return set('bad_length')
    const s = this.rig.samples
    if (type === 3) {
      // no mac on a cookie reply: the receiver index it answers, then its AEAD
      if (!this.rig.knowsIndex(receiverOf(d), false)) return set('unknown_receiver_index')
      return d.equals(s.cookie) ? { reasons: new Set(), quiet: true } : set('bad_cookie')
    }
    const at = d.length - 2 * MAC_LEN
    if (!mac(this.mac1Key, d.subarray(0, at)).equals(d.subarray(at, at + MAC_LEN))) return set('bad_mac1')
    // a valid mac1: under load (the node's call) a cookie reply instead
    if (type === 2) return set('unknown_receiver_index', 'bad_mac2') // we expect no response: the session's is done
    // ephemeral key and encrypted static key: who it claims to be; then the encrypted timestamp, looked at only for a peer
    const claim = d.subarray(8, 88)
    if (claim.equals(s.stranger.subarray(8, 88))) return set('unknown_peer', 'bad_mac2')
    if (claim.equals(s.initiation.subarray(8, 88))) return set(d.subarray(88, 116).equals(s.initiation.subarray(88, 116)) ? 'stale_timestamp' : 'decrypt_failed', 'bad_mac2')
    const eph = d.subarray(8, 40)
    // a changed ephemeral key may be a low-order point; anything else fails to decrypt
    if (eph.equals(s.initiation.subarray(8, 40)) || eph.equals(s.stranger.subarray(8, 40))) return set('decrypt_failed', 'bad_mac2')
    return set('decrypt_failed', 'bad_key', 'bad_mac2')
  }
}

export interface Expectation {
  /** the packet its pods must get, if it must pass */
  pass?: Buffer
  /** reasons it may be dropped for (any one: the order of checks is the node's business) */
  reasons: Set<string>
  /** accepted with nothing to deliver and nothing to count (a keepalive, a cookie reply) */
  quiet?: boolean
  /** a genuine transport message the node authenticated and accepted: its counter */
  counter?: number
}

/** The inner TCP/UDP checksum as the opener judges it: nothing to check, right, left partial by its sender (finished), or wrong. */
function checksum (p: Buffer): 'unchecked' | 'good' | 'partial' | 'bad' {
  const ihl = (p[0] & 15) * 4
  const total = p.readUInt16BE(2)
  if (p[0] >> 4 !== 4 || ihl < 20 || total < ihl || total > p.length || ((p[6] & 0x3f) | p[7]) !== 0) return 'unchecked'
  const proto = p[9]
  const l4 = total - ihl
  if (proto === 6 ? l4 < 20 : proto !== 17 || l4 < 8 || p.readUInt16BE(ihl + 6) === 0) return 'unchecked'
  const field = ihl + (proto === 6 ? 16 : 6)
  const pseudo = pseudoHeaderSum4At(p, 0, proto, l4)
  if (fold(onesSum(p, ihl, l4, pseudo)) === 0xffff) return 'good'
  return p.readUInt16BE(field) === fold(pseudo) ? 'partial' : 'bad'
}

/**
 * What the node must do with a packet the peer sealed (`p`: the padded
 * plaintext): an IPv4 packet, whole, for our subnet, from the peer's own
 * subnet (cryptokey routing), its TCP header sane and its checksum right
 * goes to the pods as it was sealed (a checksum the sender left partial
 * finished); anything else is dropped for what is wrong with it.
 */
export function innerExpect (p: Buffer): Expectation {
  const reasons = new Set<string>()
  if (p.length < 20) return { reasons: reasons.add('truncated') }
  const ihl = (p[0] & 15) * 4
  const total = p.readUInt16BE(2)
  const whole = total >= ihl && total <= p.length
  if (p[0] >> 4 !== 4) reasons.add('bad_version')
  if (ihl < 20) reasons.add('bad_ihl')
  if (!whole) reasons.add('bad_total_length')
  if (!contains(OWN, p.readUInt32BE(16))) reasons.add('not_for_us')
  if (!contains(PEER_NET, p.readUInt32BE(12))) reasons.add('spoofed_source')
  const sum = checksum(p)
  if (sum === 'bad') reasons.add('bad_inner_checksum')
  if (p[9] === 6 && ((p[6] & 0x1f) | p[7]) === 0 && ihl >= 20 && whole) {
    const doff = total >= ihl + 20 ? p[ihl + 12] >> 4 : 0
    if (doff < 5 || ihl + doff * 4 > total) reasons.add('bad_tcp_data_offset')
  }
  if (reasons.size > 0) return { reasons }
  const pass = Buffer.from(p.subarray(0, total))
  if (sum === 'partial') {
    let c = ~fold(onesSum(pass, ihl, total - ihl)) & 0xffff
    if (pass[9] === 17 && c === 0) c = 0xffff
    pass.writeUInt16BE(c, ihl + (pass[9] === 6 ? 16 : 6))
  }
  return { pass, reasons }
}
