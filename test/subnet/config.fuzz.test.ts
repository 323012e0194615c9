// The config comes from etcd or a ConfigMap anyone with access can edit, so
// whatever it holds, parsing either returns a config that satisfies
// flannel's invariants or throws WeftError ECONFIG: never a TypeError, never
// a config that would lease a subnet outside the Network.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { WeftError } from '../../src/errors'
import { contains, formatCidr, mask, size } from '../../src/packet/net'
import { ip4ToString } from '../../src/packet/ip'
import { MAX_TABLE_SUBNETS, candidateSubnets, formatNetworkConfig, networkConfigFromJson, parseNetworkConfig, subnetCount } from '../../src/subnet/config'
import type { NetworkConfig } from '../../src/subnet/config'

const RUNS = { numRuns: 2000 }

/** Parse, and hold the result to the invariants; a rejection must be ECONFIG. */
function check (parse: () => NetworkConfig): NetworkConfig | undefined {
  let c: NetworkConfig
  try {
    c = parse()
  } catch (err) {
    if (!(err instanceof WeftError) || err.code !== 'ECONFIG') throw err
    assert.match(err.message, /^net-conf: \S/)
    return undefined
  }
  if (!c.enableIPv4) {
    // IPv6-only: the IPv4 half empty, the IPv6 one within its network
    assert.ok(c.enableIPv6 && c.ipv6Network !== undefined && c.ipv6SubnetMin !== undefined && c.ipv6SubnetMax !== undefined)
    assert.deepEqual([c.network, c.subnetLen], [{ ip: 0, prefixLen: 0 }, 0])
    assert.ok(c.ipv6SubnetMin <= c.ipv6SubnetMax)
    return c
  }
  const { network: n, subnetLen, subnetMin: min, subnetMax: max } = c
  assert.ok(n.prefixLen >= 1 && n.prefixLen <= 28, `prefix ${n.prefixLen}`)
  assert.equal((n.ip & ~mask(n.prefixLen)) >>> 0, 0, 'Network has host bits set')
  assert.ok(Number.isInteger(subnetLen) && subnetLen >= n.prefixLen + 2 && subnetLen <= 30, `SubnetLen ${subnetLen} for /${n.prefixLen}`)
  assert.ok(min <= max, `min ${ip4ToString(min)} > max ${ip4ToString(max)}`)
  for (const a of [min, max]) {
    assert.ok(Number.isInteger(a) && a >= 0 && a <= 0xffffffff)
    assert.ok(contains(n, a), `${ip4ToString(a)} outside ${formatCidr(n)}`)
    assert.equal(a % size(subnetLen), 0, `${ip4ToString(a)} not aligned to /${subnetLen}`)
  }
  assert.ok(subnetCount(c) >= 1)
  return c
}

// A valid config, with each optional field present or not.
const validConfig = fc.integer({ min: 1, max: 28 }).chain((prefix) => fc.record({
  Network: fc.integer({ min: 0, max: 0xffffffff }).map((ip) => `${ip4ToString(ip)}/${prefix}`),
  SubnetLen: fc.integer({ min: prefix + 2, max: 30 }),
  EnableNFTables: fc.boolean(),
  Backend: fc.oneof(
    fc.record({ Type: fc.constantFrom('vxlan', 'VXLAN'), VNI: fc.integer({ min: 1, max: 0xffffff }), Port: fc.integer({ min: 0, max: 65535 }), DirectRouting: fc.boolean() }, { requiredKeys: ['Type'] }),
    fc.record({ Type: fc.constant('udp'), Port: fc.integer({ min: 1, max: 65535 }) }, { requiredKeys: ['Type'] }),
    fc.record({ Type: fc.constantFrom('ipip', 'host-gw') })
  )
}, { requiredKeys: ['Network'] }))

test('any JSON document: a valid config or ECONFIG, nothing else', () => {
  fc.assert(fc.property(fc.json(), (text) => { check(() => parseNetworkConfig(text)) }), RUNS)
})

test('any JS value: a valid config or ECONFIG, nothing else', () => {
  fc.assert(fc.property(fc.anything({ withNullPrototype: true, withBigInt: true, withBoxedValues: true, withMap: true, withSet: true, withDate: true, withTypedArray: true, withSparseArray: true }), (v) => {
    check(() => networkConfigFromJson(v))
  }), RUNS)
})

test('any text: a valid config or ECONFIG, and broken JSON reports where', () => {
  fc.assert(fc.property(fc.string({ unit: 'binary' }), (text) => {
    check(() => parseNetworkConfig(text))
    let isJson = true
    try { JSON.parse(text) } catch { isJson = false }
    if (!isJson) assert.throws(() => parseNetworkConfig(text), /not valid JSON: .*\(line \d+, column \d+, offset \d+\)$/)
  }), RUNS)
})

