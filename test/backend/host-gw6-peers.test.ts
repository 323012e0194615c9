// host-gw's IPv6 peer handling without a kernel (fake routes): which
// PublicIPv6 values a route can go via, and that a peer whose IPv6 side is
// unusable, or holds our own address, gets no IPv6 route and is named once,
// while its IPv4 side is handled as before; an IPv6-only network makes no
// IPv4 route for the 0.0.0.0/0 half of IPv6-only leases.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { HostGwNetwork, unusablePublicIPv6 } from '../../src/backend/host-gw/network'
import type { PeerRoutes } from '../../src/kernel/routes'
import { formatCidr, parseCidr } from '../../src/packet/net'
import { formatCidr6, parseCidr6, parseIp6 } from '../../src/packet/net6'
import type { Ip4Net } from '../../src/packet/net'
import type { Ip6Net } from '../../src/packet/net6'
import { parseIp4 } from '../../src/packet/ip'
import type { Lease } from '../../src/subnet/lease'
import type { PeerEvent } from '../../src/lease/watcher'
import { captureLogger } from '../helpers/log'

test('a PublicIPv6 is usable unless missing, unparseable, ::, loopback, multicast or IPv4-mapped', () => {
  for (const bad of [null, '', 'nope', '198.18.0.1', '::', '::1', 'ff02::1', '::ffff:198.18.0.1']) assert.ok('reason' in unusablePublicIPv6(bad), String(bad))
  for (const good of ['2001:2::1', 'fe80::1', 'fc00::7']) assert.deepEqual(unusablePublicIPv6(good), { ip: parseIp6(good) })
})

function fakes (): { routes: PeerRoutes, calls: string[], rules: ConstructorParameters<typeof HostGwNetwork>[0]['rules'] } {
  const calls: string[] = []
  const routes = {
    add: async (s: Ip4Net) => { calls.push(`add ${formatCidr(s)}`); return true },
    remove: async (s: Ip4Net) => { calls.push(`remove ${formatCidr(s)}`) },
    add6: async (s: Ip6Net) => { calls.push(`add6 ${formatCidr6(s)}`); return true },
    remove6: async (s: Ip6Net) => { calls.push(`remove6 ${formatCidr6(s)}`) },
    close: async () => {},
    size: 0,
    readded: 0
  } as unknown as PeerRoutes
  const rules = { resync: async () => true, apply: async () => {}, remove: async () => {} }
  return { routes, calls, rules }
}

function lease (subnet: string | undefined, subnet6: string, publicIP: string, publicIPv6: string | null): Lease {
  return { subnet: subnet !== undefined ? parseCidr(subnet) : { ip: 0, prefixLen: 0 }, subnet6: parseCidr6(subnet6), attrs: { publicIP: parseIp4(publicIP), publicIPv6, backendType: 'host-gw' }, expiration: null, revision: 1 }
}

const added = (l: Lease): PeerEvent[] => [{ type: 'added', lease: l }]

test('dual stack: no usable PublicIPv6 -> no IPv6 route, one warning however often the lease comes; our own PublicIPv6 -> not a peer in IPv6', async () => {
  const logs = captureLogger()
  const { routes, calls, rules } = fakes()
  // on "lo" nothing is directly connected, so the IPv4 side of each peer is "not directly connected": only the IPv6 side matters here
  const underlay = { name: 'lo', ip: parseIp4('198.18.0.1'), publicIP: parseIp4('198.18.0.1'), mtu: 1500 }
  const net = new HostGwNetwork({ routes, rules, makeRules: () => rules, lease: lease('10.244.1.0/24', 'fc00:0:0:1::/64', '198.18.0.1', '2001:2::1'), mtu: 1500, underlay, ipv4: true, ipv6: true, publicIPv6: parseIp6('2001:2::1'), log: logs.log })
  try {
    const noV6 = lease('10.244.2.0/24', 'fc00:0:0:2::/64', '198.18.0.2', null)
    net.handlePeers(added(noV6))
    net.handlePeers(added(noV6))
    assert.equal(logs.find(/no usable PublicIPv6/).length, 1)
    assert.ok(!calls.some((c) => c.startsWith('add6')), calls.join('; '))
    assert.deepEqual(net.status().peers, [{ subnet: '10.244.2.0/24', publicIP: '198.18.0.2', route: 'not directly connected', subnet6: 'fc00:0:0:2::/64', publicIPv6: null, route6: 'unusable' }])
    // a stale lease with our own IPv6 (and another IPv4) address
    net.handlePeers(added(lease('10.244.3.0/24', 'fc00:0:0:3::/64', '198.18.0.3', '2001:2::1')))
    assert.equal(logs.find(/holds our own public IPv6/).length, 1)
    assert.equal(net.status().peers.find((p) => p.subnet === '10.244.3.0/24')?.route6, undefined)
    // removal takes both families' routes
    net.handlePeers([{ type: 'removed', lease: noV6 }])
    assert.ok(calls.includes('remove 10.244.2.0/24') && calls.includes('remove6 fc00:0:0:2::/64'), calls.join('; '))
  } finally {
    await net.close()
  }
})

test('IPv6 only: leases\' 0.0.0.0/0 halves make no IPv4 route and no IPv4 warning; two IPv6-only peers are two peers', async () => {
  const logs = captureLogger()
  const { routes, calls, rules } = fakes()
  const underlay = { name: 'lo', ip: 0, publicIP: 0, mtu: 1500 }
  const net = new HostGwNetwork({ routes, rules, makeRules: () => rules, lease: lease(undefined, 'fc00:0:0:1::/64', '0.0.0.0', '2001:2::1'), mtu: 1500, underlay, ipv4: false, ipv6: true, log: logs.log })
  try {
    net.handlePeers([...added(lease(undefined, 'fc00:0:0:2::/64', '0.0.0.0', '2001:2::2')), ...added(lease(undefined, 'fc00:0:0:3::/64', '0.0.0.0', '2001:2::3'))])
    assert.deepEqual(net.status().peers.map((p) => [p.subnet, p.subnet6, p.route6]), [[undefined, 'fc00:0:0:2::/64', 'not directly connected'], [undefined, 'fc00:0:0:3::/64', 'not directly connected']])
    assert.ok(!calls.some((c) => c.startsWith('add ') || c.startsWith('remove ')), calls.join('; '))
    assert.equal(logs.find(/ignoring a peer this backend cannot reach/).length, 0)
    assert.equal(net.status().counters.subnet, undefined)
    assert.equal(net.status().counters.subnet6, 'fc00:0:0:1::/64')
  } finally {
    await net.close()
  }
})
