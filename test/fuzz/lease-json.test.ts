// Hostile lease entries: every node reads every other node's lease from the
// store, so one written by a broken or hostile client must cost that entry
// only. The value decoder returns attributes or throws WeftError ELEASEVALUE;
// the store's entry decoder turns anything into a Lease or a Skipped entry
// with a reason, never an exception; what it accepts re-encodes as flannel
// would write it; and the VXLAN backend's reading of BackendData copes with
// whatever the decoder let through.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { WeftError } from '../../src/errors'
import { mask, subnetKey } from '../../src/packet/net'
import { decodeLeaseAttrs, encodeLeaseAttrs } from '../../src/subnet/lease-json'
import type { Lease, LeaseAttrs } from '../../src/subnet/lease'
import { ip4ToString } from '../../src/packet/ip'
import { isSkipped, leaseFromEntry } from '../../src/store/decode'
import { peerMac } from '../../src/backend/vxlan/peer-mac'
import { budget } from './budget'

/** Attributes, or ELEASEVALUE; anything else fails the property. */
function decode (text: string): LeaseAttrs | WeftError {
  let a: LeaseAttrs
  try {
    a = decodeLeaseAttrs(text)
  } catch (err) {
    assert.ok(err instanceof WeftError, `threw ${String(err)}`)
    assert.equal(err.code, 'ELEASEVALUE', err.message)
    assert.match(err.message, /^lease /)
    return err
  }
  assert.ok(Number.isInteger(a.publicIP) && a.publicIP >= 0 && a.publicIP <= 0xffffffff, `publicIP ${a.publicIP}`)
  assert.ok(a.publicIPv6 === null || typeof a.publicIPv6 === 'string')
  assert.equal(typeof a.backendType, 'string')
  return a
}

const KEYS = ['PublicIP', 'PublicIPv6', 'BackendType', 'BackendData', 'BackendV6Data']
const cased = (k: string): fc.Arbitrary<string> => fc.constantFrom(k, k.toLowerCase(), k.toUpperCase())
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':'))
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('198.18.0.1', '0.0.0.0', '255.255.255.255', '198.18.0.256', '198.018.0.1', ' 198.18.0.1', 'fc00::1', 'vxlan', 'udp', '', null),
  fc.record({ VNI: fc.oneof(fc.constant(1), fc.jsonValue()), VtepMAC: fc.oneof(mac, fc.jsonValue()) }, { requiredKeys: [] })
)
const document = fc.array(fc.tuple(fc.constantFrom(...KEYS).chain(cased), value), { maxLength: 7 }).map((kv) => Object.fromEntries(kv))

/** What flannel writes for a vxlan node. */
const flannelLease = fc.record({
  publicIP: fc.integer({ min: 0, max: 0xffffffff }),
  publicIPv6: fc.constant(null),
  backendType: fc.constantFrom('vxlan', 'ipip', 'host-gw', ''),
  backendData: fc.option(fc.record({ VNI: fc.integer({ min: 1, max: 0xffffff }), VtepMAC: mac }), { nil: undefined })
}, { requiredKeys: ['publicIP', 'publicIPv6', 'backendType'] })

test('lease values with the right keys in any case holding any values: attributes, or ELEASEVALUE', () => {
  fc.assert(fc.property(document, (doc) => {
    const a = decode(JSON.stringify(doc))
    if (a instanceof WeftError) return
    // what weft writes back for it decodes to the same
    assert.deepEqual(decode(encodeLeaseAttrs(a)), a)
    // the VXLAN backend's reading of it: a MAC or a reason, nothing thrown
    const m = peerMac({ subnet: { ip: 0x0af40100, prefixLen: 24 }, attrs: a, expiration: null, revision: 1 })
    assert.ok(typeof m === 'string' ? /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(m) : m.reason.length > 0)
  }), budget(3000, 2))
})

test('any text as a lease value: attributes, or ELEASEVALUE', () => {
  fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
    decode(text)
  }), budget(3000, 2))
})

test('flannel\'s lease values decode to what was written, and re-encode byte for byte', () => {
  fc.assert(fc.property(flannelLease, (l) => {
    const text = encodeLeaseAttrs(l)
    assert.equal(text, flannelJson(l))
    const a = decode(text)
    assert.ok(!(a instanceof WeftError))
    assert.deepEqual(a, JSON.parse(JSON.stringify(l))) // (fast-check's records may have no prototype)
  }), budget(1000, 1))
})

/** Go's json.Marshal of lease.LeaseAttrs, written out by hand. */
function flannelJson (l: LeaseAttrs): string {
  const parts = [`"PublicIP":"${ip4ToString(l.publicIP)}"`, '"PublicIPv6":null']
  if (l.backendType !== '') parts.push(`"BackendType":"${l.backendType}"`)
  const d = l.backendData as { VNI: number, VtepMAC: string } | undefined
  if (d !== undefined) parts.push(`"BackendData":{"VNI":${d.VNI},"VtepMAC":"${d.VtepMAC}"}`)
  return `{${parts.join(',')}}`
}

// Store keys as they come: flannel's form, near misses, anything.
const key = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 40 })).map(([ip, len]) => `${ip4ToString(ip)}-${len}`),
  fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 8, max: 30 })).map(([ip, len]) => subnetKey({ ip: (ip & mask(len)) >>> 0, prefixLen: len })),
  fc.constantFrom('10.244.1.0-24&fc00:0:0:1::-64', '0.0.0.0-0&fc00::-64', '10.244.1.0-24&fc00::1-64', '10.244.1.0-24&FC00::-64', '10.244.1.0/24', '10.244.1.0-24 ', '010.244.1.0-24', '10.244.1.0-', '-24', ''),
  fc.string()
)

test('any store entry: a lease for a real subnet, or skipped with a reason; never an exception', () => {
  let leases = 0
  fc.assert(fc.property(key, fc.oneof(document.map((d) => JSON.stringify(d)), fc.string()), (k, v) => {
    const l = leaseFromEntry(k, v, null, 1)
    if (isSkipped(l)) {
      assert.equal(l.key, k)
      assert.ok(l.reason.length > 0)
      return
    }
    leases++
    const { ip, prefixLen } = (l as Lease).subnet
    assert.ok(Number.isInteger(prefixLen) && prefixLen >= 0 && prefixLen <= 32)
    assert.equal((ip & ~mask(prefixLen)) >>> 0, 0, `${k}: host bits set in a lease's subnet`)
    const s6 = (l as Lease).subnet6
    if (s6 !== undefined) assert.equal(s6.ip & ((1n << BigInt(128 - s6.prefixLen)) - 1n), 0n, `${k}: host bits set in a lease's IPv6 subnet`)
  }), budget(3000, 2))
  assert.ok(leases > 0)
})
