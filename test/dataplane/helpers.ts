// Building blocks for dataplane tests that need no privileges: two "nodes"
// on loopback, each a real Pipeline over an in-memory TUN (a SOCK_SEQPACKET
// pair) and a real UDP socket.
import { parseCidr } from '../../src/packet/net'
import { Fdb } from '../../src/dataplane/fdb'
import type { Fdb6 } from '../../src/dataplane/fdb6'
import { Pipeline } from '../../src/dataplane/pipeline'
import type { PipelineOptions } from '../../src/dataplane/pipeline'
import { VxlanEncap } from '../../src/backend/vxlan/encap'
import { openUdp4, packetPair, PacketBatch } from '../../src/native'
import type { PacketIo, Udp4 } from '../../src/native'
import { writeIpv4Header, IPPROTO_UDP } from '../../src/packet/ipv4'
import { parseIp4 } from '../../src/packet/ip'
import { parseMac } from '../../src/packet/mac'
import { writeUdpHeader, setUdp4Checksum } from '../../src/packet/udp'

export const LOOPBACK = parseIp4('127.0.0.1')

/** A node of either family: `F` is its peer table (Fdb, Fdb6). */
export interface TestNodeOf<F extends Fdb | Fdb6> {
  pipeline: Pipeline
  fdb: F
  /** the test's end of the in-memory TUN */
  wire: PacketIo
  wireRx: PacketBatch
  wireTx: PacketBatch
  port: number
  mac: Buffer
  subnet: string
  /** speaks VXLAN remote checksum offload (what its lease would say) */
  remCsum: boolean
  close: () => void
}

export type TestNode = TestNodeOf<Fdb>

export interface NodeOptions {
  mtu?: number
  /** the pipeline's offloads; with gro, the socket reads with UDP_GRO */
  offloads?: PipelineOptions['offloads']
  rcvbuf?: number
  sndbuf?: number
  /** slot size of the test's wire batches (super-packets need 64 KB) */
  wireSlot?: number
  /** slots in the test's send batch */
  wireTxSize?: number
  /** VXLAN remote checksum offload on (the backend's RemCsum) */
  remCsum?: boolean
  /** drop inner sources the sender does not hold (the backends' default) */
  checkSource?: boolean
  /** the pipeline's UDP pacing factor (0: off); default the pipeline's */
  udpPacing?: number
}

/** Every offload on, RCO and the source check too: a node as the no-allocation tests run it (add the family's mtu). */
export const ALL_OFFLOADS: NodeOptions = { offloads: { vnet: true, tso: true, gro: true, uso: true, gso: true }, rcvbuf: 8 << 20, sndbuf: 4 << 20, wireSlot: 65600, wireTxSize: 32, remCsum: true, checkSource: true }

/** A VXLAN pipeline between an in-memory TUN and a loopback UDP socket. */
export function node (subnet: string, mac: string, o: NodeOptions = {}): TestNode {
  const own = parseCidr(subnet)
  return pipelineNode(subnet, mac, o, openUdp4({ addr: LOOPBACK, ...nodeSockOptions(o) }), new Fdb({ network: parseCidr('10.244.0.0/16'), subnetLen: 24, port: 0 }),
    { mtu: o.mtu ?? 1450, udpPacing: o.udpPacing }, (p) => p.outside.setOwnSubnet(own.ip, own.prefixLen))
}

/** The node's socket options but its address (node(), node6()). */
export function nodeSockOptions (o: NodeOptions): { port: number, batch: number, gro: boolean, rcvbuf: number, sndbuf: number } {
  return { port: 0, batch: 64, gro: o.offloads?.gro === true, rcvbuf: o.rcvbuf ?? 0, sndbuf: o.sndbuf ?? 0 }
}

/**
 * What node() and node6() share once the family's socket and table are
 * made: the Pipeline over an in-memory TUN, started, with the test's wire
 * batches. `own` tells the pipeline its own subnet.
 */
export function pipelineNode<F extends Fdb | Fdb6> (subnet: string, mac: string, o: NodeOptions, udp: Udp4, fdb: F, p: { mtu: number, udpPacing: number | undefined }, own: (pipeline: Pipeline) => void): TestNodeOf<F> {
  const [tun, wire] = packetPair(64)
  const macBuf = parseMac(mac)
  const pipeline = new Pipeline({ tun, sock: udp.io, fdb, encap: new VxlanEncap(1, macBuf, fdb, o.remCsum === true), mtu: p.mtu, batch: 64, offloads: o.offloads, checkSource: o.checkSource === true, udpPacing: p.udpPacing, onFatal: (w, e) => { throw new Error(`${w} fatal errno ${e}`) } })
  own(pipeline)
  const wireRx = new PacketBatch({ size: 64, slotSize: o.wireSlot ?? 2048 })
  const wireTx = new PacketBatch({ size: o.wireTxSize ?? 64, slotSize: o.wireSlot ?? 2048 })
  wire.receiveInto(wireRx)
  wire.sendFrom(wireTx)
  pipeline.start()
  return { pipeline, fdb, wire, wireRx, wireTx, port: udp.port, mac: macBuf, subnet, remCsum: o.remCsum === true, close: () => { pipeline.close(); wire.close() } }
}

/** Point a's FDB at b (both on loopback) and back, each entry saying whether the other takes RCO. */
export function link (a: TestNode, b: TestNode): void {
  a.fdb.set(parseCidr(b.subnet), LOOPBACK, b.mac, b.port, b.remCsum)
  b.fdb.set(parseCidr(a.subnet), LOOPBACK, a.mac, a.port, a.remCsum)
}

/** A UDP-in-IPv4 packet from src to dst with `payloadLen` bytes of pattern `tag`. */
export function udpPacket (src: string, dst: string, payloadLen: number, tag = 1): Buffer {
  const total = 20 + 8 + payloadLen
  const b = Buffer.alloc(total)
  writeIpv4Header(b, 0, 0, total, tag & 0xffff, 0x4000, 64, IPPROTO_UDP, parseIp4(src), parseIp4(dst))
  writeUdpHeader(b, 20, 40000, 7000, 8 + payloadLen)
  for (let i = 0; i < payloadLen; i++) b[28 + i] = (tag * 31 + i) & 255
  setUdp4Checksum(b, 20, 8 + payloadLen, 0)
  return b
}

/** The test's side of an in-memory TUN: what inject() and collect() need. */
export interface Wire {
  wire: PacketIo
  wireRx: PacketBatch
  wireTx: PacketBatch
}

/** Write packets into a node's TUN from the pods' side. */
export function inject (n: Wire, packets: Buffer[]): void {
  packets.forEach((p, i) => {
    p.copy(n.wireTx.slab, n.wireTx.offsets[i])
    n.wireTx.lengths[i] = p.length
  })
  const sent = n.wire.send(packets.length)
  if (sent !== packets.length) throw new Error(`inject: ${sent} of ${packets.length}`)
}

/** Packets that came out of a node's TUN towards its pods, waiting up to timeoutMs for `want` of them. */
export async function collect (n: Wire, want: number, timeoutMs = 2000): Promise<Buffer[]> {
  const out: Buffer[] = []
  const deadline = Date.now() + timeoutMs
  while (out.length < want && Date.now() < deadline) {
    const k = n.wire.read()
    for (let i = 0; i < k; i++) out.push(Buffer.from(n.wireRx.slab.subarray(n.wireRx.offsets[i], n.wireRx.offsets[i] + n.wireRx.lengths[i])))
    // a bounded poll, as in waitFor, but it returns what came: a test that expects nothing gives timeoutMs as its quiet period
    if (k === 0) await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return out
}
