// weft's flannel-compatible UDP backend across real kernels: nodes and pods
// in namespaces, the wire read back from a capture, ICMP net-unreachable for
// destinations without a lease, TTLs as flannel's proxy leaves them, and
// hostile datagrams under a bounded flood.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { formatCidr } from '../../src/packet/net'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { withTopology, waitFor } from '../../lab/netns'
import { ping } from '../../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { cluster } from '../../lab/daemons'
import { logs, mesh, pair, podsFor, rawLeases } from './mesh'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}'
const JUNK = path.join(__dirname, '..', 'fixtures', 'tunnel-junk.js')
const skip = netnsSkipReason() ?? toolSkipReason('iperf3', 'tcpdump', 'iptables')

/** UDP payloads of a pcap file (Ethernet, IPv4 without options), in order. */
function udpPayloads (file: string): Buffer[] {
  const f = fs.readFileSync(file)
  const out: Buffer[] = []
  for (let off = 24; off + 16 <= f.length;) {
    const caplen = f.readUInt32LE(off + 8)
    const frame = f.subarray(off + 16, off + 16 + caplen)
    off += 16 + caplen
    if (frame.readUInt16BE(12) !== 0x0800 || frame[23] !== 17) continue
    const ihl = (frame[14] & 15) * 4
    out.push(frame.subarray(14 + ihl + 8))
  }
  return out
}

const ip = (b: Buffer, at: number): string => [...b.subarray(at, at + 4)].join('.')

test('udp: three nodes with two pods each, full mesh by ping and TCP; a fourth node reachable within a second of its lease; SIGTERM leaves nothing but the lease', { skip, timeout: 240_000 }, async (t) => {
  await withTopology(t, { hosts: 4, label: 'udp-mesh', timeoutMs: 220_000 }, async (topo) => {
    const r = await mesh(t, topo, { config: CONFIG, addedMsg: 'peer added to the route table', device: 'weft0' })
    const s = await r.nodes[0].status()
    assert.equal(s.backend, 'udp')
    assert.equal(s.device, 'weft0')
    assert.equal(s.mtu, 1472)
    assert.equal(r.nodes[0].env().mtu, 1472, 'subnet.env: underlay MTU less 28')
    const key = formatCidr(r.nodes[0].env().subnet).replace('/', '-')
    assert.equal(rawLeases(r.c)[key], `{"PublicIP":"${topo.hosts[0].underlayIp}","PublicIPv6":null}`, 'as flannel writes a udp lease: no BackendType key')
  })
})

