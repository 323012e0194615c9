// Receiver indices (random, unique, never 0) and key slots (lowest free
// first, reused): the typed-array lookup agrees with a Map through random
// insertions and removals, and allocates nothing.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import vm from 'node:vm'
import { IndexTable } from '../../src/wireguard/index-table'
import { gcCounter } from '../dataplane/gc'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

interface Kp { n: number }

test('indices are unique and belong to their peer; slots are handed out lowest first and reused', () => {
  const t = new IndexTable<string, Kp>(4)
  const ids = new Set<number>()
  for (let i = 0; i < 1000; i++) ids.add(t.newIndex('p'))
  assert.equal(ids.size, 1000)
  assert.ok(!ids.has(0))
  const [i1, i2, i3] = [...ids]
  assert.equal(t.peerOf(i1!), 'p')
  assert.equal(t.slotOf(i1!), -1, 'a handshake index has no slot')
  assert.equal(t.attachKeypair(i1!, { n: 1 }), 0)
  assert.equal(t.attachKeypair(i2!, { n: 2 }), 1)
  assert.equal(t.attachKeypair(i2!, { n: 2 }), -1, 'once per index')
  assert.equal(t.attachKeypair(12345 + 0x7000_0000, { n: 9 }), -1, 'unknown index')
  assert.equal(t.slotOf(i2!), 1)
  assert.deepEqual(t.keypairAt(1), { n: 2 })
  t.remove(i1!)
  assert.equal(t.slotOf(i1!), -1)
  assert.equal(t.peerOf(i1!), undefined)
  assert.equal(t.keypairAt(0), undefined)
  assert.equal(t.attachKeypair(i3!, { n: 3 }), 0, 'slot 0 reused')
  t.remove(i1!) // twice: ignored
  assert.equal(t.freeSlotCount, 2)
})

test('out of slots: attachKeypair says -1 and nothing changes', () => {
  const t = new IndexTable<string, Kp>(1)
  const a = t.newIndex('a')
  const b = t.newIndex('b')
  assert.equal(t.attachKeypair(a, { n: 1 }), 0)
  assert.equal(t.attachKeypair(b, { n: 2 }), -1)
  assert.equal(t.slotOf(b), -1)
  assert.equal(t.peerOf(b), 'b')
})

test('the hot lookup agrees with a Map through 200,000 random attaches and removes (probe runs and backward shifts included)', () => {
  const slots = 64
  const t = new IndexTable<number, Kp>(slots)
  const model = new Map<number, number>()
  const live: number[] = []
  let seed = 7
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed % n
  }
  for (let step = 0; step < 200_000; step++) {
    if (live.length < slots && rand(2) === 0) {
      const i = t.newIndex(0)
      const s = t.attachKeypair(i, { n: i })
      assert.ok(s >= 0)
      model.set(i, s)
      live.push(i)
    } else if (live.length > 0) {
      const k = rand(live.length)
      const i = live[k]!
      live[k] = live[live.length - 1]!
      live.pop()
      t.remove(i)
      model.delete(i)
    }
    if (step % 97 === 0) {
      for (const [i, s] of model) assert.equal(t.slotOf(i), s)
      const stranger = rand(0xffff_ffff) + 1
      if (!model.has(stranger)) assert.equal(t.slotOf(stranger), -1)
      assert.equal(t.freeSlotCount, slots - model.size)
    }
  }
})

test('slotOf and keypairAt allocate nothing: 5 million lookups cause no garbage collection', (t) => {
  const table = new IndexTable<string, Kp>(3072)
  const indices: number[] = []
  for (let i = 0; i < 3000; i++) {
    const idx = table.newIndex('p')
    table.attachKeypair(idx, { n: i })
    indices.push(idx)
  }
  const probe = Uint32Array.from(indices)
  const gcs = gcCounter(t)
  gc()
  gcs.reset()
  let sum = 0
  for (let k = 0; k < 5_000_000; k++) {
    const s = table.slotOf(probe[k % 3000]!)
    sum += table.keypairAt(s)!.n
    sum += table.slotOf(k) // mostly misses
  }
  assert.ok(sum > 0)
  assert.ok(gcs.count <= 1, `${gcs.count} GCs`)
})
