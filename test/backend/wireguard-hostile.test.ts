// The WireGuard backend under hostile input, on real daemons in namespaces:
// two weft nodes with a pod each and a session between them, and a stranger
// on the same underlay (no lease, no key any node knows) sending node h1's
// port 51820, in bounded bursts (wireguard-stranger.ts: a count and a time
// limit each) while h2's pod pings h1's the whole time:
// 1. initiations with a valid mac1 from a key nobody holds, slower than the
//    node's load threshold: each refused as unknown_peer
// 2. random datagrams: each refused for what its bytes are
// 3. forged initiations (the right size, random bytes): refused on mac1, or
//    for coming more than 16 to a read (rate_limited)
// 4. replays of transport messages h2 sent h1, captured off the underlay
// 5. a flood of valid-looking initiations: the node comes under load and
//    answers with cookie replies (bad_mac2), which the stranger opens with the
//    node's public key, as WireGuard's cookie protocol has it
// 6. initiations carrying mac2 made with that cookie, 400 a second: taken as
//    proof of the source address, then limited per source (rate_limited)
// Every datagram is accounted for: counted by h1 under the reason the
// protocol gives it (weft status's wireguard.drops, and /metrics), or lost in
// the kernel before h1's socket (UDP InErrors, counted there); the daemons
// stay up, the session is never replaced, and the pings keep being answered.
// Last, h2 itself sends a packet from a source outside its subnet: dropped
// (spoofed_source), and h2 named once in h1's log.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { waitFor, withTopology } from '../../lab/netns'
import type { Host, Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { cluster } from '../../lab/daemons'
import type { Daemon } from '../../lab/daemons'
import { ping } from '../../lab/traffic'
import { logs, podsFor } from './mesh'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}'
const STRANGER = path.join(__dirname, 'wireguard-stranger.js')
const GET = path.join(__dirname, '..', 'fixtures', 'http-get.js')
const skip = netnsSkipReason() ?? toolSkipReason('tcpdump')
/** The stranger's UDP port for the cookie phases: a cookie is for one address and port. */
const STRANGER_PORT = 40001
/** Transport messages captured to replay. */
const CAPTURED = 20

interface Burst { kind: string, sent: number, expect: Record<string, number>, cookieReplies: number, cookiesOpened: number, cookie: string | null }
interface Phase { burst: Burst, counted: Record<string, number>, kernel: number }

type Status = Awaited<ReturnType<Daemon['status']>>
const wireguard = (s: Status): { handshakes: number, drops: Record<string, number> } => (s.counters as unknown as { wireguard: { handshakes: number, drops: Record<string, number> } }).wireguard

/** UDP payloads of a pcap file (Ethernet, IPv4), in order. */
function udpPayloads (file: string): Buffer[] {
  const f = fs.readFileSync(file)
  const out: Buffer[] = []
  for (let off = 24; off + 16 <= f.length;) {
    const caplen = f.readUInt32LE(off + 8)
    const frame = f.subarray(off + 16, off + 16 + caplen)
    off += 16 + caplen
    if (frame.readUInt16BE(12) !== 0x0800 || frame[23] !== 17) continue
    out.push(frame.subarray(14 + (frame[14] & 15) * 4 + 8))
  }
  return out
}

/** UDP datagrams the kernel of `h` dropped before a socket read them (a full receive buffer, a bad checksum). */
async function kernelDrops (topo: Topology, h: Host): Promise<number> {
  const udp = (await topo.exec(h, ['cat', '/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'))
  const names = udp[0].split(/\s+/)
  const values = udp[1].split(/\s+/).map(Number)
  // InErrors counts RcvbufErrors (and checksum errors) among them
  return values[names.indexOf('InErrors')]
}

function delta (after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {}
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) d[k] = v - (before[k] ?? 0)
  return d
}

const sum = (r: Record<string, number>): number => Object.values(r).reduce((n, v) => n + v, 0)

/** weft_wireguard_drops_total by reason, from the node's /metrics (empty if it has no such family). */
async function metricDrops (topo: Topology, h: Host): Promise<Record<string, number>> {
  const r = JSON.parse((await topo.exec(h, [process.execPath, GET, 'http://127.0.0.1:8081/metrics'])).stdout) as { status: number, body: string }
  assert.equal(r.status, 200)
  return Object.fromEntries([...r.body.matchAll(/^weft_wireguard_drops_total\{reason="(\w+)"\} (\d+)$/gm)].map((m) => [m[1], Number(m[2])]))
}

