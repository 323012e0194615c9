// weft's WireGuard backend across real kernels: nodes and pods in
// namespaces, the shared mesh scenario, and what a flannel user looks at:
// the lease as flannel writes it, subnet.env's MTU, `wg show`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatCidr } from '../../src/packet/net'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { waitFor, withTopology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { cluster } from '../../lab/daemons'
import { addPods } from '../../lab/pods'
import { iperf, ping, pingMatrix } from '../../lab/traffic'
import { cniPods, cniSkipReason } from '../../lab/cni'
import { wireguardGoNode, wireguardLeaseValue } from '../../lab/wireguard'
import { mesh, podsFor, rawLeases } from './mesh'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3', 'iptables')

test('wireguard: three nodes with two pods each, full mesh by ping and TCP; a fourth node reachable within a second of its lease; SIGTERM leaves nothing but the lease', { skip, timeout: 240_000 }, async (t) => {
  await withTopology(t, { hosts: 4, label: 'wg-mesh', timeoutMs: 220_000 }, async (topo) => {
    const r = await mesh(t, topo, { config: CONFIG, addedMsg: 'peer added to the peer table', device: 'weft-wg' })
    const s = await r.nodes[0].status()
    assert.equal(s.backend, 'wireguard')
    assert.equal(s.device, 'weft-wg')
    assert.equal(s.mtu, 1420)
    assert.equal(r.nodes[0].env().mtu, 1420, 'subnet.env: underlay MTU less 80, as flannel')
    const key = formatCidr(r.nodes[0].env().subnet).replace('/', '-')
    assert.match(rawLeases(r.c)[key], /^\{"PublicIP":"[0-9.]+","PublicIPv6":null,"BackendType":"wireguard","BackendData":\{"PublicKey":"[A-Za-z0-9+/]{43}=","Port":51820\}\}$/, 'as flannel writes a wireguard lease')
  })
})

test('interop: a weft node and a flanneld-style WireGuard node (wireguard-go and wg, its lease in flannel\'s format) reach each other both ways by ping and TCP; the underlay carries WireGuard only; `wg show` sees weft\'s peer', { skip: skip ?? toolSkipReason('wireguard-go', 'wg', 'tcpdump'), timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'wg-interop', timeoutMs: 100_000 }, async (topo) => {
    const [hw, hg] = topo.hosts
    const c = cluster(t, topo, CONFIG)
    // the flanneld node: wireguard-go set up as flannel sets up flannel-wg, its lease written as flanneld writes it
    const g = await wireguardGoNode(topo, hg, { subnet: '10.244.77.0/24' })
    t.after(async () => { await g.stop() })
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    store.putRaw('10.244.77.0-24', wireguardLeaseValue({ publicIp: hg.underlayIp, publicKey: g.publicKey, port: g.port }), 86400)
    await store.close()
    const w = await c.start(hw)
    const wl = (JSON.parse(c.weft('leases', '--json')) as Array<{ publicIP: string, subnet: string, backendData: { PublicKey: string, Port: number } }>).find((l) => l.publicIP === hw.underlayIp)
    assert.ok(wl !== undefined)
    await g.setPeer({ publicKey: wl.backendData.PublicKey, publicIp: hw.underlayIp, port: wl.backendData.Port, subnet: wl.subnet })
    const [wp] = await podsFor(topo, w, 1)
    const [gp] = await addPods(topo, hg, { subnet: '10.244.77.0/24', count: 1, mtu: g.mtu })
    await waitFor(async () => (await w.status()).peers.length === 1, { what: 'weft learns the wireguard-go node', timeoutMs: 5000 })

    const cap = topo.spawn(topo.underlayNs, ['tcpdump', '-i', 'br0', '-n', '-U', '-c', '40', '-w', `${c.dir}/underlay.pcap`, `ip and host ${hw.underlayIp} and host ${hg.underlayIp}`])
    await cap.waitForLine(/listening on/, 5000, 'stderr')
    // wireguard-go initiates (weft's own first initiation went before wireguard-go knew its key, and is retried after Rekey-Timeout)
    assert.equal((await ping(topo, gp, wp.ip, { count: 3 })).received, 3, 'wireguard-go pod -> weft pod')
    assert.equal((await ping(topo, wp, gp.ip, { count: 3 })).received, 3, 'weft pod -> wireguard-go pod')
    const there = await iperf(topo, gp, wp, { serverIp: gp.ip, seconds: 1 })
    const back = await iperf(topo, wp, gp, { serverIp: wp.ip, seconds: 1 })
    assert.ok(there.gbps > 0 && back.gbps > 0, `TCP both ways (${there.gbps.toFixed(2)} / ${back.gbps.toFixed(2)} Gbit/s)`)
    t.diagnostic(`TCP weft -> wireguard-go ${there.gbps.toFixed(2)}, wireguard-go -> weft ${back.gbps.toFixed(2)} Gbit/s`)
    await cap.exited
    // the underlay between the two nodes carries WireGuard on 51820 and nothing else
    const lines = (await topo.exec(topo.underlayNs, ['tcpdump', '-r', `${c.dir}/underlay.pcap`, '-n', '-q'])).stdout.trim().split('\n')
    assert.ok(lines.length >= 10)
    for (const l of lines) assert.match(l, new RegExp(`${hw.underlayIp.replace(/\./g, '\\.')}\\.51820 > ${hg.underlayIp.replace(/\./g, '\\.')}\\.51820: UDP|${hg.underlayIp.replace(/\./g, '\\.')}\\.51820 > ${hw.underlayIp.replace(/\./g, '\\.')}\\.51820: UDP`), l)

    // wireguard-go's view of weft: a handshake and bytes both ways
    const dump = await g.dump()
    assert.equal(dump.peers.length, 1)
    assert.ok(dump.peers[0].latestHandshake > 0 && dump.peers[0].rxBytes > 0 && dump.peers[0].txBytes > 0, JSON.stringify(dump.peers[0]))
    // weft's view, through its UAPI socket, with the real `wg`
    const shown = await w.wg(['show', 'weft-wg', 'dump'])
    const peerLine = shown.stdout.trim().split('\n')[1]?.split('\t') ?? []
    assert.equal(peerLine[0], g.publicKey)
    assert.equal(peerLine[2], `${hg.underlayIp}:51820`)
    assert.equal(peerLine[3], '10.244.77.0/24')
    assert.ok(Number(peerLine[4]) > 0, 'a latest handshake')
    const st = await w.status()
    t.diagnostic(`weft counters: ${JSON.stringify((st.counters as unknown as { wireguard: unknown }).wireguard)}`)
  })
})

test('wireguard through weft\'s CNI plugin: three nodes, a pod on each attached by `weft cni` from subnet.env, every pod reaches every pod', { skip: skip ?? cniSkipReason(), timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'wg-cni', timeoutMs: 100_000 }, async (topo) => {
    const c = cluster(t, topo, CONFIG)
    const nodes = [await c.start(topo.hosts[0]), await c.start(topo.hosts[1]), await c.start(topo.hosts[2])]
    const pods = []
    for (const d of nodes) pods.push(...await cniPods(topo, d.host, { subnetFile: `${d.stateDir}/subnet.env`, dataDir: d.stateDir, count: 1 }))
    await waitFor(async () => (await Promise.all(nodes.map((d) => d.status()))).every((s) => s.peers.length === 2), { what: 'complete peer tables', timeoutMs: 5000 })
    const m = await pingMatrix(topo, pods)
    assert.deepEqual(m.failed, [], 'every pod reaches every pod')
    assert.equal(m.ok.length, 6)
  })
})
