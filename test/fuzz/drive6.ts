// The IPv6 outside path for the fuzz tests (as drive.ts is for IPv4): a real
// IPv6 Pipeline (Fdb6, VXLAN with inner EtherType 86DD, RCO on, the source
// check on) over an in-memory TUN, fed datagrams exactly as the addon's
// recvmmsg on a udp6 socket lays them out (sender in rx.addrs6), from a peer
// holding a lease (2001:2::3, subnet fc00:0:0:1::/64) or a stranger
// (2001:2::4). Our subnet is fc00:0:0:2::/64 in fc00::/48.
import { parseCidr6, parseIp6, ip6Words } from '../../src/packet/net6'
import { Fdb6 } from '../../src/dataplane/fdb6'
import { Pipeline } from '../../src/dataplane/pipeline'
import { Count, DROP_COUNT, DROP_NAMES } from '../../src/dataplane/stats'
import { VxlanEncap } from '../../src/backend/vxlan/encap'
import { C, COUNTER_NAMES, packetPair, PacketBatch, snapshot } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { parseMac } from '../../src/packet/mac'
import type { Datagram, Outcome } from './drive'

export const NETWORK6 = parseCidr6('fc00::/48')
export const OWN6 = parseCidr6('fc00:0:0:2::/64')
export const PEER6_SUBNET = parseCidr6('fc00:0:0:1::/64')
export const PEER6 = parseIp6('2001:2::3')
export const STRANGER6 = parseIp6('2001:2::4')
export const OUR_MAC6 = parseMac('02:66:00:00:00:02')
export const PEER_MAC6 = parseMac('02:66:00:00:00:03')
export const MTU6 = 1430

class DirectSocket6 {
  private rx: PacketBatch | undefined
  private onBatch: ((n: number) => void) | undefined
  readonly counters = new Float64Array(COUNTER_NAMES.length)
  readonly kind = 'udp6'

  receiveInto (b: PacketBatch): void { this.rx = b }
  sendFrom (): void {}
  start (onBatch: (n: number) => void): void { this.onBatch = onBatch }
  setReading (): void {}
  wantWritable (): void {}
  send (): number { return 0 }
  read (): number { return 0 }
  stats (): Record<string, number> { return snapshot(this.counters) }
  close (): void {}

  deliver (ds: readonly Datagram[]): void {
    const rx = this.rx as PacketBatch
    ds.forEach(({ datagram: d, from }, i) => {
      if (d.length > rx.capacity) {
        this.counters[C.rxDropTruncated]++
        rx.lengths[i] = 0
        rx.addrs6.fill(0, 4 * i, 4 * i + 4)
      } else {
        d.copy(rx.slab, rx.offsets[i])
        rx.lengths[i] = d.length
        rx.addrs6.set(ip6Words(from === 'peer' ? PEER6 : STRANGER6), 4 * i)
      }
      rx.segs[i] = 0
    })
    ;(this.onBatch as (n: number) => void)(ds.length)
  }
}

export interface OutsideRig6 {
  inject: (datagrams: readonly Datagram[]) => Outcome
  pipeline: Pipeline
  close: () => void
}

export function directRig6 (): OutsideRig6 {
  const sock = new DirectSocket6()
  const [tun, wire] = packetPair(64)
  const fdb = new Fdb6({ network: NETWORK6, subnetLen: 64, port: 8472 })
  const pipeline = new Pipeline({ tun, sock: sock as unknown as PacketIo, fdb, encap: new VxlanEncap(1, OUR_MAC6, fdb, true), mtu: MTU6, batch: 64, checkSource: true, udpPacing: 0, onFatal: (w, e) => { throw new Error(`${w} fatal errno ${e}`) } })
  pipeline.setOwnSubnet6(OWN6)
  fdb.set(PEER6_SUBNET, PEER6, PEER_MAC6, 8472, true)
  const wireRx = new PacketBatch({ size: 64, slotSize: 4096 })
  wire.receiveInto(wireRx)
  wire.sendFrom(new PacketBatch({ size: 1, slotSize: 64 }))
  pipeline.start()
  const reading = (): Float64Array => {
    const r = new Float64Array(DROP_COUNT + 3)
    for (let i = 1; i < DROP_COUNT; i++) r[i] = pipeline.stats[i]
    r[DROP_COUNT] = sock.counters[C.rxDropTruncated]
    r[DROP_COUNT + 1] = pipeline.stats[Count.OUTSIDE_PACKETS]
    r[DROP_COUNT + 2] = pipeline.stats[Count.CHECKSUMS_FINISHED]
    return r
  }
  return {
    pipeline,
    inject: (ds) => {
      const before = reading()
      let threw: unknown
      try { sock.deliver(ds) } catch (err) { threw = err }
      const delivered: Buffer[] = []
      for (let k = wire.read(); k > 0; k = wire.read()) {
        for (let i = 0; i < k; i++) delivered.push(Buffer.from(wireRx.slab.subarray(wireRx.offsets[i], wireRx.offsets[i] + wireRx.lengths[i])))
      }
      const after = reading()
      const drops: Record<string, number> = {}
      for (let i = 1; i < DROP_COUNT; i++) if (after[i] !== before[i]) drops[DROP_NAMES[i]] = after[i] - before[i]
      if (after[DROP_COUNT] !== before[DROP_COUNT]) drops.rx_truncated = after[DROP_COUNT] - before[DROP_COUNT]
      return { received: ds.map((d) => d.datagram), delivered, drops, passed: after[DROP_COUNT + 1] - before[DROP_COUNT + 1], finished: after[DROP_COUNT + 2] - before[DROP_COUNT + 2], ...(threw !== undefined ? { threw } : {}) }
    },
    close: () => { pipeline.close(); wire.close() }
  }
}