test('wireguard under hostile input from a stranger: unknown keys, random bytes, forged initiations, replays, and an initiation flood that engages cookies and the per-source limit; every datagram counted under its reason, the daemons up, the session carrying pings throughout', { skip, timeout: 150_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'wg-hostile', timeoutMs: 140_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const stranger = topo.hosts[2]
    const c = cluster(t, topo, CONFIG)
    const a = await c.start(h1, '--healthz-ip', '127.0.0.1', '--healthz-port', '8081')
    const b = await c.start(h2)
    const [pa] = await podsFor(topo, a, 1)
    const [pb] = await podsFor(topo, b, 1)
    await waitFor(async () => (await a.status()).peers.length === 1 && (await b.status()).peers.length === 1, { what: 'each node knows the other', timeoutMs: 5000 })
    await waitFor(async () => (await ping(topo, pb, pa.ip, { count: 1, waitS: 0.5 })).received === 1, { what: 'pb -> pa', timeoutMs: 5000 })
    const aKey = (JSON.parse(c.weft('leases', '--json')) as Array<{ publicIP: string, backendData: { PublicKey: string } }>).find((l) => l.publicIP === h1.underlayIp)?.backendData.PublicKey
    assert.ok(aKey !== undefined)

    // transport messages h2 sent h1 (the pings), off the underlay, to replay
    const pcap = `${c.dir}/h2-to-h1.pcap`
    const cap = topo.spawn(topo.underlayNs, ['tcpdump', '-i', 'br0', '-n', '-U', '-c', String(CAPTURED), '-w', pcap, `udp and src host ${h2.underlayIp} and dst host ${h1.underlayIp} and dst port 51820 and udp[8] = 4`])
    await cap.waitForLine(/listening on/, 5000, 'stderr')
    assert.equal((await ping(topo, pb, pa.ip, { count: CAPTURED + 5, intervalS: 0.05 })).received, CAPTURED + 5)
    await waitFor(async () => !cap.running, { what: `tcpdump to capture ${CAPTURED} messages`, timeoutMs: 5000 })
    const captured = udpPayloads(pcap)
    assert.equal(captured.length, CAPTURED)
    fs.writeFileSync(`${c.dir}/replay.hex`, captured.map((m) => m.toString('hex')).join('\n') + '\n')

    const handshakes = wireguard(await a.status()).handshakes
    const burst = async (kind: string, ...args: string[]): Promise<Phase> => {
      const before = wireguard(await a.status()).drops
      const k0 = await kernelDrops(topo, h1)
      const out = await topo.exec(stranger, [process.execPath, STRANGER, '--to', `${h1.underlayIp}:51820`, '--key', aKey, '--kind', kind, ...args], { timeoutMs: 30_000 })
      const r = (JSON.parse(out.stdout.trim().split('\n').at(-1) ?? '{}') as { stranger: Burst }).stranger
      // every datagram sent is counted by the node or was dropped by its kernel
      let counted: Record<string, number> = {}
      let kernel = 0
      await waitFor(async () => {
        counted = delta(wireguard(await a.status()).drops, before)
        kernel = await kernelDrops(topo, h1) - k0
        return sum(counted) + kernel >= r.sent
      }, { what: `h1 to account for the ${r.sent} datagrams of ${kind}`, timeoutMs: 5000 }).catch((err: Error) => { throw new Error(`${err.message}: counted ${JSON.stringify(counted)}, kernel ${kernel}, sent ${JSON.stringify(r)}`) })
      t.diagnostic(`${kind}: sent ${r.sent} (the protocol says ${JSON.stringify(r.expect)}), h1 counted ${JSON.stringify(counted)}, its kernel dropped ${kernel}${r.cookieReplies > 0 ? `; ${r.cookieReplies} cookie replies came back, ${r.cookiesOpened} opened` : ''}`)
      assert.equal(sum(counted) + kernel, r.sent, `${kind}: each datagram counted once`)
      return { burst: r, counted, kernel }
    }

    const pinging = ping(topo, pb, pa.ip, { count: 75, intervalS: 0.2, waitS: 2 })

    // 1. a stranger's initiations, valid mac1, 60 a second: the node is not under load, and knows no such key
    const p1 = await burst('stranger-initiations', '--count', '40', '--interval-ms', '15')
    assert.deepEqual(p1.counted, { unknown_peer: 40 - p1.kernel }, 'each an unknown_peer')

    // 2. random bytes: each for what its bytes are
    const p2 = await burst('random', '--count', '3000')
    for (const [reason, n] of Object.entries(p2.burst.expect)) {
      const slack = p2.kernel + (['bad_mac1', 'bad_length', 'unknown_receiver_index'].includes(reason) ? p2.counted.rate_limited ?? 0 : 0)
      assert.ok((p2.counted[reason] ?? 0) <= n && (p2.counted[reason] ?? 0) >= n - slack, `random: ${reason} counted ${p2.counted[reason] ?? 0}, the protocol says ${n}`)
    }
    for (const reason of ['bad_type', 'bad_length', 'unknown_receiver_index']) assert.ok((p2.counted[reason] ?? 0) > 100, `random: some ${reason}`)

    // 3. forged initiations: refused on mac1 (or, past HANDSHAKES_PER_BATCH in one read, rate_limited)
    const p3 = await burst('forged-initiations', '--count', '1500')
    assert.deepEqual(Object.keys(p3.counted).filter((r) => r !== 'bad_mac1' && r !== 'rate_limited'), [])
    assert.ok(p3.counted.bad_mac1 > 0)

    // 4. replays of what h2 sent: authenticated, and refused by the replay window
    const p4 = await burst('replay', '--file', `${c.dir}/replay.hex`, '--count', String(CAPTURED * 30))
    assert.deepEqual(p4.counted, { replay: CAPTURED * 30 - p4.kernel }, 'each a replay')

    // 5. an initiation flood: under load, cookie replies instead of work; the stranger opens them
    const p5 = await burst('cookie-flood', '--count', '2000', '--seconds', '3', '--port', String(STRANGER_PORT))
    assert.deepEqual(Object.keys(p5.counted).filter((r) => !['unknown_peer', 'bad_mac2', 'rate_limited'].includes(r)), [])
    assert.ok(p5.counted.bad_mac2 > 0, 'the node came under load and wanted mac2')
    assert.ok(p5.burst.cookieReplies > 0 && p5.burst.cookieReplies <= p5.counted.bad_mac2, `a cookie reply for each bad_mac2 (${p5.burst.cookieReplies} came back)`)
    assert.equal(p5.burst.cookiesOpened, p5.burst.cookieReplies, 'every cookie reply opens with the node\'s key and the mac1 it answers')
    assert.ok(p5.burst.cookie !== null)

    // 6. with the cookie, mac2 is right: past the load threshold each second,
    // the per-source limit (20 a second); 400 a second in bursts of 10, fewer
    // than a read takes (16)
    const p6 = await burst('mac2-initiations', '--count', '400', '--burst', '10', '--interval-ms', '25', '--port', String(STRANGER_PORT), '--cookie', p5.burst.cookie)
    assert.deepEqual(Object.keys(p6.counted).filter((r) => r !== 'unknown_peer' && r !== 'rate_limited'), [], 'no bad_mac2: the cookie proved the source')
    assert.ok((p6.counted.rate_limited ?? 0) > 100, 'the per-source rate limit engaged')
    assert.equal(p6.burst.cookieReplies, 0)

    // the session carried the pings all along, and was never replaced
    const p = await pinging
    assert.ok(p.received >= p.sent - 2, `pings answered during the floods: ${p.received}/${p.sent}`)
    assert.equal((await ping(topo, pa, pb.ip, { count: 3, intervalS: 0.2 })).received, 3, 'pa -> pb after')
    assert.equal((await ping(topo, pb, pa.ip, { count: 3, intervalS: 0.2 })).received, 3, 'pb -> pa after')
    assert.equal(wireguard(await a.status()).handshakes, handshakes, 'no new handshake: the session made before the floods carried everything')
    assert.equal(a.child.running && b.child.running, true, 'both daemons up')

    // h2 itself (authenticated, its session good) sends a packet whose source is
    // not in its subnet: cryptokey routing drops it, and h1 names h2 once
    await topo.exec(h2, ['ip', 'addr', 'add', '10.244.250.1/32', 'dev', 'lo'])
    await topo.exec(h2, ['ping', '-n', '-c', '2', '-i', '0.2', '-W', '1', '-I', '10.244.250.1', pa.ip], { allowFail: true })
    const spoofMsg = /^dropping WireGuard messages whose inner source is not the sender's/
    await waitFor(() => logs(a).some((l) => spoofMsg.test(l.msg) && l.source === h2.underlayIp), { what: 'h1 to name h2 as a sender of a source not its own', timeoutMs: 8000 })
    assert.ok((await a.status()).counters.drops.spoofed_source >= 2, 'each counted spoofed_source')
    assert.equal(logs(a).filter((l) => spoofMsg.test(l.msg)).length, 1, 'named once')

    // /metrics says what status says, reason by reason
    const s = await a.status()
    const m = await metricDrops(topo, h1)
    if (Object.keys(m).length === 0) t.diagnostic('no weft_wireguard_drops_total in /metrics: checked in status only')
    else for (const [reason, n] of Object.entries(wireguard(s).drops)) assert.equal(m[reason], n, `weft_wireguard_drops_total{reason="${reason}"}`)
    t.diagnostic(`h1's WireGuard drops at the end: ${JSON.stringify(wireguard(s).drops)}; pings ${p.received}/${p.sent}`)
  })
})
