// WireGuard's crypto from the addon (native/src/wg_*.c): the primitives the
// handshake needs, and the transport's batch seal and open.
//
// 1. Primitives, one call each, allocating their result (handshake rates):
//    blake2s, aeadSeal/aeadOpen (ChaCha20-Poly1305 with the transport nonce,
//    or a raw 12-byte one), xaeadSeal/xaeadOpen (XChaCha20-Poly1305, cookies).
// 2. WgKeys: the key table. A slot per key, assigned by the caller (a
//    session's sending and receiving keys are two slots); set() keys the
//    slot's cipher context once, clear() zeroes it.
// 3. WgSealer: a TUN read batch -> a socket send batch of transport
//    messages. The caller fills the per-entry arrays and calls seal(count):
//    one crossing per batch, no allocation per packet.
// 4. WgOpener: transport messages in a socket receive batch, decrypted in
//    place; the caller lists the datagrams (offset, length, key slot) and
//    calls open(count).
// Ownership: the addon holds every view given to a constructor for the life
// of the object; the caller rewrites their contents between calls, never
// the views. Per-packet outcomes are codes in arrays (WgStatus, WgSealCode),
// never exceptions.
import { WeftError, fromNative } from '../errors'
import { native } from './binding'
import type { PacketBatch } from './batch'

/** What the addon's `wg` object holds (wg_addon.cc). */
interface WgBinding {
  WgKeys: new (slots: number) => NativeWgKeys
  WgSeal: new (init: NativeWgSealInit) => { seal (count: number, first: number): number }
  WgOpen: new (init: NativeWgOpenInit) => { open (count: number): number }
  blake2s (outLen: number, key: Uint8Array | null, ...parts: Uint8Array[]): Buffer
  aeadSeal (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array | null): Buffer
  aeadOpen (key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array | null): Buffer | null
  xaeadSeal (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array | null): Buffer
  xaeadOpen (key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array | null): Buffer | null
  bench (lib: number, len: number, batch: number, rounds: number): [number, number]
  constants: WgConstants
}

interface NativeWgKeys {
  readonly slots: number
  set (slot: number, key: Uint8Array): void
  clear (slot: number): void
}

/** weft_wg_seal_t (native/src/wg.h) */
interface NativeWgSealInit {
  keys: NativeWgKeys
  slab: Buffer
  offsets: Uint32Array
  lengths: Uint32Array
  vnet: boolean
  keySlot: Int32Array
  receiver: Uint32Array
  counter: Float64Array
  gso: Uint32Array
  dest: Uint32Array
  produced: Int32Array
  outSlab: Buffer
  outOffsets: Uint32Array
  outLengths: Uint32Array
  outDests: Uint32Array
  outSegs: Uint32Array
  outCapacity: number
  mtu: number
}

/** weft_wg_open_t (native/src/wg.h) */
interface NativeWgOpenInit {
  keys: NativeWgKeys
  slab: Buffer
  offsets: Uint32Array
  lengths: Uint32Array
  keySlot: Int32Array
  status: Uint8Array
  inner: Int8Array
  counter: Float64Array
}

interface WgConstants {
  HDR_LEN: number
  OVERHEAD: number
  OK: number
  BAD_LENGTH: number
  AUTH_FAILED: number
  NO_KEY: number
  BAD_SLOT: number
  INNER_UNCHECKED: number
  INNER_GOOD: number
  INNER_BAD: number
  SEAL_NO_KEY: number
  SEAL_BAD_PACKET: number
  SEAL_TOO_BIG: number
  SEAL_BAD_SLOT: number
  SEAL_BAD_COUNTER: number
  SEAL_NO_ROOM: number
  LIB_SODIUM: number
  LIB_OPENSSL_IV: number
  LIB_OPENSSL_FULL: number
  HOT_LIB: number
}

function load (): WgBinding {
  const wg = (native as unknown as { wg?: WgBinding }).wg
  if (wg === undefined) throw new WeftError('ENATIVE', 'the native addon has no WireGuard crypto (built before it, or OpenSSL lacks BLAKE2s/ChaCha20-Poly1305): rebuild it with `npm run build`')
  return wg
}

const wg = load()
const c = wg.constants

/** Bytes in front of a transport message's payload (type, receiver index, counter). */
export const WG_HDR_LEN: number = c.HDR_LEN
/** A transport message's bytes beyond its padded payload: header and tag. */
export const WG_OVERHEAD: number = c.OVERHEAD
const KEY_LEN = 32

