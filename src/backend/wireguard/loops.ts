// The WireGuard backend's dataplane: the inside and outside loops
// (inside.ts, outside.ts) over the TUN and the UDP socket, the protocol
// (../../wireguard: handshakes, sessions, timers, cookies) and the addon's
// key tables and batch cipher.
// 1. the protocol hands each new keypair a slot; its sending and receiving
//    keys go into the addon's two key tables at that slot (hooks below), so
//    a batch names sessions by slot and no key crosses per packet
// 2. lease events (../tun/network.ts) add, update and remove peers by table
//    index; a new peer gets a handshake at once, so that the first packets
//    to it find a session
// 3. what the protocol wants sent (initiations, responses, cookie replies,
//    keepalives: ready-made datagrams) goes through the socket's send batch
//    when the inside loop is not using it, to spare table entries past the
//    peers' (the addresses are the protocol's, not a lease's)
// 4. timers: one interval, unref'd, ticks the protocol when a deadline is due
// 5. `wg show` through the UAPI socket (../../wireguard/uapi.ts)
// The same loops run the IPv6 device (weft-wg-v6) when given an Fdb6: its
// endpoints are IPv6, which the protocol knows by handle (endpoints6.ts),
// and its send table is its own (the peers' endpoints, then the control
// destinations), since a WireGuard endpoint roams away from the lease's.
// A device of both families (flannel's single-device Modes) is the IPv4
// device's loops with the IPv6 table beside (inner6) and, in Mode ipv6, an
// IPv6 socket (endpoints 6): peers are the IPv4 table's indexes throughout.
import { performance } from 'node:perf_hooks'
import { PacketBatch, PeerTable6 } from '../../native/batch'
import { WgKeys, WgOpener, WgSealer, WG_OVERHEAD } from '../../native/wg'
import { VNET_F_DATA_VALID, VNET_HDR_LEN } from '../../native/vnet'
import type { Logger } from '../../log'
import { formatCidr } from '../../packet/net'
import { formatCidr6, parseIp6 } from '../../packet/net6'
import type { Fdb6 } from '../../dataplane/fdb6'
import type { Ip6Net } from '../../packet/net6'
import { ip4ToString } from '../../packet/ip'
import type { Lease } from '../../subnet/lease'
import { dataplaneSnapshot, startBusyPoll } from '../../dataplane/pipeline'
import { GRO_MAX_SEGMENTS, UNKNOWN_RING } from '../../dataplane/outside'
import { PER_PEER, PeerCount } from '../../dataplane/fdb'
import { Count, newStats } from '../../dataplane/stats'
import type { BusyPoll } from '../../native/busy-poll'
import { TunWrites } from '../../dataplane/tun-writes'
import { pacingFactor, UdpPacer } from '../../dataplane/pacer'
import { Device } from '../../wireguard/device'
import type { Outgoing, Peer } from '../../wireguard/peer'
import { sealTransport } from '../../wireguard/session'
import type { Keypair } from '../../wireguard/session'
import { finishChecksum, finishChecksum6 } from '../../packet/partial-checksum'
import { WgDrop, WG_DROP_NAMES } from '../../wireguard/reasons'
import { startUapiServer } from '../../wireguard/uapi'
import { dh } from '../../wireguard/primitives'
import type { UapiServer, UapiPeer } from '../../wireguard/uapi'
import type { KeyPair } from '../../wireguard/keys'
import type { LoopParts, OwnLoops } from '../tun/start'
import { TUN_BATCH } from '../tun/start'
import { WgInside } from './inside'
import type { Inner6 } from './inside'
import { WgOutside } from './outside'
import type { Handshake } from './outside'
import type { WireguardPeerData } from './peer-key'
import { Endpoints6 } from './endpoints6'

