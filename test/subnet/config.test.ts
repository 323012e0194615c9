// The network config is read as flanneld reads it: the cases below are
// flannel's own (pkg/subnet/config_test.go and CheckNetworkConfig's rules),
// plus the places weft deliberately differs, each marked.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { WeftError } from '../../src/errors'
import { formatCidr } from '../../src/packet/net'
import { ip4ToString } from '../../src/packet/ip'
import { formatCidr6, ip6ToString } from '../../src/packet/net6'
import {
  DEFAULT_BACKEND_TYPE,
  FLANNEL_CODE_DEFAULT_BACKEND_TYPE,
  candidateSubnets,
  formatNetworkConfig,
  networkConfigFromJson,
  parseNetworkConfig,
  ipv6SubnetCount,
  subnetCount
} from '../../src/subnet/config'
import type { NetworkConfig } from '../../src/subnet/config'

function parse (v: unknown): NetworkConfig {
  return parseNetworkConfig(typeof v === 'string' ? v : JSON.stringify(v))
}

/** The config is rejected with ECONFIG and a message matching `re`. */
function rejects (v: unknown, re: RegExp): void {
  assert.throws(() => parse(v), (err: unknown) => {
    assert.ok(err instanceof WeftError, `not a WeftError: ${String(err)}`)
    assert.equal(err.code, 'ECONFIG')
    assert.match(err.message, /^net-conf: /)
    assert.match(err.message, re)
    return true
  })
}

function summary (c: NetworkConfig): { network: string, subnetLen: number, min: string, max: string } {
  return { network: formatCidr(c.network), subnetLen: c.subnetLen, min: ip4ToString(c.subnetMin), max: ip4ToString(c.subnetMax) }
}

test('flannel\'s example: a /16 gets /24 subnets from 10.3.1.0 to 10.3.255.0', () => {
  const c = parse({ Network: '10.3.0.0/16' })
  assert.deepEqual(summary(c), { network: '10.3.0.0/16', subnetLen: 24, min: '10.3.1.0', max: '10.3.255.0' })
  assert.equal(c.enableIPv4, true)
  assert.equal(c.enableNFTables, false)
  assert.equal(subnetCount(c), 255)
})

test('implicit SubnetLen: 24 up to a /22, prefix + 2 from /23 to /28, an error past /28', () => {
  assert.deepEqual(summary(parse({ Network: '10.0.0.0/22' })), { network: '10.0.0.0/22', subnetLen: 24, min: '10.0.1.0', max: '10.0.3.0' })
  assert.deepEqual(summary(parse({ Network: '10.0.0.0/23' })), { network: '10.0.0.0/23', subnetLen: 25, min: '10.0.0.128', max: '10.0.1.128' })
  assert.deepEqual(summary(parse({ Network: '10.0.0.0/24' })), { network: '10.0.0.0/24', subnetLen: 26, min: '10.0.0.64', max: '10.0.0.192' })
  assert.deepEqual(summary(parse({ Network: '10.0.0.0/28' })), { network: '10.0.0.0/28', subnetLen: 30, min: '10.0.0.4', max: '10.0.0.12' })
  rejects({ Network: '10.0.0.0/29' }, /^net-conf: Network "10\.0\.0\.0\/29": network is too small\. Minimum useful network prefix is \/28$/)
  rejects({ Network: '10.0.0.0/32' }, /too small/)
})

test('explicit SubnetLen: at most 30, and at least four subnets in the Network', () => {
  assert.equal(parse({ Network: '10.0.0.0/8', SubnetLen: 30 }).subnetLen, 30)
  assert.deepEqual(summary(parse({ Network: '10.0.0.0/16', SubnetLen: 18 })), { network: '10.0.0.0/16', subnetLen: 18, min: '10.0.64.0', max: '10.0.192.0' })
  rejects({ Network: '10.0.0.0/8', SubnetLen: 31 }, /^net-conf: SubnetLen 31: must be less than \/31$/)
  rejects({ Network: '10.0.0.0/16', SubnetLen: 17 }, /^net-conf: SubnetLen 17: network must be able to accommodate at least four subnets/)
  rejects({ Network: '10.0.0.0/16', SubnetLen: 16 }, /at least four subnets/)
  // SubnetLen 0 is Go's zero value: "not set", so the default applies.
  assert.equal(parse({ Network: '10.0.0.0/16', SubnetLen: 0 }).subnetLen, 24)
})

