// The IPv6 peer table, as Fdb (fdb.ts) is the IPv4 one, fed by the IPv6
// halves of leases:
//   remote IPv6 subnet -> peer index -> (VTEP MAC of BackendV6Data, PublicIPv6)
// and, for the outside path, PublicIPv6 -> peer index ("does the sender hold
// a lease?"). Several leases claiming one PublicIPv6 are kept as Fdb keeps
// them (oldest answers, any claimant's subnet may be a source, RCO if any
// claimant asked).
//
// Lookups are array reads, straight from packet bytes, with no bigint and no
// allocation: every subnet of the network has a slot, and a slot's index is
// the address bits between the network's prefix and the subnet length (at
// most log2(MAX_TABLE_SUBNETS) = 22 bits). Those bits may straddle two
// 32-bit words of the address, so they are read as one big-endian 32-bit
// window starting at the byte that holds the first of them (22 bits plus at
// most 7 before them always fit in 32).
// The sender table is open addressing over the four words of the address
// (a power-of-two table at most half full, linear probing), rebuilt from the
// claims whenever they change: changes come from lease events between
// batches, lookups from every received message.
import { WeftError } from '../errors'
import { formatCidr6, ip6Words, mask6 } from '../packet/net6'
import type { Ip6Net } from '../packet/net6'
import { PeerTable6 } from '../native/batch'
import { MAX_TABLE_SUBNETS } from '../subnet/config'
import { PER_PEER } from './fdb'
import { Claims, macText, PeerIndexes } from './claims'

export interface Fdb6Options {
  network: Ip6Net
  subnetLen: number
  /** UDP port peers listen on */
  port: number
  capacity?: number
  /** capacity * PER_PEER slots for the per-peer counters */
  perPeer?: Float64Array
}

export interface Fdb6Follower {
  set: (subnet: Ip6Net, publicIP: bigint, mac: Buffer | undefined, port: number, remCsum: boolean) => void
  delete: (subnet: Ip6Net) => void
}

export interface Fdb6Entry {
  readonly index: number
  readonly subnet: Ip6Net
  readonly publicIP: bigint
  /** lower-case colon form, or undefined for backends without MACs */
  readonly mac: string | undefined
  readonly remCsum: boolean
}

function readWord (s: Uint8Array, at: number): number {
  return (s[at] << 24) | (s[at + 1] << 16) | (s[at + 2] << 8) | s[at + 3]
}

/** Mix four int32 words into a table position (no allocation: Math.imul stays int32). */
function hash4 (a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b)
  h = Math.imul(h ^ b ^ (h >>> 13), 0xc2b2ae35)
  h = Math.imul(h ^ c ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ d ^ (h >>> 13), 0xc2b2ae35)
  return h ^ (h >>> 16)
}

export class Fdb6 {
  readonly capacity: number
  /** 6 bytes per peer index: the peer's VTEP MAC (BackendV6Data) */
  readonly macs: Buffer
  /** 4 words per peer index: its PublicIPv6 */
  readonly publicWords: Int32Array
  readonly remCsum: Uint8Array
  readonly rcoFrom: Uint8Array
  /** what the native send path reads: (4 words, port) per peer index */
  readonly addrs: PeerTable6
  readonly perPeer: Float64Array
  private readonly routes: Int32Array
  /** the network's words and their prefix mask (int32) */
  private readonly net = new Int32Array(4)
  private readonly netMask = new Int32Array(4)
  /** where the slot bits are: the byte their 32-bit window starts at, the shift and the mask inside it */
  private readonly winByte: number
  private readonly winShift: number
  private readonly winMask: number
  private readonly port: number
  private readonly subnetLen: number
  private readonly network: Ip6Net
  /** sender table: 4 words per position, then the peer index (-1 empty) */
  private srcKeys: Int32Array
  private srcVals: Int32Array
  private srcMask: number
  /** PublicIPv6 -> the peer indexes claiming it, oldest first */
  private readonly claims: Claims<bigint>
  private readonly entriesByIndex: Array<Fdb6Entry | undefined>
  private readonly indexes: PeerIndexes
  private readonly followers: Fdb6Follower[] = []

