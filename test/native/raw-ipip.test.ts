// Raw IPv4 sockets for protocol 4 (IP-in-IP) through the same batched path:
// the kernel writes the outer header on send, and a receive returns the whole
// packet, outer header included. Loopback only; needs CAP_NET_RAW.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { constants, openRaw4, PacketBatch, PeerTable } from '../../src/native'
import { tunSkipReason } from '../../lab/skip'

const LOOPBACK = 0x7f000001

test('a batch of protocol-4 payloads sent on a raw socket arrives with an outer IPv4 header, byte-exact', { skip: tunSkipReason() }, async () => {
  const tx = openRaw4({ protocol: constants.IPPROTO_IPIP, batch: 16 })
  const rx = openRaw4({ protocol: constants.IPPROTO_IPIP, addr: LOOPBACK, batch: 16 })
  try {
    const out = new PacketBatch({ size: 16, slotSize: 256 })
    const inb = new PacketBatch({ size: 16, slotSize: 512 })
    const peers = new PeerTable(1)
    peers.set(0, LOOPBACK, 0)
    tx.sendFrom(out, peers)
    rx.receiveInto(inb)
    const n = 10
    for (let i = 0; i < n; i++) {
      out.lengths[i] = 20 + i * 3
      for (let j = 0; j < out.lengths[i]; j++) out.slab[out.offsets[i] + j] = (i * 17 + j) & 255
    }
    assert.equal(tx.send(n), n)

    let got = 0
    for (let tries = 0; tries < 50 && got < n; tries++) {
      const k = rx.read()
      for (let i = 0; i < k; i++, got++) {
        const off = inb.offsets[i]
        const len = inb.lengths[i]
        const ihl = (inb.slab[off] & 0x0f) * 4
        assert.equal(inb.slab[off] >> 4, 4, 'outer IPv4')
        assert.equal(inb.slab[off + 9], 4, 'outer protocol 4')
        assert.equal(inb.addrs[i], LOOPBACK)
        assert.equal(len - ihl, out.lengths[got])
        assert.ok(inb.slab.subarray(off + ihl, off + len).equals(out.slab.subarray(out.offsets[got], out.offsets[got] + out.lengths[got])))
      }
      if (got < n) await new Promise((resolve) => setTimeout(resolve, 10)) // a bounded poll (50 x 10 ms) for the n packets, checked as they come
    }
    assert.equal(got, n)
    assert.equal(tx.stats().txSyscalls, 1, 'one sendmmsg for the batch')
  } finally { tx.close(); rx.close() }
})
