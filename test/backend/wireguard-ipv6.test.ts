// weft's WireGuard backend in both families across real kernels, in
// flannel's default Mode "separate": the IPv6 pods go over the IPv6 underlay
// through weft-wg-v6 on ListenPortV6 (51821), as flanneld's flannel-wg-v6
// carries them; a node set up as flanneld sets up flannel-wg and
// flannel-wg-v6 (wireguard-go) is the interop reference.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatCidr } from '../../src/packet/net'
import { formatCidr6 } from '../../src/packet/net6'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { parseNetworkConfig } from '../../src/subnet/config'
import { waitFor, withTopology } from '../../lab/netns'
import type { Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { cluster } from '../../lab/daemons'
import type { Daemon } from '../../lab/daemons'
import { addPods } from '../../lab/pods'
import type { Pod } from '../../lab/pods'
import { iperf, ping, pingMatrix } from '../../lab/traffic'
import { wireguardGoNode, wireguardGoNode6, wireguardLeaseValue6 } from '../../lab/wireguard'
import { rawLeases } from './mesh'

const DUAL = '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"wireguard"}}'
const V6_ONLY = '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"wireguard"}}'
/**
 * Until net-conf's wireguard lines take IPv6 (src/subnet/config.ts, not this
 * backend's file; the change is in the report of issue 22's wireguard part),
 * `weft config set` refuses these configs: a skip that says so, not a failure.
 */
function configSkipReason (...configs: string[]): string | undefined {
  for (const c of configs) {
    try {
      parseNetworkConfig(c)
    } catch (err) {
      return `net-conf refuses it: ${(err as Error).message}`
    }
  }
  return undefined
}

const MODES = ['ipv6', 'ipv4', 'auto'].map((m) => `{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"wireguard","Mode":"${m}"}}`)
const AUTO6 = '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"wireguard","Mode":"auto"}}'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3', 'wg') ?? configSkipReason(DUAL, V6_ONLY, AUTO6, ...MODES)

interface Status6 { peers: unknown[], mtu: number, device: string, ipv6?: { device: string, peers: Array<Record<string, unknown>>, counters: Record<string, unknown> } }

async function peers6 (d: Daemon): Promise<number> {
  const s = await d.status() as unknown as Status6
  return (s.ipv6 ?? s).peers.length
}

/** TCP both ways between two pods over `family`, bounded in bytes (one retry: a first SYN may wait for a handshake). */
async function tcpBothWays (topo: Topology, a: Pod, b: Pod, family: 4 | 6): Promise<void> {
  const ipOf = (p: Pod): string => (family === 6 ? p.ip6 : p.ip) as string
  for (const [srv, cli] of [[b, a], [a, b]]) {
    let r = await iperf(topo, srv, cli, { serverIp: ipOf(srv), bytes: '1M', port: 5201 })
    if (r.gbps === 0) r = await iperf(topo, srv, cli, { serverIp: ipOf(srv), bytes: '1M', port: 5201 })
    assert.ok(r.gbps > 0, `TCP over IPv${family} ${cli.name} -> ${srv.name}`)
  }
}

/** Pods on a node with both halves of its subnet.env (IPv6-only: an IPv4 subnet of their own that nothing routes, as addPods wants one). */
async function podsOn (topo: Topology, d: Daemon, count: number): Promise<Pod[]> {
  const env = d.subnetEnv()
  return await addPods(topo, d.host, {
    subnet: env.subnet !== undefined ? formatCidr(env.subnet) : `10.255.${d.host.index}.0/24`,
    ...(env.subnet6 !== undefined ? { subnet6: formatCidr6(env.subnet6) } : {}),
    count,
    mtu: env.mtu
  })
}

test('wireguard dual stack (Mode separate): three nodes, pods with both families, every pod reaches every pod by both; the lease as flannel writes it; `wg show weft-wg-v6` and the status show the IPv6 peers', { skip, timeout: 240_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'wg6-mesh', ipv6: true, timeoutMs: 220_000 }, async (topo) => {
    const c = cluster(t, topo, DUAL)
    const nodes: Daemon[] = []
    for (const h of topo.hosts) nodes.push(await c.start(h))
    const pods: Pod[] = []
    for (const d of nodes) pods.push(...await podsOn(topo, d, 2))
    for (const p of pods) assert.ok(p.ip6 !== undefined, `${p.name} has an IPv6 address`)
    await waitFor(async () => (await Promise.all(nodes.map(async (d) => (await d.status()).peers.length === 2 && await peers6(d) === 2))).every(Boolean), { what: 'complete peer tables in both families', timeoutMs: 5000 })

    // the lease: flannel's newSubnetAttrs, one key in both halves, ListenPortV6 in BackendV6Data
    const env = nodes[0].subnetEnv()
    const key = `${formatCidr(env.subnet as NonNullable<typeof env.subnet>).replace('/', '-')}&${formatCidr6(env.subnet6 as NonNullable<typeof env.subnet6>).replace('/', '-')}`
    const raw = rawLeases(c)[key]
    assert.ok(raw !== undefined, `a lease under ${key}: ${Object.keys(rawLeases(c)).join(' ')}`)
    assert.match(raw, /^\{"PublicIP":"[0-9.]+","PublicIPv6":"2001:2::1","BackendType":"wireguard","BackendData":\{"PublicKey":"([A-Za-z0-9+/]{43}=)","Port":51820\},"BackendV6Data":\{"PublicKey":"\1","Port":51821\}\}$/, raw)

    const m4 = await pingMatrix(topo, pods)
    assert.deepEqual(m4.failed, [], 'every pod reaches every pod over IPv4')
    const m6 = await pingMatrix(topo, pods, { family: 6 })
    assert.deepEqual(m6.failed, [], 'every pod reaches every pod over IPv6')
    assert.equal(m6.ok.length, 30)
    await tcpBothWays(topo, pods[0], pods[2], 6)
    await tcpBothWays(topo, pods[1], pods[4], 4)
    const { gbps } = await iperf(topo, pods[2], pods[0], { serverIp: pods[2].ip6 as string, seconds: 2 })
    const v4 = await iperf(topo, pods[2], pods[0], { serverIp: pods[2].ip, seconds: 2 })
    t.diagnostic(`pod -> pod across nodes (iperf3, 2 s, 1 stream): IPv6 through weft-wg-v6 ${gbps.toFixed(3)} Gbit/s, IPv4 through weft-wg ${v4.gbps.toFixed(3)} Gbit/s`)

    // what a flannel user looks at: the status in both families, `wg show` of both devices
    const s = await nodes[0].status() as unknown as Status6
    assert.equal(s.device, 'weft-wg')
    assert.equal(s.mtu, 1420)
    assert.equal(s.ipv6?.device, 'weft-wg-v6')
    const p6 = s.ipv6?.peers ?? []
    assert.ok(p6.every((p) => typeof p.endpoint === 'string' && /^\[2001:2::[23]\]:51821$/.test(p.endpoint) && p.session === true), JSON.stringify(p6))
    const dump = (await nodes[0].wg(['show', 'weft-wg-v6', 'dump'])).stdout.trim().split('\n')
    assert.equal(dump.length, 3, dump.join('\n'))
    assert.equal(dump[0].split('\t')[2], '51821', 'the IPv6 device listens on ListenPortV6')
    for (const line of dump.slice(1)) {
      const f = line.split('\t')
      assert.match(f[2], /^\[2001:2::[23]\]:51821$/, 'the endpoint in brackets')
      assert.match(f[3], /^fc00:0:0:[0-9a-f]+::\/64$/, 'allowed IPs: the peer\'s IPv6 subnet')
      assert.ok(Number(f[4]) > 0, 'a latest handshake')
    }
    const dump4 = (await nodes[0].wg(['show', 'weft-wg', 'dump'])).stdout.trim().split('\n')
    assert.equal(dump4[0].split('\t')[1], dump[0].split('\t')[1], 'one key on both devices')
    t.diagnostic(`IPv6 counters: ${JSON.stringify((s.ipv6?.counters as { wireguard?: unknown }).wireguard)}`)
  })
})