  constructor (o: Fdb6Options) {
    const bits = o.subnetLen - o.network.prefixLen
    if (!(bits >= 0) || o.subnetLen > 128) throw new WeftError('ECONFIG', `IPv6 subnets of /${o.subnetLen} do not fit a /${o.network.prefixLen} network`)
    const slots = 2 ** bits
    if (slots > MAX_TABLE_SUBNETS) throw new WeftError('ECONFIG', `a /${o.network.prefixLen} IPv6 network cut into /${o.subnetLen} subnets has ${slots} subnets; weft supports up to ${MAX_TABLE_SUBNETS}`)
    this.capacity = o.capacity ?? 4096
    this.macs = Buffer.alloc(this.capacity * 6)
    this.publicWords = new Int32Array(this.capacity * 4)
    this.remCsum = new Uint8Array(this.capacity)
    this.rcoFrom = new Uint8Array(this.capacity)
    this.addrs = new PeerTable6(this.capacity)
    this.perPeer = o.perPeer ?? new Float64Array(this.capacity * PER_PEER)
    this.routes = new Int32Array(slots).fill(-1)
    const words = ip6Words(o.network.ip & mask6(o.network.prefixLen))
    const masks = ip6Words(mask6(o.network.prefixLen))
    for (let i = 0; i < 4; i++) {
      this.net[i] = words[i] | 0
      this.netMask[i] = masks[i] | 0
    }
    this.winByte = Math.min(o.network.prefixLen >> 3, 12)
    this.winShift = 32 - (o.subnetLen - this.winByte * 8)
    this.winMask = bits === 0 ? 0 : (2 ** bits) - 1
    this.port = o.port
    this.subnetLen = o.subnetLen
    this.network = o.network
    this.entriesByIndex = new Array<Fdb6Entry | undefined>(this.capacity)
    this.claims = new Claims(this.remCsum, this.rcoFrom)
    this.indexes = new PeerIndexes(this.capacity, 'IPv6 peer table')
    let size = 16
    while (size < this.capacity * 2) size *= 2
    this.srcKeys = new Int32Array(size * 4)
    this.srcVals = new Int32Array(size).fill(-1)
    this.srcMask = size - 1
  }

  /** Hot path: the slot of the 16-byte address at s[at], or -1 outside the network. */
  slotAt (s: Uint8Array, at: number): number {
    const m = this.netMask
    const n = this.net
    if (((readWord(s, at) ^ n[0]) & m[0]) !== 0 || ((readWord(s, at + 4) ^ n[1]) & m[1]) !== 0 ||
        ((readWord(s, at + 8) ^ n[2]) & m[2]) !== 0 || ((readWord(s, at + 12) ^ n[3]) & m[3]) !== 0) return -1
    return (readWord(s, at + this.winByte) >>> this.winShift) & this.winMask
  }

  /** Hot path: the peer index for the IPv6 packet at slab[off], by its destination, or -1. */
  lookupAt (slab: Uint8Array, off: number): number {
    const slot = this.slotAt(slab, off + 24)
    return slot < 0 ? -1 : this.routes[slot]
  }

  /** Hot path: the peer index whose PublicIPv6 is the four words w[at..at+3] (rx.addrs6), or -1. */
  sourceWords (w: Uint32Array, at: number): number {
    const a = w[at] | 0
    const b = w[at + 1] | 0
    const c = w[at + 2] | 0
    const d = w[at + 3] | 0
    const keys = this.srcKeys
    const vals = this.srcVals
    const mask = this.srcMask
    for (let p = hash4(a, b, c, d) & mask; ; p = (p + 1) & mask) {
      const v = vals[p]
      if (v < 0) return -1
      const k = p * 4
      if (keys[k] === a && keys[k + 1] === b && keys[k + 2] === c && keys[k + 3] === d) return v
    }
  }

  /**
   * Hot path: may a datagram from the peer at `peer` (its sourceWords()
   * index) carry the 16-byte address at s[at] as its inner source? 1 if it
   * lies in a subnet whose lease names the same PublicIPv6, 0 if in another,
   * -1 outside the network (the caller decides).
   */
  sourceHolds (s: Uint8Array, at: number, peer: number): number {
    const slot = this.slotAt(s, at)
    if (slot < 0) return -1
    const q = this.routes[slot]
    if (q < 0) return 0
    const w = this.publicWords
    const a = q * 4
    const b = peer * 4
    return w[a] === w[b] && w[a + 1] === w[b + 1] && w[a + 2] === w[b + 2] && w[a + 3] === w[b + 3] ? 1 : 0
  }

