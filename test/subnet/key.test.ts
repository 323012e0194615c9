// Lease keys as flannel's MakeSubnetKey writes them and ParseSubnetKey reads
// them (pkg/subnet/subnet_test.go's cases, plus the IPv6-only form), and the
// lease value with PublicIPv6 and BackendV6Data as Go's json.Marshal writes it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatCidr, makeSubnetKey, parseCidr, parseLeaseKey, parseSubnetKey } from '../../src/packet/net'
import { formatCidr6, parseCidr6 } from '../../src/packet/net6'
import { decodeLeaseAttrs, encodeLeaseAttrs } from '../../src/subnet/lease-json'
import { describeSubnets, hasIPv4, leaseKey, sameSubnets } from '../../src/subnet/lease'
import { isSkipped, leaseFromEntry } from '../../src/store/decode'
import { ip4ToString, parseIp4 } from '../../src/packet/ip'

test('flannel\'s TestSubnetNodev4 and TestSubnetNodev6: both directions', () => {
  const v4 = parseLeaseKey('10.12.13.0-24')
  assert.ok(v4 !== undefined)
  assert.equal(formatCidr(v4.subnet), '10.12.13.0/24')
  assert.equal(v4.subnet6, undefined)
  assert.equal(makeSubnetKey(v4.subnet, v4.subnet6), '10.12.13.0-24')

  const v6 = parseLeaseKey('10.12.13.0-24&fd00:12:13::-56')
  assert.ok(v6 !== undefined && v6.subnet6 !== undefined)
  assert.equal(formatCidr(v6.subnet), '10.12.13.0/24')
  assert.equal(formatCidr6(v6.subnet6), 'fd00:12:13::/56')
  assert.equal(makeSubnetKey(v6.subnet, v6.subnet6), '10.12.13.0-24&fd00:12:13::-56')
  // the IPv4 half alone, for callers of the old form
  assert.equal(formatCidr(parseSubnetKey('10.12.13.0-24&fd00:12:13::-56')!), '10.12.13.0/24')
})

test('the keys flannel writes: dual stack "10.244.1.0-24&fc00::-64", IPv6-only "0.0.0.0-0&fc00::-64", in Go\'s address form', () => {
  assert.equal(makeSubnetKey(parseCidr('10.244.1.0/24'), parseCidr6('fc00::/64')), '10.244.1.0-24&fc00::-64')
  assert.equal(makeSubnetKey({ ip: 0, prefixLen: 0 }, parseCidr6('fc00::/64')), '0.0.0.0-0&fc00::-64')
  assert.equal(makeSubnetKey(parseCidr('10.5.1.0/24'), parseCidr6('fc00:0:0:1::/64')), '10.5.1.0-24&fc00:0:0:1::-64')
  assert.equal(makeSubnetKey(parseCidr('10.5.1.0/24'), parseCidr6('2001:db8:0:0:1::/80')), '10.5.1.0-24&2001:db8:0:0:1::-80')
  // an empty IPv6 net (::/0) is no IPv6 net, as flannel's IP6Net.Empty()
  assert.equal(makeSubnetKey(parseCidr('10.5.1.0/24'), parseCidr6('::/0')), '10.5.1.0-24')
  const only = parseLeaseKey('0.0.0.0-0&fc00::-64')
  assert.ok(only !== undefined)
  assert.equal(hasIPv4(only), false)
  assert.equal(leaseKey(only), '0.0.0.0-0&fc00::-64')
  assert.equal(describeSubnets(only.subnet, only.subnet6), 'fc00::/64')
  assert.equal(describeSubnets(parseCidr('10.5.1.0/24'), parseCidr6('fc00::/64')), '10.5.1.0/24 and fc00::/64')
  // two IPv6-only leases share their IPv4 half but are different leases
  assert.equal(sameSubnets(only, parseLeaseKey('0.0.0.0-0&fc00:0:0:1::-64')!), false)
})

