// The CNI plugin with two families, without root: the delegate config is
// flannel's plugin's own for a dual-stack, an IPv4-only and an IPv6-only
// subnet.env (flannel_linux_test.go's expected files, to the byte after Go's
// key order), CHECK looks at both families, and bad IPv6 input (in subnet.env
// or in the network config) is a spec error naming it, before anything runs.
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { delegateConf, parseConf } from '../../src/cni/delegate'
import { CniError } from '../../src/cni/errors'
import { parseCidr } from '../../src/packet/net'
import { parseCidr6 } from '../../src/packet/net6'
import { parseSubnetEnv } from '../../src/subnet/env'
import type { SubnetEnv } from '../../src/subnet/env'
import { Sandbox, specError } from './sandbox'

// flannel_linux_test.go's three subnet.env files, as SubnetEnv values
const V4: SubnetEnv = { network: parseCidr('10.1.0.0/16'), subnet: parseCidr('10.1.17.0/24'), mtu: 1472, ipMasq: true }
const V6: SubnetEnv = { network6: parseCidr6('fc00::/48'), subnet6: parseCidr6('fc00::/64'), mtu: 1472, ipMasq: true }
const DUAL: SubnetEnv = { ...V4, ...V6 }
const INPUT = '{"cniVersion":"1.0.0","name":"cni-flannel","type":"flannel"}'

test('dual stack: host-local gets one range set per family, IPv4 first, and routes to both networks after the user\'s, as flannel\'s plugin writes them', () => {
  assert.equal(JSON.stringify(delegateConf(parseConf(INPUT), DUAL)),
    '{"cniVersion":"1.0.0","ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}],[{"subnet":"fc00::/64"}]],"routes":[{"dst":"10.1.0.0/16"},{"dst":"fc00::/48"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}')
  const withRoutes = parseConf('{"cniVersion":"1.0.0","name":"n","type":"weft","ipam":{"routes":[{"dst":"192.0.2.0/24"},{"dst":"2001:db8::/32","gw":"fc00::1"}]}}')
  assert.deepEqual((delegateConf(withRoutes, DUAL).ipam as { routes: unknown }).routes,
    [{ dst: '192.0.2.0/24' }, { dst: '2001:db8::/32', gw: 'fc00::1' }, { dst: '10.1.0.0/16' }, { dst: 'fc00::/48' }])
})

test('either family alone: IPv6-only has one IPv6 range and the IPv6 route; IPv4-only is unchanged', () => {
  assert.equal(JSON.stringify(delegateConf(parseConf(INPUT), V6)),
    '{"cniVersion":"1.0.0","ipMasq":false,"ipam":{"ranges":[[{"subnet":"fc00::/64"}]],"routes":[{"dst":"fc00::/48"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}')
  assert.equal(JSON.stringify(delegateConf(parseConf(INPUT), V4)),
    '{"cniVersion":"1.0.0","ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}')
})

test('a subnet.env as flanneld writes it for a dual-stack node (FLANNEL_IPV6_SUBNET is the first address) renders the IPv6 range as the network', () => {
  const env = parseSubnetEnv('FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:11::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n')
  const ipam = delegateConf(parseConf(INPUT), env).ipam as { ranges: unknown, routes: unknown }
  assert.deepEqual(ipam.ranges, [[{ subnet: '10.1.17.0/24' }], [{ subnet: 'fc00:0:0:11::/64' }]])
  assert.deepEqual(ipam.routes, [{ dst: '10.1.0.0/16' }, { dst: 'fc00::/48' }])
})

test('ipam.routes that are not routes (a bad IPv6 dst or gw, not an array, not objects) are refused with INVALID_CONFIG naming the entry', () => {
  const err = (routes: unknown): CniError => {
    try {
      parseConf(JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'weft', ipam: { routes } }))
    } catch (e) {
      return e as CniError
    }
    throw new Error(`accepted ${JSON.stringify(routes)}`)
  }
  assert.equal(err([{ dst: 'fc00::zz/48' }]).code, 7)
  assert.match(err([{ dst: '10.0.0.0/8' }, { dst: 'fc00::/129' }]).message, /^ipam\.routes\[1\]\.dst "fc00::\/129" is not an IPv4 or IPv6 CIDR/)
  assert.match(err([{ dst: 'fc00::/48', gw: 'fc00:::1' }]).message, /^ipam\.routes\[0\]\.gw "fc00:::1" is not an IPv4 or IPv6 address/)
  assert.match(err([{ dst: 'fc00::' }]).message, /not an IPv4 or IPv6 CIDR/)
  assert.match(err({ dst: 'fc00::/48' }).message, /must be an array/)
  assert.match(err(['fc00::/48']).message, /ipam\.routes\[0\] must be an object/)
  assert.equal(err([{ dst: 5 }]).code, 7)
})

