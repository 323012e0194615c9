// Several leases naming one public IP: the sender table keeps them all, so a
// lease that borrows a real peer's address, written and deleted, never
// takes the real peer out of the table (issue 17, item 3).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Fdb } from '../../src/dataplane/fdb'
import { parseCidr } from '../../src/packet/net'
import { parseIp4 } from '../../src/packet/ip'

const REAL = parseCidr('10.244.2.0/24')
const BOGUS = parseCidr('10.244.200.0/24')
const OTHER = parseCidr('10.244.3.0/24')
const ADDR = parseIp4('198.18.0.2')
const ELSEWHERE = parseIp4('198.18.0.3')
const ip = (s: string): number => parseIp4(s) | 0

function table (): Fdb {
  return new Fdb({ network: parseCidr('10.244.0.0/16'), subnetLen: 24, port: 8472, capacity: 16 })
}

test('a second lease claiming a real peer\'s public IP, written and deleted, leaves the real peer answering for its address throughout', () => {
  const fdb = table()
  const real = fdb.set(REAL, ADDR, undefined)
  assert.equal(fdb.source(ADDR), real)
  fdb.set(BOGUS, ADDR, undefined)
  assert.equal(fdb.source(ADDR), real, 'the older claimant keeps the address')
  assert.equal(fdb.claimants(ADDR), 2)
  assert.deepEqual(fdb.conflicts(), [{ publicIP: ADDR >>> 0, subnets: [REAL, BOGUS] }])
  fdb.delete(BOGUS)
  assert.equal(fdb.source(ADDR), real, 'the real peer is still known by its address')
  assert.equal(fdb.claimants(ADDR), 1)
  assert.deepEqual(fdb.conflicts(), [])
})

test('when the older claimant goes, the next one answers for the address; when all go, nobody does', () => {
  const fdb = table()
  fdb.set(BOGUS, ADDR, undefined)
  const real = fdb.set(REAL, ADDR, undefined)
  fdb.delete(BOGUS)
  assert.equal(fdb.source(ADDR), real)
  fdb.delete(REAL)
  assert.equal(fdb.source(ADDR), -1)
  assert.equal(fdb.claimants(ADDR), 0)
})

test('a lease moving to another address leaves the claimants it had; the one it joins counts it', () => {
  const fdb = table()
  const real = fdb.set(REAL, ADDR, undefined)
  const bogus = fdb.set(BOGUS, ADDR, undefined)
  fdb.set(BOGUS, ELSEWHERE, undefined)
  assert.equal(fdb.source(ADDR), real)
  assert.equal(fdb.source(ELSEWHERE), bogus)
  fdb.set(REAL, ELSEWHERE, undefined)
  assert.equal(fdb.source(ADDR), -1, 'nobody claims the old address')
  assert.equal(fdb.source(ELSEWHERE), bogus, 'the one that came first keeps it')
  assert.equal(fdb.claimants(ELSEWHERE), 2)
})

test('remote checksum offload is taken from an address if any of its claimants asked for it, and only then', () => {
  const fdb = table()
  const real = fdb.set(REAL, ADDR, undefined, 8472, true)
  assert.equal(fdb.rcoFrom[real], 1)
  const bogus = fdb.set(BOGUS, ADDR, undefined, 8472, false)
  assert.equal(fdb.rcoFrom[real], 1, 'a newer lease without RemCsumRx does not stop the real peer\'s RCO')
  assert.equal(fdb.rcoFrom[bogus], 0, 'only the index source() answers is read')
  assert.equal(fdb.remCsum[bogus], 0, 'what we send to each subnet is its own lease\'s')
  fdb.set(REAL, ADDR, undefined, 8472, false)
  assert.equal(fdb.rcoFrom[real], 0, 'nobody asks any more')
  fdb.set(BOGUS, ADDR, undefined, 8472, true)
  assert.equal(fdb.rcoFrom[real], 1, 'a claimant that asks is enough')
  fdb.delete(BOGUS)
  assert.equal(fdb.rcoFrom[real], 0)
})

test('an inner source is held by the sender when it lies in a subnet leased to the sender\'s address; outside the network the table has no say', () => {
  const fdb = table()
  const real = fdb.set(REAL, ADDR, undefined)
  fdb.set(OTHER, ELSEWHERE, undefined)
  assert.equal(fdb.sourceHolds(ip('10.244.2.7'), real), 1)
  assert.equal(fdb.sourceHolds(ip('10.244.3.7'), real), 0, 'another node\'s subnet')
  assert.equal(fdb.sourceHolds(ip('10.244.1.7'), real), 0, 'a subnet no peer holds (ours, say)')
  assert.equal(fdb.sourceHolds(ip('10.244.200.7'), real), 0)
  fdb.set(BOGUS, ADDR, undefined)
  assert.equal(fdb.sourceHolds(ip('10.244.200.7'), real), 1, 'every claimant\'s subnet is the address\'s')
  assert.equal(fdb.sourceHolds(ip('203.0.113.9'), real), -1)
  assert.equal(fdb.sourceHolds(ip('198.18.0.2'), real), -1)
})
