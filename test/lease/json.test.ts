// The lease value as flannel's Go decoder reads it: keys in any case, and
// when several keys match one field, the last one (golang/go#43664).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { decodeLeaseAttrs } from '../../src/subnet/lease-json'
import { ip4ToString } from '../../src/packet/ip'

test('lease keys match in any case', () => {
  const a = decodeLeaseAttrs('{"publicip":"198.18.0.7","BACKENDTYPE":"vxlan","backendData":{"VNI":1}}')
  assert.equal(ip4ToString(a.publicIP), '198.18.0.7')
  assert.equal(a.backendType, 'vxlan')
  assert.deepEqual(a.backendData, { VNI: 1 })
})

test('when several keys match one field, the last wins, exact case or not', () => {
  assert.equal(ip4ToString(decodeLeaseAttrs('{"PublicIP":"198.18.0.1","publicIP":"198.18.0.2"}').publicIP), '198.18.0.2')
  assert.equal(ip4ToString(decodeLeaseAttrs('{"publicIP":"198.18.0.1","PublicIP":"198.18.0.2"}').publicIP), '198.18.0.2')
  assert.equal(decodeLeaseAttrs('{"BackendType":"vxlan","backendtype":"ipip"}').backendType, 'ipip')
})