  /** Add or update a subnet's entry; port 0 means the table's. Returns its peer index. */
  set (subnet: Ip6Net, publicIP: bigint, mac: Buffer | undefined, port = this.port, remCsum = false): number {
    const slot = this.slotOf(subnet)
    const p = port === 0 ? this.port : port
    let i = this.routes[slot]
    if (i < 0) {
      i = this.indexes.take()
    } else {
      const old = this.entriesByIndex[i]
      if (old !== undefined && old.publicIP !== publicIP) this.unclaim(old.publicIP, i)
    }
    if (mac !== undefined) mac.copy(this.macs, i * 6, 0, 6)
    else this.macs.fill(0, i * 6, i * 6 + 6)
    const words = ip6Words(publicIP)
    for (let k = 0; k < 4; k++) this.publicWords[i * 4 + k] = words[k] | 0
    this.remCsum[i] = remCsum ? 1 : 0
    this.addrs.set(i, words, p)
    this.perPeer.fill(0, i * PER_PEER, (i + 1) * PER_PEER)
    this.entriesByIndex[i] = { index: i, subnet, publicIP, mac: macText(mac), remCsum }
    this.claim(publicIP, i)
    this.routes[slot] = i
    for (const f of this.followers) f.set(subnet, publicIP, mac, p, remCsum)
    return i
  }

  /** Remove a subnet's entry; true if there was one. */
  delete (subnet: Ip6Net): boolean {
    const slot = this.slotOf(subnet)
    const i = this.routes[slot]
    if (i < 0) return false
    this.routes[slot] = -1
    const e = this.entriesByIndex[i]
    this.entriesByIndex[i] = undefined
    if (e !== undefined) this.unclaim(e.publicIP, i)
    this.addrs.set(i, [0, 0, 0, 0], 0)
    this.publicWords.fill(0, i * 4, i * 4 + 4)
    this.remCsum[i] = 0
    this.indexes.give(i)
    for (const f of this.followers) f.delete(subnet)
    return true
  }

  claimants (publicIP: bigint): number {
    return this.claims.count(publicIP)
  }

  claimantsOf (publicIP: bigint, max = Infinity): Ip6Net[] {
    return this.claims.of(publicIP).slice(0, max).map((i) => (this.entriesByIndex[i] as Fdb6Entry).subnet)
  }

  entry (index: number): Fdb6Entry | undefined {
    return this.entriesByIndex[index]
  }

  conflicts (): Array<{ publicIP: bigint, subnets: Ip6Net[] }> {
    const out: Array<{ publicIP: bigint, subnets: Ip6Net[] }> = []
    for (const [ip, list] of this.claims.entries()) {
      if (list.length > 1) out.push({ publicIP: ip, subnets: list.map((i) => (this.entriesByIndex[i] as Fdb6Entry).subnet) })
    }
    return out
  }

  follow (f: Fdb6Follower): void {
    this.followers.push(f)
  }

  entries (): Fdb6Entry[] {
    return this.entriesByIndex.filter((e): e is Fdb6Entry => e !== undefined)
  }

  get size (): number { return this.entries().length }

  private claim (publicIP: bigint, i: number): void {
    this.claims.claim(publicIP, i)
    this.rebuildSources()
  }

  private unclaim (publicIP: bigint, i: number): void {
    if (this.claims.unclaim(publicIP, i) !== undefined) this.rebuildSources()
  }

  /** The sender table from the claims: each address answers with its oldest claimant. */
  private rebuildSources (): void {
    this.srcVals.fill(-1)
    const keys = this.srcKeys
    const vals = this.srcVals
    const mask = this.srcMask
    for (const [, list] of this.claims.entries()) {
      const first = list[0]
      const w = this.publicWords
      const a = w[first * 4]
      const b = w[first * 4 + 1]
      const c = w[first * 4 + 2]
      const d = w[first * 4 + 3]
      let p = hash4(a, b, c, d) & mask
      while (vals[p] >= 0) p = (p + 1) & mask
      keys[p * 4] = a
      keys[p * 4 + 1] = b
      keys[p * 4 + 2] = c
      keys[p * 4 + 3] = d
      vals[p] = first
    }
  }

  private slotOf (subnet: Ip6Net): number {
    const net = this.network
    const inside = subnet.prefixLen === this.subnetLen &&
      ((subnet.ip ^ net.ip) & mask6(net.prefixLen)) === 0n &&
      (subnet.ip & ~mask6(this.subnetLen) & ((1n << 128n) - 1n)) === 0n
    if (!inside) throw new WeftError('EFDB', `subnet ${formatCidr6(subnet)} is not a /${this.subnetLen} of the network ${formatCidr6(net)}`)
    const bits = this.subnetLen - net.prefixLen
    return Number((subnet.ip >> BigInt(128 - this.subnetLen)) & ((1n << BigInt(bits)) - 1n))
  }
}