/** Messages the socket's send batch holds: a TUN batch of full-size packets, or a few super-packets' segments. */
const SEND_MESSAGES = 512
/** Table entries past the peers' for the protocol's own datagrams (a batch of them at most). */
export const CONTROL_DESTS = 64
/** The protocol's timers are looked at this often (ms); WireGuard's are seconds apart. */
const TICK_MS = 100
/** Handshake messages a second past which we are under load (cookies before work, as wireguard-go does at 1/8 of its queue). */
const UNDER_LOAD_PER_SECOND = 128
/** Rows of each key table: three keypairs per peer at most. */
const KEY_SLOTS_PER_PEER = 3
/** Packets kept per peer while its handshake is on its way (wireguard-go keeps 128; a few cover a ping, a SYN, a DNS query) */
const STAGED_PER_PEER = 16
/** The peer with the lower key starts its own handshake this long after it learnt the other's lease, if none has come (ms) */
const SECOND_INITIATOR_DELAY = 1000

export interface WgLoopsOptions extends Omit<LoopParts, 'fdb'> {
  /** an Fdb6 makes these the IPv6 device's loops */
  fdb: LoopParts['fdb'] | Fdb6
  /** a device of both families: the IPv6 table beside the IPv4 one */
  inner6?: Inner6
  /** the socket's family (default: the table's) */
  endpoints?: 4 | 6
  keys: KeyPair
  psk: Buffer | undefined
  /** seconds, 0 = off */
  persistentKeepalive: number
  /** the device name, for the UAPI socket */
  device: string
  listenPort: number
  log: Logger
  /** where the UAPI socket goes (default /var/run/wireguard) */
  uapiDir?: string
  /** --busy-poll: µs the loop keeps polling after a light batch (0 or absent: off), as the other backends' pipeline */
  busyPollUs?: number
}

export class WgLoops implements OwnLoops {
  readonly stats: Float64Array
  /** counts by WgDrop code */
  readonly wgDrops: Float64Array
  readonly device: Device
  handshakesOk = 0
  rekeys = 0
  uapiPath: string | undefined
  /** the IPv6 device's endpoint handles (undefined on the IPv4 device) */
  readonly endpoints6: Endpoints6 | undefined
  /** the IPv6 device's send table: peers' endpoints by table index, then CONTROL_DESTS */
  private readonly sendTable6: PeerTable6 | undefined
  private readonly sendKeys: WgKeys
  private readonly recvKeys: WgKeys
  private readonly peers: Array<Peer | undefined>
  private readonly subnets: Array<string | undefined>
  private readonly indexOf = new Map<Peer, number>()
  private readonly inside: WgInside
  private readonly outside: WgOutside
  private readonly writes: TunWrites
  private readonly tx: PacketBatch
  private control: Outgoing[] = []
  private busy: BusyPoll | null = null
  private readonly staged = new Map<Peer, Buffer[]>()
  private readonly timer: NodeJS.Timeout
  private readonly unknown = new Uint32Array(UNKNOWN_RING)
  private readonly spoof = new Uint32Array(UNKNOWN_RING)
  private shakesThisSecond = 0
  private lastTick = 0
  private secondStart = 0
  private uapi: UapiServer | undefined
  private closed = false
  /**
   * Epoch ms, monotonic within the process: the protocol's clock. Epoch,
   * because initiations carry it as their TAI64N timestamp and a peer refuses
   * one not newer than the last it saw from our key, across our restarts.
   */
  private readonly now = (): number => performance.timeOrigin + performance.now()

