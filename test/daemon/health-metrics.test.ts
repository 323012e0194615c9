// /healthz, /readyz and /metrics of a running daemon, and `weft status`:
// a vxlan node, and a wireguard node's own families and peer view.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { ip4ToString } from '../../src/packet/ip'
import { withTopology, waitFor } from '../../lab/netns'
import type { Host, Topology } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'
import { cluster, BIN } from '../../lab/daemons'
import { fetchStatus } from '../../src/daemon/control'
import { readSubnetEnv } from '../../src/subnet/env'

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
    // the kernel carried both pings for weft (the peer offload), and they count in weft_packets_total
    assert.match(m.body, /^weft_kernel_packets_total\{direction="inside"\} 2$/m)
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

test('a wireguard node exports its handshakes, drops by reason, peers and each peer\'s latest handshake, and `weft status` shows its peers as `wg show` does', { skip: netnsSkipReason() }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'health-wg' }, async (topo) => {
    const c = cluster(t, topo, '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PersistentKeepaliveInterval":25}}')
    const start = async (h: Host, ...extra: string[]): Promise<{ stateDir: string, subnet: number }> => {
      // a /run/wireguard of its own (the mount namespace `ip netns exec` gives
      // it), so that its `wg show` socket meets no other test's weft-wg
      const stateDir = `${c.dir}/${h.name}`
      const child = topo.spawn(h, ['sh', '-c', 'mount -t tmpfs -o mode=0755,size=64k weft-test-wg /run/wireguard && exec "$@"', 'sh', process.execPath, BIN, 'run', '--store', `sqlite:${c.dir}/store.db`, '--subnet-file', `${stateDir}/subnet.env`, '--state-dir', stateDir, '--iface', 'eth0', ...extra], { env: { ...process.env, WIREGUARD_KEY_FILE: `${stateDir}/wgkey` } })
      await child.waitForLine(/"msg":"running"/, 20_000)
      return { stateDir, subnet: readSubnetEnv(`${stateDir}/subnet.env`)?.subnet?.ip ?? 0 }
    }
    const a = await start(topo.hosts[0], '--healthz-ip', '127.0.0.1', '--healthz-port', '8081')
    const b = await start(topo.hosts[1])
    const h = topo.hosts[0]
    // the session first: packets staged while a handshake is on its way are not in the peer's counters (yet).
    // An initiation sent while the peer's device is still coming up is lost and
    // retried 5 s later (WireGuard's REKEY_TIMEOUT); on a loaded CI machine that has taken more than 10 s
    await waitFor(async () => ((await fetchStatus(a.stateDir)) as { peers: Array<{ session?: boolean }> }).peers[0]?.session === true, { what: 'a WireGuard session', timeoutMs: 20_000 })
    await topo.exec(h, ['ping', '-c', '2', '-i', '0.2', '-w', '10', ip4ToString(b.subnet)])
    const m = await get(topo, h, 'http://127.0.0.1:8081/metrics')
    assert.equal(m.status, 200)
    const value = (re: RegExp): number => Number(re.exec(m.body)?.[1] ?? NaN)
    assert.ok(value(/^weft_wireguard_handshakes_total (\d+)$/m) >= 1, 'a handshake completed')
    assert.match(m.body, /^weft_wireguard_rekeys_total 0$/m)
    assert.match(m.body, /^weft_wireguard_peers 1$/m)
    for (const reason of ['bad_mac1', 'replay', 'unknown_receiver_index', 'no_session', 'decrypt_failed']) {
      assert.match(m.body, new RegExp(`^weft_wireguard_drops_total\\{reason="${reason}"\\} \\d+$`, 'm'), reason)
    }
    assert.match(m.body, /^# HELP weft_wireguard_drops_total WireGuard messages refused/m)
    const peer = `${ip4ToString(b.subnet & 0xffffff00)}/24`.replace(/\./g, '\\.')
    const at = value(new RegExp(`^weft_wireguard_peer_last_handshake_timestamp_seconds\\{peer="${peer}"\\} ([\\d.e+]+)$`, 'm'))
    assert.ok(Math.abs(Date.now() / 1000 - at) < 30, `latest handshake ${at}, now ${Date.now() / 1000}`)
    assert.match(m.body, new RegExp(`^weft_peer_packets_total\\{peer="${peer}",direction="inside"\\} 2$`, 'm'))

    const text = execFileSync(BIN, ['status', '--state-dir', a.stateDir], { encoding: 'utf8' })
    t.diagnostic(text)
    assert.match(text, /^backend\s+wireguard on weft-wg \(MTU 1420\)$/m)
    assert.match(text, /^ {2}peer: [A-Za-z0-9+/]{43}=$/m)
    assert.match(text, new RegExp(`^ {4}endpoint: ${topo.hosts[1].underlayIp.replace(/\./g, '\\.')}:51820$`, 'm'))
    assert.match(text, new RegExp(`^ {4}allowed ips: ${peer} \\(the lease of ${topo.hosts[1].underlayIp.replace(/\./g, '\\.')}\\)$`, 'm'))
    assert.match(text, /^ {4}latest handshake: \d+ s ago$/m)
    assert.match(text, /^ {4}transfer: [\d.]+ (B|KiB) received, [\d.]+ (B|KiB) sent \(\d+ \/ 2 packets\)$/m)
    assert.match(text, /^ {4}persistent keepalive: every 25 s$/m)
    assert.match(text, /^wireguard 1 peer, \d+ handshakes? completed \(0 rekeys\)/m)
    assert.match(text, /^wg drops {2}/m)
  })
})
