// The IPv6 peer table (src/dataplane/fdb6.ts): lookups straight from packet
// bytes (the slot bits between the network's prefix and the subnet length,
// wherever they fall in the address's words), boundaries, the sender table
// over four words, the inner-source check and several claimants of one
// PublicIPv6, each against a plain bigint reference.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Fdb6 } from '../../src/dataplane/fdb6'
import { contains6, ip6Bytes, ip6Words, mask6, parseCidr6, parseIp6 } from '../../src/packet/net6'
import type { Ip6Net } from '../../src/packet/net6'

const ADDR = parseIp6('2001:2::2')
const ELSEWHERE = parseIp6('2001:2::3')

/** A packet's worth of bytes with `dst` at 24 and `src` at 8. */
function pkt (dst: bigint, src = 0n): Buffer {
  const b = Buffer.alloc(40)
  b[0] = 0x60
  ip6Bytes(src).copy(b, 8)
  ip6Bytes(dst).copy(b, 24)
  return b
}

function words (ip: bigint): Uint32Array {
  return Uint32Array.from(ip6Words(ip))
}

/** The n-th /subnetLen of the network. */
function nth (net: Ip6Net, subnetLen: number, n: bigint): Ip6Net {
  return { ip: (net.ip & mask6(net.prefixLen)) | (n << BigInt(128 - subnetLen)), prefixLen: subnetLen }
}

for (const [network, subnetLen, why] of [
  ['fc00::/48', 64, 'the slot bits are the low half of word 1'],
  ['fc00:0:0:ff00::/56', 64, 'eight bits inside word 1'],
  ['fc00::/20', 42, '22 bits straddling words 0 and 1'],
  ['fc00:0:0:1::/58', 80, '22 bits straddling words 1 and 2'],
  ['fc00::1:0:0/90', 112, '22 bits straddling words 2 and 3'],
  ['fc00::ab00/120', 128, 'the last byte (window clipped to word 3)'],
  ['fc00::/64', 64, 'one subnet: no slot bits at all'],
  ['fc00::/3', 25, '22 bits from bit 3']
] as const) {
  test(`lookup ${network} into /${subnetLen} (${why}): first, last and random subnets, and addresses outside`, () => {
    const net = parseCidr6(network)
    const bits = subnetLen - net.prefixLen
    const fdb = new Fdb6({ network: net, subnetLen, port: 8472, capacity: 64 })
    const last = (1n << BigInt(bits)) - 1n
    const first = fdb.set(nth(net, subnetLen, 0n), ADDR, undefined)
    const lastI = last === 0n ? first : fdb.set(nth(net, subnetLen, last), ELSEWHERE, undefined)
    const host = (sn: Ip6Net, h: bigint): bigint => sn.ip | (h & ~mask6(sn.prefixLen) & ((1n << 128n) - 1n))
    assert.equal(fdb.lookupAt(pkt(host(nth(net, subnetLen, 0n), 1n)), 0), first)
    assert.equal(fdb.lookupAt(pkt(host(nth(net, subnetLen, last), (1n << 128n) - 1n)), 0), lastI, 'last address of the last subnet')
    if (last > 1n) assert.equal(fdb.lookupAt(pkt(nth(net, subnetLen, 1n).ip), 0), -1, 'a subnet without a lease')
    // just outside the network, on either side
    const below = (net.ip & mask6(net.prefixLen)) - 1n
    const above = (net.ip & mask6(net.prefixLen)) + (1n << BigInt(128 - net.prefixLen))
    if (below >= 0n) assert.equal(fdb.lookupAt(pkt(below), 0), -1)
    if (above < (1n << 128n)) assert.equal(fdb.lookupAt(pkt(above), 0), -1)
    // random subnets and hosts, against contains6
    const placed = new Map<bigint, number>()
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: last }), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (n, h) => {
      const sn = nth(net, subnetLen, n)
      let i = placed.get(n)
      if (i === undefined && placed.size < 40 && n !== 0n && n !== last) {
        i = fdb.set(sn, ADDR + n, undefined)
        placed.set(n, i)
      }
      const want = n === 0n ? first : n === last ? lastI : (i ?? -1)
      const dst = host(sn, h)
      assert.ok(contains6(sn, dst))
      assert.equal(fdb.lookupAt(pkt(dst), 0), want)
      // at an offset inside a larger slab
      const slab = Buffer.alloc(200)
      pkt(dst).copy(slab, 77)
      assert.equal(fdb.lookupAt(slab, 77), want)
    }), { numRuns: 300 })
  })
}

