// The hot path allocates nothing per packet: 600,000 packets through a real
// VXLAN Pipeline (in-memory TUN, loopback UDP) cause no more young-generation
// garbage collections than the same test loop run without packets.
//
// How: the loop (send a batch into A's TUN, let the event loop turn, drain B's
// TUN) allocates a little per iteration itself (promises, immediates). So the
// test counts GCs over the same number of iterations twice, without and with
// 64 packets each, and allows at most one more: per-packet garbage of even a
// few bytes (600,000 x 4 B = 2.4 MB, more than new space) would add several.
// This test found Buffer#copy from an offset allocating a view per call.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import vm from 'node:vm'
import { Count } from '../../src/dataplane/stats'
import { link, node, udpPacket } from './helpers'
import { gcCounter, tick } from './gc'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

test('600,000 packets through the VXLAN pipeline cause no more garbage collections than the loop without them', { timeout: 120_000 }, async (t) => {
  const a = node('10.244.1.0/24', '02:00:00:00:00:0a', { checkSource: true })
  const b = node('10.244.2.0/24', '02:00:00:00:00:0b', { checkSource: true })
  t.after(() => { a.close(); b.close() })
  link(a, b)
  // 64 packets to B, written once into A's "pod side" batch and sent again and again
  for (let i = 0; i < 64; i++) {
    const p = udpPacket('10.244.1.2', '10.244.2.3', 1000, i)
    p.copy(a.wireTx.slab, a.wireTx.offsets[i])
    a.wireTx.lengths[i] = p.length
  }
  const round = async (batches: number, packets: number): Promise<void> => {
    for (let k = 0; k < batches; k++) {
      if (packets > 0) a.wire.send(packets)
      await tick()
      await tick()
      while (b.wire.read() > 0);
    }
  }
  const gcs = gcCounter(t)
  const counted = async (batches: number, packets: number): Promise<number> => {
    gc()
    await tick()
    gcs.reset()
    await round(batches, packets)
    return gcs.count
  }

  await round(500, 64) // warm up: JIT, inline caches, maps all settled
  const N = 9400
  const start = b.pipeline.stats[Count.OUTSIDE_PACKETS]
  const without = await counted(N, 0)
  const withPackets = await counted(N, 64)
  const packets = b.pipeline.stats[Count.OUTSIDE_PACKETS] - start
  const semi = (v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0) / 2
  t.diagnostic(`${packets} packets; GCs over ${N} loop turns: ${without} without packets, ${withPackets} with (new space ${semi} bytes per semispace)`)
  assert.ok(packets >= 590_000, `${packets} packets crossed`)
  assert.ok(withPackets <= without + 1, `packets added ${withPackets - without} GCs: about ${Math.round(((withPackets - without) * semi) / packets)} bytes per packet`)
})
