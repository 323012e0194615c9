// The IPv6 counterpart of helpers.ts: two "nodes" on ::1, each a real IPv6
// Pipeline (an Fdb6, inner EtherType 86DD) over an in-memory TUN and a real
// udp6 socket. No privileges needed.
import { parseCidr6, parseIp6 } from '../../src/packet/net6'
import { Fdb6 } from '../../src/dataplane/fdb6'
import { Pipeline } from '../../src/dataplane/pipeline'
import { VxlanEncap } from '../../src/backend/vxlan/encap'
import { openUdp6, packetPair, PacketBatch } from '../../src/native'
import { parseMac } from '../../src/packet/mac'
import type { NodeOptions } from './helpers'
import type { PacketIo } from '../../src/native'

export const LOOPBACK6 = parseIp6('::1')
export const NETWORK6 = parseCidr6('fc00::/48')

export interface TestNode6 {
  pipeline: Pipeline
  fdb: Fdb6
  wire: PacketIo
  wireRx: PacketBatch
  wireTx: PacketBatch
  port: number
  mac: Buffer
  subnet: string
  remCsum: boolean
  close: () => void
}

export function node6 (subnet: string, mac: string, o: NodeOptions = {}): TestNode6 {
  const [tun, wire] = packetPair(64)
  const loop = Buffer.alloc(16)
  loop[15] = 1
  const udp = openUdp6({ addr: loop, port: 0, batch: 64, gro: o.offloads?.gro === true, rcvbuf: o.rcvbuf ?? 0, sndbuf: o.sndbuf ?? 0 })
  const fdb = new Fdb6({ network: NETWORK6, subnetLen: 64, port: 0 })
  const macBuf = parseMac(mac)
  const pipeline = new Pipeline({ tun, sock: udp.io, fdb, encap: new VxlanEncap(1, macBuf, fdb, o.remCsum === true), mtu: o.mtu ?? 1430, batch: 64, offloads: o.offloads, checkSource: o.checkSource === true, udpPacing: o.udpPacing ?? 0, onFatal: (w, e) => { throw new Error(`${w} fatal errno ${e}`) } })
  pipeline.setOwnSubnet6(parseCidr6(subnet))
  const wireRx = new PacketBatch({ size: 64, slotSize: o.wireSlot ?? 2048 })
  const wireTx = new PacketBatch({ size: o.wireTxSize ?? 64, slotSize: o.wireSlot ?? 2048 })
  wire.receiveInto(wireRx)
  wire.sendFrom(wireTx)
  pipeline.start()
  return { pipeline, fdb, wire, wireRx, wireTx, port: udp.port, mac: macBuf, subnet, remCsum: o.remCsum === true, close: () => { pipeline.close(); wire.close() } }
}

export function link6 (a: TestNode6, b: TestNode6): void {
  a.fdb.set(parseCidr6(b.subnet), LOOPBACK6, b.mac, b.port, b.remCsum)
  b.fdb.set(parseCidr6(a.subnet), LOOPBACK6, a.mac, a.port, a.remCsum)
}
