// The IPv6 counterpart of helpers.ts: two "nodes" on ::1, each a real IPv6
// Pipeline (an Fdb6, inner EtherType 86DD) over an in-memory TUN and a real
// udp6 socket. No privileges needed.
import { parseCidr6, parseIp6 } from '../../src/packet/net6'
import { Fdb6 } from '../../src/dataplane/fdb6'
import { openUdp6 } from '../../src/native'
import { nodeSockOptions, pipelineNode } from './helpers'
import type { NodeOptions, TestNodeOf } from './helpers'

export const LOOPBACK6 = parseIp6('::1')
export const NETWORK6 = parseCidr6('fc00::/48')

export type TestNode6 = TestNodeOf<Fdb6>

export function node6 (subnet: string, mac: string, o: NodeOptions = {}): TestNode6 {
  const loop = Buffer.alloc(16)
  loop[15] = 1
  return pipelineNode(subnet, mac, o, openUdp6({ addr: loop, ...nodeSockOptions(o) }), new Fdb6({ network: NETWORK6, subnetLen: 64, port: 0 }),
    { mtu: o.mtu ?? 1430, udpPacing: o.udpPacing ?? 0 }, (p) => p.setOwnSubnet6(parseCidr6(subnet)))
}

export function link6 (a: TestNode6, b: TestNode6): void {
  a.fdb.set(parseCidr6(b.subnet), LOOPBACK6, b.mac, b.port, b.remCsum)
  b.fdb.set(parseCidr6(a.subnet), LOOPBACK6, a.mac, a.port, a.remCsum)
}
