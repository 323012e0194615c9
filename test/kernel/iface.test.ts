// The underlay interface is chosen as flanneld chooses it (pkg/ipmatch):
// --iface names or addresses, then --iface-regex over addresses and then
// names, then --iface-can-reach's route, else --public-ip's interface or the
// default route's; addresses in flannel's order. Pure cases over made-up
// hosts first, then the real thing in namespaces: a link without carrier, or
// down, is still chosen with its address.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { withTopology } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'
import { chooseUnderlay, findUnderlay, parseIpAddrJson, publicIPv6Of, usableAddresses, usableAddresses6, type HostView, type Link, type LinkAddress, type LinkAddress6 } from '../../src/kernel/iface'
import { ip6ToString, parseIp6 } from '../../src/packet/net6'
import { ip4ToString } from '../../src/packet/ip'
import { captureLogger } from '../helpers/log'

const addr = (ip: string, more: Partial<LinkAddress> = {}): LinkAddress => ({ ip, prefixLen: 24, dynamic: false, deprecated: false, secondary: false, ...more })
const link = (index: number, name: string, inet: LinkAddress[], mtu = 1500, inet6: LinkAddress6[] = []): Link => ({ index, name, mtu, up: true, carrier: true, inet, inet6 })
const addr6 = (ip: string, more: Partial<LinkAddress6> = {}): LinkAddress6 => ({ ip, prefixLen: 64, scope: 'global', dynamic: false, deprecated: false, tentative: false, temporary: false, ...more })

const LINKS: Link[] = [
  link(1, 'lo', [addr('127.0.0.1', { prefixLen: 8 })], 65536),
  link(2, 'eth0', [addr('192.0.2.10')]),
  link(3, 'ens5', [addr('198.18.0.5'), addr('198.18.0.6', { secondary: true })], 9001),
  link(4, 'bond0', []),
  link(5, 'wg0', [addr('169.254.3.3', { prefixLen: 16 })], 1420)
]

function view (o: { links?: Link[], dflt?: string, routes?: Record<string, { dev: string, prefsrc?: string }> } = {}): HostView {
  return {
    links: o.links ?? LINKS,
    defaultRouteDev: () => o.dflt,
    routeGet: (ip) => {
      const r = o.routes?.[ip]
      if (r === undefined) throw new Error('RTNETLINK answers: Network is unreachable')
      return r
    }
  }
}

const pick = (u: { name: string, ip: number, publicIP: number, mtu: number }): string[] => [u.name, ip4ToString(u.ip), ip4ToString(u.publicIP), String(u.mtu)]

test('--iface: a name gives the interface\'s first usable address, an address the interface holding it; the first that matches wins', () => {
  assert.deepEqual(pick(chooseUnderlay({ iface: ['ens5'] }, view())), ['ens5', '198.18.0.5', '198.18.0.5', '9001'])
  assert.deepEqual(pick(chooseUnderlay({ iface: ['198.18.0.6'] }, view())), ['ens5', '198.18.0.6', '198.18.0.6', '9001'])
  // missing, no address, an address no one has: each skipped, the next tried
  assert.deepEqual(pick(chooseUnderlay({ iface: ['eth9', 'bond0', '10.9.9.9', 'eth0'] }, view())), ['eth0', '192.0.2.10', '192.0.2.10', '1500'])
  // and --public-ip is what peers are told
  assert.deepEqual(pick(chooseUnderlay({ iface: ['eth0'], publicIp: '203.0.113.9' }, view())), ['eth0', '192.0.2.10', '203.0.113.9', '1500'])
})

test('nothing matching is one error naming every candidate and why; each miss is logged as flanneld logs it', () => {
  const logs = captureLogger()
  assert.throws(() => chooseUnderlay({ iface: ['eth9', 'bond0', '2001:db8::1'], ifaceRegex: ['^xyz'], ifaceCanReach: '10.1.1.1', log: logs.log }, view()), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'EIFACE')
    assert.match(err.message, /--iface eth9: no such interface; --iface bond0: bond0 has no usable IPv4 address; --iface 2001:db8::1: an IPv6 address: weft is IPv4-only; --iface-regex \^xyz: matches none of the interfaces here \(lo:\[\], eth0:\[192\.0\.2\.10\], ens5:\[198\.18\.0\.5 198\.18\.0\.6\], bond0:\[\], wg0:\[169\.254\.3\.3\]\); --iface-can-reach 10\.1\.1\.1: no route: RTNETLINK answers: Network is unreachable/)
    return true
  })
  assert.equal(logs.find(/could not find a valid interface matching it/).length, 5)
  assert.throws(() => chooseUnderlay({ iface: ['eth0'], publicIp: '300.1.1.1' }, view()), /--public-ip "300.1.1.1" is not an IPv4 address/)
})

