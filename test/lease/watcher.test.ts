// LeaseWatcher: store changes become Added/Removed batches, the way a backend
// needs them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseCidr } from '../../src/packet/net'
import type { Lease } from '../../src/subnet/lease'
import { LeaseWatcher } from '../../src/lease/watcher'
import { parseIp4 } from '../../src/packet/ip'

const lease = (cidr: string, ip: string, rev: number, mac = 'aa:aa:aa:aa:aa:01'): Lease => ({
  subnet: parseCidr(cidr),
  attrs: { publicIP: parseIp4(ip), publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac } },
  expiration: null,
  revision: rev
})

const OWN = parseCidr('10.244.1.0/24')

test('a snapshot reports every peer as added, but never our own subnet', () => {
  const w = new LeaseWatcher(OWN)
  const ev = w.reset([lease('10.244.1.0/24', '198.18.0.1', 1), lease('10.244.2.0/24', '198.18.0.2', 2), lease('10.244.3.0/24', '198.18.0.3', 3)])
  assert.deepEqual(ev.map((e) => `${e.type} ${e.lease.attrs.publicIP}`), [`added ${parseIp4('198.18.0.2')}`, `added ${parseIp4('198.18.0.3')}`])
})

test('a later snapshot reports only the difference: gone peers removed, new or changed ones added', () => {
  const w = new LeaseWatcher(OWN)
  w.reset([lease('10.244.2.0/24', '198.18.0.2', 2), lease('10.244.3.0/24', '198.18.0.3', 3)])
  const ev = w.reset([lease('10.244.3.0/24', '198.18.0.3', 3), lease('10.244.4.0/24', '198.18.0.4', 9)])
  assert.deepEqual(ev.map((e) => `${e.type} ${e.lease.subnet.ip}`), [`removed ${parseCidr('10.244.2.0/24').ip}`, `added ${parseCidr('10.244.4.0/24').ip}`])
})

test('a removal carries the removed lease with its attributes, so a backend can tear its entries down', () => {
  const w = new LeaseWatcher(OWN)
  w.update([{ type: 'put', lease: lease('10.244.2.0/24', '198.18.0.2', 2, 'aa:aa:aa:aa:aa:02') }])
  const ev = w.update([{ type: 'delete', subnet: parseCidr('10.244.2.0/24'), revision: 3 }])
  assert.equal(ev.length, 1)
  assert.equal(ev[0].type, 'removed')
  assert.deepEqual(ev[0].lease.attrs.backendData, { VNI: 1, VtepMAC: 'aa:aa:aa:aa:aa:02' })
  assert.equal(ev[0].lease.attrs.publicIP, parseIp4('198.18.0.2'))
})

test('a put for a known subnet is reported as added again (a new VTEP MAC arrives this way)', () => {
  const w = new LeaseWatcher(OWN)
  w.update([{ type: 'put', lease: lease('10.244.2.0/24', '198.18.0.2', 2, 'aa:aa:aa:aa:aa:02') }])
  const ev = w.update([{ type: 'put', lease: lease('10.244.2.0/24', '198.18.0.2', 5, 'aa:aa:aa:aa:aa:05') }])
  assert.deepEqual(ev.map((e) => e.type), ['added'])
  assert.equal(w.peers().length, 1)
  assert.deepEqual(w.peers()[0].attrs.backendData, { VNI: 1, VtepMAC: 'aa:aa:aa:aa:aa:05' })
})

test('a delete for a subnet never seen is not reported (nothing to tear down)', () => {
  const w = new LeaseWatcher(OWN)
  assert.deepEqual(w.update([{ type: 'delete', subnet: parseCidr('10.244.7.0/24'), revision: 3 }]), [])
})
