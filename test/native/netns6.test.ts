// The addon's IPv6 underlay across real kernels: two namespaces on a bridge,
// eth0 addressed from 2001:2::/48, a TUN in each opened with TSO4|TSO6, and
// the relay in fixtures/relay6.ts between them over udp6 sockets. A TCP
// stream over the TUNs shows that the kernel hands the TUN TCPv6
// super-packets (gso_type 4), that the addon cuts them into segments whose
// checksums the far kernel accepts (each written to its TUN as a plain
// packet, so verified there), that UDP_SEGMENT sends and UDP_GRO reads work
// over IPv6 with every sender reported right in addrs6 and ports, and, with
// --coalesce, that GSO_TCPV6 super-packet writes to a TUN work.
// Skipped, with the reason, where namespaces or /dev/net/tun are missing.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import path from 'node:path'
import { withTopology } from '../../lab/netns'
import type { ChildHandle, Host, Topology } from '../../lab/netns'
import { netnsSkipReason, tunSkipReason } from '../../lab/skip'

const RELAY6 = path.join(__dirname, 'fixtures', 'relay6.js')
const BYTES = 8 << 20
const skip = netnsSkipReason() ?? tunSkipReason()

const underlay6 = (h: Host): string => `2001:2::${h.index.toString(16)}`
const overlay6 = (h: Host): string => `fd00:44::${h.index.toString(16)}`

interface RelayStats {
  gsoTypes: Record<string, number>
  badSender: number
  tunWrites: number
  gsoWrites: number
  lost: number
  unsent: number
  tun: Record<string, number>
  udp: Record<string, number>
}

function startRelay (topo: Topology, self: Host, peer: Host, coalesce: boolean): ChildHandle {
  return topo.spawn(self, [process.execPath, RELAY6, '--tun', 'wt6', '--addr', `${overlay6(self)}/64`, '--mtu', '1400',
    '--listen', underlay6(self), '--port', '8472', '--peer', underlay6(peer), ...(coalesce ? ['--coalesce'] : [])])
}

async function stopRelay (relay: ChildHandle): Promise<RelayStats> {
  await relay.stop(2000)
  const line = relay.stdoutLines.find((l) => l.startsWith('{"stats"'))
  assert.ok(line, `relay printed no stats; stderr: ${relay.stderr}`)
  return (JSON.parse(line) as { stats: RelayStats }).stats
}

const SERVER = `
const net = require('node:net'), crypto = require('node:crypto')
const h = crypto.createHash('sha256'); let n = 0
const s = net.createServer((c) => {
  c.on('data', (d) => { n += d.length; h.update(d) })
  c.on('end', () => { process.stdout.write(JSON.stringify({ bytes: n, sha: h.digest('hex') }) + '\\n'); c.end(); s.close() })
})
s.listen(5201, process.argv[1], () => process.stdout.write('{"listening":1}\\n'))`

const CLIENT = `
const net = require('node:net')
const b = Buffer.alloc(${BYTES}); for (let i = 0; i < b.length; i++) b[i] = (i * 7 + (i >> 11)) & 255
const c = net.connect(5201, process.argv[1], () => c.end(b))
c.on('close', () => process.stdout.write('{"sent":1}\\n'))`

function expectedSha (): string {
  const b = Buffer.alloc(BYTES)
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + (i >> 11)) & 255
  return createHash('sha256').update(b).digest('hex')
}

/** A TCP stream of BYTES from h1 to h2 over the TUNs; the relays' stats after it. */
async function stream (topo: Topology, coalesce: boolean): Promise<[RelayStats, RelayStats]> {
  const [h1, h2] = topo.hosts
  const r1 = startRelay(topo, h1, h2, coalesce)
  const r2 = startRelay(topo, h2, h1, coalesce)
  await r1.waitForLine(/"ready"/, 10_000)
  await r2.waitForLine(/"ready"/, 10_000)
  const server = topo.spawn(h2, [process.execPath, '-e', SERVER, overlay6(h2)])
  await server.waitForLine(/"listening"/, 10_000)
  await topo.exec(h1, [process.execPath, '-e', CLIENT, overlay6(h2)], { timeoutMs: 60_000 })
  const got = JSON.parse(await server.waitForLine(/"bytes"/, 30_000)) as { bytes: number, sha: string }
  assert.equal(got.bytes, BYTES, 'every byte crossed')
  assert.equal(got.sha, expectedSha(), 'byte-exact')
  return [await stopRelay(r1), await stopRelay(r2)]
}

test('TCP over TUNs with TSO6 and udp6 sockets: TCPv6 super-packets (gso_type 4) read, segmented, sent with UDP_SEGMENT, read with UDP_GRO, accepted by the far kernel', { skip, timeout: 150_000 }, async (t) => {
  await withTopology(t, { hosts: 2, ipv6: true, label: 'udp6-tso6', timeoutMs: 140_000 }, async (topo) => {
    // the underlay's IPv6 addresses (the lab may give them already: replace is idempotent)
    for (const h of topo.hosts) await topo.exec(h, ['ip', '-6', 'addr', 'replace', `${underlay6(h)}/64`, 'dev', 'eth0', 'nodad'])

    const [s1, s2] = await stream(topo, false)
    t.diagnostic(`sender: ${s1.tun.rxSuperPackets} super-packets of ${s1.tun.rxPackets} TUN reads (gso types ${JSON.stringify(s1.gsoTypes)}), ${s1.udp.txSegmented} segments in ${s1.udp.txSyscalls} sendmmsg; receiver: ${s2.udp.rxPackets} reads of ${s2.udp.rxGroSegments} GRO segments`)
    assert.ok((s1.gsoTypes[4] ?? 0) > 0, 'the TUN handed over TCPv6 super-packets (gso_type 4)')
    assert.equal(s1.tun.rxSuperPackets, s1.gsoTypes[4], 'all of them TCPv6')
    assert.ok(s1.udp.txSegmented > s1.tun.rxSuperPackets, 'the addon cut them into segments')
    assert.ok(s1.udp.txGsoSegments > 0, 'sent with UDP_SEGMENT over IPv6')
    assert.equal(s1.udp.txDropBadGso, 0)
    assert.ok(s2.udp.rxGroSegments > 0, 'read with UDP_GRO over IPv6')
    // the ACKs: plain TCPv6 packets whose checksums the kernel left partial,
    // finished on the TUN read (and verified by h1's kernel after the trip)
    assert.ok(s2.tun.rxCsumFinished > 0, 'partial IPv6 checksums finished on TUN reads')
    for (const s of [s1, s2]) {
      assert.equal(s.badSender, 0, 'every datagram reported its sender (addrs6, ports) right')
      assert.equal(s.udp.txDropError + s.udp.txDropTooBig + s.udp.txDropUnreachable + s.udp.rxDropTruncated, 0)
      assert.equal(s.tun.txDropError + s.tun.rxDropTruncated, 0)
    }
    // written one segment at a time without DATA_VALID: the far kernel
    // checked every TCP checksum the addon wrote, and the stream arrived whole

    const [c1, c2] = await stream(topo, true)
    t.diagnostic(`with --coalesce: ${c2.gsoWrites} GSO_TCPV6 writes of ${c2.tunWrites} TUN writes`)
    assert.ok(c2.gsoWrites > 0, 'GRO reads went to the TUN as GSO_TCPV6 super-packets')
    assert.equal(c2.tun.txDropError, 0, 'the kernel took every GSO_TCPV6 write')
    assert.equal(c1.badSender + c2.badSender, 0)
  })
})
