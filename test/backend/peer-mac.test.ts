// The VXLAN backend's reading of a peer's BackendData, as flannel's Go
// decoder reads it: a hand-written "vtepMAC" is the VtepMAC key.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { peerMac, peerTakesRemCsum } from '../../src/backend/vxlan/peer-mac'
import { parseCidr } from '../../src/packet/net'
import { decodeLeaseAttrs } from '../../src/subnet/lease-json'
import type { Lease } from '../../src/subnet/lease'

const lease = (value: string): Lease => ({ subnet: parseCidr('10.244.7.0/24'), attrs: decodeLeaseAttrs(value), expiration: null, revision: 1 })
const withData = (data: string): Lease => lease(`{"PublicIP":"198.18.0.7","BackendType":"vxlan","BackendData":${data}}`)

test('a vxlan lease\'s VtepMAC key matches in any case, as flannel reads it', () => {
  for (const key of ['VtepMAC', 'vtepMAC', 'VtepMac', 'vtepmac', 'VTEPMAC']) {
    assert.equal(peerMac(withData(`{"VNI":1,"${key}":"0E:11:22:33:44:55"}`)), '0e:11:22:33:44:55', key)
  }
})

test('with several VtepMAC keys the last wins, whatever its case, as in Go (golang/go#43664)', () => {
  assert.equal(peerMac(withData('{"VtepMAC":"02:00:00:00:00:01","vtepmac":"02:00:00:00:00:02"}')), '02:00:00:00:00:02')
  assert.equal(peerMac(withData('{"vtepmac":"02:00:00:00:00:01","VtepMAC":"02:00:00:00:00:02"}')), '02:00:00:00:00:02')
})

test('BackendData without a usable VtepMAC, in any case, makes the peer unusable with a reason', () => {
  for (const data of ['{"VNI":1}', '{"VtepMA":"02:00:00:00:00:01"}', '{"vtepmac":42}', '{"vtepmac":"02:00:00:00:00"}', '["02:00:00:00:00:01"]', 'null']) {
    assert.deepEqual(peerMac(withData(data)), { reason: 'its BackendData has no valid VtepMAC' }, data)
  }
})

test('a peer takes remote checksum offload only when its BackendData says RemCsumRx: true, in any key case', () => {
  assert.equal(peerTakesRemCsum(withData('{"VNI":1,"VtepMAC":"02:00:00:00:00:01","RemCsumRx":true}')), true)
  assert.equal(peerTakesRemCsum(withData('{"VNI":1,"VtepMAC":"02:00:00:00:00:01","remcsumrx":true}')), true)
  for (const data of ['{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}', '{"RemCsumRx":false}', '{"RemCsumRx":"true"}', '{"RemCsumRx":1}', 'null', '[true]']) {
    assert.equal(peerTakesRemCsum(withData(data)), false, `${data}: flannel's lease, or anything but true`)
  }
})