test('Network is required, parsed like net.ParseCIDR, and 0.0.0.0/0 counts as empty', () => {
  rejects({}, /^net-conf: Network is missing/)
  rejects({ SubnetLen: 24 }, /Network is missing/)
  rejects({ Network: '0.0.0.0/0' }, /^net-conf: Network "0\.0\.0\.0\/0": please define a correct Network/)
  // host bits are dropped, so this is 0.0.0.0/0 too
  rejects({ Network: '10.1.2.3/0' }, /please define a correct Network/)
  rejects({ Network: '10.0.0.0/33' }, /^net-conf: Network "10\.0\.0\.0\/33": invalid CIDR/)
  rejects({ Network: '10.0.0.0' }, /Network "10\.0\.0\.0": invalid CIDR/)
  rejects({ Network: '10.0.0.256/8' }, /invalid CIDR/)
  rejects({ Network: '' }, /Network "": invalid CIDR/)
  rejects({ Network: 'fd00::/8' }, /Network "fd00::\/8": invalid IPv4 CIDR format/)
  rejects({ Network: null }, /Network null: must be a string/)
  rejects({ Network: 167772160 }, /Network 167772160: must be a string/)
  const c = parse({ Network: '10.244.7.9/16' })
  assert.equal(formatCidr(c.network), '10.244.0.0/16')
  assert.equal(ip4ToString(c.subnetMin), '10.244.1.0')
})

test('SubnetMin and SubnetMax: inside Network, on a SubnetLen boundary, min not above max', () => {
  const c = parse({ Network: '10.3.0.0/16', SubnetMin: '10.3.10.0', SubnetMax: '10.3.20.0' })
  assert.deepEqual(summary(c), { network: '10.3.0.0/16', subnetLen: 24, min: '10.3.10.0', max: '10.3.20.0' })
  assert.equal(subnetCount(c), 11)
  rejects({ Network: '10.3.0.0/16', SubnetMin: '10.4.1.0' }, /^net-conf: SubnetMin 10\.4\.1\.0: is not in the range of the Network 10\.3\.0\.0\/16$/)
  rejects({ Network: '10.3.0.0/16', SubnetMax: '10.2.255.0' }, /^net-conf: SubnetMax 10\.2\.255\.0: is not in the range of the Network/)
  rejects({ Network: '10.3.0.0/16', SubnetMin: '10.3.1.128' }, /^net-conf: SubnetMin 10\.3\.1\.128: is not on a SubnetLen boundary \(\/24\)$/)
  rejects({ Network: '10.3.0.0/16', SubnetMax: '10.3.7.1' }, /^net-conf: SubnetMax 10\.3\.7\.1: is not on a SubnetLen boundary/)
  rejects({ Network: '10.3.0.0/16', SubnetMin: 'ten' }, /^net-conf: SubnetMin "ten": invalid IPv4 address$/)
  rejects({ Network: '10.3.0.0/16', SubnetMin: 5 }, /SubnetMin 5: must be a string/)
  // weft-only check (flannel would start and then find no free subnet):
  rejects({ Network: '10.3.0.0/16', SubnetMin: '10.3.9.0', SubnetMax: '10.3.2.0' }, /^net-conf: SubnetMin 10\.3\.9\.0 is above SubnetMax 10\.3\.2\.0/)
  // "0.0.0.0" is flannel's zero value, i.e. unset
  assert.equal(ip4ToString(parse({ Network: '10.3.0.0/16', SubnetMin: '0.0.0.0' }).subnetMin), '10.3.1.0')
  // the network's own first subnet may be named explicitly
  assert.equal(ip4ToString(parse({ Network: '10.3.0.0/16', SubnetMin: '10.3.0.0' }).subnetMin), '10.3.0.0')
})

test('the default SubnetMax does not overflow at the top of the address space', () => {
  assert.deepEqual(summary(parse({ Network: '255.0.0.0/8' })), { network: '255.0.0.0/8', subnetLen: 24, min: '255.0.1.0', max: '255.255.255.0' })
})

test('types are checked as Go\'s decoder checks them; null leaves a plain field at its default', () => {
  rejects({ Network: '10.0.0.0/8', SubnetLen: '24' }, /^net-conf: SubnetLen "24": must be an integer$/)
  rejects({ Network: '10.0.0.0/8', SubnetLen: 24.5 }, /SubnetLen 24\.5: must be an integer/)
  rejects({ Network: '10.0.0.0/8', SubnetLen: -1 }, /SubnetLen -1: must not be negative/)
  rejects({ Network: '10.0.0.0/8', EnableNFTables: 'yes' }, /^net-conf: EnableNFTables "yes": must be true or false$/)
  rejects({ Network: '10.0.0.0/8', EnableIPv4: 1 }, /EnableIPv4 1: must be true or false/)
  assert.equal(parse({ Network: '10.0.0.0/8', SubnetLen: null }).subnetLen, 24)
  assert.equal(parse({ Network: '10.0.0.0/8', EnableNFTables: true }).enableNFTables, true)
})