function sandbox (t: TestContext, env: string): Sandbox {
  const s = new Sandbox('weft-cni-v6-')
  t.after(() => s.remove())
  fs.writeFileSync(path.join(s.root, 'subnet.env'), env)
  return s
}

const DUAL_ENV = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:7::1/64\nFLANNEL_MTU=9000\nFLANNEL_IPMASQ=false\n'

test('through runCni: ADD hands the delegate both ranges and saves them; CHECK passes, and fails once the node\'s IPv6 subnet changed', (t) => {
  const s = sandbox(t, DUAL_ENV)
  const add = s.call('ADD', s.conf())
  assert.equal(add.code, 0, add.lines.join('\n'))
  const sent = s.delegateCalls().find((c) => c.command === 'ADD')
  assert.deepEqual((sent?.conf.ipam as { ranges: unknown }).ranges, [[{ subnet: '10.244.7.0/24' }], [{ subnet: 'fc00:0:0:7::/64' }]])
  assert.deepEqual((sent?.conf.ipam as { routes: unknown }).routes, [{ dst: '10.244.0.0/16' }, { dst: 'fc00::/48' }])
  assert.equal(s.call('CHECK', s.conf()).code, 0)
  fs.writeFileSync(path.join(s.root, 'subnet.env'), DUAL_ENV.replace('fc00:0:0:7::1/64', 'fc00:0:0:8::1/64'))
  const e = specError(s.call('CHECK', s.conf()))
  assert.equal(e.code, 7)
  assert.match(e.msg, /another subnet than this node's fc00:0:0:8::\/64/)
})

test('IPv6-only through runCni: one IPv6 range, CHECK passes', (t) => {
  const s = sandbox(t, 'FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=9000\nFLANNEL_IPMASQ=true\n')
  assert.equal(s.call('ADD', s.conf()).code, 0)
  const sent = s.delegateCalls().find((c) => c.command === 'ADD')
  assert.deepEqual(sent?.conf.ipam, { ranges: [[{ subnet: 'fc00::/64' }]], routes: [{ dst: 'fc00::/48' }], type: 'host-local' })
  assert.equal(sent?.conf.ipMasq, false)
  assert.equal(s.call('CHECK', s.conf()).code, 0)
})

test('an invalid FLANNEL_IPV6_SUBNET or FLANNEL_IPV6_NETWORK in subnet.env, or a bad IPv6 route on stdin, is a spec error naming it, and no delegate runs', (t) => {
  for (const [bad, key] of [
    [DUAL_ENV.replace('fc00:0:0:7::1/64', 'fc00:0:0:7::zz/64'), 'FLANNEL_IPV6_SUBNET'],
    [DUAL_ENV.replace('fc00:0:0:7::1/64', '10.9.0.1/24'), 'FLANNEL_IPV6_SUBNET'],
    [DUAL_ENV.replace('fc00::/48', 'fc00::/200'), 'FLANNEL_IPV6_NETWORK']
  ]) {
    const s = sandbox(t, bad)
    const e = specError(s.call('ADD', s.conf()))
    assert.equal(e.code, 7, `${key}: ${e.msg}`)
    assert.match(e.msg, new RegExp(key), e.msg)
    const down = specError(s.call('STATUS', s.conf({ cniVersion: '1.1.0' })))
    assert.equal(down.code, 50)
    assert.match(down.msg, new RegExp(key))
    assert.deepEqual(s.delegateCalls().filter((c) => c.command === 'ADD'), [])
  }
  const s = sandbox(t, DUAL_ENV)
  const e = specError(s.call('ADD', s.conf({ ipam: { routes: [{ dst: 'fc00::1::/64' }] } })))
  assert.equal(e.code, 7)
  assert.match(e.msg, /ipam\.routes\[0\]\.dst "fc00::1::\/64" is not an IPv4 or IPv6 CIDR/)
  assert.deepEqual(s.delegateCalls(), [])
})
