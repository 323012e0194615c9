// The userspace FDB/ARP/route table, fed by lease events:
//   remote subnet -> peer index -> (VTEP MAC, public IP)
// and, for the outside path, public IP -> peer index ("does the sender hold
// a lease?").
//
// Several leases may claim one public IP (a node misconfigured like another,
// or a store writer borrowing a real peer's address). The sender table then
// keeps every claimant, in the order they came: the first still present
// answers source() (and is credited with the address's traffic), a datagram
// from the address may carry any claimant's subnet as its inner source, and
// RCO is taken from it if any claimant asked for it. Removing one claimant
// leaves the others in place, so a real peer is never cut off by someone
// else's lease coming and going.
//
// Lookups are on the hot path, so they are array reads over int32 numbers:
// every subnet of the network has a slot (index = the subnet's number inside
// the network), which holds a peer index or -1. Addresses are handled as
// signed int32 (`| 0`) so that 172.x, 192.168.x and 198.18.x stay small
// integers and never become heap numbers.
// Updates (set/delete) happen between batches on the same thread, so a
// batch never sees a half-made entry.
import { WeftError } from '../errors'
import { mask } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { PeerTable } from '../native/batch'
import { MAX_TABLE_SUBNETS } from '../subnet/config'
import { Claims, macText, PeerIndexes } from './claims'

export interface FdbOptions {
  network: Ip4Net
  subnetLen: number
  /** UDP port peers listen on (0 for raw-socket backends) */
  port: number
  capacity?: number
  /** capacity * PER_PEER slots for the per-peer counters (a worker's: over a SharedArrayBuffer) */
  perPeer?: Float64Array
  /** entries of `addrs` past capacity that no lease ever gets: destinations the backend sets itself (wireguard's handshake replies) */
  spareAddrs?: number
}

/** Told every change that took effect, in order: a worker's copy of the table replays them. */
export interface FdbFollower {
  set: (subnet: Ip4Net, publicIP: number, mac: Buffer | undefined, port: number, remCsum: boolean) => void
  delete: (subnet: Ip4Net) => void
}

export interface FdbEntry {
  readonly index: number
  readonly subnet: Ip4Net
  readonly publicIP: number
  /** lower-case colon form, or undefined for backends without MACs */
  readonly mac: string | undefined
  /** the peer takes VXLAN remote checksum offload (its lease says RemCsumRx) */
  readonly remCsum: boolean
}

/** Per-peer counter slots, PER_PEER apart. */
export const PeerCount = { INSIDE_PACKETS: 0, INSIDE_BYTES: 1, OUTSIDE_PACKETS: 2, OUTSIDE_BYTES: 3 } as const
export const PER_PEER = 4

// the config refuses a network with more subnets than this (MAX_TABLE_SUBNETS), so a node never leases and then fails here
const MAX_ROUTE_SLOTS = MAX_TABLE_SUBNETS

export class Fdb {
  readonly capacity: number
  /** 6 bytes per peer index: the peer's VTEP MAC */
  readonly macs: Buffer
  readonly publicIPs: Uint32Array
  /** 1 per peer index that takes VXLAN remote checksum offload (what we send it) */
  readonly remCsum: Uint8Array
  /** 1 per peer index answering source() whose address may send us RCO: any claimant of the address asked for it */
  readonly rcoFrom: Uint8Array
  /** what the native send path reads: (addr, port) per peer index */
  readonly addrs: PeerTable
  readonly perPeer: Float64Array
  private readonly routes: Int32Array
  private readonly base: number
  private readonly netMask: number
  private readonly shift: number
  private readonly subnetMask: number
  private readonly port: number
  private readonly bySource = new Map<number, number>()
  /** public IP (int32) -> the peer indexes claiming it, oldest first */
  private readonly claims: Claims<number>
  private readonly entriesByIndex: Array<FdbEntry | undefined>
  private readonly indexes: PeerIndexes
  private readonly followers: FdbFollower[] = []

  constructor (o: FdbOptions) {
    const slots = 2 ** (o.subnetLen - o.network.prefixLen)
    if (slots > MAX_ROUTE_SLOTS) throw new WeftError('ECONFIG', `a /${o.network.prefixLen} network cut into /${o.subnetLen} subnets has ${slots} subnets; weft supports up to ${MAX_ROUTE_SLOTS}`)
    this.capacity = o.capacity ?? 4096
    this.macs = Buffer.alloc(this.capacity * 6)
    this.publicIPs = new Uint32Array(this.capacity)
    this.remCsum = new Uint8Array(this.capacity)
    this.rcoFrom = new Uint8Array(this.capacity)
    this.addrs = new PeerTable(this.capacity + (o.spareAddrs ?? 0))
    this.perPeer = o.perPeer ?? new Float64Array(this.capacity * PER_PEER)
    this.routes = new Int32Array(slots).fill(-1)
    this.netMask = mask(o.network.prefixLen) | 0
    this.subnetMask = mask(o.subnetLen) | 0
    this.base = (o.network.ip & this.netMask) | 0
    this.shift = 32 - o.subnetLen
    this.port = o.port
    this.entriesByIndex = new Array<FdbEntry | undefined>(this.capacity)
    this.claims = new Claims(this.remCsum, this.rcoFrom)
    this.indexes = new PeerIndexes(this.capacity, 'peer table')
  }

  /** Hot path: the peer index for an inner destination (int32), or -1. */
  lookup (dst: number): number {
    if (((dst ^ this.base) & this.netMask) !== 0) return -1
    return this.routes[(dst & ~this.netMask) >>> this.shift]
  }

