// Lease races on a real etcd: 50 managers (separate etcd clients) acquiring
// at once all get distinct subnets; a full network says so clearly.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import pino from 'pino'
import { formatCidr, parseCidr } from '../../src/packet/net'
import { formatCidr6 } from '../../src/packet/net6'
import { networkConfigFromJson } from '../../src/subnet/config'
import type { SubnetRange } from '../../src/lease/allocate'
import { LeaseManager } from '../../src/lease/manager'
import { parseIp4 } from '../../src/packet/ip'
import { EtcdStore } from '../../src/store/etcd/etcd-store'
import { startEtcd } from '../../lab/etcd'
import { captureLogger } from '../helpers/log'
import { toolSkipReason } from '../../lab/skip'

const skip = toolSkipReason('etcd')

async function race (endpoint: string, prefix: string, n: number, range: SubnetRange): Promise<Array<{ lease?: string, code?: string }>> {
  const stores = Array.from({ length: n }, () => new EtcdStore({ endpoints: [endpoint], prefix }))
  try {
    return await Promise.all(stores.map(async (store, i) => {
      const ip = parseIp4(`198.18.1.${i + 1}`)
      const m = new LeaseManager({ store, range, publicIP: ip, attrs: { publicIP: ip, publicIPv6: null, backendType: 'vxlan' }, log: pino({ level: 'silent' }) })
      try {
        return { lease: formatCidr((await m.acquire()).subnet) }
      } catch (err) {
        return { code: (err as { code?: string }).code }
      }
    }))
  } finally {
    await Promise.all(stores.map((s) => s.close()))
  }
}

test('50 lease managers on one etcd, acquiring at once, all get distinct subnets; a full network gives "out of subnets"', { skip, timeout: 120_000 }, async (t) => {
  const etcd = await startEtcd()
  t.after(() => etcd.stop())
  const wide: SubnetRange = { network: parseCidr('10.244.0.0/16'), subnetLen: 24, subnetMin: parseIp4('10.244.1.0'), subnetMax: parseIp4('10.244.255.0') }
  const got = await race(etcd.endpoint, '/race-a', 50, wide)
  assert.deepEqual(got.filter((r) => r.code !== undefined), [])
  assert.equal(new Set(got.map((r) => r.lease)).size, 50)
  const check = new EtcdStore({ endpoints: [etcd.endpoint], prefix: '/race-a' })
  assert.equal((await check.listLeases()).leases.length, 50)
  await check.close()

  const small: SubnetRange = { network: parseCidr('10.9.0.0/25'), subnetLen: 28, subnetMin: parseIp4('10.9.0.16'), subnetMax: parseIp4('10.9.0.112') }
  const full = await race(etcd.endpoint, '/race-b', 10, small)
  assert.equal(full.filter((r) => r.lease !== undefined).length, 7)
  assert.deepEqual(full.filter((r) => r.lease === undefined).map((r) => r.code), ['EOUTOFSUBNETS', 'EOUTOFSUBNETS', 'EOUTOFSUBNETS'])
})

test('dual stack on etcd: managers that all pick the same IPv4 subnet with different IPv6 ones (different keys, each create succeeds) end with distinct subnets in both families', { skip, timeout: 120_000 }, async (t) => {
  const etcd = await startEtcd()
  t.after(() => etcd.stop())
  const range = networkConfigFromJson({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fc00::/48' })
  const n = 8
  const stores = Array.from({ length: n }, () => new EtcdStore({ endpoints: [etcd.endpoint], prefix: '/race-dual' }))
  const logs = captureLogger()
  try {
    const leases = await Promise.all(stores.map(async (store, i) => {
      const ip = parseIp4(`198.18.1.${i + 1}`)
      // draws go IPv4 pick, IPv6 pick, retry jitter: the IPv4 pick always the first free, the IPv6 one this node's own
      let draws = 0
      const random = (): number => (draws++ % 3 === 1 ? (i + 0.5) / n : 0)
      const m = new LeaseManager({ store, range, publicIP: ip, attrs: { publicIP: ip, publicIPv6: `2001:2::${i + 1}`, backendType: 'host-gw' }, log: logs.log, random })
      return await m.acquire()
    }))
    assert.equal(new Set(leases.map((l) => formatCidr(l.subnet))).size, n)
    assert.equal(new Set(leases.map((l) => formatCidr6(l.subnet6!))).size, n)
    const all = (await stores[0].listLeases()).leases
    assert.equal(all.length, n, 'the losers deleted their twins')
    assert.equal(new Set(all.map((l) => formatCidr(l.subnet))).size, n)
    assert.ok(logs.find(/another node leased one of our subnets first/).length > 0, 'the race did produce twin keys')
  } finally {
    await Promise.all(stores.map((s) => s.close()))
  }
})
