// weft's host-gw backend across real kernels: no tunnel, no dataplane, just
// kernel routes to peers on the same link, kept as flannel keeps them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatCidr } from '../../src/packet/net'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { withTopology, waitFor } from '../../lab/netns'
import { ping } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { BIN, cluster } from '../../lab/daemons'
import { logs, mesh, podsFor, rawLeases } from './mesh'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3', 'iptables')
const esc = (ip: string): string => ip.replace(/\./g, '\\.')

test('host-gw: three nodes with two pods each, full mesh by ping and TCP over plain routes; a fourth node reachable within a second of its lease; SIGTERM leaves nothing but the lease', { skip, timeout: 240_000 }, async (t) => {
  await withTopology(t, { hosts: 4, label: 'hostgw-mesh', timeoutMs: 220_000 }, async (topo) => {
    const r = await mesh(t, topo, { config: CONFIG, addedMsg: 'route added', device: undefined })
    const [d1, d2] = r.nodes
    const s = await d1.status()
    assert.equal(s.backend, 'host-gw')
    assert.equal(s.device, 'eth0')
    assert.equal(d1.env().mtu, 1500, 'subnet.env: the underlay MTU, nothing to subtract')
    assert.ok(s.peers.every((p) => p.route === 'routed'), JSON.stringify(s.peers))
    const routes = (await topo.exec(d1.host, ['ip', 'route', 'show'])).stdout
    assert.match(routes, new RegExp(`${esc(formatCidr(d2.env().subnet))} via ${esc(d2.host.underlayIp)} dev eth0`))
    const key = formatCidr(d1.env().subnet).replace('/', '-')
    assert.equal(rawLeases(r.c)[key], `{"PublicIP":"${topo.hosts[0].underlayIp}","PublicIPv6":null,"BackendType":"host-gw"}`)
  })
})

test('host-gw refuses to run behind NAT, skips (and names once) a peer off our link, and puts back a route someone deleted', { skip, timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'hostgw-edges', timeoutMs: 100_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const c = cluster(t, topo, CONFIG)

    // NAT: a public IP that is not the interface's address
    const nat = topo.spawn(h2, [process.execPath, BIN, 'run', '--store', `sqlite:${c.dir}/store.db`, '--subnet-file', `${c.dir}/nat/subnet.env`, '--state-dir', `${c.dir}/nat`, '--iface', 'eth0', '--public-ip', '198.18.200.2'])
    const exit = await nat.exited
    assert.equal(exit.code, 1)
    assert.match(nat.stderr, /the host-gw backend cannot run behind NAT: the public IP 198\.18\.200\.2 is not the address 198\.18\.0\.2 of eth0/)
    assert.deepEqual(Object.keys(rawLeases(c)), [], 'no lease taken')

    const a = await c.start(h1)
    const b = await c.start(h2)
    const [pa] = await podsFor(topo, a, 1)
    const [pb] = await podsFor(topo, b, 1)
    await waitFor(() => logs(a).some((l) => l.msg === 'route added'), { what: 'route to b', timeoutMs: 5000 })
    assert.equal((await ping(topo, pa, pb.ip, { count: 2 })).received, 2)

    // a host-gw peer that is not on our link: skipped, logged once, no route (no traffic sent to it)
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    store.putRaw('10.244.251.0-24', '{"PublicIP":"198.51.100.7","PublicIPv6":null,"BackendType":"host-gw"}', 86400)
    store.putRaw('10.244.251.0-24', '{"PublicIP":"198.51.100.8","PublicIPv6":null,"BackendType":"host-gw"}', 86400)
    // and a peer of another backend: not ours to route
    store.putRaw('10.244.252.0-24', '{"PublicIP":"198.18.0.9","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}}', 86400)
    await store.close()
    await waitFor(async () => (await a.status()).peers.length === 3, { what: 'the odd peers listed', timeoutMs: 3000 })
    const peers = Object.fromEntries((await a.status()).peers.map((p) => [p.subnet, p.route]))
    assert.equal(peers['10.244.251.0/24'], 'not directly connected')
    assert.equal(peers['10.244.252.0/24'], 'unusable')
    assert.equal(logs(a).filter((l) => l.msg.startsWith('skipping a peer that is not on our link')).length, 1, 'named once, though its lease changed')
    assert.doesNotMatch((await topo.exec(h1, ['ip', 'route', 'show'])).stdout, /10\.244\.25[12]\.0/)

    // flannel re-checks its routes every 10 s and puts back missing ones
    const bSubnet = formatCidr(b.env().subnet)
    await topo.exec(h1, ['ip', 'route', 'del', bSubnet])
    await waitFor(() => logs(a).some((l) => l.msg === 'a route to a peer was missing; re-added it' && l.subnet === bSubnet), { what: 'the route re-added', timeoutMs: 12_000, intervalMs: 200 })
    assert.match((await topo.exec(h1, ['ip', 'route', 'show'])).stdout, new RegExp(`${esc(bSubnet)} via ${esc(h2.underlayIp)} dev eth0`))
    assert.equal((await ping(topo, pa, pb.ip, { count: 2 })).received, 2)
    assert.equal((await a.status()).counters.counters.routes_readded, 1)
  })
})