test('set writes the peer table (four words and the port; port 0 = the table\'s), delete clears it, entries and MACs', () => {
  const net = parseCidr6('fc00::/48')
  const fdb = new Fdb6({ network: net, subnetLen: 64, port: 8472, capacity: 8 })
  const mac = Buffer.from([2, 0, 0, 0, 0, 9])
  const i = fdb.set(parseCidr6('fc00:0:0:5::/64'), ADDR, mac, 0, true)
  assert.deepEqual([...fdb.addrs.table.subarray(i * 5, i * 5 + 5)], [...ip6Words(ADDR), 8472])
  assert.deepEqual([...fdb.macs.subarray(i * 6, i * 6 + 6)], [...mac])
  assert.equal(fdb.remCsum[i], 1)
  assert.equal(fdb.rcoFrom[i], 1)
  const j = fdb.set(parseCidr6('fc00:0:0:6::/64'), ELSEWHERE, undefined, 9999)
  assert.equal(fdb.addrs.table[j * 5 + 4], 9999)
  assert.deepEqual(fdb.entries().map((e) => [e.index, e.publicIP, e.mac, e.remCsum]), [[i, ADDR, '02:00:00:00:00:09', true], [j, ELSEWHERE, undefined, false]])
  assert.equal(fdb.delete(parseCidr6('fc00:0:0:5::/64')), true)
  assert.equal(fdb.delete(parseCidr6('fc00:0:0:5::/64')), false)
  assert.deepEqual([...fdb.addrs.table.subarray(i * 5, i * 5 + 5)], [0, 0, 0, 0, 0])
  assert.equal(fdb.sourceWords(words(ADDR), 0), -1)
  assert.equal(fdb.size, 1)
  assert.throws(() => fdb.set(parseCidr6('fc01::/64'), ADDR, undefined), { code: 'EFDB' }, 'not in the network')
  assert.throws(() => fdb.set(parseCidr6('fc00::/56'), ADDR, undefined), { code: 'EFDB' }, 'not a /64')
  assert.throws(() => fdb.set({ ip: parseIp6('fc00:0:0:7::1'), prefixLen: 64 }, ADDR, undefined), { code: 'EFDB' }, 'host bits set')
  assert.throws(() => new Fdb6({ network: parseCidr6('fc00::/32'), subnetLen: 64, port: 1 }), { code: 'ECONFIG' }, 'more subnets than the table holds')
})

test('a full table refuses with EFDBFULL and keeps working', () => {
  const fdb = new Fdb6({ network: parseCidr6('fc00::/48'), subnetLen: 64, port: 8472, capacity: 2 })
  fdb.set(parseCidr6('fc00:0:0:1::/64'), ADDR, undefined)
  fdb.set(parseCidr6('fc00:0:0:2::/64'), ADDR, undefined)
  assert.throws(() => fdb.set(parseCidr6('fc00:0:0:3::/64'), ADDR, undefined), { code: 'EFDBFULL' })
  fdb.delete(parseCidr6('fc00:0:0:1::/64'))
  assert.equal(fdb.set(parseCidr6('fc00:0:0:3::/64'), ADDR, undefined), 0)
})

test('the sender table: many addresses, each found by its words; several claimants as Fdb keeps them; the inner-source check', () => {
  const fdb = new Fdb6({ network: parseCidr6('fc00::/48'), subnetLen: 64, port: 8472, capacity: 512 })
  const peers: Array<[bigint, number]> = []
  for (let n = 1; n <= 400; n++) {
    const pub = parseIp6('2001:2::') + BigInt(n) * 0x10001n
    peers.push([pub, fdb.set(nth(parseCidr6('fc00::/48'), 64, BigInt(n)), pub, undefined)])
  }
  for (const [pub, i] of peers) assert.equal(fdb.sourceWords(words(pub), 0), i)
  assert.equal(fdb.sourceWords(words(parseIp6('2001:2::ffff:1')), 0), -1)
  const rx = new Uint32Array(12)
  rx.set(ip6Words(peers[7][0]), 8)
  assert.equal(fdb.sourceWords(rx, 8), peers[7][1], 'at an offset, as rx.addrs6 holds entry i at 4i')
  // claimants
  const real = fdb.set(parseCidr6('fc00:0:0:1000::/64'), ADDR, undefined, 0, true)
  const bogus = fdb.set(parseCidr6('fc00:0:0:2000::/64'), ADDR, undefined)
  assert.equal(fdb.sourceWords(words(ADDR), 0), real)
  assert.equal(fdb.claimants(ADDR), 2)
  assert.deepEqual(fdb.conflicts(), [{ publicIP: ADDR, subnets: [parseCidr6('fc00:0:0:1000::/64'), parseCidr6('fc00:0:0:2000::/64')] }])
  assert.equal(fdb.rcoFrom[real], 1, 'RCO if any claimant asked')
  // either claimant's subnet may be the inner source of a datagram from the address
  assert.equal(fdb.sourceHolds(pkt(0n, parseIp6('fc00:0:0:2000::5')), 8, real), 1)
  assert.equal(fdb.sourceHolds(pkt(0n, parseIp6('fc00:0:0:1000::5')), 8, real), 1)
  assert.equal(fdb.sourceHolds(pkt(0n, parseIp6('fc00:0:0:1::5')), 8, real), 0, 'another peer\'s subnet')
  assert.equal(fdb.sourceHolds(pkt(0n, parseIp6('fc00:0:0:ffff::5')), 8, real), 0, 'a subnet nobody holds')
  assert.equal(fdb.sourceHolds(pkt(0n, parseIp6('2001:db8::1')), 8, real), -1, 'outside the network')
  fdb.delete(parseCidr6('fc00:0:0:1000::/64'))
  assert.equal(fdb.sourceWords(words(ADDR), 0), bogus, 'the next claimant answers')
  assert.equal(fdb.rcoFrom[bogus], 0)
  fdb.set(parseCidr6('fc00:0:0:2000::/64'), ELSEWHERE, undefined)
  assert.equal(fdb.sourceWords(words(ADDR), 0), -1, 'moved away: nobody claims the address')
  assert.equal(fdb.sourceWords(words(ELSEWHERE), 0), bogus)
})

test('followers see every change', () => {
  const fdb = new Fdb6({ network: parseCidr6('fc00::/48'), subnetLen: 64, port: 8472 })
  const seen: string[] = []
  fdb.follow({ set: (s, p, _m, port) => seen.push(`set ${s.prefixLen} ${p} ${port}`), delete: (s) => seen.push(`del ${s.prefixLen}`) })
  fdb.set(parseCidr6('fc00:0:0:1::/64'), 5n, undefined)
  fdb.delete(parseCidr6('fc00:0:0:1::/64'))
  assert.deepEqual(seen, ['set 64 5 8472', 'del 64'])
})
