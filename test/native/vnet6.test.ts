// Reads with a vnet header (as from a TUN opened with IFF_VNET_HDR) of IPv6
// packets, over an in-memory packet pair (no privileges): a TCP or UDP
// checksum the kernel left partial (NEEDS_CSUM, csum_start/csum_offset) is
// finished wherever csum_start puts the transport header, past IPv6
// extension headers too; a UDP checksum that comes to 0 is sent as 0xffff;
// a TCPv6 super-packet (gso_type 4) is counted and left for segmentation.
// A real TUN handing over such packets is in netns6.test.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { packetPair, PacketBatch } from '../../src/native'
import { GSO_NONE, GSO_TCPV6, VNET_F_DATA_VALID, VNET_F_NEEDS_CSUM, VNET_HDR_LEN, writeVnetHdr } from '../../src/native/vnet'
import { l4Checksum6, makePartial6, partialChecksum6, setL4Checksum6, tcp6Packet, tcp6WithHopByHop, udp6Packet, verifyL4Checksum6 } from './ip6-ref'

function pattern (len: number, tag: number): Buffer {
  const b = Buffer.alloc(len)
  for (let i = 0; i < len; i++) b[i] = (i * 7 + tag) & 255
  return b
}

/**
 * A UDPv6 packet whose checksum comes to 0 (so is sent as 0xffff): one
 * payload word W is chosen so that the sum is 0xffff. With W = 0 the
 * checksum is c = ~S; S + W = 0xffff takes W = c (or 0 if S is 0xffff
 * already, which l4Checksum6 reports as 0xffff).
 */
function udpSummingToZero (): Buffer {
  const p = udp6Packet(pattern(101, 3))
  const at = 48 + 98 // an even offset into the UDP header and payload
  p.writeUInt16BE(0, at)
  const c = l4Checksum6(p)
  p.writeUInt16BE(c === 0xffff ? 0 : c, at)
  setL4Checksum6(p)
  return p
}

test('IPv6 TCP and UDP checksums left partial are finished on a vnet read, past an extension header too; a TCPv6 super-packet is left as it is', () => {
  const [tun, peer] = packetPair(8)
  try {
    const rx = new PacketBatch({ size: 8, slotSize: 70000 })
    tun.receiveInto(rx, { vnet: true })
    const tx = new PacketBatch({ size: 8, slotSize: 70000 })
    peer.sendFrom(tx)
    const tcp = tcp6Packet({ payload: pattern(700, 1) })
    const udp = udp6Packet(pattern(333, 2))
    const zero = udpSummingToZero()
    assert.equal(l4Checksum6(zero), 0xffff, 'the fixture sums to 0')
    const ext = tcp6WithHopByHop(pattern(200, 4))
    const sup = tcp6Packet({ payload: pattern(20000, 5) })
    const wants = [tcp, udp, zero, ext].map((p) => Buffer.from(p))
    const partials = [tcp, udp, zero].map((p) => { const q = Buffer.from(p); makePartial6(q); return q })
    const extPartial = Buffer.from(ext)
    extPartial.writeUInt16BE(partialChecksum6(tcp6Packet({ payload: pattern(200, 4), timestamps: false })), 48 + 16)
    const supPartial = Buffer.from(sup)
    makePartial6(supPartial)
    const entries: Array<[Buffer, number, number, number]> = [ // packet, gso type, csum_start, csum_offset
      [partials[0], GSO_NONE, 40, 16],
      [partials[1], GSO_NONE, 40, 6],
      [partials[2], GSO_NONE, 40, 6],
      [extPartial, GSO_NONE, 48, 16],
      [supPartial, GSO_TCPV6, 40, 16]
    ]
    entries.forEach(([p, gso, start, off], i) => {
      writeVnetHdr(tx.slab, tx.offsets[i], VNET_F_NEEDS_CSUM, gso, gso === GSO_NONE ? 0 : 72, gso === GSO_NONE ? 0 : 1368, start, off)
      p.copy(tx.slab, tx.offsets[i] + VNET_HDR_LEN)
      tx.lengths[i] = VNET_HDR_LEN + p.length
    })
    assert.equal(peer.send(entries.length), entries.length)
    assert.equal(tun.read(), entries.length)
    const got = (i: number): Buffer => rx.slab.subarray(rx.offsets[i] + VNET_HDR_LEN, rx.offsets[i] + rx.lengths[i])
    for (let i = 0; i < 4; i++) {
      assert.equal(rx.slab[rx.offsets[i]], VNET_F_DATA_VALID, `packet ${i}: marked valid`)
      assert.ok(got(i).equals(wants[i]), `packet ${i}: finished to the checksum its sender would have written`)
    }
    assert.equal(got(2).readUInt16BE(46), 0xffff, 'a UDP checksum of 0 goes as 0xffff')
    assert.ok(verifyL4Checksum6(got(0)) && verifyL4Checksum6(got(1)))
    assert.equal(rx.slab[rx.offsets[4]], VNET_F_NEEDS_CSUM, 'the super-packet keeps its header')
    assert.ok(got(4).equals(supPartial), 'and its partial checksum, for segmentation')
    const s = tun.stats()
    assert.equal(s.rxCsumFinished, 4)
    assert.equal(s.rxSuperPackets, 1)
  } finally { tun.close(); peer.close() }
})