  /** Hot path: the peer index whose public IP is `addr` (int32), or -1. */
  source (addr: number): number {
    const i = this.bySource.get(addr | 0)
    return i === undefined ? -1 : i
  }

  /**
   * Add or update the entry for a subnet. Returns its peer index. `port`
   * overrides the table's (tests on loopback); remCsum: the peer takes VXLAN
   * remote checksum offload.
   */
  set (subnet: Ip4Net, publicIP: number, mac: Buffer | undefined, port = this.port, remCsum = false): number {
    const slot = this.slotOf(subnet)
    let i = this.routes[slot]
    if (i < 0) {
      i = this.indexes.take()
    } else {
      const old = this.entriesByIndex[i]
      if (old !== undefined && old.publicIP !== publicIP) this.unclaim(old.publicIP, i)
    }
    if (mac !== undefined) mac.copy(this.macs, i * 6, 0, 6)
    else this.macs.fill(0, i * 6, i * 6 + 6)
    this.publicIPs[i] = publicIP
    this.remCsum[i] = remCsum ? 1 : 0
    this.addrs.set(i, publicIP, port)
    this.perPeer.fill(0, i * PER_PEER, (i + 1) * PER_PEER)
    this.entriesByIndex[i] = { index: i, subnet, publicIP, mac: macText(mac), remCsum }
    this.claim(publicIP, i)
    this.routes[slot] = i
    for (const f of this.followers) f.set(subnet, publicIP, mac, port, remCsum)
    return i
  }

  /** Remove a subnet's entry; true if there was one. */
  delete (subnet: Ip4Net): boolean {
    const slot = this.slotOf(subnet)
    const i = this.routes[slot]
    if (i < 0) return false
    this.routes[slot] = -1
    const e = this.entriesByIndex[i]
    this.entriesByIndex[i] = undefined
    if (e !== undefined) this.unclaim(e.publicIP, i)
    this.addrs.set(i, 0, 0)
    this.remCsum[i] = 0
    this.indexes.give(i)
    for (const f of this.followers) f.delete(subnet)
    return true
  }

  /** How many leases in the table claim this public IP (more than one is a conflict). */
  claimants (publicIP: number): number {
    return this.claims.count(publicIP | 0)
  }

  /** The subnets of the leases claiming this public IP, oldest first (at most `max`). */
  claimantsOf (publicIP: number, max = Infinity): Ip4Net[] {
    return this.claims.of(publicIP | 0).slice(0, max).map((i) => (this.entriesByIndex[i] as FdbEntry).subnet)
  }

  /** The entry at a peer index, if any. */
  entry (index: number): FdbEntry | undefined {
    return this.entriesByIndex[index]
  }

  /** The subnets of every public IP more than one lease claims, oldest claimant first. */
  conflicts (): Array<{ publicIP: number, subnets: Ip4Net[] }> {
    const out: Array<{ publicIP: number, subnets: Ip4Net[] }> = []
    for (const [ip, list] of this.claims.entries()) {
      if (list.length > 1) out.push({ publicIP: ip >>> 0, subnets: list.map((i) => (this.entriesByIndex[i] as FdbEntry).subnet) })
    }
    return out
  }

  /**
   * Hot path: may a datagram from the peer at `peer` (its source() index)
   * carry `src` (int32) as its inner source? Only if `src` lies in a subnet
   * whose lease names the same public IP; addresses outside the network are
   * not judged here (-1: the caller decides).
   */
  sourceHolds (src: number, peer: number): number {
    if (((src ^ this.base) & this.netMask) !== 0) return -1
    const q = this.routes[(src & ~this.netMask) >>> this.shift]
    return q >= 0 && this.publicIPs[q] === this.publicIPs[peer] ? 1 : 0
  }

  /**
   * Replay every later change to `f`. A copy that starts empty and follows
   * from the start gives every peer the same index as here, so per-peer
   * counters can be summed by index.
   */
  follow (f: FdbFollower): void {
    this.followers.push(f)
  }

  entries (): FdbEntry[] {
    return this.entriesByIndex.filter((e): e is FdbEntry => e !== undefined)
  }

  get size (): number { return this.entries().length }

  /** `i` claims `publicIP`: the oldest claimant answers source() */
  private claim (publicIP: number, i: number): void {
    this.bySource.set(publicIP | 0, this.claims.claim(publicIP | 0, i))
  }

  /** `i` no longer claims `publicIP`: the next oldest claimant, if any, answers for it. */
  private unclaim (publicIP: number, i: number): void {
    const a = publicIP | 0
    const first = this.claims.unclaim(a, i)
    if (first === -1) this.bySource.delete(a)
    else if (first !== undefined) this.bySource.set(a, first)
  }

  private slotOf (subnet: Ip4Net): number {
    if (subnet.prefixLen !== 32 - this.shift || (((subnet.ip | 0) ^ this.base) & this.netMask) !== 0 || ((subnet.ip | 0) & ~this.subnetMask) !== 0) {
      throw new WeftError('EFDB', `subnet ${subnet.ip >>> 24}.${(subnet.ip >>> 16) & 255}.${(subnet.ip >>> 8) & 255}.${subnet.ip & 255}/${subnet.prefixLen} is not a /${32 - this.shift} of the network`)
    }
    return ((subnet.ip | 0) & ~this.netMask) >>> this.shift
  }
}
