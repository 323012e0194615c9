// weft's userspace IP-in-IP across real kernels (this one has no ipip
// module, which is the case the backend is for): nodes and pods in
// namespaces, the wire checked with tcpdump, DirectRouting with one peer
// behind a router, and hostile protocol-4 traffic under a bounded flood.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { formatCidr } from '../../src/packet/net'
import { withTopology, waitFor } from '../../lab/netns'
import { ping } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { cluster } from '../../lab/daemons'
import { logs, mesh, pair, podsFor, rawLeases } from './mesh'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"ipip"}}'
const DIRECT = '{"Network":"10.244.0.0/16","Backend":{"Type":"ipip","DirectRouting":true}}'
const JUNK = path.join(__dirname, '..', 'fixtures', 'tunnel-junk.js')
const skip = netnsSkipReason() ?? toolSkipReason('iperf3', 'tcpdump', 'iptables')

const esc = (ip: string): string => ip.replace(/\./g, '\\.')

test('ipip: three nodes with two pods each, full mesh by ping and TCP; a fourth node reachable within a second of its lease; SIGTERM leaves nothing but the lease', { skip, timeout: 240_000 }, async (t) => {
  await withTopology(t, { hosts: 4, label: 'ipip-mesh', timeoutMs: 220_000 }, async (topo) => {
    const r = await mesh(t, topo, { config: CONFIG, addedMsg: 'peer added to the route table', device: 'weft.ipip' })
    const s = await r.nodes[0].status()
    assert.equal(s.backend, 'ipip')
    assert.equal(s.device, 'weft.ipip')
    assert.equal(s.mtu, 1480)
    assert.equal(r.nodes[0].env().mtu, 1480, 'subnet.env: underlay MTU less 20')
    assert.ok(s.peers.every((p) => p.path === 'tunnel'))
    const raw = rawLeases(r.c)
    const key = formatCidr(r.nodes[0].env().subnet).replace('/', '-')
    assert.equal(raw[key], `{"PublicIP":"${topo.hosts[0].underlayIp}","PublicIPv6":null,"BackendType":"ipip"}`, 'as flannel writes it: no BackendData')
  })
})

test('ipip on the wire: tcpdump on the underlay sees outer IPv4 protocol 4 between the nodes with the pods\' packet intact inside', { skip, timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'ipip-wire', timeoutMs: 100_000 }, async (topo) => {
    const c = cluster(t, topo, CONFIG)
    const [a, b] = [await c.start(topo.hosts[0]), await c.start(topo.hosts[1])]
    const [pa] = await podsFor(topo, a, 1)
    const [pb] = await podsFor(topo, b, 1)
    await waitFor(async () => (await a.status()).peers.length === 1 && (await b.status()).peers.length === 1, { what: 'peers', timeoutMs: 5000 })
    const cap = topo.spawn(topo.underlayNs, ['tcpdump', '-i', 'br0', '-n', '-U', '-c', '4', '-w', `${c.dir}/underlay.pcap`, 'ip proto 4'])
    await cap.waitForLine(/listening on/, 5000, 'stderr')
    assert.equal((await ping(topo, pa, pb.ip, { count: 2 })).received, 2)
    await cap.exited
    const v = (await topo.exec(topo.underlayNs, ['tcpdump', '-r', `${c.dir}/underlay.pcap`, '-n', '-v'])).stdout
    const [ua, ub] = [topo.hosts[0].underlayIp, topo.hosts[1].underlayIp]
    assert.match(v, /proto IPIP \(4\)/)
    // outer addresses, then the inner header decoded as such, then the ICMP inside it
    assert.match(v, new RegExp(`${esc(ua)} > ${esc(ub)}: IP \\(.*proto ICMP \\(1\\).*\\)\\s+${esc(pa.ip)} > ${esc(pb.ip)}: ICMP echo request`))
    assert.match(v, new RegExp(`${esc(ub)} > ${esc(ua)}: IP \\(.*proto ICMP \\(1\\).*\\)\\s+${esc(pb.ip)} > ${esc(pa.ip)}: ICMP echo reply`))
    assert.doesNotMatch(v, /bad cksum|wrong icmp cksum/i)
  })
})

