// A peer lease whose PublicIP is missing or 0.0.0.0 ({} is one: flannel's
// decoder makes it 0.0.0.0) gives no address to reach the peer at. Every
// backend refuses it like any other unusable lease: logged once, counted,
// and never routed, even by the UDP backend, which takes any BackendType.
// A peer whose lease changes to such a value loses the entry it had.
// Pure table code: the TUN device, dataplane and kernel routes are fakes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { HostGwNetwork } from '../../src/backend/host-gw/network'
import type { PeerRoutes } from '../../src/kernel/routes'
import { peerMac } from '../../src/backend/vxlan/peer-mac'
import { Fdb } from '../../src/dataplane/fdb'
import { Drop } from '../../src/dataplane/stats'
import { formatCidr, parseCidr } from '../../src/packet/net'
import type { TrafficRules } from '../../src/kernel/iptables'
import { decodeLeaseAttrs } from '../../src/subnet/lease-json'
import { unusablePublicIP } from '../../src/subnet/lease'
import type { Lease } from '../../src/subnet/lease'
import type { PeerEvent } from '../../src/lease/watcher'
import { parseMac } from '../../src/packet/mac'
import { parseIp4 } from '../../src/packet/ip'
import { captureLogger } from '../helpers/log'
import { fakeTunNetwork } from './fake-tun-network'
import type { FakeTunNetwork } from './fake-tun-network'

const NETWORK = parseCidr('10.244.0.0/16')
const OWN = parseCidr('10.244.1.0/24')
const PEER = parseCidr('10.244.9.0/24')
const MAC = '"BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:09"}'
let revision = 1

const lease = (subnet: typeof PEER, value: string): Lease => ({ subnet, attrs: decodeLeaseAttrs(value), expiration: null, revision: revision++ })
const added = (value: string): PeerEvent[] => [{ type: 'added', lease: lease(PEER, value) }]

function tunNetwork (backend: 'vxlan' | 'udp'): FakeTunNetwork & { fdb: Fdb } {
  const fdb = new Fdb({ network: NETWORK, subnetLen: 24, port: 8472 })
  return {
    fdb,
    ...fakeTunNetwork({
      backend,
      fdb,
      own: lease(OWN, '{"PublicIP":"198.18.0.1"}'),
      mtu: 1450,
      unusable: backend === 'udp' ? () => undefined : (l) => { const m = peerMac(l); return typeof m === 'string' ? undefined : m.reason },
      ...(backend === 'vxlan' ? { macOf: (l: Lease) => { const m = peerMac(l); return typeof m === 'string' ? parseMac(m) : undefined } } : {})
    })
  }
}

for (const [backend, good, bad] of [
  ['udp', '{"PublicIP":"198.18.0.9"}', ['{}', '{"PublicIP":null}', '{"PublicIP":"0.0.0.0"}']],
  ['vxlan', `{"PublicIP":"198.18.0.9","BackendType":"vxlan",${MAC}}`, [`{"BackendType":"vxlan",${MAC}}`, `{"PublicIP":"0.0.0.0","PublicIPv6":null,"BackendType":"vxlan",${MAC}}`]]
] as const) {
  test(`${backend}: a peer lease with no PublicIP is refused, logged once and counted; a peer whose lease loses it loses its entry`, async () => {
    const { net, fdb, stats, logs } = tunNetwork(backend)
    try {
      for (const value of bad) net.handlePeers(added(value))
      assert.deepEqual(fdb.entries(), [], 'nothing routed to 0.0.0.0')
      assert.equal(stats[Drop.PEER_UNUSABLE], bad.length)
      const refused = logs.find(/ignoring a peer this backend cannot reach/)
      assert.equal(refused.length, 1, 'named once')
      assert.match(String(refused[0].reason), /PublicIP/)

      net.handlePeers(added(good))
      assert.deepEqual(fdb.entries().map((e) => [formatCidr(e.subnet), e.publicIP]), [['10.244.9.0/24', parseIp4('198.18.0.9')]])
      net.handlePeers(added(bad[0]))
      assert.deepEqual(fdb.entries(), [], 'the old entry goes with the address')
    } finally {
      await net.close()
    }
  })
}

test('host-gw: a peer lease with no PublicIP gets no route, is named once and listed as unusable', async () => {
  const logs = captureLogger()
  const calls: string[] = []
  const routes = {
    add: async (s: typeof PEER, via: number) => { calls.push(`add ${formatCidr(s)} via ${via}`); return true },
    remove: async (s: typeof PEER) => { calls.push(`remove ${formatCidr(s)}`) },
    close: async () => {},
    size: 0,
    readded: 0
  } as unknown as PeerRoutes
  const rules = { resync: async () => {}, apply: async () => {}, remove: async () => {} } as unknown as TrafficRules
  const underlay = { name: 'lo', ip: parseIp4('198.18.0.1'), publicIP: parseIp4('198.18.0.1'), mtu: 1500 }
  const net = new HostGwNetwork({ routes, rules, makeRules: () => rules, lease: lease(OWN, '{"PublicIP":"198.18.0.1"}'), mtu: 1500, underlay, log: logs.log })
  try {
    net.handlePeers(added('{"BackendType":"host-gw"}'))
    net.handlePeers(added('{"PublicIP":"0.0.0.0","PublicIPv6":null,"BackendType":"host-gw"}'))
    assert.ok(!calls.some((c) => c.startsWith('add')), calls.join('; '))
    assert.deepEqual(net.status().peers, [{ subnet: '10.244.9.0/24', publicIP: '0.0.0.0', route: 'unusable' }])
    assert.equal(logs.find(/ignoring a peer this backend cannot reach/).length, 1)
  } finally {
    await net.close()
  }
})

test('no peer is reached at 0.0.0.0/8, a multicast address or the broadcast address; any unicast address will do', () => {
  for (const ip of ['0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.255', '255.255.255.255']) assert.ok(unusablePublicIP(parseIp4(ip)) !== undefined, ip)
  for (const ip of ['1.0.0.0', '10.0.0.1', '198.18.0.9', '223.255.255.255', '240.0.0.1', '255.255.255.254']) assert.equal(unusablePublicIP(parseIp4(ip)), undefined, ip)
})
