// `weft leases` on a SQLite store: the table shows each backend's data the
// way flannel reads it (vxlan's VtepMAC; wireguard's PublicKey and Port),
// names values flannel would not accept instead of showing them, and --json
// hands BackendData over as stored.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { main } from '../../src/main'
import { parseIp4 } from '../../src/packet/ip'
import { parseCidr } from '../../src/packet/net'
import { parseCidr6 } from '../../src/packet/net6'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'

const KEY = Buffer.alloc(32, 0x5a).toString('base64') // WlpaWlpa...Wlo=

function capture (): { io: { out: (l: string) => void, err: (l: string) => void }, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { io: { out: (l) => out.push(l), err: (l) => err.push(l) }, out, err }
}

test('weft leases: a wireguard lease shows its public key and port where a vxlan one shows its VTEP MAC', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cli-leases-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const db = path.join(dir, 'store.db')
  const store = new SqliteStore({ path: db })
  const put = async (subnet: string, ip: string, backendType: string, backendData: unknown): Promise<void> => {
    await store.createLease(parseCidr(subnet), { publicIP: parseIp4(ip), publicIPv6: null, backendType, backendData }, 0)
  }
  try {
    await put('10.244.1.0/24', '198.18.0.1', 'vxlan', { VNI: 1, VtepMAC: '0e:11:22:33:44:55' })
    await put('10.244.2.0/24', '198.18.0.2', 'wireguard', { PublicKey: KEY, Port: 51820 })
    // Go's encoding/json matches keys in any case: flannel reads this one too.
    await put('10.244.3.0/24', '198.18.0.3', 'wireguard', { publickey: KEY, PORT: 51999 })
    await put('10.244.4.0/24', '198.18.0.4', 'wireguard', { PublicKey: 'not-a-key', Port: 0 })
    await put('10.244.5.0/24', '198.18.0.5', 'wireguard', { PublicKey: `${KEY}\u001b[2J`.repeat(100), Port: '51820' })
    await put('10.244.6.0/24', '198.18.0.6', 'wireguard', null)
    await put('10.244.7.0/24', '198.18.0.7', '', null)
    // Whatever a store writer put there, nothing reaches the terminal raw.
    await put('10.244.8.0/24', '198.18.0.8', 'vxlan', { VNI: 1, VtepMAC: `\u001b[2J${'a'.repeat(100)}` })
  } finally {
    await store.close()
  }

  const c = capture()
  assert.equal(await main(['leases', '--store', `sqlite:${db}`], c.io), 0)
  const rows = c.out.map((l) => l.split(/\s{2,}/))
  assert.deepEqual(rows[0], ['SUBNET', 'PUBLIC IP', 'BACKEND', 'BACKEND DATA', 'EXPIRES'])
  assert.deepEqual(rows.slice(1, -1).map((r) => r.slice(0, 4)), [
    ['10.244.1.0/24', '198.18.0.1', 'vxlan', '0e:11:22:33:44:55'],
    ['10.244.2.0/24', '198.18.0.2', 'wireguard', `key ${KEY} port 51820`],
    ['10.244.3.0/24', '198.18.0.3', 'wireguard', `key ${KEY} port 51999`],
    ['10.244.4.0/24', '198.18.0.4', 'wireguard', 'key (invalid) port (invalid)'],
    ['10.244.5.0/24', '198.18.0.5', 'wireguard', 'key (invalid) port (invalid)'],
    ['10.244.6.0/24', '198.18.0.6', 'wireguard', '-'],
    ['10.244.7.0/24', '198.18.0.7', 'udp', '-'],
    ['10.244.8.0/24', '198.18.0.8', 'vxlan', `?[2J${'a'.repeat(59)}…`]
  ])
  assert.ok(rows.slice(1, -1).every((r) => r[4] === 'reservation'))
  assert.equal(c.out.at(-1), '8 leases')
  assert.ok(!c.out.join('\n').includes('\u001b'), 'no escape sequence reaches the terminal')

  const j = capture()
  assert.equal(await main(['leases', '--json', '--store', `sqlite:${db}`], j.io), 0)
  const listed = JSON.parse(j.out.join('\n')) as Array<{ subnet: string, backendType: string, backendData: unknown }>
  assert.deepEqual(listed[1], { subnet: '10.244.2.0/24', subnet6: null, publicIP: '198.18.0.2', publicIPv6: null, backendType: 'wireguard', backendData: { PublicKey: KEY, Port: 51820 }, backendV6Data: null, expiration: null })
})

test('weft leases: IPv6 columns appear with dual-stack and IPv6-only leases: IPv6 subnet, PublicIPv6, BackendV6Data (text and --json)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cli-leases6-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const db = path.join(dir, 'store.db')
  const store = new SqliteStore({ path: db })
  try {
    await store.createLease(parseCidr('10.244.1.0/24'), { publicIP: parseIp4('198.18.0.1'), publicIPv6: '2001:2::1', backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '0e:11:22:33:44:55' }, backendV6Data: { VNI: 1, VtepMAC: '0e:11:22:33:44:66' } }, 0, parseCidr6('fc00:0:0:1::/64'))
    await store.createLease({ ip: 0, prefixLen: 0 }, { publicIP: 0, publicIPv6: '2001:2::2', backendType: 'host-gw' }, 0, parseCidr6('fc00:0:0:2::/64'))
    await store.createLease(parseCidr('10.244.3.0/24'), { publicIP: parseIp4('198.18.0.3'), publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '0e:11:22:33:44:77' } }, 0)
  } finally {
    await store.close()
  }
  const c = capture()
  assert.equal(await main(['leases', '--store', `sqlite:${db}`], c.io), 0)
  const rows = c.out.map((l) => l.split(/\s{2,}/))
  assert.deepEqual(rows[0], ['SUBNET', 'IPV6 SUBNET', 'PUBLIC IP', 'PUBLIC IPV6', 'BACKEND', 'BACKEND DATA', 'BACKEND V6 DATA', 'EXPIRES'])
  assert.deepEqual(rows.slice(1, -1), [
    ['-', 'fc00:0:0:2::/64', '0.0.0.0', '2001:2::2', 'host-gw', '-', '-', 'reservation'],
    ['10.244.1.0/24', 'fc00:0:0:1::/64', '198.18.0.1', '2001:2::1', 'vxlan', '0e:11:22:33:44:55', '0e:11:22:33:44:66', 'reservation'],
    ['10.244.3.0/24', '-', '198.18.0.3', '-', 'vxlan', '0e:11:22:33:44:77', '-', 'reservation']
  ])
  const j = capture()
  assert.equal(await main(['leases', '--json', '--store', `sqlite:${db}`], j.io), 0)
  const listed = JSON.parse(j.out.join('\n')) as unknown[]
  assert.deepEqual(listed[0], { subnet: null, subnet6: 'fc00:0:0:2::/64', publicIP: '0.0.0.0', publicIPv6: '2001:2::2', backendType: 'host-gw', backendData: null, backendV6Data: null, expiration: null })
  assert.deepEqual(listed[1], { subnet: '10.244.1.0/24', subnet6: 'fc00:0:0:1::/64', publicIP: '198.18.0.1', publicIPv6: '2001:2::1', backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '0e:11:22:33:44:55' }, backendV6Data: { VNI: 1, VtepMAC: '0e:11:22:33:44:66' }, expiration: null })
})
