import { after } from 'node:test'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { storeConformance } from './conformance'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-sqlite-'))
after(() => fs.rmSync(dir, { recursive: true, force: true }))
let n = 0

storeConformance('sqlite store', {
  open: async () => new SqliteStore({ path: path.join(dir, `store-${++n}.db`) }),
  openPeer: async (first) => new SqliteStore({ path: (first as SqliteStore).path }),
  putRaw: async (s, key, value) => { (s as SqliteStore).putRaw(key, value) },
  compact: async (s) => { (s as SqliteStore).compact() },
  minTtlSeconds: 1
})