/** WgOpener.status[j] */
export const WgStatus = {
  OK: c.OK,
  /** shorter than a header and a tag */
  BAD_LENGTH: c.BAD_LENGTH,
  AUTH_FAILED: c.AUTH_FAILED,
  /** the key slot is empty, negative or outside the table */
  NO_KEY: c.NO_KEY,
  /** offset/length outside the slab */
  BAD_SLOT: c.BAD_SLOT
} as const

/** WgOpener.inner[j], for an OK datagram: the decrypted packet's TCP/UDP checksum */
export const WgInner = {
  /** nothing to check: not IPv4 or IPv6 TCP/UDP (IPv6 with extension headers included), a fragment, a length past the payload, UDP without a checksum */
  UNCHECKED: c.INNER_UNCHECKED,
  /** checked good (or left partial by its sender and finished here) */
  GOOD: c.INNER_GOOD,
  BAD: c.INNER_BAD
} as const

/** WgSealer.produced[i] when not a message count (0: skipped, keySlot -1) */
export const WgSealCode = {
  NO_KEY: c.SEAL_NO_KEY,
  /** a super-packet that cannot be segmented, or a vnet header pointing outside its packet */
  BAD_PACKET: c.SEAL_BAD_PACKET,
  /** a message longer than an output slot, or more segments than the output batch has slots */
  TOO_BIG: c.SEAL_TOO_BIG,
  /** the entry (or an output slot) outside its slab */
  BAD_SLOT: c.SEAL_BAD_SLOT,
  /** counter[i] not an integer in 0..2^53 */
  BAD_COUNTER: c.SEAL_BAD_COUNTER,
  /** not sealed: the output filled up first; this entry and all after it wait for the next seal() */
  NO_ROOM: c.SEAL_NO_ROOM
} as const

// ---------------------------------------------------------- primitives ----

