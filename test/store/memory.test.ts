import { MemoryStore } from '../../src/store/memory/memory-store'
import { storeConformance } from './conformance'
import type { StoreHarness } from './conformance'
import { storeConformance6 } from './conformance6'

const harness: StoreHarness = {
  open: async () => new MemoryStore(),
  openPeer: async (first) => first,
  putRaw: async (s, key, value) => { (s as MemoryStore).putRaw(key, value) },
  compact: async (s) => { (s as MemoryStore).compact() },
  minTtlSeconds: 1
}

storeConformance('memory store', harness)
storeConformance6('memory store', { ...harness, refusesSameSubnetOtherKey: true })
