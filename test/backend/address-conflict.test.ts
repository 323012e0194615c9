// Leases that name one public IP, seen by a TUN backend's table code: the
// conflict is named once per set of claimants, counted and shown in status;
// no real peer leaves the table. A lease naming our own public IP is named
// once however often it is put. Pure table code over fakes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Fdb } from '../../src/dataplane/fdb'
import { parseCidr } from '../../src/packet/net'
import type { Ip4Net } from '../../src/packet/net'
import { decodeLeaseAttrs } from '../../src/subnet/lease-json'
import type { Lease } from '../../src/subnet/lease'
import type { PeerEvent } from '../../src/lease/watcher'
import { parseIp4 } from '../../src/packet/ip'
import { fakeTunNetwork } from './fake-tun-network'

const NETWORK = parseCidr('10.244.0.0/16')
let revision = 1
const lease = (subnet: string, publicIP: string): Lease => ({ subnet: parseCidr(subnet), attrs: decodeLeaseAttrs(`{"PublicIP":"${publicIP}"}`), expiration: null, revision: revision++ })
const put = (subnet: string, publicIP: string): PeerEvent[] => [{ type: 'added', lease: lease(subnet, publicIP) }]
const gone = (subnet: string, publicIP: string): PeerEvent[] => [{ type: 'removed', lease: lease(subnet, publicIP) }]

function udpNetwork (): ReturnType<typeof fakeTunNetwork> & { fdb: Fdb } {
  const fdb = new Fdb({ network: NETWORK, subnetLen: 24, port: 8285 })
  return { fdb, ...fakeTunNetwork({ backend: 'udp', fdb, own: lease('10.244.1.0/24', '198.18.0.1'), mtu: 1472, unusable: () => undefined }) }
}

test('a lease borrowing a peer\'s public IP is named once, counted and listed in status; when it goes, the real peer is still the address\'s', async () => {
  const { net, fdb, logs } = udpNetwork()
  try {
    net.handlePeers(put('10.244.2.0/24', '198.18.0.2'))
    for (let i = 0; i < 5; i++) net.handlePeers(put('10.244.200.0/24', '198.18.0.2')) // a writer repeating itself
    net.handlePeers(put('10.244.2.0/24', '198.18.0.2')) // the real peer renewing
    const named = logs.find(/more than one lease claims this public IP/)
    assert.equal(named.length, 1, 'named once')
    assert.deepEqual(named[0].subnets, ['10.244.2.0/24', '10.244.200.0/24'])
    assert.equal(named[0].claimants, 2)
    assert.equal(net.conflicts, 1)
    assert.deepEqual(net.status().conflicts, [{ publicIP: '198.18.0.2', subnets: ['10.244.2.0/24', '10.244.200.0/24'] }])

    net.handlePeers(gone('10.244.200.0/24', '198.18.0.2'))
    const real = fdb.source(parseIp4('198.18.0.2'))
    assert.ok(real >= 0, 'the real peer still answers for its address')
    assert.deepEqual(fdb.entries()[0].subnet, parseCidr('10.244.2.0/24') as Ip4Net)
    assert.deepEqual(net.status().conflicts, [])

    net.handlePeers(put('10.244.201.0/24', '198.18.0.2')) // a new conflict on the address: named again
    assert.equal(logs.find(/more than one lease claims this public IP/).length, 2)
    assert.equal(net.conflicts, 2)
  } finally {
    await net.close()
  }
})

test('a lease that holds our own public IP is named once, however often it is put, and never routed', async () => {
  const { net, fdb, logs } = udpNetwork()
  try {
    for (let i = 0; i < 100; i++) net.handlePeers(put('10.244.9.0/24', '198.18.0.1'))
    assert.equal(logs.find(/holds our own public IP/).length, 1)
    assert.deepEqual(fdb.entries(), [])
    net.handlePeers(gone('10.244.9.0/24', '198.18.0.1'))
    net.handlePeers(put('10.244.9.0/24', '198.18.0.1'))
    assert.equal(logs.find(/holds our own public IP/).length, 2, 'once more after it went and came back')
  } finally {
    await net.close()
  }
})

test('a peer whose lease moves to our own public IP leaves the table', async () => {
  const { net, fdb } = udpNetwork()
  try {
    net.handlePeers(put('10.244.9.0/24', '198.18.0.9'))
    assert.equal(fdb.entries().length, 1)
    net.handlePeers(put('10.244.9.0/24', '198.18.0.1'))
    assert.deepEqual(fdb.entries(), [])
  } finally {
    await net.close()
  }
})

test('hundreds of leases piled on one address: named once, every claimant in status, and the real peer keeps the address', async () => {
  const { net, fdb, logs } = udpNetwork()
  try {
    net.handlePeers(put('10.244.2.0/24', '198.18.0.2'))
    const pile: PeerEvent[] = []
    for (let i = 3; i < 250; i++) if (i !== 1 && i !== 2) pile.push(...put(`10.244.${i}.0/24`, '198.18.0.2'))
    net.handlePeers(pile)
    const named = logs.find(/more than one lease claims this public IP/)
    assert.equal(named.length, 1, 'named once, when the second claimant came')
    assert.equal(net.status().conflicts?.[0].subnets.length, pile.length + 1, 'status lists every claimant')
    assert.equal(fdb.entry(fdb.source(parseIp4('198.18.0.2')))?.subnet.ip, parseCidr('10.244.2.0/24').ip, 'the oldest claimant answers for the address')
  } finally {
    await net.close()
  }
})