test('--iface-regex after every --iface: addresses of all interfaces first (in order), then names; a name match needs an address', () => {
  // an address match on a later interface beats a name match on an earlier one
  assert.deepEqual(pick(chooseUnderlay({ ifaceRegex: ['^198\\.18\\.|^eth'] }, view())), ['ens5', '198.18.0.5', '198.18.0.5', '9001'])
  assert.deepEqual(pick(chooseUnderlay({ ifaceRegex: ['0\\.6$'] }, view())), ['ens5', '198.18.0.6', '198.18.0.6', '9001'])
  assert.deepEqual(pick(chooseUnderlay({ ifaceRegex: ['^e[a-z]+0$'] }, view())), ['eth0', '192.0.2.10', '192.0.2.10', '1500'])
  // unanchored, as Go's MatchString
  assert.deepEqual(pick(chooseUnderlay({ ifaceRegex: ['ns'] }, view())), ['ens5', '198.18.0.5', '198.18.0.5', '9001'])
  // bond0 matches by name but has no address: the next regex is tried
  assert.deepEqual(pick(chooseUnderlay({ ifaceRegex: ['^bond', '^wg'] }, view())), ['wg0', '169.254.3.3', '169.254.3.3', '1420'])
  // --iface first, even when a regex is given before it on the command line
  assert.deepEqual(pick(chooseUnderlay({ iface: ['eth0'], ifaceRegex: ['^ens'] }, view())), ['eth0', '192.0.2.10', '192.0.2.10', '1500'])
  // loopback addresses are not usable, so 127.0.0.1 matches no address, and lo's name has none
  assert.throws(() => chooseUnderlay({ ifaceRegex: ['^127\\.|^lo$'] }, view()), /lo has no usable IPv4 address/)
})

test('--iface-can-reach: the route\'s device and source address; without a source, the device\'s first address', () => {
  const v = view({ routes: { '198.18.0.99': { dev: 'ens5', prefsrc: '198.18.0.6' }, '203.0.113.1': { dev: 'eth0' } } })
  assert.deepEqual(pick(chooseUnderlay({ ifaceCanReach: '198.18.0.99' }, v)), ['ens5', '198.18.0.6', '198.18.0.6', '9001'])
  assert.deepEqual(pick(chooseUnderlay({ ifaceCanReach: '203.0.113.1' }, v)), ['eth0', '192.0.2.10', '192.0.2.10', '1500'])
  // after --iface and --iface-regex
  assert.deepEqual(pick(chooseUnderlay({ iface: ['eth9'], ifaceRegex: ['^nomatch'], ifaceCanReach: '198.18.0.99' }, v)), ['ens5', '198.18.0.6', '198.18.0.6', '9001'])
})

