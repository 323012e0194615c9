// What `weft capture` asks libpcap for and how it reads the answer, without
// root: the BPF expression per backend and device kind, the decode options,
// --pod matching on inner addresses, and the device/link-type mapping.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { classifyDevice, linkTypeFromCap } from '../../src/capture/capture'
import { DEFAULT_DECODE, LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL, LINKTYPE_RAW, PLAIN_DECODE, decodePacket } from '../../src/capture/decode'
import { buildFilter, decodeOptionsFor, encapFilter, matchesPods, parseAddressOrNet, type FilterOptions } from '../../src/capture/filter'
import { WeftError } from '../../src/errors'
import { POD1, POD2, icmpPacket, vxlanFrame } from './frames'

const base: FilterOptions = { backend: 'auto', nodes: [], pods: [], kind: 'underlay' }
const nets = (...s: string[]) => s.map((x) => parseAddressOrNet(x, '--x'))

test('underlay filters: the tunnel of each backend, --port, --node as host/net', () => {
  assert.equal(buildFilter(base), '(udp port 8472 or ip proto 4 or udp port 8285 or udp port 51820)')
  assert.equal(buildFilter({ ...base, backend: 'vxlan' }), 'udp port 8472')
  assert.equal(buildFilter({ ...base, backend: 'vxlan', port: 4789 }), 'udp port 4789')
  assert.equal(buildFilter({ ...base, backend: 'ipip' }), 'ip proto 4')
  assert.equal(buildFilter({ ...base, backend: 'udp' }), 'udp port 8285')
  assert.equal(buildFilter({ ...base, backend: 'udp', port: 9000 }), 'udp port 9000')
  assert.equal(buildFilter({ ...base, backend: 'wireguard' }), 'udp port 51820')
  assert.equal(buildFilter({ ...base, backend: 'wireguard', port: 51999 }), 'udp port 51999')
  assert.equal(buildFilter({ ...base, backend: 'wireguard', nodes: nets('198.18.0.2') }), 'udp port 51820 and host 198.18.0.2')
  // auto: --port is VXLAN's; the others keep their defaults
  assert.equal(encapFilter('auto', 4789), 'udp port 4789 or ip proto 4 or udp port 8285 or udp port 51820')
  assert.equal(buildFilter({ ...base, backend: 'vxlan', nodes: nets('198.18.0.2') }), 'udp port 8472 and host 198.18.0.2')
  assert.equal(buildFilter({ ...base, nodes: nets('198.18.0.2', '198.18.1.7/24') }),
    '(udp port 8472 or ip proto 4 or udp port 8285 or udp port 51820) and (host 198.18.0.2 or net 198.18.1.0/24)')
  // --pod is matched after decoding on the underlay: not in the BPF.
  assert.equal(buildFilter({ ...base, pods: nets('10.244.1.2') }), '(udp port 8472 or ip proto 4 or udp port 8285 or udp port 51820)')
})

test('--backend wireguard refuses --pod on the underlay (the pod addresses are encrypted); on its device --pod works', () => {
  assert.throws(() => buildFilter({ ...base, backend: 'wireguard', pods: nets('10.244.1.2') }),
    (e: unknown) => e instanceof WeftError && e.code === 'EFLAG' && /WireGuard encrypts them: use --node/.test(e.message))
  assert.equal(buildFilter({ ...base, backend: 'wireguard', kind: 'vtep', pods: nets('10.244.1.2') }), 'ip and host 10.244.1.2')
})

test('VTEP filters: the pods\' own packets, --pod in BPF, --node refused', () => {
  const vtep: FilterOptions = { ...base, kind: 'vtep' }
  assert.equal(buildFilter(vtep), 'ip or ip6', 'either family: weft-v6.1 and flannel-v6.1 carry IPv6')
  assert.equal(buildFilter({ ...vtep, pods: nets('10.244.1.2', '10.244.2.0/24') }), 'ip and (host 10.244.1.2 or net 10.244.2.0/24)')
  assert.throws(() => buildFilter({ ...vtep, nodes: nets('198.18.0.2') }), (e: unknown) => e instanceof WeftError && e.code === 'EFLAG' && /--pod/.test(e.message))
})