test('udp on the wire and at the edges: the pod\'s IP packet is the whole datagram on port 8285; TTLs as flannel leaves them; ICMP net-unreachable for a subnet nobody leases; any lease type is taken', { skip, timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'udp-wire', timeoutMs: 100_000 }, async (topo) => {
    const c = cluster(t, topo, CONFIG)
    const [a, b] = [await c.start(topo.hosts[0]), await c.start(topo.hosts[1])]
    const [pa] = await podsFor(topo, a, 1)
    const [pb] = await podsFor(topo, b, 1)
    await waitFor(async () => (await a.status()).peers.length === 1, { what: 'peers', timeoutMs: 5000 })

    const pcap = `${c.dir}/underlay.pcap`
    const cap = topo.spawn(topo.underlayNs, ['tcpdump', '-i', 'br0', '-n', '-U', '-c', '2', '-w', pcap, 'udp port 8285'])
    await cap.waitForLine(/listening on/, 5000, 'stderr')
    // -t 40: what the pod sends; one hop for each kernel and each proxy on the way
    const r = await topo.exec(pb.ns, ['ping', '-n', '-c', '1', '-W', '2', '-t', '40', pa.ip], { allowFail: true })
    assert.match(r.stdout, /ttl=60 /, 'the reply lost 4: two kernels forwarding, two proxies (as flanneld\'s)')
    await cap.exited
    const [req, rep] = udpPayloads(pcap)
    assert.equal(req[0], 0x45, 'the payload is an IPv4 header')
    assert.equal(req.readUInt16BE(2), req.length, 'nothing but the packet')
    assert.deepEqual([ip(req, 12), ip(req, 16), req[9], req[8]], [pb.ip, pa.ip, 1, 38], 'ICMP pod to pod, TTL 40 less the kernel and the proxy')
    assert.equal(req[20], 8, 'echo request')
    assert.deepEqual([ip(rep, 12), ip(rep, 16), rep[20]], [pa.ip, pb.ip, 0], 'echo reply')

    // nobody leases 10.244.250.0/24: the pod hears so from our TUN address,
    // except for ICMP (flannel answers no ICMP with ICMP)
    const tunAddr = formatCidr(a.env().subnet).replace(/\/\d+$/, '')
    const echo = await topo.exec(pa.ns, ['ping', '-n', '-c', '1', '-W', '1', '10.244.250.5'], { allowFail: true })
    assert.doesNotMatch(echo.stdout, /Unreachable/)
    assert.equal((await a.status()).counters.counters.unreachable_sent, 0)
    const cap2 = topo.spawn(pa.ns, ['tcpdump', '-i', 'eth0', '-n', '-U', '-c', '1', '-v', 'icmp'])
    await cap2.waitForLine(/listening on/, 5000, 'stderr')
    const tcp = await topo.exec(pa.ns, ['timeout', '5', 'bash', '-c', 'exec 3<>/dev/tcp/10.244.250.5/80'], { allowFail: true })
    assert.match(tcp.stderr, /Network is unreachable/, 'the TCP connect fails at once, as the ICMP error says')
    await cap2.exited
    assert.match(cap2.stdout, new RegExp(`${tunAddr.replace(/\./g, '\\.')} > ${pa.ip.replace(/\./g, '\\.')}: ICMP net 10\\.244\\.250\\.5 unreachable`))
    const s = (await a.status()).counters
    assert.equal(s.counters.unreachable_sent, 1)
    assert.ok(s.drops.no_route >= 2)

    // flannel's udp backend takes every lease, whatever its BackendType
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    store.putRaw('10.244.251.0-24', '{"PublicIP":"198.18.0.200","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:01"}}', 86400)
    await store.close()
    await waitFor(async () => (await a.status()).peers.some((p) => p.subnet === '10.244.251.0/24'), { what: 'a vxlan lease taken as a peer', timeoutMs: 3000 })
  })
})

test('udp: hostile datagrams are dropped and counted by reason while a ping keeps flowing', { skip, timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'udp-junk', timeoutMs: 100_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const { a, pa, pb, stranger } = await pair(t, topo, CONFIG)

    const pinging = ping(topo, pb, pa.ip, { count: 15, intervalS: 0.2 })
    const junk = async (from: typeof h1, kind: string, count: number): Promise<void> => {
      await topo.exec(from, [process.execPath, JUNK, '--via', 'udp', '--to', `${h1.underlayIp}:8285`, '--kind', kind, '--count', String(count), '--inner-dst', pa.ip], { timeoutMs: 20_000 })
    }
    await junk(stranger, 'good-looking', 20_000)
    for (const kind of ['truncated', 'not-ip', 'not-for-us', 'ttl-1']) await junk(h2, kind, 2000)
    const p = await pinging
    assert.ok(p.received >= p.sent - 1, `ping kept flowing: ${p.received}/${p.sent}`)

    const drops = (await a.status()).counters.drops
    assert.ok(drops.unknown_source > 10_000, `unknown_source ${drops.unknown_source}`)
    assert.ok(drops.truncated > 0, 'truncated')
    assert.ok(drops.not_ipv4 > 0, 'not_ipv4')
    assert.ok(drops.not_for_us > 0, 'not_for_us')
    assert.ok(drops.ttl_exceeded > 0, 'ttl_exceeded')
    const msg = 'dropping UDP-encapsulated packets from an address that holds no lease'
    await waitFor(() => logs(a).some((l) => l.msg === msg && l.source === stranger.underlayIp), { what: 'the stranger named in the log', timeoutMs: 8000 })
    assert.equal(logs(a).filter((l) => l.msg === msg).length, 1, 'logged once')
    assert.equal(a.child.running, true)
  })
})