test('flannel\'s TestSubnetNodeInvalid: none of its keys parse, nor upper-case IPv6 (flannel\'s regex is [a-f\\d:])', () => {
  for (const key of ['10', '10.12.13.0', '10.12.13-24', '10.12.13.300-24', '10.12.13.0-24hi', '&2001::-56', '10.12.13.0-24&:12:13:-56',
    '10.12.13.0-24&20011::-56', '10.12.13.0-24&2001-56', '10.12.13.0-24&2001::', '10.12.13.0-24&2001::-56hi', '10.12.13.0-24&FC00::-64',
    '10.12.13.0-24&fc00::-129', 'x10.12.13.0-24']) {
    assert.equal(parseLeaseKey(key), undefined, key)
  }
})

test('a store entry under a dual-stack or IPv6-only key is a lease with subnet6; host bits in either half are skipped', () => {
  const value = '{"PublicIP":"192.168.0.1","PublicIPv6":"fc00::1"}'
  // flannel's own fuzz seed (pkg/subnet/etcd/fuzz_test.go)
  const l = leaseFromEntry('10.5.1.0-24&fc00::-64', value, null, 3)
  assert.ok(!isSkipped(l))
  assert.equal(formatCidr(l.subnet), '10.5.1.0/24')
  assert.equal(formatCidr6(l.subnet6!), 'fc00::/64')
  assert.equal(l.attrs.publicIPv6, 'fc00::1')
  const v4 = leaseFromEntry('10.5.1.0-24', value, null, 3)
  assert.ok(!isSkipped(v4) && !('subnet6' in v4), 'no subnet6 key at all on an IPv4 lease')
  const h = leaseFromEntry('10.5.1.0-24&fc00::1-64', value, null, 3)
  assert.ok(isSkipped(h) && /IPv6 half .* host bits/.test(h.reason))
  const bad = leaseFromEntry('10.5.1.0-24&fc00::-64', '{"PublicIP":"192.168.0.1","PublicIPv6":"not-an-address"}', null, 3)
  assert.ok(isSkipped(bad) && /PublicIPv6 "not-an-address" is not an IPv6 address/.test(bad.reason))
})

// Go's json.Marshal of lease.LeaseAttrs{PublicIP, PublicIPv6 *ip.IP6, BackendType, BackendData, BackendV6Data}:
// fields in declaration order, PublicIPv6 always (null when nil), the rest omitted when empty.
test('the lease value flanneld writes, byte for byte: registry_test.go\'s, and a dual-stack vxlan lease', () => {
  const ipv4Only = '{"PublicIP":"1.2.3.4","PublicIPv6":null}' // pkg/subnet/etcd/registry_test.go
  assert.equal(encodeLeaseAttrs(decodeLeaseAttrs(ipv4Only)), ipv4Only)
  assert.deepEqual(decodeLeaseAttrs(ipv4Only), { publicIP: parseIp4('1.2.3.4'), publicIPv6: null, backendType: '' })
  const dual = '{"PublicIP":"198.18.0.1","PublicIPv6":"2001:2::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:11:22:33:44:55"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:11:22:33:44:66"}}'
  const a = decodeLeaseAttrs(dual)
  assert.equal(a.publicIPv6, '2001:2::1')
  assert.deepEqual(a.backendV6Data, { VNI: 1, VtepMAC: '0e:11:22:33:44:66' })
  assert.equal(encodeLeaseAttrs(a), dual)
  // an IPv6-only node's PublicIP is flannel's zero IP4
  const v6only = '{"PublicIP":"0.0.0.0","PublicIPv6":"2001:2::7","BackendType":"host-gw"}'
  assert.equal(ip4ToString(decodeLeaseAttrs(v6only).publicIP), '0.0.0.0')
  assert.equal(encodeLeaseAttrs(decodeLeaseAttrs(v6only)), v6only)
  // keys in any case, as Go's decoder; null is no data
  assert.deepEqual(decodeLeaseAttrs('{"publicip":"1.2.3.4","publicipv6":"FC00::1","backendv6data":null}'), { publicIP: parseIp4('1.2.3.4'), publicIPv6: 'FC00::1', backendType: '' })
})