test('no --iface*: the interface holding --public-ip, else (NAT) the default route\'s; no default route is an error saying what to do', () => {
  assert.deepEqual(pick(chooseUnderlay({}, view({ dflt: 'eth0' }))), ['eth0', '192.0.2.10', '192.0.2.10', '1500'])
  assert.deepEqual(pick(chooseUnderlay({ publicIp: '198.18.0.6' }, view({ dflt: 'eth0' }))), ['ens5', '198.18.0.6', '198.18.0.6', '9001'])
  const logs = captureLogger()
  assert.deepEqual(pick(chooseUnderlay({ publicIp: '203.0.113.9', log: logs.log }, view({ dflt: 'eth0' }))), ['eth0', '192.0.2.10', '203.0.113.9', '1500'])
  assert.equal(logs.find(/no interface holds the public IP/).length, 1)
  assert.throws(() => chooseUnderlay({}, view()), /no default route to pick the underlay interface from: give --iface/)
  assert.throws(() => chooseUnderlay({}, view({ dflt: 'bond0' })), /the default route's interface bond0 has no usable IPv4 address/)
  assert.throws(() => chooseUnderlay({ iface: ['eth0'] }, view({ links: [link(2, 'eth0', [addr('192.0.2.10')], 0)] })), /cannot determine the MTU of interface eth0/)
})

test('addresses in flannel\'s order: global before link-local, permanent before dynamic, primary before secondary; no deprecated, loopback, multicast or broadcast', () => {
  const l = link(2, 'eth0', [
    addr('169.254.1.1', { prefixLen: 16 }),
    addr('10.0.0.9', { secondary: true }),
    addr('10.0.0.8', { dynamic: true }),
    addr('10.0.0.7', { deprecated: true }),
    addr('127.0.0.2'),
    addr('224.0.0.5'),
    addr('255.255.255.255'),
    addr('0.0.0.0'),
    addr('10.0.0.6')
  ])
  assert.deepEqual(usableAddresses(l), ['10.0.0.6', '10.0.0.9', '10.0.0.8', '169.254.1.1'])
  // --iface by address takes any address the link holds, as flannel's GetInterfaceByIP
  assert.deepEqual(pick(chooseUnderlay({ iface: ['10.0.0.7'] }, view({ links: [l] }))), ['eth0', '10.0.0.7', '10.0.0.7', '1500'])
})

test('`ip -j addr show` is read for names, MTUs, up and carrier, and each IPv4 address with its flags', () => {
  const text = JSON.stringify([
    { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], mtu: 65536, addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }, { family: 'inet6', local: '::1', prefixlen: 128 }] },
    { ifindex: 7, ifname: 'vx0', flags: ['NO-CARRIER', 'BROADCAST', 'MULTICAST', 'UP'], mtu: 1500, operstate: 'LOWERLAYERDOWN', addr_info: [{ family: 'inet', local: '198.19.7.1', prefixlen: 24, dynamic: true }, { family: 'inet', local: '198.19.7.2', prefixlen: 24, secondary: true, deprecated: true }] }
  ])
  assert.deepEqual(parseIpAddrJson(text), [
    { index: 1, name: 'lo', mtu: 65536, up: true, carrier: true, inet: [addr('127.0.0.1', { prefixLen: 8 })], inet6: [addr6('::1', { prefixLen: 128 })] },
    { index: 7, name: 'vx0', mtu: 1500, up: true, carrier: false, inet: [addr('198.19.7.1', { dynamic: true }), addr('198.19.7.2', { secondary: true, deprecated: true })], inet6: [] }
  ])
  assert.deepEqual(parseIpAddrJson(''), [])
  assert.throws(() => parseIpAddrJson('[{'), /cannot parse the JSON of ip -j addr show/)
})

const V6LINKS: Link[] = [
  link(1, 'lo', [addr('127.0.0.1', { prefixLen: 8 })], 65536, [addr6('::1', { prefixLen: 128, scope: 'host' })]),
  link(2, 'eth0', [addr('192.0.2.10')], 1500, [addr6('fe80::1', { scope: 'link' }), addr6('2001:2::10')]),
  link(3, 'ens5', [addr('198.18.0.5')], 9001, [addr6('2001:2:0:5::9', { deprecated: true }), addr6('2001:2:0:5::7', { tentative: true })]),
  link(4, 'v6only', [], 1400, [addr6('2001:2:0:4::1', { dynamic: true }), addr6('2001:2:0:4::2'), addr6('2001:2:0:4::3', { temporary: true })])
]

test('IPv6 addresses a peer may use: global scope only, not link-local, deprecated or tentative; permanent, then stable, first', () => {
  assert.deepEqual(usableAddresses6(V6LINKS[1]), ['2001:2::10'])
  assert.deepEqual(usableAddresses6(V6LINKS[2]), [])
  assert.deepEqual(usableAddresses6(V6LINKS[3]), ['2001:2:0:4::2', '2001:2:0:4::3', '2001:2:0:4::1'])
  // a global-scope multicast or link-local address is still no unicast address
  assert.deepEqual(usableAddresses6(link(9, 'x', [], 1500, [addr6('ff02::1'), addr6('fe80::9'), addr6('::1')])), [])
  assert.equal(ip6ToString(publicIPv6Of(V6LINKS[1])!), '2001:2::10')
  assert.equal(publicIPv6Of(V6LINKS[2]), undefined)
  assert.equal(ip6ToString(publicIPv6Of(V6LINKS[2], '2001:db8::1')!), '2001:db8::1', '--public-ipv6 wins')
  assert.throws(() => publicIPv6Of(V6LINKS[1], '10.0.0.1'), /--public-ipv6 "10\.0\.0\.1" is not an IPv6 address/)
})