test('wireguard IPv6-only (EnableIPv4 false): two nodes, weft-wg-v6 alone, pods reach each other over IPv6 by ping and TCP; SIGTERM takes the device away', { skip, timeout: 150_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'wg6-only', ipv6: true, timeoutMs: 130_000 }, async (topo) => {
    const c = cluster(t, topo, V6_ONLY)
    const a = await c.start(topo.hosts[0])
    const b = await c.start(topo.hosts[1])
    assert.equal(a.subnetEnv().subnet, undefined, 'no IPv4 subnet in subnet.env')
    const raw = Object.values(rawLeases(c))
    assert.ok(raw.every((v) => !v.includes('"BackendData"') && v.includes('"BackendV6Data":{"PublicKey"')), raw.join('\n'))
    const pods = [...await podsOn(topo, a, 1), ...await podsOn(topo, b, 1)]
    await waitFor(async () => await peers6(a) === 1 && await peers6(b) === 1, { what: 'each node learns the other', timeoutMs: 5000 })
    const m = await pingMatrix(topo, pods, { family: 6 })
    assert.deepEqual(m.failed, [])
    await tcpBothWays(topo, pods[0], pods[1], 6)
    assert.notEqual((await topo.exec(topo.hosts[0], ['ip', 'link', 'show', 'dev', 'weft-wg'], { allowFail: true })).code, 0, 'no IPv4 device')
    assert.equal((await a.child.stop(5000)).code, 0)
    assert.notEqual((await topo.exec(topo.hosts[0], ['ip', 'link', 'show', 'dev', 'weft-wg-v6'], { allowFail: true })).code, 0, 'weft-wg-v6 is gone')
  })
})

