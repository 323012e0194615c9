// The IPv6 outside path for the fuzz tests (as drive.ts is for IPv4): a real
// IPv6 Pipeline (Fdb6, VXLAN with inner EtherType 86DD, RCO on, the source
// check on) over an in-memory TUN, fed datagrams exactly as the addon's
// recvmmsg on a udp6 socket lays them out (sender in rx.addrs6), from a peer
// holding a lease (2001:2::3, subnet fc00:0:0:1::/64) or a stranger
// (2001:2::4). Our subnet is fc00:0:0:2::/64 in fc00::/48.
import { parseCidr6, parseIp6, ip6Words } from '../../src/packet/net6'
import { Fdb6 } from '../../src/dataplane/fdb6'
import { Pipeline } from '../../src/dataplane/pipeline'
import { VxlanEncap } from '../../src/backend/vxlan/encap'
import { packetPair } from '../../src/native'
import type { PacketIo } from '../../src/native'
import { parseMac } from '../../src/packet/mac'
import { DirectSocket, outcome, reading, startNode } from './drive'
import type { Datagram, Outcome } from './drive'

export const NETWORK6 = parseCidr6('fc00::/48')
export const OWN6 = parseCidr6('fc00:0:0:2::/64')
export const PEER6_SUBNET = parseCidr6('fc00:0:0:1::/64')
export const PEER6 = parseIp6('2001:2::3')
export const STRANGER6 = parseIp6('2001:2::4')
export const OUR_MAC6 = parseMac('02:66:00:00:00:02')
export const PEER_MAC6 = parseMac('02:66:00:00:00:03')
export const MTU6 = 1430

export interface OutsideRig6 {
  inject: (datagrams: readonly Datagram[]) => Outcome
  pipeline: Pipeline
  close: () => void
}

export function directRig6 (): OutsideRig6 {
  const sock = new DirectSocket((rx, i, from) => {
    if (from === undefined) rx.addrs6.fill(0, 4 * i, 4 * i + 4)
    else rx.addrs6.set(ip6Words(from === 'peer' ? PEER6 : STRANGER6), 4 * i)
  }, 'udp6')
  const [tun, wire] = packetPair(64)
  const fdb = new Fdb6({ network: NETWORK6, subnetLen: 64, port: 8472 })
  const pipeline = new Pipeline({ tun, sock: sock as unknown as PacketIo, fdb, encap: new VxlanEncap(1, OUR_MAC6, fdb, true), mtu: MTU6, batch: 64, checkSource: true, udpPacing: 0, onFatal: (w, e) => { throw new Error(`${w} fatal errno ${e}`) } })
  pipeline.setOwnSubnet6(OWN6)
  fdb.set(PEER6_SUBNET, PEER6, PEER_MAC6, 8472, true)
  const node = startNode(pipeline, wire)
  return {
    pipeline,
    inject: (ds) => {
      const before = reading(node)
      let threw: unknown
      try { sock.deliver(ds) } catch (err) { threw = err }
      return outcome(node, before, ds.map((d) => d.datagram), [], threw)
    },
    close: () => { pipeline.close(); wire.close() }
  }
}