  constructor (private readonly o: WgLoopsOptions) {
    const { fdb, mtu, offloads } = o
    this.stats = newStats()
    this.wgDrops = new Float64Array(WG_DROP_NAMES.length)
    this.peers = new Array<Peer | undefined>(fdb.capacity)
    this.subnets = new Array<string | undefined>(fdb.capacity)
    const v6 = (o.endpoints ?? ('lookupAt' in fdb ? 6 : 4)) === 6
    this.endpoints6 = v6 ? new Endpoints6() : undefined
    this.sendTable6 = v6 ? new PeerTable6(fdb.capacity + CONTROL_DESTS) : undefined
    const slots = fdb.capacity * KEY_SLOTS_PER_PEER
    this.sendKeys = new WgKeys(slots)
    this.recvKeys = new WgKeys(slots)
    this.device = new Device({
      privateKey: o.keys.privateKey,
      keySlots: slots,
      hooks: {
        keypairCreated: (kp: Keypair) => {
          this.sendKeys.set(kp.slot, kp.sendKey)
          this.recvKeys.set(kp.slot, kp.receiveKey)
          if (kp.peer.lastHandshake !== 0 && kp.isInitiator) this.rekeys++
          this.handshakesOk++
        },
        keypairRemoved: (kp: Keypair) => {
          this.sendKeys.clear(kp.slot)
          this.recvKeys.clear(kp.slot)
        },
        sessionReady: (peer: Peer) => this.unstage(peer)
      }
    })
    const vnet = offloads.vnet
    // inside: TUN reads (super-packets with TSO) sealed into the socket's send batch
    const inSlot = roundUp((vnet ? VNET_HDR_LEN : 0) + (offloads.tso ? 65535 : mtu) + 1, 64)
    const rx = new PacketBatch({ size: TUN_BATCH, slotSize: inSlot })
    this.tx = new PacketBatch({ size: SEND_MESSAGES, slotSize: roundUp(mtu + WG_OVERHEAD + 16, 64) })
    const sealer = new WgSealer({ keys: this.sendKeys, input: rx, vnet, output: this.tx, mtu })
    o.sock.sendFrom(this.tx, this.sendTable6 ?? fdb.addrs, { gso: true, inner: 0, coalesce: offloads.gso })
    // outside: socket reads (GRO messages of up to 64 datagrams), opened in
    // place, then the TUN writes' header area in the same slab
    const outSlot = offloads.gro ? roundUp(65535 + 1, 64) : roundUp(mtu + WG_OVERHEAD + 16 + 1, 64)
    const datagrams = TUN_BATCH * (offloads.gro ? GRO_MAX_SEGMENTS : 1)
    const hdrBase = TUN_BATCH * outSlot
    const outSlab = Buffer.allocUnsafeSlow(hdrBase + TunWrites.headerArea(datagrams))
    const outRx = new PacketBatch({ size: TUN_BATCH, slotSize: outSlot, slab: outSlab })
    const pieces = new PacketBatch({ size: Math.min(8192, 2 * datagrams), slotSize: 1, slab: outSlab })
    const factor = pacingFactor(process.env.WEFT_UDP_PACING)
    this.writes = new TunWrites(o.tun, pieces, vnet, hdrBase, datagrams, this.stats, vnet ? VNET_F_DATA_VALID : 0, offloads.uso === true, factor > 0 ? new UdpPacer(factor) : undefined)
    const opener = new WgOpener({ keys: this.recvKeys, slab: outSlab, max: datagrams })
    const onFatal = (where: string) => (errno: number) => o.log.error({ where, errno }, 'the dataplane stopped reading after a fatal I/O error')
    const endpointOf = (index: number): void => this.endpointMoved(index)
    const eps = this.endpoints6
    const intern6 = eps === undefined ? undefined : (w: Uint32Array, at: number): number => eps.intern(w, at, () => this.heldHandles())
    this.inside = new WgInside({ tun: o.tun, sock: o.sock, rx, tx: this.tx, sealer, fdb, ...(o.inner6 !== undefined ? { inner6: o.inner6 } : {}), peers: this.peers, stats: this.stats, wgDrops: this.wgDrops, mtu, vnet, now: this.now, onFatal: onFatal('inside'), idle: () => this.sendControl(), endpointOf, stage: (peer, slab, ip, len, csum) => this.stage(peer, slab, ip, len, csum) })
    this.outside = new WgOutside({ sock: o.sock, rx: outRx, opener, writes: this.writes, fdb, ...(o.inner6 !== undefined ? { inner6: o.inner6 } : {}), ...(eps !== undefined ? { endpoints6: eps, intern6 } : {}), indexes: this.device.indexes, indexOf: this.indexOf, stats: this.stats, wgDrops: this.wgDrops, now: this.now, onFatal: onFatal('outside'), handshakes: (list, n) => this.handshakes(list, n), endpointOf, endpointSeen: this.inside.endpointSeen, spoofSenders: this.spoof })
    this.timer = setInterval(() => this.tick(), TICK_MS)
    this.timer.unref()
  }