test('keys match in any case, at every level, and unknown keys are ignored', () => {
  const c = parse({ network: '10.5.0.0/16', SUBNETLEN: 26, subnetmin: '10.5.0.64', Color: 'blue', backend: { type: 'VXLAN', vni: 4, PORT: 4789, directrouting: true, Extra: 1 } })
  assert.deepEqual(summary(c), { network: '10.5.0.0/16', subnetLen: 26, min: '10.5.0.64', max: '10.5.255.192' })
  assert.deepEqual(c.backend, { type: 'vxlan', vni: 4, port: 4789, mtu: 0, gbp: false, learning: false, directRouting: true, remCsum: true })
  assert.equal(parse({ NETWORK: '10.0.0.0/8' }).subnetLen, 24)
  // Go folds with Unicode simple case folding: LONG S matches "s", KELVIN SIGN matches "k"
  assert.equal(parse({ Network: '10.0.0.0/8', \u017fubnetLen: 26 }).subnetLen, 26)
  assert.equal(parse({ Networ\u212a: '10.0.0.0/8' }).subnetLen, 24)
  // Network and Networks are different fields
  rejects({ Networks: '10.0.0.0/8' }, /Network is missing/)
})

function summary6 (c: NetworkConfig): { network: string, subnetLen: number, min: string, max: string } {
  assert.ok(c.ipv6Network !== undefined && c.ipv6SubnetMin !== undefined && c.ipv6SubnetMax !== undefined)
  return { network: formatCidr6(c.ipv6Network), subnetLen: c.ipv6SubnetLen, min: ip6ToString(c.ipv6SubnetMin), max: ip6ToString(c.ipv6SubnetMax) }
}

test('flannel\'s TestIPv6ConfigDefaults: an IPv6-only fc00::/48 gets /64 subnets from fc00:0:0:1:: to fc00:0:0:ffff::', () => {
  // flannel's own document, keys in its lower case
  const c = parse('{ "enableIPv6": true, "ipv6Network": "fc00::/48", "enableIPv4": false }')
  assert.deepEqual(summary6(c), { network: 'fc00::/48', subnetLen: 64, min: 'fc00:0:0:1::', max: 'fc00:0:0:ffff::' })
  assert.equal(c.enableIPv4, false)
  assert.equal(c.enableIPv6, true)
  // the contract: with IPv4 off, the IPv4 fields are empty
  assert.deepEqual(summary(c), { network: '0.0.0.0/0', subnetLen: 0, min: '0.0.0.0', max: '0.0.0.0' })
  assert.equal(ipv6SubnetCount(c), 65535n)
})

