import { MemoryStore } from '../../src/store/memory/memory-store'
import { storeConformance } from './conformance'

storeConformance('memory store', {
  open: async () => new MemoryStore(),
  openPeer: async (first) => first,
  putRaw: async (s, key, value) => { (s as MemoryStore).putRaw(key, value) },
  compact: async (s) => { (s as MemoryStore).compact() },
  minTtlSeconds: 1
})