test('decode options follow the backend; a VTEP looks for no tunnel', () => {
  assert.deepEqual(decodeOptionsFor('auto', undefined, 'underlay'), DEFAULT_DECODE)
  assert.deepEqual(DEFAULT_DECODE, { vxlanPorts: [8472], udpPorts: [8285], wireguardPorts: [51820], ipip: true })
  assert.deepEqual(decodeOptionsFor('auto', 4789, 'underlay'), { vxlanPorts: [4789], udpPorts: [8285], wireguardPorts: [51820], ipip: true })
  assert.deepEqual(decodeOptionsFor('vxlan', undefined, 'underlay'), { vxlanPorts: [8472], udpPorts: [], wireguardPorts: [], ipip: false })
  assert.deepEqual(decodeOptionsFor('ipip', undefined, 'underlay'), { vxlanPorts: [], udpPorts: [], wireguardPorts: [], ipip: true })
  assert.deepEqual(decodeOptionsFor('udp', 9000, 'underlay'), { vxlanPorts: [], udpPorts: [9000], wireguardPorts: [], ipip: false })
  assert.deepEqual(decodeOptionsFor('wireguard', undefined, 'underlay'), { vxlanPorts: [], udpPorts: [], wireguardPorts: [51820], ipip: false })
  assert.deepEqual(decodeOptionsFor('wireguard', 51999, 'underlay'), { vxlanPorts: [], udpPorts: [], wireguardPorts: [51999], ipip: false })
  assert.deepEqual(decodeOptionsFor('vxlan', undefined, 'vtep'), PLAIN_DECODE)
  assert.deepEqual(decodeOptionsFor('wireguard', undefined, 'vtep'), PLAIN_DECODE)
})

test('--pod matches the inner addresses of a tunnel packet, either direction, address or subnet', () => {
  const d = decodePacket(vxlanFrame(icmpPacket(POD1, POD2, 1, 1)), LINKTYPE_ETHERNET)
  assert.equal(matchesPods(d, []), true)
  assert.equal(matchesPods(d, nets(POD1)), true)
  assert.equal(matchesPods(d, nets(POD2)), true)
  assert.equal(matchesPods(d, nets('10.244.2.0/24')), true)
  assert.equal(matchesPods(d, nets('10.244.3.4', '10.244.9.0/24')), false)
  assert.equal(matchesPods(d, nets('198.18.0.1')), false, 'outer addresses are nodes, not pods')
  const plain = decodePacket(icmpPacket(POD1, POD2, 1, 1), LINKTYPE_RAW)
  assert.equal(matchesPods(plain, nets(POD1)), true)
  assert.equal(matchesPods(decodePacket(Buffer.alloc(3), LINKTYPE_ETHERNET), nets(POD1)), false)
  // A tunnel packet with no inner packet to read (here a VXLAN header with bad flags): its outer addresses are nodes', never pods'.
  const broken = vxlanFrame(icmpPacket(POD1, POD2, 1, 1))
  broken[14 + 20 + 8] = 0
  assert.equal(matchesPods(decodePacket(broken, LINKTYPE_ETHERNET), nets('198.18.0.0/16')), false)
})

test('--pod/--node values: an address or a CIDR, anything else a WeftError', () => {
  assert.deepEqual(parseAddressOrNet('10.244.1.2', '--pod'), { ip: 0x0af40102, prefixLen: 32 })
  assert.deepEqual(parseAddressOrNet('10.244.1.0/24', '--pod'), { ip: 0x0af40100, prefixLen: 24 })
  for (const bad of ['10.244.1', 'pod-a', '10.244.1.0/33', '']) {
    assert.throws(() => parseAddressOrNet(bad, '--pod'), (e: unknown) => e instanceof WeftError && e.code === 'EFLAG' && e.message.includes('--pod'))
  }
})

test('device kinds: TUN, IP-in-IP tunnels and kernel vxlan devices are VTEPs; Ethernet is the underlay', () => {
  assert.equal(classifyDevice(65534, undefined), 'vtep') // weft.1 (TUN)
  assert.equal(classifyDevice(768, undefined), 'vtep') // tunl0, flannel.ipip
  assert.equal(classifyDevice(1, 'vxlan'), 'vtep') // flannel.1
  assert.equal(classifyDevice(1, undefined), 'underlay') // eth0
  assert.equal(classifyDevice(1, 'veth'), 'underlay')
  assert.equal(classifyDevice(772, undefined), 'underlay') // lo
  assert.equal(classifyDevice(undefined, undefined), 'underlay') // 'any'
})

test("cap's link type names map to pcap LINKTYPE numbers; unsupported ones to undefined", () => {
  assert.equal(linkTypeFromCap('ETHERNET'), LINKTYPE_ETHERNET)
  assert.equal(linkTypeFromCap('RAW'), LINKTYPE_RAW)
  assert.equal(linkTypeFromCap('LINKTYPE_LINUX_SLL'), LINKTYPE_LINUX_SLL)
  assert.equal(linkTypeFromCap('Unknown linktype 228'), LINKTYPE_IPV4)
  assert.equal(linkTypeFromCap('Unknown linktype 276'), undefined)
  assert.equal(linkTypeFromCap('IEEE802_11_RADIO'), undefined)
  assert.equal(linkTypeFromCap('NULL'), undefined)
})
