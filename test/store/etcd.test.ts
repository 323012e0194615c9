// The conformance suite against a real etcd (Debian's etcd-server): one
// etcd for the file, a fresh key prefix per test.
import { after, before } from 'node:test'
import { Etcd3 } from 'etcd3'
import { EtcdStore } from '../../src/store/etcd/etcd-store'
import { toolSkipReason } from '../../lab/skip'
import { startEtcd } from '../../lab/etcd'
import type { EtcdHandle } from '../../lab/etcd'
import { storeConformance } from './conformance'
import type { StoreHarness } from './conformance'
import { storeConformance6 } from './conformance6'

const skip = toolSkipReason('etcd')
let etcd: EtcdHandle | undefined
let raw: Etcd3 | undefined
let n = 0

before(async () => {
  if (skip !== undefined) return
  etcd = await startEtcd()
  raw = new Etcd3({ hosts: etcd.endpoint })
})

after(async () => {
  raw?.close()
  await etcd?.stop()
})

function need<T> (x: T | undefined): T {
  if (x === undefined) throw new Error('etcd did not start')
  return x
}

const harness: StoreHarness = {
  open: async () => new EtcdStore({ endpoints: [need(etcd).endpoint], prefix: `/weft-test/${process.pid}-${++n}` }),
  openPeer: async (first) => new EtcdStore({ endpoints: [need(etcd).endpoint], prefix: (first as EtcdStore).prefix }),
  putRaw: async (s, key, value) => { await need(raw).put(`${(s as EtcdStore).prefix}/subnets/${key}`).value(value) },
  compact: async () => {
    const r = need(raw)
    const { header } = await r.kv.range({ key: Buffer.from('/') })
    await r.kv.compact({ revision: header.revision, physical: true })
  },
  // etcd raises shorter TTLs to its minimum lease TTL: 2 s with the default
  // 100 ms heartbeat and 1 s election timeout
  minTtlSeconds: 2
}

storeConformance('etcd store', harness, skip)
storeConformance6('etcd store', { ...harness, refusesSameSubnetOtherKey: false }, skip)
