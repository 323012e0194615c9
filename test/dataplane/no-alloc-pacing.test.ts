// Paced UDP into the TUN (pacer.ts) allocates nothing per packet either:
// 2,000 backlogs of 150 datagrams, each written as a burst and then in
// pieces after waits (the pacer's arithmetic, TunWrites' ranges, the addon's
// sendRange and wakeAfter), cause no more young-generation garbage
// collections than 2,000 turns of one datagram written at once, and the
// heap does not grow. The clock is the test's, so every turn paces the same.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import vm from 'node:vm'
import { TunWrites } from '../../src/dataplane/tun-writes'
import { UdpPacer } from '../../src/dataplane/pacer'
import { Count, newStats } from '../../src/dataplane/stats'
import { VNET_F_DATA_VALID } from '../../src/native/vnet'
import { packetPair, PacketBatch } from '../../src/native'
import { setUdp4Checksum } from '../../src/packet/udp'
import { udpPacket } from './helpers'
import { gcCounter, tick } from './gc'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

test('300,000 paced datagrams cause no more GCs than one datagram per turn written at once', { timeout: 30_000 }, async (t) => {
  const [tun, wire] = packetPair(64)
  t.after(() => { tun.close(); wire.close() })
  const maxWrites = 512
  const area = 1 << 20
  const slab = Buffer.allocUnsafeSlow(area + TunWrites.headerArea(maxWrites))
  const pieces = new PacketBatch({ size: 1024, slotSize: 1, slab })
  const stats = newStats()
  const clock = new Float64Array(1)
  const now = (): number => clock[0]
  // with a vnet header and USO: runs of 16 datagrams coalesce into super-packets, each paced as a whole
  const writes = new TunWrites(tun, pieces, true, area, maxWrites, stats, VNET_F_DATA_VALID, true, new UdpPacer(), now)
  const rx = new PacketBatch({ size: 64, slotSize: 65600 })
  wire.receiveInto(rx)
  const BACKLOG = 150
  const offsets = new Uint32Array(BACKLOG)
  const lengths = new Uint32Array(BACKLOG)
  for (let i = 0; i < BACKLOG; i++) {
    // 16 datagrams per flow (source port), so that super-packets stay small enough to pace
    const p = udpPacket('10.244.1.2', '10.244.2.3', 1400, i)
    p.writeUInt16BE(40000 + (i >> 4), 20)
    p.writeUInt16BE(0, 26)
    setUdp4Checksum(p, 20, p.length - 20, 0)
    offsets[i] = i * 1536
    lengths[i] = p.length
    p.copy(slab, offsets[i])
  }
  // one turn: `count` datagrams queued, sent, and with a backlog resumed until it is gone
  let datagrams = 0
  const turn = (count: number): void => {
    // restore the first header of each run: closing a run rewrote it for the whole
    for (let i = 0; i < count; i++) {
      slab[offsets[i] + 2] = lengths[i] >> 8
      slab[offsets[i] + 3] = lengths[i] & 255
      slab[offsets[i] + 24] = (lengths[i] - 20) >> 8
      slab[offsets[i] + 25] = (lengths[i] - 20) & 255
    }
    for (let i = 0; i < count; i++) writes.udp(offsets[i], lengths[i])
    writes.send()
    while (wire.read() > 0);
    while (writes.pending > 0) {
      clock[0] += 100
      writes.resume()
      while (wire.read() > 0);
    }
    clock[0] += 20_000 // quiet between backlogs: the bucket is full again
    datagrams += count
  }
  const gcs = gcCounter(t)
  const counted = async (turns: number, count: number): Promise<{ gcs: number, heap: number }> => {
    gc()
    await tick()
    const heap = process.memoryUsage().heapUsed
    gcs.reset()
    for (let k = 0; k < turns; k++) {
      turn(count)
      if ((k & 63) === 0) await tick()
    }
    await tick()
    await tick()
    const n = gcs.count
    gc()
    return { gcs: n, heap: process.memoryUsage().heapUsed - heap }
  }
  // warm up both kinds of turn
  for (let k = 0; k < 300; k++) turn(BACKLOG)
  for (let k = 0; k < 300; k++) turn(1)
  const N = 2000
  await counted(1, 1)
  const without = await counted(N, 1)
  const paced0 = stats[Count.OUTSIDE_PACED]
  const before = datagrams
  const withBacklogs = await counted(N, BACKLOG)
  const paced = stats[Count.OUTSIDE_PACED] - paced0
  const semi = (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 2
  t.diagnostic(`${datagrams - before} datagrams in ${N} backlogs, ${paced} waits; GCs: ${without.gcs} one per turn, ${withBacklogs.gcs} paced; heap after a GC: ${without.heap} B, ${withBacklogs.heap} B (new space ${semi} B per semispace)`)
  assert.ok(paced >= 5 * N, 'every backlog was paced')
  assert.ok(stats[Count.OUTSIDE_SUPER_PACKETS] >= 9 * N, 'in UDP super-packets')
  assert.ok(withBacklogs.gcs <= without.gcs + 1, `backlogs added ${withBacklogs.gcs - without.gcs} GCs`)
  assert.ok(withBacklogs.heap - without.heap < 1 << 20, `the heap grew by ${withBacklogs.heap - without.heap} B more`)
})
