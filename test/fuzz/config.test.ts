// Hostile net-conf.json: the config sits in etcd or a ConfigMap that anyone
// with access can edit. Whatever it holds, the parser returns a config a
// node can run or throws WeftError ECONFIG naming the field: never a
// TypeError or RangeError, never a config the backends then trip over.
// (test/subnet/config.fuzz.test.ts holds the invariants of accepted configs
// and the round trip; this file aims at the right keys with wrong values.)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { WeftError } from '../../src/errors'
import { contains, mask } from '../../src/packet/net'
import { Fdb } from '../../src/dataplane/fdb'
import { formatNetworkConfig, networkConfigFromJson, parseNetworkConfig } from '../../src/subnet/config'
import type { NetworkConfig } from '../../src/subnet/config'
import { budget } from './budget'

/** A config, or ECONFIG with a message that says where; anything else fails the property. */
function parse (run: () => NetworkConfig): NetworkConfig | WeftError {
  try {
    const c = run()
    assert.equal((c.network.ip & ~mask(c.network.prefixLen)) >>> 0, 0)
    assert.ok(c.subnetLen >= c.network.prefixLen + 2 && c.subnetLen <= 30)
    assert.ok(contains(c.network, c.subnetMin) && contains(c.network, c.subnetMax) && c.subnetMin <= c.subnetMax)
    return c
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err
    assert.ok(err instanceof WeftError, `threw ${String(err)}`)
    assert.equal(err.code, 'ECONFIG', err.message)
    assert.match(err.message, /^net-conf: \S/)
    return err
  }
}

// Every key flannel's Config and the backends' option structs have, plus IPv6 ones weft ignores.
const TOP = ['Network', 'SubnetLen', 'SubnetMin', 'SubnetMax', 'EnableIPv4', 'EnableIPv6', 'EnableNFTables', 'Backend', 'IPv6Network', 'IPv6SubnetLen']
const BACKEND = ['Type', 'VNI', 'Port', 'MTU', 'GBP', 'Learning', 'DirectRouting', 'MacPrefix', 'PSK']

/** A key in some casing, as Go's decoder matches them all. */
const cased = (k: string): fc.Arbitrary<string> => fc.constantFrom(k, k.toLowerCase(), k.toUpperCase(), k[0].toLowerCase() + k.slice(1))

/** Values that are mostly plausible for some field, and sometimes anything. */
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('10.244.0.0/16', '10.244.1.0', '0.0.0.0', '1.2.3.4/33', '::1/64', 'vxlan', 'VXLAN', 'udp', 'host-gw', 'ipip', 'wireguard', ''),
  fc.constantFrom(0, 1, -1, 24, 30, 31, 8472, 65535, 65536, 2 ** 24, 2 ** 32, 2 ** 53, 1e308, 0.5, -0),
  fc.boolean(),
  fc.constant(null)
)

const entries = (keys: string[], values: fc.Arbitrary<unknown>): fc.Arbitrary<Record<string, unknown>> =>
  fc.array(fc.tuple(fc.constantFrom(...keys).chain(cased), values), { maxLength: keys.length + 2 })
    .map((kv) => Object.fromEntries(kv))

const backendObject = entries(BACKEND, value)
const VALID = { Network: '10.244.0.0/16', SubnetLen: 24, SubnetMin: '10.244.1.0', SubnetMax: '10.244.200.0', EnableIPv4: true, EnableIPv6: false, EnableNFTables: false }
// random keys alone, or over a valid config (so that the other fields get read at all)
const config = fc.tuple(fc.boolean(), entries(TOP, fc.oneof({ weight: 4, arbitrary: value }, { weight: 1, arbitrary: backendObject })))
  .map(([base, doc]) => base ? { ...VALID, Backend: { Type: 'vxlan' }, ...doc } : doc)

