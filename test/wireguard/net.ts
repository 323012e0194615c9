// Devices wired together in memory: each node has an underlay address and
// port, and Net.run delivers the datagrams they emit to whichever node owns
// the destination, with the replies, until the network is quiet. Every
// refusal is recorded, so tests assert the reason a message was dropped.
import { Device, type DeviceOptions } from '../../src/wireguard/device'
import { generateKeyPair, type KeyPair } from '../../src/wireguard/keys'
import { MSG_TRANSPORT, messageType } from '../../src/wireguard/messages'
import type { Outgoing, Peer } from '../../src/wireguard/peer'
import { WG_DROP_NAMES } from '../../src/wireguard/reasons'
import type { Keypair } from '../../src/wireguard/session'
import { parseIp4 } from '../../src/packet/ip'

export interface WgNode {
  readonly name: string
  readonly keys: KeyPair
  readonly dev: Device
  readonly addr: number
  readonly port: number
  readonly created: Keypair[]
  readonly removed: Keypair[]
  readonly ready: Peer[]
  /** payloads received over transport (keepalives are empty) */
  readonly payloads: Buffer[]
}

export interface Delivery {
  /** when (ms) */
  readonly at: number
  readonly from: string
  readonly to: string
  readonly kind: string
  readonly reason: string
}

export class Net {
  readonly nodes = new Map<number, WgNode>()
  /** every delivery in order, with its outcome */
  readonly log: Delivery[] = []
  /** nodes under load (their handshakeMessage is told so) */
  readonly underLoad = new Set<WgNode>()
  /** datagrams to lose instead of delivering (logged as 'lost') */
  drop: (o: Outgoing, from: WgNode) => boolean = () => false

  node (name: string, ip: string, port = 51820, o: Partial<DeviceOptions> = {}, keys: KeyPair = generateKeyPair()): WgNode {
    const created: Keypair[] = []
    const removed: Keypair[] = []
    const ready: Peer[] = []
    const dev = new Device({
      privateKey: keys.privateKey,
      random: () => 0.5,
      ...o,
      hooks: {
        keypairCreated: (kp) => created.push(kp),
        keypairRemoved: (kp) => removed.push(kp),
        sessionReady: (p) => ready.push(p),
      },
    })
    const n: WgNode = { name, keys, dev, addr: parseIp4(ip), port, created, removed, ready, payloads: [] }
    this.nodes.set(n.addr, n)
    return n
  }

  /** Makes a and b peers of each other (endpoints known); returns [a's peer b, b's peer a]. */
  link (a: WgNode, b: WgNode, o: { psk?: Buffer, keepaliveA?: number, keepaliveB?: number } = {}): [Peer, Peer] {
    const ab = a.dev.addPeer({ publicKey: b.keys.publicKey, presharedKey: o.psk ?? null, endpoint: { addr: b.addr, port: b.port }, persistentKeepalive: o.keepaliveA ?? 0 })
    const ba = b.dev.addPeer({ publicKey: a.keys.publicKey, presharedKey: o.psk ?? null, endpoint: { addr: a.addr, port: a.port }, persistentKeepalive: o.keepaliveB ?? 0 })
    return [ab, ba]
  }

  /** Delivers `out` (sent by `from`) and everything it provokes, at time `now`. Returns the deliveries made. */
  run (from: WgNode, out: Outgoing[], now: number): Delivery[] {
    const start = this.log.length
    const queue: Array<[WgNode, Outgoing]> = out.map((o) => [from, o])
    for (let i = 0; i < queue.length && i < 1000; i++) {
      const [src, o] = queue[i]!
      const dst = this.nodes.get(o.addr)
      if (this.drop(o, src)) {
        this.log.push({ at: now, from: src.name, to: dst?.name ?? `${o.addr}:${o.port}`, kind: o.kind, reason: 'lost' })
        continue
      }
      if (dst === undefined || dst.port !== o.port) {
        this.log.push({ at: now, from: src.name, to: `${o.addr}:${o.port}`, kind: o.kind, reason: 'no_such_node' })
        continue
      }
      if (messageType(o.bytes) === MSG_TRANSPORT) {
        const r = dst.dev.receiveTransport(o.bytes, src.addr, src.port, now)
        if (r.payload) dst.payloads.push(r.payload)
        this.log.push({ at: now, from: src.name, to: dst.name, kind: o.kind, reason: WG_DROP_NAMES[r.reason]! })
        for (const m of dst.dev.takeOutgoing()) queue.push([dst, m])
      } else {
        const r = dst.dev.handshakeMessage(o.bytes, src.addr, src.port, now, this.underLoad.has(dst))
        this.log.push({ at: now, from: src.name, to: dst.name, kind: o.kind, reason: WG_DROP_NAMES[r.reason]! })
        for (const m of r.replies) queue.push([dst, m])
      }
    }
    return this.log.slice(start)
  }

  /** Ticks every node at `now` and delivers what they send. */
  tick (now: number): Delivery[] {
    const start = this.log.length
    for (const n of this.nodes.values()) this.run(n, n.dev.tick(now), now)
    return this.log.slice(start)
  }

  /** Ticks every node from `from` to `to` in steps of `step` ms (delivering as it goes). */
  advance (from: number, to: number, step = 100): Delivery[] {
    const start = this.log.length
    for (let t = from; t <= to; t += step) this.tick(t)
    return this.log.slice(start)
  }
}

/**
 * Ticks every node at each timer deadline from `from` up to `to`, exactly
 * when it falls due, delivering as it goes.
 */
export function until (net: Net, from: number, to: number): Delivery[] {
  const start = net.log.length
  let t = from
  for (let i = 0; i < 100_000; i++) {
    let next = Infinity
    for (const n of net.nodes.values()) next = Math.min(next, n.dev.nextDeadline())
    if (next > to) break
    t = Math.max(t, next)
    net.tick(t)
  }
  return net.log.slice(start)
}

/** "kind→reason" strings of deliveries, compact for assertions. */
export function summary (ds: readonly Delivery[]): string[] {
  return ds.map((d) => `${d.from}>${d.to} ${d.kind} ${d.reason}`)
}

/** A fixed wall-clock start (ms), on a whole second, so TAI64N labels are predictable. */
export const T0 = 1_700_000_000_000