test('ipip DirectRouting: peers on our link get kernel routes and bypass the dataplane; a peer behind a router is tunnelled, and the two talk both ways', { skip, timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'ipip-direct', timeoutMs: 100_000 }, async (topo) => {
    const [h1, h2, h3] = topo.hosts
    // h3's primary address (the one it advertises) becomes 198.19.0.3/24, which
    // h1 and h2 reach only through h3 as a router: for them it is not directly
    // connected; for h3, still on 198.18.0.0/24 too, h1 and h2 are.
    await topo.exec(h3, ['ip', 'addr', 'del', `${h3.underlayIp}/24`, 'dev', 'eth0'])
    await topo.exec(h3, ['ip', 'addr', 'add', '198.19.0.3/24', 'dev', 'eth0'])
    await topo.exec(h3, ['ip', 'addr', 'add', `${h3.underlayIp}/24`, 'dev', 'eth0'])
    for (const h of [h1, h2]) await topo.exec(h, ['ip', 'route', 'add', '198.19.0.0/24', 'via', h3.underlayIp])
    const c = cluster(t, topo, DIRECT)
    const a = await c.start(h1)
    const b = await c.start(h2)
    const r = await c.start(h3)
    const [pa] = await podsFor(topo, a, 1)
    const [pb] = await podsFor(topo, b, 1)
    const [pr] = await podsFor(topo, r, 1)
    await waitFor(async () => (await Promise.all([a, b, r].map((d) => d.status()))).every((s) => s.peers.length === 2), { what: 'peers', timeoutMs: 5000 })
    for (const d of [a, b, r]) await waitFor(() => logs(d).filter((l) => l.msg === 'route added').length === (d === r ? 2 : 1), { what: `${d.host.name} direct routes`, timeoutMs: 5000 })

    const bSubnet = formatCidr(b.env().subnet)
    const rSubnet = formatCidr(r.env().subnet)
    const routes = (await topo.exec(h1, ['ip', 'route', 'show'])).stdout
    assert.match(routes, new RegExp(`${esc(bSubnet)} via ${esc(h2.underlayIp)} dev eth0`))
    assert.doesNotMatch(routes, new RegExp(`${esc(rSubnet)} via`))
    const sa = await a.status()
    assert.deepEqual(sa.peers.map((p) => [p.subnet, p.path]).sort(), [[bSubnet, 'direct'], [rSubnet, 'tunnel']].sort())

    assert.equal((await ping(topo, pa, pb.ip, { count: 3 })).received, 3, 'direct: h1 <-> h2')
    assert.equal((await ping(topo, pa, pr.ip, { count: 3 })).received, 3, 'tunnelled there, direct back')
    assert.equal((await ping(topo, pr, pb.ip, { count: 3 })).received, 3, 'direct there, tunnelled back')
    const after = await a.status()
    const perPeer = (subnet: string): Record<string, unknown> => after.peers.find((p) => p.subnet === subnet) ?? {}
    assert.equal(perPeer(bSubnet).insidePackets, 0, 'the dataplane never saw the direct peer\'s packets')
    assert.equal(perPeer(bSubnet).offloadPackets ?? 0, 0, 'nor did the peer offload\'s send program')
    // through weft's pipeline, or the kernel's send program where it runs (peer-offload.ts): insidePackets counts both
    assert.ok(Number(perPeer(rSubnet).insidePackets) >= 3, 'the peer behind the router went through the tunnel')
    const sr = await r.status()
    assert.equal(sr.counters.counters.inside_packets, 0, 'h3 reaches everyone directly')
    // received by weft's pipeline or the kernel's receive program: each peer's outsidePackets counts both
    assert.ok(sr.peers.reduce((n, p) => n + Number(p.outsidePackets), 0) >= 6, 'and accepts their tunnelled packets')

    // SIGTERM removes the direct routes too
    await a.child.stop(5000)
    assert.doesNotMatch((await topo.exec(h1, ['ip', 'route', 'show'])).stdout, /10\.244\.\d+\.0\/24 via/)
  })
})

test('ipip: hostile protocol-4 traffic is dropped and counted by reason while a ping keeps flowing', { skip, timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'ipip-junk', timeoutMs: 100_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const { a, pa, pb, stranger } = await pair(t, topo, CONFIG)

    const pinging = ping(topo, pb, pa.ip, { count: 15, intervalS: 0.2 })
    const junk = async (from: typeof h1, kind: string, count: number): Promise<void> => {
      await topo.exec(from, [process.execPath, JUNK, '--via', 'ipip', '--to', h1.underlayIp, '--kind', kind, '--count', String(count), '--inner-dst', pa.ip], { timeoutMs: 20_000 })
    }
    // From an address with no lease: refused whatever it carries.
    await junk(stranger, 'good-looking', 20_000)
    // From a node that holds a lease: each kind of bad inner packet.
    for (const kind of ['truncated', 'not-ip', 'not-for-us']) await junk(h2, kind, 2000)
    const p = await pinging
    assert.ok(p.received >= p.sent - 1, `ping kept flowing: ${p.received}/${p.sent}`)

    const drops = (await a.status()).counters.drops
    assert.ok(drops.unknown_source > 10_000, `unknown_source ${drops.unknown_source}`)
    assert.ok(drops.truncated > 0, 'truncated')
    assert.ok(drops.not_ipv4 > 0, 'not_ipv4')
    assert.ok(drops.not_for_us > 0, 'not_for_us')
    await waitFor(() => logs(a).some((l) => l.msg === 'dropping IP-in-IP from an address that holds no lease' && l.source === stranger.underlayIp), { what: 'the stranger named in the log', timeoutMs: 8000 })
    assert.equal(logs(a).filter((l) => l.msg === 'dropping IP-in-IP from an address that holds no lease').length, 1, 'logged once')
    assert.equal(a.child.running, true)
  })
})
