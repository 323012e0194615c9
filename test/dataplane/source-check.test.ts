// The inner-source check on the way in: a peer may send its own pods'
// traffic, its own host's and traffic from outside the network, but not
// packets claiming to come from another node's pods, from our own pods or
// from one of our addresses (issue 17, item 4). Two pipelines on loopback.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseCidr } from '../../src/packet/net'
import { Count, Drop } from '../../src/dataplane/stats'
import { parseIp4 } from '../../src/packet/ip'
import { waitFor } from '../../lab/wait'
import { collect, inject, link, node, udpPacket } from './helpers'

const MAC_A = '02:00:00:00:00:0a'
const MAC_B = '02:00:00:00:00:0b'

const pass = [
  ['its own pod', '10.244.2.3'],
  ['its own host\'s address in the overlay', '10.244.2.0'],
  ['outside the network (external traffic it forwards, its host)', '203.0.113.7']
] as const
const spoofed = [
  ['another node\'s pod', '10.244.3.5'],
  ['one of our own pods', '10.244.1.9'],
  ['a subnet nobody holds', '10.244.77.1'],
  ['one of our host\'s addresses', '198.18.0.1'],
  ['loopback', '127.0.0.1']
] as const

for (const on of [true, false]) {
  test(on
    ? 'with the source check, a peer\'s packets from its own pods, its host and outside the network reach our pods; inner sources it does not hold are dropped and counted as spoofed_source'
    : 'with --source-check off, every inner source passes, as with flanneld', async (t) => {
    const a = node('10.244.1.0/24', MAC_A, { checkSource: on })
    const b = node('10.244.2.0/24', MAC_B)
    t.after(() => { a.close(); b.close() })
    link(a, b)
    // a third node, elsewhere, holds 10.244.3.0/24
    a.fdb.set(parseCidr('10.244.3.0/24'), parseIp4('198.18.0.3'), Buffer.from('020000000003', 'hex'), 8472)
    a.pipeline.setLocalAddresses([parseIp4('198.18.0.1')])
    const packets = [...pass, ...spoofed].map(([, src], i) => udpPacket(src, '10.244.1.2', 40, i + 1))
    inject(b, packets)
    const want = on ? pass.length : packets.length
    const got = await collect(a, want)
    assert.equal(got.length, want)
    if (on) {
      await waitFor(() => a.pipeline.stats[Drop.SPOOFED_SOURCE] === spoofed.length, { what: `${spoofed.length} spoofed_source drops (have ${a.pipeline.stats[Drop.SPOOFED_SOURCE]})` })
      assert.deepEqual(got.map((p) => p.readUInt16BE(4)), pass.map((_, i) => i + 1), `what passed: ${pass.map(([why]) => why).join('; ')}`)
      assert.equal(a.pipeline.outside.spoofSenders[0], parseIp4('127.0.0.1') >>> 0, 'the sender is remembered for the log')
    } else {
      assert.equal(a.pipeline.stats[Drop.SPOOFED_SOURCE], 0)
    }
    assert.equal(a.pipeline.stats[Count.OUTSIDE_PACKETS], want)
  })
}

test('a lease that borrows the sender\'s address makes its subnet the sender\'s too: nothing real is dropped while the conflict lasts', async (t) => {
  const a = node('10.244.1.0/24', MAC_A, { checkSource: true })
  const b = node('10.244.2.0/24', MAC_B)
  t.after(() => { a.close(); b.close() })
  link(a, b)
  const bogus = parseCidr('10.244.200.0/24')
  a.fdb.set(bogus, a.fdb.publicIPs[a.fdb.source(parseIp4('127.0.0.1'))], Buffer.from('0200000000c8', 'hex'), b.port)
  inject(b, [udpPacket('10.244.2.3', '10.244.1.2', 40, 1), udpPacket('10.244.200.3', '10.244.1.2', 40, 2)])
  assert.equal((await collect(a, 2)).length, 2)
  a.fdb.delete(bogus)
  inject(b, [udpPacket('10.244.2.3', '10.244.1.2', 40, 3), udpPacket('10.244.200.3', '10.244.1.2', 40, 4)])
  const got = await collect(a, 1)
  assert.deepEqual(got.map((p) => p.readUInt16BE(4)), [3], 'the real peer\'s packet passes; the borrowed subnet is gone with its lease')
  await waitFor(() => a.pipeline.stats[Drop.SPOOFED_SOURCE] === 1, { what: 'one spoofed_source drop' })
  assert.equal(a.pipeline.stats[Drop.UNKNOWN_SOURCE], 0, 'the sender was never unknown')
})