test('flannel\'s TestIPv6ConfigOverrides: IPv6SubnetMin, IPv6SubnetMax and IPv6SubnetLen as given (host-gw: no peer table)', () => {
  const c = parse({ EnableIPv6: true, IPv6Network: 'fc00::/48', IPv6SubnetMin: 'fc00:0:0:1::', IPv6SubnetMax: 'fc00:0:0:f::', IPv6SubnetLen: 124, enableIPv4: false, Backend: { Type: 'host-gw' } })
  assert.deepEqual(summary6(c), { network: 'fc00::/48', subnetLen: 124, min: 'fc00:0:0:1::', max: 'fc00:0:0:f::' })
  // weft's peer table: 2^76 subnets are refused for vxlan, naming the field
  rejects({ EnableIPv6: true, IPv6Network: 'fc00::/48', IPv6SubnetLen: 124, enableIPv4: false }, /IPv6Network "fc00::\/48" with IPv6SubnetLen 124 has .* subnets; the vxlan backend's peer table holds at most 4194304 \(use IPv6SubnetLen 70 or less/)
})

test('dual stack: both halves checked and filled; defaults as CheckNetworkConfig computes them', () => {
  const c = parse({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:10:244::/56' })
  assert.deepEqual(summary(c), { network: '10.244.0.0/16', subnetLen: 24, min: '10.244.1.0', max: '10.244.255.0' })
  assert.deepEqual(summary6(c), { network: 'fd00:10:244::/56', subnetLen: 64, min: 'fd00:10:244:1::', max: 'fd00:10:244:ff::' })
  assert.equal(c.enableIPv4, true)
  // host bits dropped, as net.ParseCIDR does; a /63 is cut in four (/65), a /124 too (/126)
  assert.equal(formatCidr6(parse({ Network: '10.0.0.0/8', EnableIPv6: true, IPv6Network: 'FC00::1/48' }).ipv6Network!), 'fc00::/48')
  assert.deepEqual(summary6(parse({ Network: '10.0.0.0/8', EnableIPv6: true, IPv6Network: 'fc00::/63' })), { network: 'fc00::/63', subnetLen: 65, min: 'fc00::8000:0:0:0', max: 'fc00:0:0:1:8000::' })
  assert.equal(parse({ Network: '10.0.0.0/8', EnableIPv6: true, IPv6Network: 'fc00::/124', Backend: { Type: 'host-gw' } }).ipv6SubnetLen, 126)
  // null is "unset" for the *ip.IP6 fields, and "::" is empty, as flannel's ip.IsEmpty
  assert.equal(ip6ToString(parse({ Network: '10.0.0.0/8', EnableIPv6: true, IPv6Network: 'fc00::/48', IPv6SubnetMin: null, IPv6SubnetMax: '::' }).ipv6SubnetMax!), 'fc00:0:0:ffff::')
  // without EnableIPv6 the IPv6 fields are decoded (as Go does) but not used
  const v4 = parse({ Network: '10.0.0.0/8', EnableIPv6: false, IPv6Network: 'fc00::/48', IPv6SubnetLen: 64 })
  assert.equal(v4.subnetLen, 24)
  assert.equal(v4.enableIPv6, false)
  assert.equal(v4.ipv6Network, undefined)
  assert.equal(v4.ipv6SubnetLen, 64)
})

test('each bad IPv6 field is refused, naming it (flannel\'s CheckNetworkConfig bounds)', () => {
  const base = { Network: '10.0.0.0/8', EnableIPv6: true }
  rejects(base, /^net-conf: IPv6Network is missing: EnableIPv6 is true/)
  rejects({ ...base, IPv6Network: '::/0' }, /IPv6Network "::\/0": please define a correct IPv6Network/)
  rejects({ ...base, IPv6Network: null }, /IPv6Network null: must be a string/)
  rejects({ ...base, IPv6Network: 'fc00::' }, /IPv6Network "fc00::": invalid CIDR/)
  rejects({ ...base, IPv6Network: 'fc00::/129' }, /IPv6Network "fc00::\/129": invalid CIDR/)
  rejects({ ...base, IPv6Network: '10.1.0.0/16' }, /IPv6Network "10\.1\.0\.0\/16": not an IPv6 CIDR/)
  rejects({ ...base, IPv6Network: 'fc00::zz/48' }, /IPv6Network "fc00::zz\/48": invalid CIDR \("fc00::zz" is not an IPv6 address\)/)
  rejects({ ...base, IPv6Network: 'fc00::/125' }, /IPv6Network "fc00::\/125": IPv6Network is too small\. Minimum useful network prefix is \/124/)
  rejects({ ...base, IPv6Network: 'fc00::/48', IPv6SubnetLen: 127 }, /IPv6SubnetLen 127: must be less than \/127/)
  rejects({ ...base, IPv6Network: 'fc00::/48', IPv6SubnetLen: 49 }, /IPv6SubnetLen 49: network must be able to accommodate at least four subnets \(IPv6Network fc00::\/48 needs IPv6SubnetLen 50 or more\)/)
  rejects({ ...base, IPv6Network: 'fc00::/48', IPv6SubnetLen: -1 }, /IPv6SubnetLen -1: must not be negative/)
  rejects({ ...base, IPv6Network: 'fc00::/48', IPv6SubnetLen: 64.5 }, /IPv6SubnetLen 64\.5: must be an integer/)
  rejects({ ...base, IPv6Network: 'fc00::/48', IPv6SubnetMin: 'fd00::' }, /IPv6SubnetMin fd00::: is not in the range of the IPv6Network fc00::\/48/)
  rejects({ ...base, IPv6Network: 'fc00::/48', IPv6SubnetMax: 'fc01::' }, /IPv6SubnetMax fc01::: is not in the range of the IPv6Network fc00::\/48/)
  rejects({ ...base, IPv6Network: 'fc00::/48', IPv6SubnetMin: 'fc00:0:0:1::1' }, /IPv6SubnetMin fc00:0:0:1::1: is not on an IPv6SubnetLen boundary \(\/64\)/)
  rejects({ ...base, IPv6Network: 'fc00::/48', IPv6SubnetMax: 'fc00:0:0:2:8000::' }, /IPv6SubnetMax fc00:0:0:2:8000::: is not on an IPv6SubnetLen boundary/)
  rejects({ ...base, IPv6Network: 'fc00::/48', IPv6SubnetMin: 'fc00:0:0:9::', IPv6SubnetMax: 'fc00:0:0:2::' }, /IPv6SubnetMin fc00:0:0:9:: is above IPv6SubnetMax fc00:0:0:2::/)
  rejects({ ...base, IPv6Network: 'fc00::/48', IPv6SubnetMin: 7 }, /IPv6SubnetMin 7: must be a string/)
  rejects({ ...base, IPv6Network: 'fc00::/48', IPv6SubnetMin: '10.0.0.1' }, /IPv6SubnetMin "10\.0\.0\.1": not an IPv6 address/)
  rejects({ ...base, IPv6Network: 'fc00::/48', IPv6SubnetMin: 'fc00:::1' }, /IPv6SubnetMin "fc00:::1": invalid IPv6 address/)
  // a malformed IPv6 field is a decode error in flannel even with EnableIPv6 false
  rejects({ Network: '10.0.0.0/8', IPv6Network: 'junk' }, /IPv6Network "junk": invalid CIDR/)
  rejects({ Network: '10.0.0.0/8', IPv6SubnetMax: 'junk' }, /IPv6SubnetMax "junk": not an IPv6 address/)
  // an IPv6 Network is pointed to IPv6Network
  rejects({ Network: 'fc00::/48' }, /Network "fc00::\/48": invalid IPv4 CIDR format \(an IPv6 network goes in IPv6Network, with EnableIPv6 true\)/)
})

test('IPv6-only: no Network needed; a malformed one is still refused; neither family is refused', () => {
  const c = parse({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48' })
  assert.equal(c.enableIPv4, false)
  assert.equal(parse({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', Network: '10.0.0.0/8' }).network.prefixLen, 0)
  rejects({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', Network: '10.0.0.0' }, /Network "10\.0\.0\.0": invalid CIDR/)
  rejects({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', SubnetLen: -3 }, /SubnetLen -3: must not be negative/)
  rejects({ EnableIPv4: false }, /EnableIPv4 false and EnableIPv6 false: enable at least one family/)
  rejects({ EnableIPv4: false, Network: '10.0.0.0/8' }, /enable at least one family/)
  rejects({ EnableIPv4: 'no', EnableIPv6: true, IPv6Network: 'fc00::/48' }, /EnableIPv4 "no": must be true or false/)
})

test('backends and IPv6: udp and ipip are IPv4-only as flannel\'s; wireguard takes it in every Mode that has endpoints; vxlan and host-gw take it', () => {
  const v6 = { Network: '10.0.0.0/8', EnableIPv6: true, IPv6Network: 'fc00::/48' }
  rejects({ ...v6, Backend: { Type: 'udp' } }, /^net-conf: EnableIPv6 true: the udp backend is IPv4-only, as flannel's is/)
  rejects({ ...v6, Backend: { Type: 'ipip' } }, /^net-conf: EnableIPv6 true: the ipip backend is IPv4-only, as flannel's is/)
  assert.equal(parse({ ...v6, Backend: { Type: 'wireguard' } }).backend.type, 'wireguard')
  const only6 = { EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48' }
  for (const Mode of ['separate', 'auto', 'ipv4', 'ipv6']) assert.equal((parse({ ...v6, Backend: { Type: 'wireguard', Mode } }).backend as { mode: string }).mode, Mode)
  for (const Mode of ['separate', 'auto', 'ipv6']) assert.equal((parse({ ...only6, Backend: { Type: 'wireguard', Mode } }).backend as { mode: string }).mode, Mode)
  rejects({ ...only6, Backend: { Type: 'wireguard', Mode: 'ipv4' } }, /^net-conf: EnableIPv4 false: the wireguard Mode "ipv4" needs IPv4 endpoints/)
  // the device that carries IPv6 gets Backend.MTU less 80: under 1360 it would be below IPv6's 1280
  rejects({ ...v6, Backend: { Type: 'wireguard', MTU: 1300 } }, /Backend\.MTU 1300: with EnableIPv6 it must be 0 or at least 1360/)
  rejects({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', Backend: { Type: 'udp' } }, /udp backend is IPv4-only/)
  assert.equal(parse({ ...v6, Backend: { Type: 'vxlan' } }).backend.type, 'vxlan')
  assert.equal(parse({ ...v6, Backend: { Type: 'host-gw' } }).backend.type, 'host-gw')
  // the vxlan table: a /40 of /64s is 2^24 subnets, too many; host-gw keeps no table
  rejects({ ...v6, IPv6Network: 'fc00::/40' }, /IPv6Network "fc00::\/40" with IPv6SubnetLen 64 has 16777216 subnets; the vxlan backend's peer table holds at most 4194304 \(use IPv6SubnetLen 62 or less, or a smaller IPv6Network\)/)
  assert.equal(parse({ ...v6, IPv6Network: 'fc00::/40', Backend: { Type: 'host-gw' } }).ipv6SubnetLen, 64)
  assert.equal(parse({ ...v6, IPv6Network: 'fc00::/42' }).ipv6SubnetLen, 64)
  // an MTU under which the IPv6 device would fall below IPv6's 1280 (weft's check; the kernel would turn IPv6 off there)
  rejects({ ...v6, Backend: { Type: 'vxlan', MTU: 1300 } }, /Backend\.MTU 1300: with EnableIPv6 it must be 0 or at least 1350/)
  assert.equal((parse({ ...v6, Backend: { Type: 'vxlan', MTU: 1350 } }).backend as { mtu: number }).mtu, 1350)
  assert.equal((parse({ Network: '10.0.0.0/8', Backend: { Type: 'vxlan', MTU: 1300 } }).backend as { mtu: number }).mtu, 1300)
})

test('formatNetworkConfig writes the IPv6 fields back normalised, and drops the IPv4 ones of an IPv6-only config', () => {
  assert.equal(formatNetworkConfig({ network: '10.0.0.0/8', enableipv6: true, ipv6network: 'FC00::5/48', IPv6SubnetLen: 64, IPv6SubnetMin: 'fc00:0:0:0010::', IPv6SubnetMax: '::' }),
    '{"Network":"10.0.0.0/8","IPv6Network":"fc00::/48","IPv6SubnetLen":64,"IPv6SubnetMin":"fc00:0:0:10::","EnableIPv6":true,"Backend":{"Type":"vxlan"}}')
  assert.equal(formatNetworkConfig({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', Network: '10.0.0.0/8', Backend: { Type: 'host-gw' } }),
    '{"IPv6Network":"fc00::/48","EnableIPv4":false,"EnableIPv6":true,"Backend":{"Type":"host-gw"}}')
  const doc = { EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fc00::/48', IPv6SubnetMax: 'fc00:0:0:20::' }
  assert.deepEqual({ ...parse(formatNetworkConfig(doc)), raw: null, backendDefaulted: false }, { ...parse(doc), raw: null, backendDefaulted: false })
})

test('no Backend means vxlan in weft, where flannel\'s code would run udp (flannel issue #1221)', () => {
  assert.equal(DEFAULT_BACKEND_TYPE, 'vxlan')
  assert.equal(FLANNEL_CODE_DEFAULT_BACKEND_TYPE, 'udp')
  const c = parse({ Network: '10.0.0.0/8' })
  assert.equal(c.backendDefaulted, true)
  assert.deepEqual(c.backend, { type: 'vxlan', vni: 1, port: 8472, mtu: 0, gbp: false, learning: false, directRouting: false, remCsum: true })
  assert.equal(parse({ Network: '10.0.0.0/8', Backend: { Type: 'vxlan' } }).backendDefaulted, false)
})

test('Backend present needs a Type naming a known backend', () => {
  rejects({ Network: '10.0.0.0/8', Backend: {} }, /^net-conf: Backend\.Type is missing: unknown backend type ""/)
  rejects({ Network: '10.0.0.0/8', Backend: { VNI: 1 } }, /Backend\.Type is missing/)
  rejects({ Network: '10.0.0.0/8', Backend: { Type: '' } }, /Backend\.Type "": unknown backend type/)
  rejects({ Network: '10.0.0.0/8', Backend: { Type: 'geneve' } }, /^net-conf: Backend\.Type "geneve": unknown backend type/)
  rejects({ Network: '10.0.0.0/8', Backend: { Type: 'ipsec' } }, /Backend\.Type "ipsec": backend not supported by weft/)
  rejects({ Network: '10.0.0.0/8', Backend: { Type: 7 } }, /Backend\.Type 7: must be a string/)
  rejects({ Network: '10.0.0.0/8', Backend: 'vxlan' }, /^net-conf: Backend "vxlan": must be an object/)
  rejects({ Network: '10.0.0.0/8', Backend: null }, /Backend null: must be an object/)
})

test('backend options per type, with flannel\'s names and defaults', () => {
  const be = (b: unknown): unknown => parse({ Network: '10.0.0.0/8', Backend: b }).backend
  assert.deepEqual(be({ Type: 'vxlan', VNI: 16777215, Port: 4789, MTU: 9000, GBP: true, Learning: true }),
    { type: 'vxlan', vni: 16777215, port: 4789, mtu: 9000, gbp: true, learning: true, directRouting: false, remCsum: true })
  assert.deepEqual(be({ Type: 'vxlan', Port: 0 }), { type: 'vxlan', vni: 1, port: 8472, mtu: 0, gbp: false, learning: false, directRouting: false, remCsum: true })
  // weft's own option: remote checksum offload, on unless turned off
  assert.equal((be({ Type: 'vxlan', RemCsum: false }) as { remCsum: boolean }).remCsum, false)
  assert.equal((be({ Type: 'vxlan', remcsum: false }) as { remCsum: boolean }).remCsum, false, 'keys in any case, as Go decodes them')
  assert.throws(() => be({ Type: 'vxlan', RemCsum: 'no' }), /Backend\.RemCsum/)
  assert.deepEqual(be({ Type: 'UDP' }), { type: 'udp', port: 8285 })
  assert.deepEqual(be({ Type: 'udp', Port: 9000, VNI: 'ignored: not a udp option' }), { type: 'udp', port: 9000 })
  assert.deepEqual(be({ Type: 'IPIP', DirectRouting: true }), { type: 'ipip', directRouting: true })
  assert.deepEqual(be({ Type: 'Host-GW' }), { type: 'host-gw' })
})

test('out-of-range or mistyped backend options name the option', () => {
  const bad = (b: unknown, re: RegExp): void => rejects({ Network: '10.0.0.0/8', Backend: b }, re)
  bad({ Type: 'vxlan', VNI: 0 }, /^net-conf: Backend\.VNI 0: must be from 1 to 16777215$/)
  bad({ Type: 'vxlan', VNI: 16777216 }, /Backend\.VNI 16777216: must be from 1 to 16777215/)
  bad({ Type: 'vxlan', vni: '4' }, /Backend\.VNI "4": must be an integer/)
  bad({ Type: 'vxlan', Port: 65536 }, /Backend\.Port 65536: must be from 1 to 65535/)
  bad({ Type: 'vxlan', Port: -1 }, /Backend\.Port -1/)
  bad({ Type: 'vxlan', MTU: 100 }, /Backend\.MTU 100: must be 0 .* or from 118 to 65535/)
  bad({ Type: 'vxlan', GBP: 'true' }, /Backend\.GBP "true": must be true or false/)
  bad({ Type: 'udp', Port: 0 }, /Backend\.Port 0: must be from 1 to 65535/)
  bad({ Type: 'ipip', DirectRouting: 1 }, /Backend\.DirectRouting 1: must be true or false/)
})

test('weft differs: a Network cut into more subnets than the vxlan, udp and ipip peer table holds is refused up front; host-gw keeps no table and runs it', () => {
  // 2^22 subnets is the most the Fdb holds: a /8 of /30s fits, a /7 of /30s or a /1 of /24s does not
  for (const type of ['vxlan', 'udp', 'ipip']) {
    assert.equal(parse({ Network: '10.0.0.0/8', SubnetLen: 30, Backend: { Type: type } }).subnetLen, 30)
    rejects({ Network: '10.0.0.0/7', SubnetLen: 30, Backend: { Type: type } },
      new RegExp(`^net-conf: Network "10\\.0\\.0\\.0/7" with SubnetLen 30 has 8388608 subnets; the ${type} backend's peer table holds at most 4194304 \\(use SubnetLen 29 or less, or a smaller Network\\)$`))
  }
  rejects({ Network: '0.0.0.0/1' }, /has 8388608 subnets; the vxlan backend's peer table holds at most 4194304 \(use SubnetLen 23 or less/)
  assert.equal(parse({ Network: '10.0.0.0/7', SubnetLen: 30, Backend: { Type: 'host-gw' } }).subnetLen, 30)
})

test('malformed JSON is ECONFIG with the parser\'s position', () => {
  rejects('{"Network": "10.0.0.0/8",\n  "SubnetLen": }', /^net-conf: not valid JSON: Unexpected token '}'.* \(line 2, column 16, offset 41\)$/)
  rejects('{"Network": "10.0.0.0/8"', /not valid JSON: Expected ',' or '}' after property value .*\(line 1, column 25, offset 24\)$/)
  rejects('', /not valid JSON: Unexpected end of JSON input \(line 1, column 1, offset 0\)$/)
  rejects('{"Network": "10.0.0.0/8"} x', /non-whitespace character after JSON .*\(line 1, column 27, offset 26\)$/)
  rejects('{"Network": "10.0.0.0/8"\n\u0000}', /^net-conf: not valid JSON: [^\n]*\(line 2, column 1, offset 25\)$/)
  rejects('{"Network": "10.0.0.0/8",}', /\(line 1, column 26, offset 25\)$/)
})

test('JSON that is not an object is rejected', () => {
  rejects('[]', /^net-conf: the config must be a JSON object, got \[\]$/)
  rejects('"x"', /must be a JSON object, got "x"/)
  rejects('42', /must be a JSON object/)
  // Go decodes null into nothing, so what is reported is the missing Network
  rejects('null', /Network is missing/)
})

test('raw keeps the parsed document', () => {
  const doc = { Network: '10.0.0.0/8', Note: 'kept' }
  assert.deepEqual(parse(doc).raw, doc)
  assert.deepEqual(networkConfigFromJson(doc).raw, doc)
})

test('candidateSubnets walks SubnetMin to SubnetMax in SubnetLen steps', () => {
  const c = parse({ Network: '10.0.0.0/24', SubnetMin: '10.0.0.64' })
  assert.deepEqual([...candidateSubnets(c)].map(formatCidr), ['10.0.0.64/26', '10.0.0.128/26', '10.0.0.192/26'])
  assert.equal(subnetCount(c), 3)
  const top = parse({ Network: '255.255.255.0/24', SubnetLen: 30 })
  const all = [...candidateSubnets(top)]
  assert.equal(all.length, subnetCount(top))
  assert.equal(formatCidr(all[all.length - 1]), '255.255.255.252/30')
  assert.equal(subnetCount({ subnetLen: 24, subnetMin: 2, subnetMax: 1 }), 0)
})

test('formatNetworkConfig writes canonical compact JSON with an explicit Backend.Type', () => {
  assert.equal(formatNetworkConfig({ network: '10.244.3.4/16' }), '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}')
  assert.equal(
    formatNetworkConfig({ backend: { vni: 4, type: 'VXLAN', junk: true }, enableNFTables: true, subnetMax: '10.1.9.0', SUBNETLEN: 24, network: '10.1.0.0/16', other: 1 }),
    '{"Network":"10.1.0.0/16","SubnetLen":24,"SubnetMax":"10.1.9.0","EnableNFTables":true,"Backend":{"Type":"vxlan","VNI":4}}')
  assert.equal(formatNetworkConfig({ Network: '10.0.0.0/8', Backend: { Type: 'udp', Port: 9000 } }), '{"Network":"10.0.0.0/8","Backend":{"Type":"udp","Port":9000}}')
  assert.throws(() => formatNetworkConfig({ Network: '10.0.0.0/8', SubnetLen: 31 }), { code: 'ECONFIG' })
  // what it writes reads back to the same config
  const doc = { network: '10.1.0.0/16', subnetMin: '10.1.4.0', backend: { type: 'ipip', directrouting: true } }
  const again = parse(formatNetworkConfig(doc))
  assert.deepEqual({ ...again, raw: null }, { ...parse(doc), raw: null })
})

test('EnableNFTables: a bool, default false; null is the default; any key case; with any backend', () => {
  assert.equal(parse({ Network: '10.0.0.0/8' }).enableNFTables, false)
  assert.equal(parse({ Network: '10.0.0.0/8', EnableNFTables: false }).enableNFTables, false)
  assert.equal(parse({ Network: '10.0.0.0/8', EnableNFTables: null }).enableNFTables, false)
  assert.equal(parse({ Network: '10.0.0.0/8', enablenftables: true }).enableNFTables, true)
  for (const type of ['vxlan', 'udp', 'ipip', 'host-gw']) {
    assert.equal(parse({ Network: '10.0.0.0/8', EnableNFTables: true, Backend: { Type: type } }).enableNFTables, true, type)
  }
  rejects({ Network: '10.0.0.0/8', EnableNFTables: 1 }, /EnableNFTables 1: must be true or false/)
})

test('wireguard: flannel\'s options and defaults; a PSK that is not a key, a bad Mode or IPv6 mode are refused', () => {
  assert.deepEqual(parse({ Network: '10.0.0.0/8', Backend: { Type: 'wireguard' } }).backend, { type: 'wireguard', listenPort: 51820, listenPortV6: 51821, mtu: 0, psk: '', persistentKeepalive: 0, mode: 'separate' })
  const psk = Buffer.alloc(32, 7).toString('base64')
  assert.deepEqual(parse({ Network: '10.0.0.0/8', Backend: { type: 'WireGuard', listenport: 51000, MTU: 1400, PSK: psk, PersistentKeepaliveInterval: 25, Mode: 'auto' } }).backend, { type: 'wireguard', listenPort: 51000, listenPortV6: 51821, mtu: 1400, psk, persistentKeepalive: 25, mode: 'auto' })
  rejects({ Network: '10.0.0.0/8', Backend: { Type: 'wireguard', PSK: 'secret' } }, /Backend\.PSK: must be a base64 key of 32 bytes/)
  rejects({ Network: '10.0.0.0/8', Backend: { Type: 'wireguard', PSK: 5 } }, /Backend\.PSK 5: must be a string/)
  rejects({ Network: '10.0.0.0/8', Backend: { Type: 'wireguard', Mode: 'Auto' } }, /Backend\.Mode "Auto": no valid Mode configured/)
  rejects({ Network: '10.0.0.0/8', Backend: { Type: 'wireguard', Mode: 'ipv6' } }, /^net-conf: Backend\.Mode "ipv6": the peers' IPv6 addresses as endpoints need EnableIPv6 true/)
  rejects({ Network: '10.0.0.0/8', Backend: { Type: 'wireguard', ListenPort: 0 } }, /Backend\.ListenPort 0: must be from 1 to 65535/)
  rejects({ Network: '10.0.0.0/8', Backend: { Type: 'wireguard', MTU: 100 } }, /Backend\.MTU 100/)
  rejects({ Network: '10.0.0.0/8', Backend: { Type: 'wireguard', PersistentKeepaliveInterval: -1 } }, /PersistentKeepaliveInterval -1/)
})
