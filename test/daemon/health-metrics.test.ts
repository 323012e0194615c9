// /healthz, /readyz and /metrics of a running daemon, and `weft status`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { ip4ToString } from '../../src/packet/ip'
import { withTopology, waitFor } from '../../lab/netns'
import type { Host, Topology } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'
import { cluster, BIN } from '../../lab/daemons'

const GET = path.join(__dirname, '..', 'fixtures', 'http-get.js')

async function get (topo: Topology, h: Host, url: string): Promise<{ status: number, body: string }> {
  const r = await topo.exec(h, [process.execPath, GET, url])
  return JSON.parse(r.stdout) as { status: number, body: string }
}

test('a daemon serves /healthz, /readyz and /metrics (traffic, drops, peers, renewals), and `weft status` shows its peers', { skip: netnsSkipReason() }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'health' }, async (topo) => {
    const c = cluster(t, topo, '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}')
    const a = await c.start(topo.hosts[0], '--healthz-ip', '127.0.0.1', '--healthz-port', '8081')
    const b = await c.start(topo.hosts[1])
    const h = topo.hosts[0]
    assert.deepEqual(await get(topo, h, 'http://127.0.0.1:8081/healthz'), { status: 200, body: 'weft is running\n' })
    assert.deepEqual(await get(topo, h, 'http://127.0.0.1:8081/readyz'), { status: 200, body: 'weft is ready\n' })
    await waitFor(async () => (await a.status()).peers.length === 1, { what: 'peer', timeoutMs: 5000 })
    await topo.exec(h, ['ping', '-c', '2', '-i', '0.2', ip4ToString(b.env().subnet.ip)])
    const m = await get(topo, h, 'http://127.0.0.1:8081/metrics')
    assert.equal(m.status, 200)
    assert.match(m.body, /^weft_packets_total\{direction="inside"\} 2$/m)
    assert.match(m.body, /^weft_packets_total\{direction="outside"\} 2$/m)
    assert.match(m.body, /^weft_batches_total\{direction="inside"\} \d+$/m)
    assert.match(m.body, new RegExp(`^weft_peer_packets_total\\{peer="${b.env().subnet.ip >>> 24}\\.\\d+\\.\\d+\\.0/24",direction="inside"\\} 2$`, 'm'))
    assert.match(m.body, /^weft_peers 1$/m)
    assert.match(m.body, /^weft_address_conflicts 0$/m)
    assert.match(m.body, /^weft_store_up 1$/m)
    assert.match(m.body, /^weft_peer_events_total\{type="added"\} 1$/m)
    assert.match(m.body, /^# TYPE weft_drops_total counter$/m)

    const text = execFileSync(BIN, ['status', '--state-dir', a.stateDir], { encoding: 'utf8' })
    assert.match(text, /backend\s+vxlan on weft\.1 \(MTU 1450\)/)
    assert.match(text, /peers\s+1/)
    assert.match(text, new RegExp(`${topo.hosts[1].underlayIp.replace(/\./g, '\\.')}\\s+([0-9a-f]{2}:){5}[0-9a-f]{2}\\s+2\\s+2`))
  })
})