  start (): void {
    this.busy ??= startBusyPoll(this.stats, this.o.busyPollUs ?? 0, this.o.tun, this.o.sock)
    this.o.tun.start(this.inside.onBatch, undefined, this.writes.resume)
    this.o.sock.start(this.outside.onBatch, this.inside.flush)
  }

  /** The UAPI socket, for `wg show <device>`. */
  async startUapi (): Promise<void> {
    this.uapi = await startUapiServer({ device: this.o.device, dir: this.o.uapiDir, log: this.o.log, state: () => this.uapiState() })
    this.uapiPath = this.uapi.path
  }

  // --- peers, from lease events ------------------------------------------

  /**
   * Why a lease's (well-formed) key cannot be a peer: it is ours, another
   * lease already holds it (the first keeps it: a node that copied
   * another's key file?), or no handshake can ever use it (a low-order
   * point). Asked before the lease goes into the table, so that such a lease
   * is skipped as any unusable one is: one warning, counted peer_unusable,
   * no table entry (../tun/network.ts).
   */
  unusableKey (lease: Lease, publicKey: Buffer): string | undefined {
    if (publicKey.equals(this.device.publicKey)) return 'its PublicKey is ours (a copy of our key file?)'
    const other = this.device.peer(publicKey)
    if (other !== undefined) {
      const heldBy = this.subnets[this.indexOf.get(other) ?? -1]
      if (heldBy === this.subnetText(lease)) return undefined // the same lease again
      return `its PublicKey is already the peer ${heldBy ?? '?'}'s (a copy of that node's key file?)`
    }
    if (dh(this.device.local.privateKey, publicKey) === null) return 'its PublicKey is not a usable Curve25519 key (a low-order point: no handshake can use it)'
    return undefined
  }

  /** The lease at table index `index` names this key and port: a new peer, or the same one updated. */
  setPeer (index: number, d: WireguardPeerData, lease: Lease): void {
    const endpoint = { addr: this.leaseEndpoint(lease), port: d.port }
    const existing = this.peers[index]
    this.subnets[index] = this.subnetText(lease)
    if (existing !== undefined && existing.publicKey.equals(d.publicKey)) {
      existing.setEndpoint(endpoint)
      this.endpointMoved(index)
      return
    }
    if (existing !== undefined) this.deletePeer(index)
    const other = this.device.peer(d.publicKey)
    if (other !== undefined) {
      // two leases with one key: the first keeps it (a node copied another's key file?)
      this.wgDrops[WgDrop.UNKNOWN_PEER]++
      this.o.log.warn({ subnet: this.subnets[index], publicKey: d.publicKeyText, heldBy: this.subnets[this.indexOf.get(other) ?? -1] }, 'ignoring a lease whose WireGuard key another lease already holds')
      return
    }
    if (d.publicKey.equals(this.device.publicKey)) {
      this.o.log.warn({ subnet: this.subnets[index] }, 'ignoring a lease that holds our own WireGuard key')
      return
    }
    const peer = this.device.addPeer({ publicKey: d.publicKey, presharedKey: this.o.psk ?? null, endpoint, persistentKeepalive: this.o.persistentKeepalive })
    this.peers[index] = peer
    this.indexOf.set(peer, index)
    this.inside.endpointSeen[index] = -1
    this.endpointMoved(index)
    // A handshake now, so that the first packets find a session; but from
    // one side only: two nodes that learn of each other at once and both
    // initiate each answer the other's and wait for a confirmation that
    // neither sends, until Rekey-Timeout (5 s; so do wireguard-go and the
    // kernel). The higher key goes first; the lower one goes a second
    // later if nothing came (the other's may have arrived before we knew it).
    if (Buffer.compare(this.device.publicKey, d.publicKey) > 0) this.initiate(peer)
    else setTimeout(() => { if (this.peers[index] === peer && peer.current === null && peer.next === null) this.initiate(peer) }, SECOND_INITIATOR_DELAY).unref()
  }

