// VXLAN for an IPv6 pipeline (VxlanEncap given an Fdb6): the inner
// Ethernet header says 86DD on the way out and must on the way in; remote
// checksum offload marks a super-packet only for TCP/UDP straight after the
// fixed header, at 14 + 40; an IPv4 pipeline's encapsulation is unchanged.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Fdb } from '../../src/dataplane/fdb'
import { Fdb6 } from '../../src/dataplane/fdb6'
import { Drop } from '../../src/dataplane/stats'
import { DECAP_PARTIAL } from '../../src/dataplane/encap'
import { VxlanEncap, VXLAN_HEADROOM } from '../../src/backend/vxlan/encap'
import { parseCidr } from '../../src/packet/net'
import { parseCidr6, parseIp6 } from '../../src/packet/net6'
import { parseMac } from '../../src/packet/mac'
import { packet6, tcpBytes, udpBytes } from '../packet/v6'

const OURS = parseMac('02:66:00:00:00:02')
const PEER_MAC = parseMac('02:66:00:00:00:03')

function setup (rco: boolean): { fdb: Fdb6, encap: VxlanEncap, peer: number } {
  const fdb = new Fdb6({ network: parseCidr6('fc00::/48'), subnetLen: 64, port: 8472 })
  const peer = fdb.set(parseCidr6('fc00:0:0:1::/64'), parseIp6('2001:2::3'), PEER_MAC, 0, rco)
  return { fdb, encap: new VxlanEncap(1, OURS, fdb, rco), peer }
}

test('encap writes VXLAN, the peer\'s and our MAC and EtherType 86DD; decap takes it back', () => {
  const { encap, peer } = setup(false)
  const p = packet6({ nh: 17, l4: udpBytes(20), checksum: true })
  const slab = Buffer.alloc(200)
  p.copy(slab, 64)
  const start = encap.encap(slab, 64, p.length, peer)
  assert.equal(start, 64 - VXLAN_HEADROOM)
  assert.equal(slab.subarray(start, start + 22).toString('hex'), '0800000000000100' + PEER_MAC.toString('hex') + OURS.toString('hex') + '86dd')
  // as it arrives at the peer (our MAC as the destination)
  OURS.copy(slab, start + 8)
  assert.equal(encap.decap(slab, start, 22 + p.length, peer), VXLAN_HEADROOM)
  slab.writeUInt16BE(0x0800, start + 20)
  assert.equal(encap.decap(slab, start, 22 + p.length, peer), -Drop.NOT_IPV6, 'inner IPv4 on an IPv6 pipeline')
})

test('RCO over IPv6: marked at 14 + 40 for TCP and UDP, not behind extension headers; decap takes only a mark that names the packet', () => {
  const { encap, peer } = setup(true)
  for (const [p, want] of [
    [packet6({ nh: 6, l4: tcpBytes({ payload: 100 }) }), (54 >> 1)],
    [packet6({ nh: 17, l4: udpBytes(100) }), (54 >> 1) | 0x80],
    [packet6({ nh: 6, l4: tcpBytes({ payload: 100 }), ext: [{ type: 60 }] }), -1]
  ] as const) {
    const slab = Buffer.alloc(400)
    p.copy(slab, 64)
    const start = encap.encap(slab, 64, p.length, peer)
    const marked = encap.partial?.(slab, start, 64, peer) ?? false
    assert.equal(marked, want >= 0)
    if (!marked) continue
    assert.equal(slab[start + 1], 0x20)
    assert.equal(slab[start + 7], want)
    OURS.copy(slab, start + 8)
    assert.equal(encap.decap(slab, start, 22 + p.length, peer), VXLAN_HEADROOM | DECAP_PARTIAL)
    slab[start + 7] ^= 0x80 // names the other protocol
    assert.equal(encap.decap(slab, start, 22 + p.length, peer), -Drop.BAD_VXLAN_RCO)
  }
})

test('an IPv4 pipeline\'s VXLAN still says 0800', () => {
  const fdb = new Fdb({ network: parseCidr('10.244.0.0/16'), subnetLen: 24, port: 8472 })
  const peer = fdb.set(parseCidr('10.244.1.0/24'), 1, PEER_MAC)
  const slab = Buffer.alloc(100)
  slab[64] = 0x45
  const start = new VxlanEncap(1, OURS, fdb).encap(slab, 64, 20, peer)
  assert.equal(slab.readUInt16BE(start + 20), 0x0800)
})