test('interop in both families: a weft node and a node set up as flanneld sets up flannel-wg and flannel-wg-v6 (wireguard-go, Mode separate, its lease in flannel\'s format) reach each other both ways by ping and TCP; the IPv6 underlay carries WireGuard on 51821 only', { skip: skip ?? toolSkipReason('wireguard-go', 'tcpdump'), timeout: 150_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'wg6-interop', ipv6: true, timeoutMs: 130_000 }, async (topo) => {
    const [hw, hg] = topo.hosts
    const c = cluster(t, topo, DUAL)
    const g4 = await wireguardGoNode(topo, hg, { subnet: '10.244.77.0/24' })
    t.after(async () => { await g4.stop() })
    const g6 = await wireguardGoNode6(topo, hg, { subnet6: 'fc00:0:0:77::/64', privateKey: g4.privateKey })
    t.after(async () => { await g6.stop() })
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    store.putRaw('10.244.77.0-24&fc00:0:0:77::-64', wireguardLeaseValue6({ publicIp: hg.underlayIp, publicIp6: hg.underlayIp6 as string, publicKey: g4.publicKey, port: g4.port, port6: g6.port }), 86400)
    await store.close()
    const w = await c.start(hw)
    const env = w.subnetEnv()
    const wl = (JSON.parse(c.weft('leases', '--json')) as Array<{ publicIP: string, publicIPv6: string, subnet: string, subnet6: string, backendData: { PublicKey: string, Port: number }, backendV6Data: { PublicKey: string, Port: number } }>).find((l) => l.publicIP === hw.underlayIp)
    assert.ok(wl !== undefined)
    assert.equal(wl.backendV6Data.Port, 51821)
    await g4.setPeer({ publicKey: wl.backendData.PublicKey, publicIp: hw.underlayIp, port: wl.backendData.Port, subnet: formatCidr(env.subnet as NonNullable<typeof env.subnet>) })
    await g6.setPeer({ publicKey: wl.backendV6Data.PublicKey, publicIp6: hw.underlayIp6 as string, port: wl.backendV6Data.Port, subnet6: formatCidr6(env.subnet6 as NonNullable<typeof env.subnet6>) })
    const [wp] = await podsOn(topo, w, 1)
    const [gp] = await addPods(topo, hg, { subnet: '10.244.77.0/24', subnet6: 'fc00:0:0:77::/64', count: 1, mtu: g4.mtu })
    await waitFor(async () => (await w.status()).peers.length === 1 && await peers6(w) === 1, { what: 'weft learns the wireguard-go node in both families', timeoutMs: 5000 })

    const cap = topo.spawn(topo.underlayNs, ['tcpdump', '-i', 'br0', '-n', '-U', '-c', '20', '-w', `${c.dir}/underlay6.pcap`, `ip6 and host ${hw.underlayIp6 as string} and host ${hg.underlayIp6 as string} and not icmp6`])
    await cap.waitForLine(/listening on/, 5000, 'stderr')
    // the first echo may wait for a handshake (and the pods' neighbour discovery)
    await waitFor(async () => (await ping(topo, gp, wp.ip6 as string, { count: 1, waitS: 1 })).received === 1, { what: 'a first IPv6 echo across', timeoutMs: 15_000 })
    assert.equal((await ping(topo, gp, wp.ip6 as string, { count: 3 })).received, 3, 'wireguard-go pod -> weft pod over IPv6')
    assert.equal((await ping(topo, wp, gp.ip6 as string, { count: 3 })).received, 3, 'weft pod -> wireguard-go pod over IPv6')
    await tcpBothWays(topo, wp, gp, 6)
    await cap.exited
    const lines = (await topo.exec(topo.underlayNs, ['tcpdump', '-r', `${c.dir}/underlay6.pcap`, '-n', '-q'])).stdout.trim().split('\n')
    assert.ok(lines.length >= 10)
    for (const l of lines) assert.match(l, /2001:2::[12]\.51821 > 2001:2::[12]\.51821: UDP/, l)

    await waitFor(async () => (await ping(topo, wp, gp.ip, { count: 1, waitS: 1 })).received === 1, { what: 'a first IPv4 echo across', timeoutMs: 15_000 })
    assert.equal((await ping(topo, gp, wp.ip, { count: 3 })).received, 3, 'wireguard-go pod -> weft pod over IPv4')
    await tcpBothWays(topo, wp, gp, 4)

    const d6 = await g6.dump()
    assert.equal(d6.peers.length, 1)
    assert.equal(d6.peers[0].endpoint, `[${hw.underlayIp6 as string}]:51821`)
    assert.ok(d6.peers[0].latestHandshake > 0 && d6.peers[0].rxBytes > 0 && d6.peers[0].txBytes > 0, JSON.stringify(d6.peers[0]))
    const shown = (await w.wg(['show', 'weft-wg-v6', 'dump'])).stdout.trim().split('\n')[1]?.split('\t') ?? []
    assert.equal(shown[0], g4.publicKey)
    assert.equal(shown[2], `[${hg.underlayIp6 as string}]:51821`)
    assert.equal(shown[3], 'fc00:0:0:77::/64')
  })
})