  /** The peer's allowed IPs on this device, comma-separated: its lease's subnet of each family the device carries. */
  private subnetText (lease: Lease): string {
    const six = lease.subnet6 !== undefined ? formatCidr6(lease.subnet6) : '?'
    if ('lookupAt' in this.o.fdb) return six
    if (this.o.inner6 !== undefined && lease.subnet6 !== undefined) return `${formatCidr(lease.subnet)},${six}`
    return formatCidr(lease.subnet)
  }

  /** The endpoint a lease names: its PublicIP, or on the IPv6 device its PublicIPv6's handle (the network checked it). */
  private leaseEndpoint (lease: Lease): number {
    const eps = this.endpoints6
    if (eps === undefined) return lease.attrs.publicIP >>> 0
    const text = lease.attrs.publicIPv6
    if (text === null || text === '') return 0
    let ip: bigint
    try { ip = parseIp6(text) } catch { return 0 }
    return eps.internIp(ip, () => this.heldHandles())
  }

  /** The endpoint handles peers hold (kept when the handle table is swept). */
  private heldHandles (): number[] {
    const out: number[] = []
    for (const p of this.indexOf.keys()) if (p.endpointAddr !== 0) out.push(p.endpointAddr)
    for (const m of this.control) out.push(m.addr)
    return out
  }

  /** An endpoint as `wg` writes it: IPv6 in brackets. */
  endpointText (addr: number, port: number): string | null {
    if (addr === 0) return null
    const eps = this.endpoints6
    if (eps === undefined) return `${ip4ToString(addr)}:${port}`
    const t = eps.text(addr)
    return t === undefined ? null : `[${t}]:${port}`
  }

  private endpointIp (addr: number): string | undefined {
    if (addr === 0) return undefined
    return this.endpoints6 === undefined ? ip4ToString(addr) : this.endpoints6.text(addr)
  }

  private initiate (peer: Peer): void {
    if (this.closed) return
    peer.send(this.now(), 0)
    this.queue(this.device.takeOutgoing())
  }

  /** Inside: a packet for a peer whose handshake is on its way, copied (its checksum finished) to go once it is ready. */
  private stage (peer: Peer, slab: Buffer, ip: number, len: number, needsCsum: boolean): boolean {
    let list = this.staged.get(peer)
    if (list === undefined) { list = []; this.staged.set(peer, list) }
    if (list.length >= STAGED_PER_PEER) return false
    const pkt = Buffer.from(slab.subarray(ip, ip + len))
    if (needsCsum) { if ((pkt[0] >> 4) === 6) finishChecksum6(pkt, 0, len); else finishChecksum(pkt, 0, len) }
    list.push(pkt)
    return true
  }

