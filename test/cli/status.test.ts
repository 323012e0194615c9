// `weft status` against a control socket serving a made-up status: the
// counters it prints only when they moved (busy polling, UDP pacing), and a
// WireGuard node's peers as `wg show` shows them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ControlServer } from '../../src/daemon/control'
import { formatAge, formatBytes, status } from '../../src/cli/status'
import { captureLogger } from '../helpers/log'

async function statusText (t: { after: (fn: () => Promise<void> | void) => void }, counters: Record<string, number>, more: Record<string, unknown> = {}): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-status-'))
  const server = new ControlServer(dir, () => ({
    lease: { subnet: '10.244.1.0/24', publicIP: '192.0.2.1', expiration: null },
    ready: true,
    backend: 'vxlan',
    device: 'weft.1',
    mtu: 1450,
    peers: [],
    counters: { counters, drops: {} },
    ...more
  }), captureLogger('info').log)
  await server.listen()
  t.after(async () => {
    await server.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const out: string[] = []
  assert.equal(await status.run(['--state-dir', dir], { out: (l) => out.push(l), err: () => {} }), 0)
  return out.join('\n')
}

test('weft status shows the pacer\'s waits once UDP was paced', async (t) => {
  const text = await statusText(t, { inside_packets: 1, outside_packets: 2, outside_paced: 42 })
  assert.match(text, /^paced\s+UDP to pods waited 42 times, a backlog read at once written to the TUN in pieces \(WEFT_UDP_PACING\)$/m)
  assert.match(text, /^traffic\s+out 1 packets/m)
})

test('weft status says nothing of pacing (nor busy polling) while neither happened', async (t) => {
  const text = await statusText(t, { inside_packets: 1, outside_packets: 2, outside_paced: 0 })
  assert.doesNotMatch(text, /paced|busy poll/)
  assert.match(text, /^drops\s+none$/m)
})

const KEY_B = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
const KEY_C = 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0='

/** A wireguard node's status as the daemon serves it (src/backend/tun/network.ts with loops.ts's peerStatus and snapshot). */
function wireguardStatus (wireguard: Record<string, unknown>): Record<string, unknown> {
  const ago = (s: number): string => new Date(Date.now() - s * 1000).toISOString()
  return {
    backend: 'wireguard',
    device: 'weft-wg',
    mtu: 1420,
    peers: [
      { subnet: '10.244.2.0/24', publicIP: '192.0.2.2', path: 'tunnel', insidePackets: 30, insideBytes: 3482, outsidePackets: 12, outsideBytes: 1229, publicKey: KEY_B, endpoint: '192.0.2.2:51820', latestHandshake: ago(12), session: true, persistentKeepalive: 25 },
      { subnet: '10.244.3.0/24', publicIP: '192.0.2.3', path: 'tunnel', insidePackets: 0, insideBytes: 0, outsidePackets: 0, outsideBytes: 0, publicKey: KEY_C, endpoint: '192.0.2.3:51999', latestHandshake: null, session: false, persistentKeepalive: 0 },
      { subnet: '10.244.4.0/24', publicIP: '192.0.2.4', path: 'tunnel', insidePackets: 0, insideBytes: 0, outsidePackets: 0, outsideBytes: 0, wireguard: 'no peer (its key is another lease\'s, or ours)' },
      { subnet: '10.244.5.0/24', publicIP: '192.0.2.5', path: 'tunnel', insidePackets: 5, insideBytes: 3 * 2 ** 20, outsidePackets: 7, outsideBytes: 900, publicKey: KEY_C.replace('T', 'U'), endpoint: '198.51.100.7:40000', latestHandshake: ago(3 * 60 + 25), session: false, persistentKeepalive: 0 }
    ],
    counters: { counters: { inside_packets: 35 }, drops: {}, wireguard }
  }
}

test('weft status shows a WireGuard node\'s peers as wg show does: key, endpoint, allowed IPs, latest handshake, transfer, keepalive', async (t) => {
  const text = await statusText(t, {}, wireguardStatus({ handshakes: 7, rekeys: 2, drops: { bad_mac1: 3, replay: 1 }, peers: 3 }))
  assert.match(text, /^backend\s+wireguard on weft-wg \(MTU 1420\)$/m)
  assert.match(text, /^peers\s+4$/m)
  const block = (key: string): string => {
    const at = text.indexOf(`  peer: ${key}\n`)
    assert.ok(at >= 0, `no block for ${key} in\n${text}`)
    return text.slice(at, text.indexOf('\n\n', at))
  }
  assert.equal(block(KEY_B), [
    `  peer: ${KEY_B}`,
    '    endpoint: 192.0.2.2:51820',
    '    allowed ips: 10.244.2.0/24 (the lease of 192.0.2.2)',
    block(KEY_B).split('\n')[3], // the age, checked below: the clock moved on
    '    transfer: 1.20 KiB received, 3.40 KiB sent (12 / 30 packets)',
    '    persistent keepalive: every 25 s'
  ].join('\n'))
  assert.match(block(KEY_B), /^ {4}latest handshake: 1[23] s ago$/m)
  assert.match(block(KEY_C), /^ {4}latest handshake: none yet$/m)
  assert.match(block(KEY_C), /^ {4}transfer: 0 B received, 0 B sent \(0 \/ 0 packets\)$/m)
  assert.match(block(KEY_C), /^ {4}persistent keepalive: off$/m)
  // a session that lapsed (or is not confirmed yet), a peer that roamed
  assert.match(block(KEY_C.replace('T', 'U')), /^ {4}latest handshake: 3 min 2[56] s ago \(no session now\)$/m)
  assert.match(block(KEY_C.replace('T', 'U')), /^ {4}endpoint: 198\.51\.100\.7:40000$/m)
  assert.match(block(KEY_C.replace('T', 'U')), /^ {4}transfer: 900 B received, 3\.00 MiB sent/m)
  assert.match(text, /^ {2}lease 10\.244\.4\.0\/24 of 192\.0\.2\.4: no peer \(its key is another lease's, or ours\)$/m)
  assert.doesNotMatch(text, /VTEP MAC/, 'no VXLAN table')
  assert.match(text, /^wireguard 3 peers, 7 handshakes completed \(2 rekeys\)$/m)
  assert.match(text, /^wg drops {2}bad_mac1=3 replay=1$/m)
  assert.match(text, /^drops\s+none$/m)
})

test('weft status names the node\'s own key and port when the daemon gives them, and says none for no WireGuard drops', async (t) => {
  const text = await statusText(t, {}, wireguardStatus({ handshakes: 1, rekeys: 0, drops: {}, peers: 1, publicKey: KEY_B, listenPort: 51820 }))
  assert.match(text, new RegExp(`^wireguard 1 peer, 1 handshake completed \\(0 rekeys\\), public key ${KEY_B.replace(/[+/]/g, '\\$&')}, UDP port 51820$`, 'm'))
  assert.match(text, /^wg drops {2}none$/m)
})

test('a vxlan node\'s status has no WireGuard lines', async (t) => {
  const text = await statusText(t, { inside_packets: 1 })
  assert.doesNotMatch(text, /wireguard|wg drops|peer:/)
})

test('ages and byte counts read as wg show\'s, shorter', () => {
  assert.equal(formatAge(0), '0 s')
  assert.equal(formatAge(12.9), '12 s')
  assert.equal(formatAge(60), '1 min')
  assert.equal(formatAge(3 * 60 + 4), '3 min 4 s')
  assert.equal(formatAge(2 * 3600 + 5 * 60 + 9), '2 h 5 min')
  assert.equal(formatAge(3 * 86400 + 4 * 3600), '3 d 4 h')
  assert.equal(formatAge(-3), '0 s', 'a clock that stepped back')
  assert.equal(formatBytes(0), '0 B')
  assert.equal(formatBytes(1023), '1023 B')
  assert.equal(formatBytes(1024), '1.00 KiB')
  assert.equal(formatBytes(1536 * 1024), '1.50 MiB')
  assert.equal(formatBytes(5 * 2 ** 40), '5.00 TiB')
})
