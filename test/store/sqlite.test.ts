import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { parseCidr } from '../../src/packet/net'
import { parseCidr6 } from '../../src/packet/net6'
import { parseIp4 } from '../../src/packet/ip'
import { leaseKey } from '../../src/subnet/lease'
import { storeConformance } from './conformance'
import type { StoreHarness } from './conformance'
import { storeConformance6 } from './conformance6'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-sqlite-'))
after(() => fs.rmSync(dir, { recursive: true, force: true }))
let n = 0

const harness: StoreHarness = {
  open: async () => new SqliteStore({ path: path.join(dir, `store-${++n}.db`) }),
  openPeer: async (first) => new SqliteStore({ path: (first as SqliteStore).path }),
  putRaw: async (s, key, value) => { (s as SqliteStore).putRaw(key, value) },
  compact: async (s) => { (s as SqliteStore).compact() },
  minTtlSeconds: 1
}

storeConformance('sqlite store', harness)
storeConformance6('sqlite store', { ...harness, refusesSameSubnetOtherKey: true })

test('a store written before IPv6 (IPv4 keys only) opens as it is and takes dual-stack and IPv6-only keys beside them', async () => {
  const file = path.join(dir, 'old-ipv4.db')
  const old = new SqliteStore({ path: file })
  const a = { publicIP: parseIp4('198.18.0.1'), publicIPv6: null, backendType: 'vxlan' }
  await old.createLease(parseCidr('10.244.1.0/24'), a, 0)
  await old.close()
  const s = new SqliteStore({ path: file })
  try {
    await s.createLease(parseCidr('10.244.2.0/24'), { ...a, publicIPv6: '2001:2::2' }, 600, parseCidr6('fc00:0:0:2::/64'))
    await s.createLease({ ip: 0, prefixLen: 0 }, { ...a, publicIP: 0, publicIPv6: '2001:2::3' }, 600, parseCidr6('fc00:0:0:3::/64'))
    const list = await s.listLeases()
    assert.deepEqual(list.leases.map((l) => leaseKey(l)).sort(), ['0.0.0.0-0&fc00:0:0:3::-64', '10.244.1.0-24', '10.244.2.0-24&fc00:0:0:2::-64'])
    // the IPv4 lease's subnet cannot be taken again under a dual-stack key
    await assert.rejects(s.createLease(parseCidr('10.244.1.0/24'), a, 600, parseCidr6('fc00:0:0:9::/64')), { code: 'EEXIST' })
  } finally {
    await s.close()
  }
})
