// flannel's wireguard Modes, the pure parts: selectMode (Mode auto's
// family for a peer, as pkg/backend/wireguard picks it), the node's one
// family weft takes from it, and which key and port a single-device peer
// gets from a lease (BackendData's port first: flannel v0.28 writes
// ListenPortV6 in BackendV6Data though its one device listens on ListenPort).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseIp4 } from '../../src/packet/ip'
import { parseCidr } from '../../src/packet/net'
import { parseCidr6, parseIp6 } from '../../src/packet/net6'
import { autoFamily, selectMode } from '../../src/backend/wireguard/single'
import { peerData, singleDevicePeer } from '../../src/backend/wireguard/peer-key'
import type { Lease } from '../../src/subnet/lease'

const KEY = Buffer.alloc(32, 9).toString('base64')
const KEY2 = Buffer.alloc(32, 10).toString('base64')

test('selectMode: IPv4 for a peer with a public IPv4 address (or without IPv6), else IPv6 when both IPv6 addresses are global, else IPv4', () => {
  const us = { publicIP: parseIp4('192.168.1.1'), publicIPv6: parseIp6('2001:db8::1') }
  assert.equal(selectMode(us, parseIp4('198.18.0.2'), parseIp6('2001:db8::2')), 'ipv4', 'a public IPv4 peer')
  assert.equal(selectMode(us, parseIp4('10.0.0.2'), undefined), 'ipv4', 'no IPv6')
  assert.equal(selectMode(us, parseIp4('10.0.0.2'), parseIp6('2001:db8::2')), 'ipv6', 'RFC 1918 IPv4, global IPv6 both sides')
  assert.equal(selectMode(us, parseIp4('172.20.0.2'), parseIp6('fd00::2')), 'ipv4', 'a ULA peer')
  assert.equal(selectMode({ ...us, publicIPv6: parseIp6('fc00::1') }, parseIp4('172.16.0.2'), parseIp6('2001:db8::2')), 'ipv4', 'our ULA')
  assert.equal(selectMode({ publicIP: 0, publicIPv6: parseIp6('2001:db8::1') }, parseIp4('198.18.0.2'), parseIp6('2001:db8::2')), 'ipv6', 'no IPv4 of ours')
  assert.equal(autoFamily({ publicIP: parseIp4('198.18.0.1'), publicIPv6: parseIp6('2001:2::1') }), 'ipv4', 'the lab: 198.18.0.0/15 is no RFC 1918 network')
  assert.equal(autoFamily({ publicIP: parseIp4('10.1.2.3'), publicIPv6: parseIp6('2001:2::1') }), 'ipv6')
})

function lease (data: unknown, data6: unknown): Lease {
  return { subnet: parseCidr('10.244.3.0/24'), subnet6: parseCidr6('fc00:0:0:3::/64'), attrs: { publicIP: parseIp4('198.18.0.3'), publicIPv6: '2001:2::3', backendType: 'wireguard', ...(data !== undefined ? { backendData: data } : {}), ...(data6 !== undefined ? { backendV6Data: data6 } : {}) }, expiration: null, revision: 1 }
}

test('a single-device peer: BackendData\'s key and port first, BackendV6Data\'s for an IPv6-only lease, our port when neither has one', () => {
  const pick = (l: Lease): unknown => { const d = singleDevicePeer(l, 51820); return 'reason' in d ? d.reason : { key: d.publicKeyText, port: d.port } }
  assert.deepEqual(pick(lease({ PublicKey: KEY, Port: 51830 }, { PublicKey: KEY, Port: 51821 })), { key: KEY, port: 51830 }, 'flannel v0.28 in Mode ipv6: BackendV6Data names 51821, its device listens on BackendData\'s port')
  assert.deepEqual(pick(lease(undefined, { PublicKey: KEY2, Port: 51840 })), { key: KEY2, port: 51840 }, 'IPv6-only')
  assert.deepEqual(pick(lease({ PublicKey: KEY }, { PublicKey: KEY })), { key: KEY, port: 51820 }, 'no Port anywhere (flanneld before v0.26.6)')
  assert.match(String(pick(lease(undefined, undefined))), /neither BackendData nor BackendV6Data/)
  assert.match(String(pick(lease({ PublicKey: 'nope', Port: 1 }, { PublicKey: KEY, Port: 1 }))), /BackendData has no valid PublicKey/)
  assert.match(String(pick(lease({ PublicKey: KEY, Port: 1 }, { PublicKey: KEY, Port: -1 }))), /BackendV6Data has no valid Port/)
  const other = { ...lease({ PublicKey: KEY, Port: 1 }, undefined), attrs: { ...lease({}, undefined).attrs, backendType: 'vxlan' } }
  assert.match(String(pick(other)), /its backend is vxlan/)
})

test('Mode separate: the IPv6 device reads BackendV6Data alone, its Port or our ListenPortV6', () => {
  const d = peerData(lease({ PublicKey: KEY, Port: 51820 }, { PublicKey: KEY2, Port: 51850 }), 51821, 6)
  assert.ok(!('reason' in d))
  assert.equal(d.publicKeyText, KEY2)
  assert.equal(d.port, 51850)
  const d0 = peerData(lease(undefined, { PublicKey: KEY2 }), 51821, 6)
  assert.ok(!('reason' in d0) && d0.port === 51821)
  const none = peerData(lease({ PublicKey: KEY, Port: 51820 }, undefined), 51821, 6)
  assert.ok('reason' in none && /BackendV6Data is not an object/.test(none.reason))
})