  /** The peer has a session: what waited for it goes, sealed here (a few packets, once). */
  private unstage (peer: Peer): void {
    const list = this.staged.get(peer)
    if (list === undefined) return
    this.staged.delete(peer)
    const now = this.now()
    for (const pkt of list) {
      const c = peer.send(now, 1)
      const kp = peer.current
      if (c < 0 || kp === null) { this.wgDrops[WgDrop.NO_SESSION]++; continue }
      this.control.push({ kind: 'keepalive', peer, bytes: sealTransport(kp, c, pkt, this.o.mtu), addr: peer.endpointAddr, port: peer.endpointPort })
      const index = this.indexOf.get(peer)
      if (index !== undefined) {
        this.o.fdb.perPeer[index * PER_PEER + PeerCount.INSIDE_PACKETS]++
        this.o.fdb.perPeer[index * PER_PEER + PeerCount.INSIDE_BYTES] += pkt.length
      }
      this.stats[Count.INSIDE_PACKETS]++
      this.stats[Count.INSIDE_BYTES] += pkt.length
    }
    setImmediate(() => this.sendControl())
  }

  deletePeer (index: number): void {
    const peer = this.peers[index]
    if (peer === undefined) return
    this.peers[index] = undefined
    this.indexOf.delete(peer)
    this.staged.delete(peer)
    this.device.removePeer(peer)
  }

  /** What `weft status` shows of a peer beyond the table's. */
  peerStatus (index: number): Record<string, unknown> {
    const p = this.peers[index]
    if (p === undefined) return { wireguard: 'no peer (its key is another lease\'s, or ours)' }
    return {
      publicKey: p.publicKey.toString('base64'),
      endpoint: this.endpointText(p.endpointAddr, p.endpointPort),
      latestHandshake: p.lastHandshake === 0 ? null : new Date(p.lastHandshake).toISOString(),
      session: p.current !== null,
      persistentKeepalive: p.persistentKeepalive
    }
  }

  // --- the Dataplane the network drives -----------------------------------

  setOwnSubnet (ip: number, prefixLen: number): void { this.outside.setOwnSubnet(ip, prefixLen) }
  setOwnSubnet6 (subnet: Ip6Net): void { this.outside.setOwnSubnet6(subnet) }
  setLocalAddresses (): void {}
  unknownRings (): Uint32Array[] { return [this.unknown] }
  spoofRings (): Uint32Array[] { return [this.spoof] }
  peerCounter (index: number, which: number): number { return this.o.fdb.perPeer[index * PER_PEER + which] }