/** The underlay's UDP between the nodes while `traffic` runs: tcpdump's lines (`-q`), at most `count`. */
async function underlay (topo: Topology, dir: string, filter: string, count: number, traffic: () => Promise<void>): Promise<string[]> {
  const cap = topo.spawn(topo.underlayNs, ['tcpdump', '-i', 'br0', '-n', '-U', '-c', String(count), '-w', `${dir}/underlay-mode.pcap`, filter])
  await cap.waitForLine(/listening on/, 5000, 'stderr')
  await traffic()
  await cap.exited
  return (await topo.exec(topo.underlayNs, ['tcpdump', '-r', `${dir}/underlay-mode.pcap`, '-n', '-q'])).stdout.trim().split('\n')
}

// Mode auto: the lab's 198.18.0.0/15 is no RFC 1918 network, so flannel's selectMode picks IPv4 for every peer
for (const mode of ['ipv6', 'ipv4', 'auto'] as const) {
  const family = mode === 'ipv6' ? 6 : 4
  test(`wireguard Mode ${mode} (flannel's one device for both families): three dual-stack nodes, every pod reaches every pod by both families through weft-wg, the underlay carries WireGuard over IPv${family} alone on 51820; \`wg show weft-wg\` lists both subnets per peer`, { skip: skip ?? toolSkipReason('tcpdump'), timeout: 200_000 }, async (t) => {
    await withTopology(t, { hosts: 3, label: `wg-${mode}`, ipv6: true, timeoutMs: 180_000 }, async (topo) => {
      const c = cluster(t, topo, `{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"wireguard","Mode":"${mode}"}}`)
      const nodes: Daemon[] = []
      for (const h of topo.hosts) nodes.push(await c.start(h))
      const pods: Pod[] = []
      for (const d of nodes) pods.push(...await podsOn(topo, d, 1))
      await waitFor(async () => (await Promise.all(nodes.map(async (d) => (await d.status()).peers.length === 2))).every(Boolean), { what: 'complete peer tables', timeoutMs: 5000 })
      // one device, its port in both halves of the lease
      const raw = Object.values(rawLeases(c))
      assert.ok(raw.every((v) => /"BackendData":\{"PublicKey":"[^"]+","Port":51820\},"BackendV6Data":\{"PublicKey":"[^"]+","Port":51820\}/.test(v)), raw.join('\n'))
      assert.notEqual((await topo.exec(topo.hosts[0], ['ip', 'link', 'show', 'dev', 'weft-wg-v6'], { allowFail: true })).code, 0, 'no second device')
      const lines = await underlay(topo, c.dir, 'udp', 12, async () => {
        const m6 = await pingMatrix(topo, pods, { family: 6 })
        assert.deepEqual(m6.failed, [], 'every pod reaches every pod over IPv6')
        const m4 = await pingMatrix(topo, pods)
        assert.deepEqual(m4.failed, [], 'every pod reaches every pod over IPv4')
      })
      const wire = family === 6 ? /^[\d:.]+ IP6 2001:2::[123]\.51820 > 2001:2::[123]\.51820: UDP/ : /^[\d:.]+ IP 198\.18\.0\.[123]\.51820 > 198\.18\.0\.[123]\.51820: UDP/
      for (const l of lines) assert.match(l, wire, l)
      await tcpBothWays(topo, pods[0], pods[2], 6)
      await tcpBothWays(topo, pods[0], pods[1], 4)
      const dump = (await nodes[0].wg(['show', 'weft-wg', 'dump'])).stdout.trim().split('\n').slice(1)
      assert.equal(dump.length, 2)
      for (const line of dump) {
        const f = line.split('\t')
        assert.match(f[2], family === 6 ? /^\[2001:2::[23]\]:51820$/ : /^198\.18\.0\.[23]:51820$/)
        assert.match(f[3], /^10\.244\.\d+\.0\/24,fc00:0:0:[0-9a-f]+::\/64$/, 'allowed IPs: both subnets')
      }
      const st = await nodes[0].status()
      assert.ok(st.peers.every((p) => typeof p.subnet6 === 'string'), JSON.stringify(st.peers))
    })
  })
}