function bytes (what: string, v: Uint8Array, len?: number): void {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${what} must be a Buffer`)
  if (len !== undefined && v.length !== len) throw new RangeError(`${what} must be ${len} bytes, not ${v.length}`)
}

/**
 * BLAKE2s over the concatenated parts: keyed (key 1..32 bytes) with a 16- or
 * 32-byte output, or unkeyed with 32 (OpenSSL 3.0 has no other unkeyed
 * size; WireGuard uses none).
 */
export function blake2s (outLen: 16 | 32, key: Uint8Array | null, ...parts: Uint8Array[]): Buffer {
  if (outLen !== 16 && outLen !== 32) throw new RangeError('blake2s output is 16 or 32 bytes')
  if (key !== null && (key.length < 1 || key.length > 32)) throw new RangeError('a BLAKE2s key is 1..32 bytes')
  if (key === null && outLen !== 32) throw new RangeError('unkeyed BLAKE2s is 32 bytes only')
  try {
    return wg.blake2s(outLen, key, ...parts)
  } catch (err) { throw fromNative(err) }
}

/** The transport nonce of a counter: 4 zero bytes, then the counter little-endian. */
export function wgNonce (counter: bigint): Buffer {
  if (counter < 0n || counter >= 1n << 64n) throw new RangeError('a counter is 0..2^64-1')
  const n = Buffer.alloc(12)
  n.writeBigUInt64LE(counter, 4)
  return n
}

/** ChaCha20-Poly1305 (RFC 8439) with a raw 12-byte nonce: ciphertext ‖ tag. */
export function aeadSealNonce (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array | null = null): Buffer {
  bytes('key', key, KEY_LEN)
  bytes('nonce', nonce, 12)
  return wg.aeadSeal(key, nonce, plaintext, ad)
}

/** The plaintext, or null when it does not authenticate. */
export function aeadOpenNonce (key: Uint8Array, nonce: Uint8Array, ciphertextWithTag: Uint8Array, ad: Uint8Array | null = null): Buffer | null {
  bytes('key', key, KEY_LEN)
  bytes('nonce', nonce, 12)
  return wg.aeadOpen(key, nonce, ciphertextWithTag, ad)
}

/** ChaCha20-Poly1305 with WireGuard's nonce for counter (the handshake's, a keepalive's). */
export function aeadSeal (key: Uint8Array, counter: bigint, plaintext: Uint8Array, ad: Uint8Array | null = null): Buffer {
  return aeadSealNonce(key, wgNonce(counter), plaintext, ad)
}

export function aeadOpen (key: Uint8Array, counter: bigint, ciphertextWithTag: Uint8Array, ad: Uint8Array | null = null): Buffer | null {
  return aeadOpenNonce(key, wgNonce(counter), ciphertextWithTag, ad)
}

/** XChaCha20-Poly1305 (24-byte nonce; cookie replies): ciphertext ‖ tag. */
export function xaeadSeal (key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array | null = null): Buffer {
  bytes('key', key, KEY_LEN)
  bytes('nonce', nonce, 24)
  return wg.xaeadSeal(key, nonce, plaintext, ad)
}

/** The plaintext, or null when it does not authenticate. */
export function xaeadOpen (key: Uint8Array, nonce: Uint8Array, ciphertextWithTag: Uint8Array, ad: Uint8Array | null = null): Buffer | null {
  bytes('key', key, KEY_LEN)
  bytes('nonce', nonce, 24)
  return wg.xaeadOpen(key, nonce, ciphertextWithTag, ad)
}

// ----------------------------------------------------------- key table ----

export class WgKeys {
  /** for WgSealer/WgOpener only */
  readonly handle: NativeWgKeys

  constructor (slots: number) {
    if (!Number.isInteger(slots) || slots < 1 || slots > 1 << 24) throw new RangeError('slots must be 1..2^24')
    try {
      this.handle = new wg.WgKeys(slots)
    } catch (err) { throw new WeftError('ECRYPTO', (err as Error).message, { cause: err }) }
  }

  get slots (): number { return this.handle.slots }

  /** Key slot (ChaCha20-Poly1305, 32 bytes) for the messages that name it from now on. */
  set (slot: number, key: Uint8Array): void {
    this.check(slot)
    bytes('key', key, KEY_LEN)
    try {
      this.handle.set(slot, key)
    } catch (err) { throw new WeftError('ECRYPTO', (err as Error).message, { cause: err }) }
  }

  /** Zero slot's key: its messages fail with NO_KEY until set again. */
  clear (slot: number): void {
    this.check(slot)
    this.handle.clear(slot)
  }

  private check (slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.handle.slots) throw new RangeError(`key slot ${slot} outside 0..${this.handle.slots - 1}`)
  }
}

// ---------------------------------------------------------------- seal ----

export interface WgSealerOptions {
  keys: WgKeys
  /** what the TUN read: entry i at input.offsets[i], input.lengths[i] bytes */
  input: PacketBatch
  /** the TUN has IFF_VNET_HDR: every entry starts with its 10-byte virtio_net_hdr */
  vnet?: boolean
  /** the socket send batch the messages go into, one per slot from slot 0; its capacity must hold mtu + 32 */
  output: PacketBatch
  /** the WireGuard device MTU: padding never goes past it (0: pad to 16 always) */
  mtu: number
}

/**
 * TUN packets -> WireGuard transport messages. Fill, per input entry i:
 * keySlot[i] (-1 skips the entry), receiver[i] (the peer's index for the
 * session), counter[i] (its first counter, an integer below 2^53; segment k
 * of a super-packet gets counter[i] + k), gso[i] (0, or GSO_TCPV4/GSO_UDP_L4
 * << 16 | mss for a super-packet), dest[i] (the peer, copied to each
 * message's output.dests). seal() fills output.lengths/dests/segs (segs 0)
 * for messages 0..n-1 and produced[i] (messages of entry i, or a WgSealCode
 * value; NO_ROOM entries were not sealed: seal(count - i, i) again after
 * sending). Each message: type 4, receiver index, counter, then the packet
 * padded to 16 (never past mtu), encrypted, and the tag.
 */
export class WgSealer {
  readonly keySlot: Int32Array
  readonly receiver: Uint32Array
  readonly counter: Float64Array
  readonly gso: Uint32Array
  readonly dest: Uint32Array
  readonly produced: Int32Array
  readonly output: PacketBatch
  private readonly h: { seal (count: number, first: number): number }
  private readonly size: number

  constructor (opts: WgSealerOptions) {
    const { input, output } = opts
    if (!Number.isInteger(opts.mtu) || opts.mtu < 0 || opts.mtu > 65535) throw new RangeError('mtu must be 0..65535')
    if (opts.mtu > 0 && output.capacity < opts.mtu + WG_OVERHEAD) throw new RangeError(`output slots hold ${output.capacity} bytes: a message needs mtu + ${WG_OVERHEAD}`)
    const n = input.size
    this.size = n
    this.keySlot = new Int32Array(n).fill(-1)
    this.receiver = new Uint32Array(n)
    this.counter = new Float64Array(n)
    this.gso = new Uint32Array(n)
    this.dest = new Uint32Array(n)
    this.produced = new Int32Array(n)
    this.output = output
    this.h = new wg.WgSeal({
      keys: opts.keys.handle,
      slab: input.slab,
      offsets: input.offsets,
      lengths: input.lengths,
      vnet: opts.vnet === true,
      keySlot: this.keySlot,
      receiver: this.receiver,
      counter: this.counter,
      gso: this.gso,
      dest: this.dest,
      produced: this.produced,
      outSlab: output.slab,
      outOffsets: output.offsets,
      outLengths: output.lengths,
      outDests: output.dests,
      outSegs: output.segs,
      outCapacity: output.capacity,
      mtu: opts.mtu
    })
  }

  /** Seal entries first..first+count-1: the number of messages written to output slots 0... */
  seal (count: number, first = 0): number {
    if (first < 0 || count < 0 || first + count > this.size) throw new RangeError(`seal(${count}, ${first}) outside the batch of ${this.size}`)
    return this.h.seal(count, first)
  }
}

// ---------------------------------------------------------------- open ----

export interface WgOpenerOptions {
  keys: WgKeys
  /** the receive batch's slab, where the datagrams are (and are decrypted in place) */
  slab: Buffer
  /** datagrams per open() call (a UDP_GRO batch can hold 64 per entry) */
  max: number
}

/**
 * Transport messages decrypted in place. Fill, per datagram j, offsets[j]
 * and lengths[j] (a whole message: with UDP_GRO, one segment of the entry)
 * and keySlot[j] (the receiving key of the session its receiver index
 * names). open(count) returns how many authenticated and fills status[j]
 * (WgStatus); for OK ones, counter[j] (the message's counter, for the
 * replay window; exact below 2^53) and inner[j] (WgInner). An OK message's
 * packet starts at offsets[j] + WG_HDR_LEN; it is lengths[j] - WG_OVERHEAD
 * bytes with the padding (its IPv4 total length says how many are the
 * packet's; 0 bytes is a keepalive).
 */
export class WgOpener {
  readonly offsets: Uint32Array
  readonly lengths: Uint32Array
  readonly keySlot: Int32Array
  readonly status: Uint8Array
  readonly inner: Int8Array
  readonly counter: Float64Array
  private readonly h: { open (count: number): number }
  private readonly max: number

  constructor (opts: WgOpenerOptions) {
    if (!Number.isInteger(opts.max) || opts.max < 1) throw new RangeError('max must be >= 1')
    this.max = opts.max
    this.offsets = new Uint32Array(opts.max)
    this.lengths = new Uint32Array(opts.max)
    this.keySlot = new Int32Array(opts.max).fill(-1)
    this.status = new Uint8Array(opts.max)
    this.inner = new Int8Array(opts.max)
    this.counter = new Float64Array(opts.max)
    this.h = new wg.WgOpen({
      keys: opts.keys.handle,
      slab: opts.slab,
      offsets: this.offsets,
      lengths: this.lengths,
      keySlot: this.keySlot,
      status: this.status,
      inner: this.inner,
      counter: this.counter
    })
  }

  open (count: number): number {
    if (count < 0 || count > this.max) throw new RangeError(`open(${count}): at most ${this.max}`)
    return this.h.open(count)
  }
}

// --------------------------------------------------------- measurement ----

/** The transport's libraries, for the measurement that chose one (bench/wg-cipher.ts). */
export const WgLib = {
  SODIUM: c.LIB_SODIUM,
  /** OpenSSL, the context keyed once, only the nonce set per packet */
  OPENSSL_IV: c.LIB_OPENSSL_IV,
  /** OpenSSL, cipher and key set per packet */
  OPENSSL_FULL: c.LIB_OPENSSL_FULL,
  /** what WgSealer/WgOpener use */
  HOT: c.HOT_LIB
} as const

/**
 * `rounds` x (seal `batch` packets of `len` bytes in place, then open them)
 * with one library, in the addon: [ns sealing, ns opening] in all.
 */
export function cipherBench (lib: number, len: number, batch: number, rounds: number): [number, number] {
  return wg.bench(lib, len, batch, rounds)
}
