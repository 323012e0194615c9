// IPv6 addresses, routes and forwarding through link.ts and sysctl.ts, in a
// namespace of the test harness (with IPv6 on), read back with `ip -6 -j`
// and sysctl there. Text in any valid form goes in; what comes out is in
// the canonical form iproute2 and Go print.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { withTopology, type Host, type Topology } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'
import {
  addAddress, addRoute, delAddress, delRoute, listAddresses, listRoutes, replaceRoute, setLinkUp
} from '../../src/kernel/link'
import { enableForwarding, getSysctl } from '../../src/kernel/sysctl'

const skip = netnsSkipReason()

interface JsonRoute { dst: string, gateway?: string, dev?: string, flags: string[] }

async function routes6 (topo: Topology, h: Host, dev: string): Promise<JsonRoute[]> {
  const all = JSON.parse((await topo.exec(h, ['ip', '-6', '-j', 'route', 'show', 'dev', dev])).stdout) as JsonRoute[]
  return all.filter((r) => !r.dst.startsWith('fe80:'))
}

async function vethPair (topo: Topology, h: Host, a: string, b: string): Promise<void> {
  await topo.exec(h, ['ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b])
  await setLinkUp(a, { netns: h.ns })
  await setLinkUp(b, { netns: h.ns })
}

test('IPv6 addresses: added in any text form, listed canonically, repeats and absent ones are no-ops', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'kernel-addr6', ipv6: true }, async (topo) => {
    const h = topo.hosts[0]!
    const o = { netns: h.ns }
    await vethPair(topo, h, 'v0', 'v1')
    await addAddress('v0', '10.50.0.1/24', o)
    await addAddress('v0', 'FC00:0:0:1:0:0:0:0/128', o) // flannel's VTEP address form, written oddly
    await addAddress('v0', 'fc00:0:0:1::/128', o) // the same, already there: fine
    await addAddress('v0', '2001:db8::1/64', o)
    const v6 = (await listAddresses('v0', { ...o, family: 6 })).filter((a) => !a.startsWith('fe80:'))
    assert.deepEqual(v6.sort(), ['2001:db8::1/64', 'fc00:0:0:1::/128'])
    assert.deepEqual(await listAddresses('v0', { ...o, family: 4 }), ['10.50.0.1/24'])
    const all = await listAddresses('v0', o)
    assert.ok(all.includes('10.50.0.1/24') && all.includes('fc00:0:0:1::/128'), all.join(' '))

    await delAddress('v0', 'fc00:0:0:1:0::/128', o)
    await delAddress('v0', 'fc00:0:0:1::/128', o) // already gone: fine
    await delAddress('nope0', 'fc00:0:0:1::/128', o) // device gone: the address is too
    assert.ok(!(await listAddresses('v0', { ...o, family: 6 })).includes('fc00:0:0:1::/128'))
    await assert.rejects(addAddress('v0', 'fc00:::1/64', o), { code: 'EKERNEL' })
    await assert.rejects(addAddress('nope0', 'fc00::1/64', o), { code: 'EKERNEL' })
  })
})

test('IPv6 routes: onlink via a gateway, host and default routes; add is idempotent, a conflict is not; replace and delete', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'kernel-route6', ipv6: true }, async (topo) => {
    const h = topo.hosts[0]!
    const o = { netns: h.ns }
    await vethPair(topo, h, 'v0', 'v1')

    // flannel's shapes: the cluster network into the device, a peer's subnet via its VTEP address, onlink
    await addRoute({ dst: 'fc00::/48', dev: 'v0' }, o)
    await addRoute({ dst: 'FC00:0:0:2::/64', via: 'FC00:0:0:2:0:0:0:0', dev: 'v0', onlink: true }, o)
    await addRoute({ dst: 'fc00:0:0:2::/64', via: 'fc00:0:0:2::', dev: 'v0', onlink: true }, o) // again: fine
    await addRoute({ dst: '2001:db8::7', dev: 'v0' }, o)
    await addRoute({ dst: 'default', via: 'fc00:0:0:9::1', dev: 'v0', onlink: true }, o)
    assert.deepEqual((await routes6(topo, h, 'v0')).map((r) => [r.dst, r.gateway, r.flags]).sort(), [
      ['2001:db8::7', undefined, []],
      ['default', 'fc00:0:0:9::1', ['onlink']],
      ['fc00:0:0:2::/64', 'fc00:0:0:2::', ['onlink']],
      ['fc00::/48', undefined, []]
    ].sort())
    // IPv4 routes are not among them, and the IPv4 listing is as it was
    assert.deepEqual(await listRoutes('v0', o), [])
    const listed = (await listRoutes('v0', { ...o, family: 6 })).filter((r) => !r.dst.startsWith('fe80:'))
    assert.deepEqual(listed.map((r) => [r.dst, r.via, r.onlink, r.dev]).sort(), [
      ['2001:db8::7/128', undefined, false, 'v0'],
      ['::/0', 'fc00:0:0:9::1', true, 'v0'],
      ['fc00:0:0:2::/64', 'fc00:0:0:2::', true, 'v0'],
      ['fc00::/48', undefined, false, 'v0']
    ].sort())

    // the same destination with another gateway is refused, with the kernel's reason
    await assert.rejects(addRoute({ dst: 'fc00:0:0:2::/64', via: 'fc00:0:0:2::1', dev: 'v0', onlink: true }, o), { code: 'EKERNEL' })
    await replaceRoute({ dst: 'fc00:0:0:2::/64', via: 'fc00:0:0:2::1', dev: 'v0', onlink: true }, o)
    assert.equal((await routes6(topo, h, 'v0')).find((r) => r.dst === 'fc00:0:0:2::/64')?.gateway, 'fc00:0:0:2::1')

    await delRoute({ dst: 'fc00:0:0:2::/64', via: 'FC00:0:0:2::1', dev: 'v0' }, o)
    await delRoute({ dst: 'fc00:0:0:2::/64', dev: 'v0' }, o) // gone: fine
    await delRoute({ dst: '2001:db8::7' }, o)
    await delRoute({ dst: 'default', via: 'fc00:0:0:9::1', dev: 'v0' }, o)
    await delRoute({ dst: 'fc00::/48', dev: 'nope0' }, o) // device gone: the route is too
    assert.deepEqual((await routes6(topo, h, 'v0')).map((r) => r.dst), ['fc00::/48'])
    await delRoute({ dst: 'fc00::/48', dev: 'v0' }, o)
    assert.deepEqual(await routes6(topo, h, 'v0'), [])
  })
})

test('enableForwarding turns IPv6 forwarding on only when asked, and can leave IPv4 alone', { skip }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'kernel-fwd6', ipv6: true }, async (topo) => {
    const [h1, h2, h3] = [topo.hosts[0]!, topo.hosts[1]!, topo.hosts[2]!]
    const v4 = 'net.ipv4.ip_forward'
    const v6 = 'net.ipv6.conf.all.forwarding'
    await enableForwarding({ netns: h1.ns })
    assert.deepEqual([await getSysctl(v4, { netns: h1.ns }), await getSysctl(v6, { netns: h1.ns })], ['1', '0'])
    await enableForwarding({ netns: h2.ns, ipv6: true })
    assert.deepEqual([await getSysctl(v4, { netns: h2.ns }), await getSysctl(v6, { netns: h2.ns })], ['1', '1'])
    await enableForwarding({ netns: h3.ns, ipv4: false, ipv6: true }) // an IPv6-only network
    assert.deepEqual([await getSysctl(v4, { netns: h3.ns }), await getSysctl(v6, { netns: h3.ns })], ['0', '1'])
  })
})