test('the right keys in any case holding any values: a config that runs, or ECONFIG', (t) => {
  let accepted = 0
  let runs = 0
  fc.assert(fc.property(config, (doc) => {
    runs++
    const c = parse(() => parseNetworkConfig(JSON.stringify(doc)))
    if (c instanceof WeftError) return
    accepted++
    // what a node does next with it: format it for the store, cut the network
    // for the Fdb of every backend but host-gw, which must take what the config took
    assert.equal(parseNetworkConfig(formatNetworkConfig(doc)).network.ip, c.network.ip)
    if (c.backend.type !== 'host-gw') void new Fdb({ network: c.network, subnetLen: c.subnetLen, port: 0 })
  }), budget(3000, 3))
  t.diagnostic(`${runs} documents, ${accepted} accepted`)
  assert.ok(accepted > 0, `none of ${runs} accepted`)
})

// A valid config with one field given a value of the wrong JSON type. The
// error must name that field: a person has to find it in a long ConfigMap.
const FIELDS: Array<{ path: string[], type: 'string' | 'integer' | 'boolean' | 'object' }> = [
  { path: ['Network'], type: 'string' },
  { path: ['SubnetLen'], type: 'integer' },
  { path: ['SubnetMin'], type: 'string' },
  { path: ['SubnetMax'], type: 'string' },
  { path: ['EnableIPv4'], type: 'boolean' },
  { path: ['EnableIPv6'], type: 'boolean' },
  { path: ['EnableNFTables'], type: 'boolean' },
  { path: ['Backend'], type: 'object' },
  { path: ['Backend', 'Type'], type: 'string' },
  { path: ['Backend', 'VNI'], type: 'integer' },
  { path: ['Backend', 'Port'], type: 'integer' },
  { path: ['Backend', 'MTU'], type: 'integer' },
  { path: ['Backend', 'GBP'], type: 'boolean' },
  { path: ['Backend', 'DirectRouting'], type: 'boolean' }
]

function hasType (v: unknown, type: string): boolean {
  if (type === 'integer') return typeof v === 'number' && Number.isInteger(v)
  if (type === 'object') return typeof v === 'object' && v !== null && !Array.isArray(v)
  // the JSON types' own names, as typeof gives them (string, number, boolean)
  // eslint-disable-next-line valid-typeof
  return typeof v === type
}

test('a valid config with one field of the wrong type is refused with ECONFIG, naming that field', () => {
  const wrong = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(1.5, '24', 'true', 0, [], {}))
  fc.assert(fc.property(fc.constantFrom(...FIELDS), wrong, fc.constantFrom('vxlan', 'udp', 'ipip', 'host-gw'), (f, v, type) => {
    // null means "default" for Go's bool and integer fields; Backend.Type must be a string for any backend
    fc.pre(!hasType(v, f.type) && !(v === null && (f.type === 'boolean' || f.type === 'integer')))
    if (f.path[0] === 'Backend' && f.path.length === 2 && f.path[1] !== 'Type') {
      // each backend reads only its own options: a wrong VNI means nothing to udp
      const own: Record<string, string[]> = { vxlan: ['VNI', 'Port', 'MTU', 'GBP', 'DirectRouting'], udp: ['Port'], ipip: ['DirectRouting'], 'host-gw': [] }
      fc.pre(own[type].includes(f.path[1]))
    }
    const doc: Record<string, unknown> = { ...VALID, Backend: { Type: type } }
    if (f.path.length === 1) doc[f.path[0]] = v
    else (doc.Backend as Record<string, unknown>)[f.path[1]] = v
    const r = parse(() => parseNetworkConfig(JSON.stringify(doc)))
    assert.ok(r instanceof WeftError, `accepted ${JSON.stringify(doc)}`)
    assert.ok(r.message.includes(f.path.join('.')), `"${r.message}" does not name ${f.path.join('.')}`)
  }), budget(2000, 2))
})

test('any JSON value at all, as text or already parsed: a config that runs, or ECONFIG', () => {
  fc.assert(fc.property(fc.jsonValue(), (v) => {
    parse(() => parseNetworkConfig(JSON.stringify(v)))
    parse(() => networkConfigFromJson(v))
  }), budget(2000, 2))
})