  snapshot (): object {
    const drops: Record<string, number> = {}
    for (let i = 1; i < this.wgDrops.length; i++) if (this.wgDrops[i] !== 0) drops[WG_DROP_NAMES[i]] = this.wgDrops[i]
    return {
      ...dataplaneSnapshot(this.stats, this.o.tun.counters, this.o.sock.counters),
      wireguard: { device: this.o.device, family: this.endpoints6 !== undefined ? 6 : 4, publicKey: this.device.publicKey.toString('base64'), listenPort: this.o.listenPort, handshakes: this.handshakesOk, rekeys: this.rekeys, drops, peers: this.indexOf.size }
    }
  }

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.timer)
    this.device.close()
    this.busy?.close()
    this.o.tun.close()
    this.o.sock.close()
    await this.uapi?.close()
  }

  // --- the control path ----------------------------------------------------

  /** The send table's address for the peer at `index` follows its endpoint (roaming, a lease's new port). */
  private endpointMoved (index: number): void {
    const p = this.peers[index]
    if (p === undefined) return
    if (p.endpointAddr !== 0) {
      if (this.sendTable6 !== undefined) {
        const w = this.endpoints6?.wordsOf(p.endpointAddr)
        if (w !== undefined) this.sendTable6.set(index, w, p.endpointPort)
      } else {
        (this.o.fdb as LoopParts['fdb']).addrs.set(index, p.endpointAddr, p.endpointPort)
      }
    }
    this.inside.endpointSeen[index] = p.endpointVersion
  }

  /** Handshake messages a batch held: answered now, and whatever they started is sent. */
  private handshakes (list: Handshake[], n: number): void {
    const now = this.now()
    if (now - this.secondStart >= 1000) { this.secondStart = now; this.shakesThisSecond = 0 }
    for (let i = 0; i < n; i++) {
      const h = list[i]
      this.shakesThisSecond++
      const r = this.device.handshakeMessage(h.bytes, h.addr, h.port, now, this.shakesThisSecond > UNDER_LOAD_PER_SECOND)
      if (r.reason !== WgDrop.OK) this.wgDrops[r.reason]++
      this.queue(r.replies)
    }
    this.queue(this.device.takeOutgoing())
  }

  private tick (): void {
    const now = this.now()
    // at least once a second whatever the peers' timers say: tick() also
    // forgets the handshake rate limiter's quiet sources
    if (this.device.nextDeadline() <= now || now - this.lastTick >= 1000) {
      this.lastTick = now
      this.queue(this.device.tick(now))
    } else {
      this.queue(this.device.takeOutgoing())
    }
  }

  private queue (out: readonly Outgoing[]): void {
    for (const m of out) if (m.addr !== 0 && m.port !== 0) this.control.push(m)
    this.sendControl()
  }

  /** 3. The protocol's datagrams, when the send batch is free. */
  private sendControl (): void {
    if (this.control.length === 0 || !this.inside.idle || this.closed) return
    const tx = this.tx
    const base = this.o.fdb.capacity
    // IPv6: a message whose sender's handle was swept meanwhile (a flood) is dropped
    if (this.endpoints6 !== undefined) {
      const eps = this.endpoints6
      this.control = this.control.filter((m) => eps.wordsOf(m.addr) !== undefined)
      if (this.control.length === 0) return
    }
    const n = Math.min(this.control.length, CONTROL_DESTS)
    for (let i = 0; i < n; i++) {
      const m = this.control[i]
      tx.offsets[i] = i * tx.slotSize
      m.bytes.copy(tx.slab, tx.offsets[i])
      tx.lengths[i] = m.bytes.length
      tx.segs[i] = 0
      tx.dests[i] = base + i
      if (this.sendTable6 !== undefined) this.sendTable6.set(base + i, this.endpoints6?.wordsOf(m.addr) as Uint32Array, m.port)
      else (this.o.fdb as LoopParts['fdb']).addrs.set(base + i, m.addr, m.port)
    }
    // what a full socket did not take waits for it to drain (the socket's
    // onWritable runs the inside loop's flush, which ends here again)
    const sent = this.o.sock.send(n)
    this.control.splice(0, sent)
    if (sent < n) this.o.sock.wantWritable()
    else if (this.control.length > 0) setImmediate(() => this.sendControl())
  }

  private uapiState (): { privateKey: Buffer, listenPort: number, fwmark: number, peers: UapiPeer[] } {
    const peers: UapiPeer[] = []
    const perPeer = this.o.fdb.perPeer
    for (const [p, index] of this.indexOf) {
      const wall = p.lastHandshake === 0 ? undefined : p.lastHandshake
      peers.push({
        publicKey: p.publicKey,
        ...(this.o.psk !== undefined ? { presharedKey: this.o.psk } : {}),
        ...(this.endpointIp(p.endpointAddr) !== undefined ? { endpoint: { ip: this.endpointIp(p.endpointAddr) as string, port: p.endpointPort } } : {}),
        persistentKeepalive: p.persistentKeepalive,
        allowedIps: this.subnets[index] !== undefined ? (this.subnets[index] as string).split(',') : [],
        lastHandshake: wall === undefined ? undefined : { sec: Math.floor(wall / 1000), nsec: Math.floor((wall % 1000) * 1e6) },
        rxBytes: perPeer[index * PER_PEER + PeerCount.OUTSIDE_BYTES],
        txBytes: perPeer[index * PER_PEER + PeerCount.INSIDE_BYTES]
      })
    }
    return { privateKey: this.o.keys.privateKey, listenPort: this.o.listenPort, fwmark: 0, peers }
  }
}

function roundUp (n: number, to: number): number {
  return Math.ceil(n / to) * to
}
