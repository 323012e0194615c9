// TunWrites over an in-memory TUN, for tun-writes.test.ts (IPv4) and
// tun-writes6.test.ts (IPv6): the "TUN" is one end of a SOCK_SEQPACKET pair
// (it keeps write boundaries, as a TUN does), read back from the other end
// byte for byte.
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { Fdb6 } from '../../src/dataplane/fdb6'
import { newStats } from '../../src/dataplane/stats'
import { TunWrites } from '../../src/dataplane/tun-writes'
import { VNET_HDR_LEN } from '../../src/native/vnet'
import { openUdp4, openUdp6, packetPair, PacketBatch, PeerTable, PeerTable6 } from '../../src/native'
import type { PacketIo, Udp4 } from '../../src/native'
import { parseCidr } from '../../src/packet/net'
import { ip6Bytes, ip6Words, parseCidr6 } from '../../src/packet/net6'
import { parseMac } from '../../src/packet/mac'
import { LOOPBACK } from './helpers'
import type { TestNode } from './helpers'
import { LOOPBACK6 } from './helpers6'
import type { TestNode6 } from './helpers6'

export interface Vnet { flags: number, gsoType: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number }

export interface Written {
  /** the vnet header (absent without vnet) */
  vnet?: Vnet
  ip: Buffer
}

/** One write as the TUN's reader gets it: [vnet header][packet]. */
export function parseWritten (m: Buffer): Written & { vnet: Vnet } {
  return {
    vnet: { flags: m[0], gsoType: m[1], hdrLen: m.readUInt16LE(2), gsoSize: m.readUInt16LE(4), csumStart: m.readUInt16LE(6), csumOffset: m.readUInt16LE(8) },
    ip: m.subarray(VNET_HDR_LEN)
  }
}

export interface TunRig {
  writes: TunWrites
  stats: Float64Array
  tun: PacketIo
  /** copy p into the writes' slab; its offset there */
  place: (p: Buffer) => number
  /** send what was handed over (the TUN must take it all) and read back every write */
  flush: () => Written[]
  close: () => void
}

export function tunRig (vnet: boolean, checked: number, uso: boolean): TunRig {
  const [tun, wire] = packetPair(64)
  const maxWrites = 128
  const area = 512 * 1024
  const slab = Buffer.allocUnsafeSlow(area + TunWrites.headerArea(maxWrites))
  const pieces = new PacketBatch({ size: 512, slotSize: 1, slab })
  const stats = newStats()
  const writes = new TunWrites(tun, pieces, vnet, area, maxWrites, stats, checked, uso)
  const rx = new PacketBatch({ size: 64, slotSize: 65600 })
  wire.receiveInto(rx)
  let at = 0
  return {
    writes,
    stats,
    tun,
    place: (p) => {
      const off = at
      p.copy(slab, off)
      at += Math.ceil(p.length / 64) * 64 + 64
      return off
    },
    flush: () => {
      assert.equal(writes.send(), 0, 'the TUN took every write')
      at = 0
      const out: Written[] = []
      for (let n = wire.read(); n > 0; n = wire.read()) {
        for (let i = 0; i < n; i++) {
          const m = Buffer.from(rx.slab.subarray(rx.offsets[i], rx.offsets[i] + rx.lengths[i]))
          out.push(vnet ? parseWritten(m) : { ip: m })
        }
      }
      return out
    },
    close: () => { tun.close(); wire.close() }
  }
}

/**
 * A bare UDP socket standing for node A (a lease, fc00:0:0:1::/64 or
 * 10.244.1.0/24 from loopback, in b's table, of b's family): send() puts
 * each packet behind A's VXLAN header to b and sends them in one batch,
 * each as its own datagram (coalesce: same-size ones gathered into
 * UDP_SEGMENT sends, as weft sends them).
 */
export function vxlanSender (t: TestContext, b: TestNode | TestNode6, slotSize: number, coalesce = false): { send: (packets: Buffer[]) => void } {
  const aMac = parseMac('02:00:00:00:00:0a')
  let sender: Udp4
  let peers: PeerTable | PeerTable6
  if (b.fdb instanceof Fdb6) {
    sender = openUdp6({ addr: ip6Bytes(LOOPBACK6), port: 0, batch: 16 })
    b.fdb.set(parseCidr6('fc00:0:0:1::/64'), LOOPBACK6, aMac, sender.port)
    peers = new PeerTable6(1)
    peers.set(0, ip6Words(LOOPBACK6), b.port)
  } else {
    sender = openUdp4({ addr: LOOPBACK, port: 0, batch: 16 })
    b.fdb.set(parseCidr('10.244.1.0/24'), LOOPBACK, aMac, sender.port)
    const table = new PeerTable(1)
    table.set(0, LOOPBACK, b.port)
    peers = table
  }
  t.after(() => sender.io.close())
  const tx = new PacketBatch({ size: 16, slotSize })
  sender.io.sendFrom(tx, peers, { gso: true, coalesce })
  const vxlan = Buffer.concat([Buffer.from([0x08, 0, 0, 0, 0, 0, 1, 0]), b.mac, aMac, Buffer.from(b.fdb instanceof Fdb6 ? [0x86, 0xdd] : [0x08, 0x00])])
  return {
    send: (packets) => {
      packets.forEach((p, i) => {
        vxlan.copy(tx.slab, tx.offsets[i])
        p.copy(tx.slab, tx.offsets[i] + vxlan.length)
        tx.lengths[i] = vxlan.length + p.length
        tx.segs[i] = 0
        tx.dests[i] = 0
      })
      assert.equal(sender.io.send(packets.length), packets.length)
    }
  }
}