test('wireguard IPv6-only in Mode auto: weft-wg over IPv6 on ListenPort, pods reach each other', { skip, timeout: 150_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'wg6-auto', ipv6: true, timeoutMs: 130_000 }, async (topo) => {
    const c = cluster(t, topo, AUTO6)
    const a = await c.start(topo.hosts[0])
    const b = await c.start(topo.hosts[1])
    const pods = [...await podsOn(topo, a, 1), ...await podsOn(topo, b, 1)]
    await waitFor(async () => await peers6(a) === 1 && await peers6(b) === 1, { what: 'each node learns the other', timeoutMs: 5000 })
    const m = await pingMatrix(topo, pods, { family: 6 })
    assert.deepEqual(m.failed, [])
    const s = await a.status() as unknown as Status6
    assert.equal(s.device, 'weft-wg')
    assert.ok(Object.values(rawLeases(c)).every((v) => v.includes('"BackendV6Data":{"PublicKey"') && v.includes('"Port":51820}')))
  })
})

test('interop in Mode ipv6: a weft node and wireguard-go set up as flanneld sets up flannel-wg in Mode ipv6 (both families on one device, its lease as flannel v0.28 writes it, ListenPortV6 in BackendV6Data) reach each other both ways in both families over the IPv6 underlay', { skip: skip ?? toolSkipReason('wireguard-go', 'tcpdump'), timeout: 150_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'wg-ipv6-interop', ipv6: true, timeoutMs: 130_000 }, async (topo) => {
    const [hw, hg] = topo.hosts
    const c = cluster(t, topo, '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"wireguard","Mode":"ipv6"}}')
    const g = await wireguardGoNode(topo, hg, { subnet: '10.244.77.0/24', subnet6: 'fc00:0:0:77::/64' })
    t.after(async () => { await g.stop() })
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    // flanneld in Mode ipv6 listens on ListenPort, but writes ListenPortV6 (51821) in BackendV6Data
    store.putRaw('10.244.77.0-24&fc00:0:0:77::-64', wireguardLeaseValue6({ publicIp: hg.underlayIp, publicIp6: hg.underlayIp6 as string, publicKey: g.publicKey, port: g.port, port6: 51821 }), 86400)
    await store.close()
    const w = await c.start(hw)
    const env = w.subnetEnv()
    const wl = (JSON.parse(c.weft('leases', '--json')) as Array<{ publicIP: string, backendV6Data: { PublicKey: string, Port: number } }>).find((l) => l.publicIP === hw.underlayIp)
    assert.ok(wl !== undefined)
    // flannel's addPeer in Mode ipv6: [PublicIPv6]:BackendV6Data.Port, both subnets
    await g.setPeer({ publicKey: wl.backendV6Data.PublicKey, publicIp: hw.underlayIp, port: wl.backendV6Data.Port, endpoint: `[${hw.underlayIp6 as string}]:${wl.backendV6Data.Port}`, subnet: formatCidr(env.subnet as NonNullable<typeof env.subnet>), subnet6: formatCidr6(env.subnet6 as NonNullable<typeof env.subnet6>) })
    const [wp] = await podsOn(topo, w, 1)
    const [gp] = await addPods(topo, hg, { subnet: '10.244.77.0/24', subnet6: 'fc00:0:0:77::/64', count: 1, mtu: g.mtu })
    await waitFor(async () => (await w.status()).peers.length === 1, { what: 'weft learns the wireguard-go node', timeoutMs: 5000 })
    const lines = await underlay(topo, c.dir, `udp and host ${hg.underlayIp6 as string}`, 12, async () => {
      await waitFor(async () => (await ping(topo, wp, gp.ip6 as string, { count: 1, waitS: 1 })).received === 1, { what: 'a first IPv6 echo across', timeoutMs: 15_000 })
      assert.equal((await ping(topo, gp, wp.ip6 as string, { count: 3 })).received, 3, 'wireguard-go pod -> weft pod over IPv6')
      assert.equal((await ping(topo, gp, wp.ip, { count: 3 })).received, 3, 'wireguard-go pod -> weft pod over IPv4')
      assert.equal((await ping(topo, wp, gp.ip, { count: 3 })).received, 3, 'weft pod -> wireguard-go pod over IPv4')
    })
    for (const l of lines) assert.match(l, /IP6 2001:2::[12]\.51820 > 2001:2::[12]\.51820: UDP/, l)
    await tcpBothWays(topo, wp, gp, 6)
    await tcpBothWays(topo, wp, gp, 4)
    const shown = (await w.wg(['show', 'weft-wg', 'dump'])).stdout.trim().split('\n')[1]?.split('\t') ?? []
    assert.equal(shown[2], `[${hg.underlayIp6 as string}]:51820`, 'weft aims at the port flannel-wg listens on (BackendData\'s), not BackendV6Data\'s 51821')
    assert.equal(shown[3], '10.244.77.0/24,fc00:0:0:77::/64')
    const d = await g.dump()
    assert.ok(d.peers[0].latestHandshake > 0 && d.peers[0].rxBytes > 0, JSON.stringify(d.peers[0]))
  })
})