/** Within weft's peer table (MAX_TABLE_SUBNETS), which limits every backend but host-gw. */
function fitsTable (doc: { Network: string, SubnetLen?: number, Backend?: { Type: string } }): boolean {
  const prefix = Number(doc.Network.split('/')[1])
  const len = doc.SubnetLen ?? (prefix <= 22 ? 24 : prefix + 2)
  return doc.Backend?.Type === 'host-gw' || 2 ** (len - prefix) <= MAX_TABLE_SUBNETS
}

test('valid configs are accepted, and formatNetworkConfig reads back to the same config', () => {
  fc.assert(fc.property(validConfig, (doc) => {
    fc.pre(fitsTable(doc))
    const c = check(() => networkConfigFromJson(doc))
    assert.ok(c !== undefined, `rejected ${JSON.stringify(doc)}`)
    const again = parseNetworkConfig(formatNetworkConfig(doc))
    assert.deepEqual({ ...again, raw: null, backendDefaulted: false }, { ...c, raw: null, backendDefaulted: false })
  }), RUNS)
})

// Mutations a person (or a bad script) makes: a key in another case, a key
// gone, a value swapped for anything at all, a stray key, inside Backend too.
const mutation = fc.oneof(
  fc.record({ op: fc.constant('case' as const), seed: fc.nat() }),
  fc.record({ op: fc.constant('delete' as const), seed: fc.nat() }),
  fc.record({ op: fc.constant('replace' as const), seed: fc.nat(), value: fc.jsonValue() }),
  fc.record({ op: fc.constant('number' as const), seed: fc.nat(), value: fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, 31, 2 ** 32, 2 ** 53, -0)) }),
  fc.record({ op: fc.constant('address' as const), seed: fc.nat(), value: fc.integer({ min: 0, max: 0xffffffff }) }),
  fc.record({ op: fc.constant('add' as const), key: fc.constantFrom('SubnetMin', 'SubnetMax', 'subnetlen', 'EnableIPv6', 'enableipv4', 'Backend', 'Type', 'VNI', 'MTU', 'Port', 'x'), value: fc.jsonValue() })
)

interface Mutation { op: string, seed?: number, value?: unknown, key?: string }

function mutate (doc: Record<string, unknown>, m: Mutation): void {
  // half the time, work on the Backend object when there is one
  const target = typeof doc.Backend === 'object' && doc.Backend !== null && ((m.seed ?? 0) & 1) === 1 ? doc.Backend as Record<string, unknown> : doc
  const keys = Object.keys(target)
  if (m.op === 'add') { target[m.key as string] = m.value; return }
  if (keys.length === 0) return
  const k = keys[(m.seed ?? 0) % keys.length]
  const v = target[k]
  delete target[k]
  switch (m.op) {
    case 'case': target[(m.seed ?? 0) & 2 ? k.toUpperCase() : k.toLowerCase()] = v; break
    case 'delete': break
    case 'address': target[k] = ip4ToString(m.value as number); break
    default: target[k] = m.value
  }
}

test('mutated valid configs: a valid config or ECONFIG, nothing else', () => {
  fc.assert(fc.property(validConfig, fc.array(mutation, { minLength: 1, maxLength: 4 }), (doc, ms) => {
    const d = structuredClone(doc) as Record<string, unknown>
    for (const m of ms) mutate(d, m)
    const text = JSON.stringify(d)
    const c = check(() => parseNetworkConfig(text))
    if (c !== undefined) {
      // every accepted config also formats and reads back; formatted as the
      // JSON it was read from (where a mutated Infinity has become null)
      assert.equal(formatCidr(parseNetworkConfig(formatNetworkConfig(JSON.parse(text))).network), formatCidr(c.network))
    }
  }), RUNS)
})

test('candidateSubnets yields exactly subnetCount aligned subnets inside the Network', () => {
  fc.assert(fc.property(fc.integer({ min: 14, max: 28 }), fc.integer({ min: 0, max: 0xffffffff }), (prefix, ip) => {
    const c = parseNetworkConfig(JSON.stringify({ Network: `${ip4ToString(ip)}/${prefix}`, SubnetLen: Math.min(30, prefix + 2 + (ip % 3)) }))
    let n = 0
    let prev = -1
    for (const s of candidateSubnets(c)) {
      assert.equal(s.prefixLen, c.subnetLen)
      assert.ok(contains(c.network, s.ip) && s.ip > prev && s.ip % size(c.subnetLen) === 0)
      prev = s.ip
      n++
    }
    assert.equal(n, subnetCount(c))
    assert.equal(prev, c.subnetMax)
  }), { numRuns: 300 })
})