test('family dual: the interface as for IPv4, plus its public IPv6 (or --public-ipv6); none is an error saying what to do', () => {
  const v = view({ links: V6LINKS, dflt: 'eth0' })
  const u = chooseUnderlay({ family: 'dual' }, v)
  assert.deepEqual([u.name, ip4ToString(u.publicIP), ip6ToString(u.ip6!), ip6ToString(u.publicIPv6!)], ['eth0', '192.0.2.10', '2001:2::10', '2001:2::10'])
  const nat = chooseUnderlay({ family: 'dual', publicIpv6: '2001:db8::9' }, v)
  assert.deepEqual([ip6ToString(nat.ip6!), ip6ToString(nat.publicIPv6!)], ['2001:2::10', '2001:db8::9'])
  assert.throws(() => chooseUnderlay({ family: 'dual', iface: ['ens5'] }, v), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'EIFACE')
    assert.match(err.message, /^EnableIPv6 is on but interface ens5 has no global IPv6 address \(it has 2001:2:0:5::9 \(global, deprecated\), 2001:2:0:5::7 \(global, tentative\)\): give it one, or give --public-ipv6$/)
    return true
  })
  assert.equal(parseIp6('2001:db8::1'), chooseUnderlay({ family: 'dual', iface: ['ens5'], publicIpv6: '2001:db8::1' }, v).publicIPv6)
  // family ipv4 (the default) does not look at IPv6 at all
  assert.equal(chooseUnderlay({ iface: ['ens5'] }, v).publicIPv6, undefined)
})

test('family ipv6 (IPv6-only): chosen by IPv6 addresses and the IPv6 default route; the IPv4 fields are 0', () => {
  const v = view({ links: V6LINKS, dflt: 'v6only', routes: { '2001:2:0:4::99': { dev: 'v6only', prefsrc: '2001:2:0:4::1' } } })
  const p6 = (u: { name: string, ip: number, publicIP: number, ip6?: bigint, publicIPv6?: bigint }): string[] => [u.name, String(u.ip), String(u.publicIP), ip6ToString(u.ip6 ?? 0n), ip6ToString(u.publicIPv6 ?? 0n)]
  assert.deepEqual(p6(chooseUnderlay({ family: 'ipv6' }, v)), ['v6only', '0', '0', '2001:2:0:4::2', '2001:2:0:4::2'])
  assert.deepEqual(p6(chooseUnderlay({ family: 'ipv6', iface: ['2001:2::10'] }, v)), ['eth0', '0', '0', '2001:2::10', '2001:2::10'])
  assert.deepEqual(p6(chooseUnderlay({ family: 'ipv6', iface: ['ens5', 'eth0'] }, v)), ['eth0', '0', '0', '2001:2::10', '2001:2::10'])
  assert.deepEqual(p6(chooseUnderlay({ family: 'ipv6', ifaceRegex: [':4::3$'] }, v)), ['v6only', '0', '0', '2001:2:0:4::3', '2001:2:0:4::3'])
  assert.deepEqual(p6(chooseUnderlay({ family: 'ipv6', ifaceCanReach: '2001:2:0:4::99' }, v)), ['v6only', '0', '0', '2001:2:0:4::1', '2001:2:0:4::1'])
  assert.deepEqual(p6(chooseUnderlay({ family: 'ipv6', publicIpv6: '2001:2::10' }, v)), ['eth0', '0', '0', '2001:2::10', '2001:2::10'])
  assert.throws(() => chooseUnderlay({ family: 'ipv6', iface: ['192.0.2.10', 'ens5'] }, v), /--iface 192\.0\.2\.10: an IPv4 address: the underlay is IPv6-only \(EnableIPv4 false\); --iface ens5: ens5 has no usable IPv6 address/)
  assert.throws(() => chooseUnderlay({ family: 'ipv6' }, view({ links: V6LINKS })), /no IPv6 default route to pick the underlay interface from: give --iface/)
})

