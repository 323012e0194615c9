// Addresses, routes, links and sysctls, each driven into a namespace of the
// test harness and read back with `ip -j` / sysctl there. Nothing is done in
// the root namespace (its ip_forward is only read, to prove it is untouched).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { withTopology, type Host, type Topology } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'
import { probe } from '../../src/kernel/exec'
import {
  addAddress, addRoute, delAddress, delRoute, linkExists, listAddresses, listRoutes, replaceRoute, setLinkUp
} from '../../src/kernel/link'
import { enableForwarding, getSysctl, setSysctl, sysctlPath } from '../../src/kernel/sysctl'

const skip = netnsSkipReason()

interface JsonRoute { dst: string, gateway?: string, flags: string[] }

async function ipJson<T> (topo: Topology, h: Host, args: string[]): Promise<T> {
  return JSON.parse((await topo.exec(h, ['ip', '-j', ...args])).stdout) as T
}

async function addrsOn (topo: Topology, h: Host, dev: string): Promise<string[]> {
  const links = await ipJson<Array<{ addr_info: Array<{ family: string, local: string, prefixlen: number }> }>>(topo, h, ['addr', 'show', 'dev', dev])
  return links.flatMap((l) => l.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`))
}

/** A veth pair with both ends inside h's namespace, both up. */
async function vethPair (topo: Topology, h: Host, a: string, b: string): Promise<void> {
  await topo.exec(h, ['ip', 'link', 'add', a, 'type', 'veth', 'peer', 'name', b])
  await setLinkUp(a, { netns: h.ns })
  await setLinkUp(b, { netns: h.ns })
}

const rootForwarding = (): string => readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()

test('addresses appear and vanish; repeats are no-ops', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'kernel-addr' }, async (topo) => {
    const h = topo.hosts[0]!
    const o = { netns: h.ns }
    await vethPair(topo, h, 'v0', 'v1')
    assert.equal(await linkExists('v0', o), true)
    assert.equal(await linkExists('nope0', o), false)

    await addAddress('v0', '10.50.0.1/24', o)
    assert.deepEqual(await addrsOn(topo, h, 'v0'), ['10.50.0.1/24'])
    await addAddress('v0', '10.50.0.1/24', o) // already there: fine
    await addAddress('v0', '10.244.1.0/32', o) // flannel's VTEP address form
    assert.deepEqual(await addrsOn(topo, h, 'v0'), ['10.50.0.1/24', '10.244.1.0/32'])
    assert.deepEqual((await listAddresses('v0', o)).filter((a) => !a.includes(':')), ['10.50.0.1/24', '10.244.1.0/32'])

    await delAddress('v0', '10.50.0.1/24', o)
    assert.deepEqual(await addrsOn(topo, h, 'v0'), ['10.244.1.0/32'])
    await delAddress('v0', '10.50.0.1/24', o) // already gone: fine
    await delAddress('nope0', '10.50.0.1/24', o) // device gone: the address is too

    await assert.rejects(addAddress('nope0', '10.50.0.1/24', o), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'EKERNEL')
      assert.match(err.message, new RegExp(`^ip netns exec ${h.ns} ip addr add 10\\.50\\.0\\.1/24 dev nope0: .*nope0`))
      return true
    })
    await assert.rejects(addAddress('v0', '10.50.0.1', o), { code: 'EKERNEL', message: /expected address\/prefix-length/ })
  })
})

test('routes appear and vanish; repeats are no-ops; conflicts are errors', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'kernel-route' }, async (topo) => {
    const h = topo.hosts[0]!
    const o = { netns: h.ns }
    await vethPair(topo, h, 'v0', 'v1')
    const routes = async (): Promise<JsonRoute[]> => (await ipJson<JsonRoute[]>(topo, h, ['route', 'show', 'dev', 'v0']))
      .map((r) => ({ dst: r.dst, ...(r.gateway !== undefined ? { gateway: r.gateway } : {}), flags: r.flags }))

    // flannel's vxlan peer route, and the whole-network device route
    await addRoute({ dst: '10.244.2.0/24', via: '10.244.2.0', dev: 'v0', onlink: true }, o)
    await addRoute({ dst: '10.244.0.0/16', dev: 'v0' }, o)
    await addRoute({ dst: '10.62.0.5', dev: 'v0' }, o)
    assert.deepEqual(await routes(), [
      { dst: '10.62.0.5', flags: [] },
      { dst: '10.244.0.0/16', flags: [] },
      { dst: '10.244.2.0/24', gateway: '10.244.2.0', flags: ['onlink'] }
    ])
    assert.deepEqual(await listRoutes('v0', o), [
      { dst: '10.62.0.5/32', dev: 'v0', onlink: false, scope: 'link' },
      { dst: '10.244.0.0/16', dev: 'v0', onlink: false, scope: 'link' },
      { dst: '10.244.2.0/24', dev: 'v0', via: '10.244.2.0', onlink: true }
    ])

    // the same again: no error, no duplicate
    await addRoute({ dst: '10.244.2.0/24', via: '10.244.2.0', dev: 'v0', onlink: true }, o)
    await addRoute({ dst: '10.244.0.0/16', dev: 'v0' }, o)
    assert.equal((await routes()).length, 3)
    // a different route to the same destination is not "already there"
    await assert.rejects(addRoute({ dst: '10.244.2.0/24', via: '10.244.2.9', dev: 'v0', onlink: true }, o), { code: 'EKERNEL', message: /ip route add 10\.244\.2\.0\/24 via 10\.244\.2\.9/ })
    await assert.rejects(addRoute({ dst: '10.244.2.0/24', via: '10.244.2.0', dev: 'v1', onlink: true }, o), { code: 'EKERNEL' })

    // replace moves it
    await replaceRoute({ dst: '10.244.2.0/24', via: '10.244.2.9', dev: 'v0', onlink: true }, o)
    await replaceRoute({ dst: '10.244.2.0/24', via: '10.244.2.9', dev: 'v0', onlink: true }, o)
    assert.deepEqual((await routes()).filter((r) => r.dst === '10.244.2.0/24'), [{ dst: '10.244.2.0/24', gateway: '10.244.2.9', flags: ['onlink'] }])

    await delRoute({ dst: '10.244.2.0/24', dev: 'v0' }, o)
    await delRoute({ dst: '10.244.2.0/24', dev: 'v0' }, o) // already gone
    await delRoute({ dst: '10.62.0.5', dev: 'v0', via: '10.1.1.1' }, o) // no such route (other gateway): nothing to do
    assert.deepEqual((await routes()).map((r) => r.dst), ['10.62.0.5', '10.244.0.0/16'])
    await delRoute({ dst: '10.62.0.5/32' }, o)
    await delRoute({ dst: '10.244.0.0/16', dev: 'v0' }, o)
    assert.deepEqual(await routes(), [])
    assert.deepEqual(await listRoutes('v0', o), [])
    await delRoute({ dst: '10.244.0.0/16', dev: 'nope0' }, o) // device gone: so is the route

    await assert.rejects(listRoutes('nope0', o), { code: 'EKERNEL', message: /nope0/ })
  })
})

test('sysctls are set and read in the namespace only', { skip }, async (t) => {
  const rootBefore = rootForwarding()
  await withTopology(t, { hosts: 2, label: 'kernel-sysctl' }, async (topo) => {
    const [h1, h2] = [topo.hosts[0]!, topo.hosts[1]!]
    await setSysctl('net.ipv4.ip_forward', 0, { netns: h1.ns })
    await setSysctl('net.ipv4.ip_forward', '0', { netns: h2.ns })
    assert.equal(await getSysctl('net.ipv4.ip_forward', { netns: h1.ns }), '0')

    await enableForwarding({ netns: h1.ns })
    assert.equal(await getSysctl('net.ipv4.ip_forward', { netns: h1.ns }), '1')
    assert.equal((await topo.exec(h1, ['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim(), '1')
    assert.equal(await getSysctl('net.ipv4.ip_forward', { netns: h2.ns }), '0')
    assert.equal(rootForwarding(), rootBefore)

    // interface names with dots (flannel.1) need the slash form
    await vethPair(topo, h1, 'wt.1', 'wt.2')
    await setSysctl('net/ipv4/conf/wt.1/forwarding', 0, { netns: h1.ns })
    assert.equal(await getSysctl('net/ipv4/conf/wt.1/forwarding', { netns: h1.ns }), '0')
    await setSysctl('net/ipv4/conf/wt.1/forwarding', 1, { netns: h1.ns })
    assert.equal(await getSysctl('net/ipv4/conf/wt.1/forwarding', { netns: h1.ns }), '1')

    await assert.rejects(setSysctl('net.ipv4.no_such_knob', 1, { netns: h2.ns }), { code: 'EKERNEL' })
  })
  assert.equal(rootForwarding(), rootBefore)
})

test('without netns, sysctls go straight to /proc/sys (run by a process inside a namespace)', { skip }, async (t) => {
  const rootBefore = rootForwarding()
  await withTopology(t, { hosts: 1, label: 'kernel-sysctl-direct' }, async (topo) => {
    const h = topo.hosts[0]!
    await setSysctl('net.ipv4.ip_forward', 0, { netns: h.ns })
    const mod = path.join(__dirname, '..', '..', 'src', 'kernel', 'sysctl.js')
    const script = `const s = require(${JSON.stringify(mod)});
      s.enableForwarding().then(() => s.getSysctl('net.ipv4.ip_forward')).then((v) => console.log(v), (e) => { console.error(e); process.exitCode = 1 })`
    const r = await topo.exec(h, [process.execPath, '-e', script])
    assert.equal(r.stdout.trim(), '1')
    assert.equal(await getSysctl('net.ipv4.ip_forward', { netns: h.ns }), '1')
  })
  assert.equal(rootForwarding(), rootBefore)
})

test('a program missing inside `ip netns exec` is notFound', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'kernel-exec' }, async (topo) => {
    await assert.rejects(probe(['weft-no-such-program'], { netns: topo.hosts[0]!.ns }), { code: 'EKERNEL', notFound: true, message: /command not found$/ })
  })
})

test('sysctl names cannot escape /proc/sys', () => {
  assert.equal(sysctlPath('net.ipv4.ip_forward'), '/proc/sys/net/ipv4/ip_forward')
  assert.equal(sysctlPath('net/ipv4/conf/flannel.1/forwarding'), '/proc/sys/net/ipv4/conf/flannel.1/forwarding')
  for (const bad of ['../../etc/passwd', 'net/../../etc', 'net..ipv4', '', '/net/ipv4', 'net.ipv4 x']) {
    assert.throws(() => sysctlPath(bad), { code: 'EKERNEL' }, bad)
  }
})