test('in a namespace: --iface names a link whose peer is down (no carrier) and one that is down itself, and gets their addresses; regex and can-reach find them too', { skip: netnsSkipReason() }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'iface-nocarrier' }, async (topo) => {
    const h = topo.hosts[0]!
    const sh = async (...argv: string[]): Promise<void> => { await topo.exec(h, argv) }
    // vx0 up with its peer down: NO-CARRIER; dn0 administratively down
    await sh('ip', 'link', 'add', 'vx0', 'type', 'veth', 'peer', 'name', 'vx1')
    await sh('ip', 'addr', 'add', '198.19.7.1/24', 'dev', 'vx0')
    await sh('ip', 'link', 'set', 'vx0', 'mtu', '1400', 'up')
    await sh('ip', 'link', 'add', 'dn0', 'type', 'veth', 'peer', 'name', 'dn1')
    await sh('ip', 'addr', 'add', '198.19.8.1/24', 'dev', 'dn0')
    const shown = (await topo.exec(h, ['ip', 'link', 'show', 'vx0'])).stdout
    assert.match(shown, /NO-CARRIER/)

    const u = findUnderlay({ iface: ['vx0'], netns: h.ns })
    assert.deepEqual(pick(u), ['vx0', '198.19.7.1', '198.19.7.1', '1400'])
    assert.deepEqual(pick(findUnderlay({ iface: ['dn0'], netns: h.ns })), ['dn0', '198.19.8.1', '198.19.8.1', '1500'])
    assert.deepEqual(pick(findUnderlay({ iface: ['198.19.8.1'], netns: h.ns })), ['dn0', '198.19.8.1', '198.19.8.1', '1500'])
    assert.deepEqual(pick(findUnderlay({ ifaceRegex: ['^198\\.19\\.7\\.'], netns: h.ns })), ['vx0', '198.19.7.1', '198.19.7.1', '1400'])
    assert.deepEqual(pick(findUnderlay({ ifaceRegex: ['^eth'], netns: h.ns })), ['eth0', h.underlayIp, h.underlayIp, '1500'])
    // can-reach: the kernel's route (a connected one here), with its source
    assert.deepEqual(pick(findUnderlay({ ifaceCanReach: '198.18.0.77', netns: h.ns })), ['eth0', h.underlayIp, h.underlayIp, '1500'])
    assert.throws(() => findUnderlay({ ifaceCanReach: '203.0.113.1', netns: h.ns }), /--iface-can-reach 203\.0\.113\.1: no route/)
    // no default route in a bare namespace
    assert.throws(() => findUnderlay({ netns: h.ns }), /no default route to pick the underlay interface from/)
    await sh('ip', 'route', 'add', 'default', 'via', '198.19.7.254', 'dev', 'vx0', 'onlink')
    assert.deepEqual(pick(findUnderlay({ netns: h.ns })), ['vx0', '198.19.7.1', '198.19.7.1', '1400'])
  })
})

test('in a namespace: family dual reads the interface\'s global IPv6 address, not its link-local one', { skip: netnsSkipReason() }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'iface-v6', ipv6: true }, async (topo) => {
    const h = topo.hosts[0]!
    const mine = h.underlayIp6!
    const u = findUnderlay({ iface: ['eth0'], family: 'dual', netns: h.ns })
    assert.equal(u.name, 'eth0')
    assert.equal(ip6ToString(u.publicIPv6!), mine)
    const only = findUnderlay({ iface: [mine], family: 'ipv6', netns: h.ns })
    assert.deepEqual([only.name, only.publicIP, ip6ToString(only.ip6!)], ['eth0', 0, mine])
    // a deprecated address (preferred lifetime 0) is not taken
    await topo.exec(h, ['ip', '-6', 'addr', 'add', '2001:2::ff/64', 'dev', 'eth0', 'nodad', 'preferred_lft', '0'])
    assert.equal(ip6ToString(findUnderlay({ iface: ['eth0'], family: 'dual', netns: h.ns }).publicIPv6!), mine)
  })
})
