// The UAPI server `wg` reads a userspace WireGuard's state through
// (src/wireguard/uapi.ts): the lines in wireguard-go's order, the real `wg
// show`/`showconf`/`set` against it under /var/run/wireguard (root, and
// wireguard-tools, else skipped with the reason), and hostile clients in a
// temporary directory: garbage, huge requests, slow and silent clients,
// too many connections, a client that never reads. After each the server
// still answers.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import type { Logger } from '../../src/log'
import { formatGet, startUapiServer, UAPI_DIR } from '../../src/wireguard/uapi'
import type { DeviceState, UapiOptions, UapiServer } from '../../src/wireguard/uapi'

// RFC 7748 section 6.1: Alice's private key and its public key
const ALICE = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex')
const ALICE_PUB = Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex').toString('base64')
const PEER1 = Buffer.alloc(32, 0x11)
const PEER2 = Buffer.alloc(32, 0x22)
const PSK = Buffer.alloc(32, 0x33)
const b64 = (b: Buffer): string => b.toString('base64')

function fakeState (handshakeAgoS = 42): DeviceState {
  return {
    privateKey: ALICE,
    listenPort: 51820,
    fwmark: 0,
    peers: [
      {
        publicKey: PEER1,
        presharedKey: PSK,
        endpoint: { ip: '198.18.0.2', port: 51820 },
        persistentKeepalive: 25,
        allowedIps: ['10.244.6.0/24'],
        lastHandshake: { sec: Math.floor(Date.now() / 1000) - handshakeAgoS, nsec: 5 },
        rxBytes: 123456789n,
        txBytes: 98765,
      },
      { publicKey: PEER2, persistentKeepalive: 0, allowedIps: ['10.244.7.0/24', '10.244.8.0/24'], lastHandshake: undefined, rxBytes: 0, txBytes: 0 },
    ],
  }
}

interface Logged { level: string, obj: Record<string, unknown>, msg: string }

function fakeLog (): { log: Logger, lines: Logged[] } {
  const lines: Logged[] = []
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => { lines.push({ level, obj, msg }) }
  return { log: { warn: at('warn'), info: at('info'), error: at('error'), debug: at('debug') } as unknown as Logger, lines }
}

test('get: the device\'s lines in wireguard-go\'s order, keys in lowercase hex', () => {
  const st = fakeState()
  const sec = st.peers[0]!.lastHandshake!.sec
  assert.equal(formatGet(st), [
    `private_key=${ALICE.toString('hex')}`,
    'listen_port=51820',
    `public_key=${'11'.repeat(32)}`,
    `preshared_key=${'33'.repeat(32)}`,
    'protocol_version=1',
    'endpoint=198.18.0.2:51820',
    `last_handshake_time_sec=${sec}`,
    'last_handshake_time_nsec=5',
    'tx_bytes=98765',
    'rx_bytes=123456789',
    'persistent_keepalive_interval=25',
    'allowed_ip=10.244.6.0/24',
    `public_key=${'22'.repeat(32)}`,
    `preshared_key=${'00'.repeat(32)}`,
    'protocol_version=1',
    'last_handshake_time_sec=0',
    'last_handshake_time_nsec=0',
    'tx_bytes=0',
    'rx_bytes=0',
    'persistent_keepalive_interval=0',
    'allowed_ip=10.244.7.0/24',
    'allowed_ip=10.244.8.0/24',
    '',
  ].join('\n'))
  // no key, no port, a mark, an IPv6 endpoint; nothing a provider hands over can break a line
  assert.equal(formatGet({ privateKey: Buffer.alloc(32), listenPort: 0, fwmark: 7, peers: [] }), 'fwmark=7\n')
  const odd = formatGet({
    privateKey: Buffer.alloc(32),
    listenPort: 0,
    fwmark: 0,
    peers: [
      { publicKey: Buffer.alloc(31), persistentKeepalive: 0, allowedIps: [], lastHandshake: undefined, rxBytes: 0, txBytes: 0 },
      { publicKey: PEER1, endpoint: { ip: 'fd00::1', port: 51820 }, persistentKeepalive: -3, allowedIps: ['10.0.0.0/8\nprivate_key=00', 'fd00::/64'], lastHandshake: { sec: NaN, nsec: 2e9 }, rxBytes: -1n, txBytes: 2 ** 70 },
    ],
  })
  assert.doesNotMatch(odd, /private_key/)
  assert.match(odd, /^endpoint=\[fd00::1\]:51820$/m)
  assert.match(odd, /^persistent_keepalive_interval=0$/m)
  assert.match(odd, /^last_handshake_time_sec=0\nlast_handshake_time_nsec=999999999$/m)
  assert.match(odd, /^rx_bytes=0$/m)
  assert.match(odd, /^tx_bytes=9007199254740991$/m)
  assert.deepEqual(odd.match(/^allowed_ip=.*$/gm), ['allowed_ip=fd00::/64'])
})

// --- the real wg ----------------------------------------------------------------

function wg (...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile('wg', args, { timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 255, stdout, stderr })
    })
  })
}

function wgSkip (): string | undefined {
  if (process.getuid?.() !== 0) return `not root (uid ${process.getuid?.()}): ${UAPI_DIR} is root's`
  const found = (process.env.PATH ?? '').split(':').some((d) => d !== '' && fs.existsSync(path.join(d, 'wg')))
  return found ? undefined : '`wg` (wireguard-tools) not found in PATH'
}

let unique = 0
/** An interface name nobody else uses: 'wtu' + this pid + a counter, at most 15 characters. */
const devName = (): string => `wtu${process.pid.toString(36)}x${(unique++).toString(36)}`.slice(0, 15)

test('wg show, show dump, showconf and set against the server under /var/run/wireguard', { skip: wgSkip() }, async (t) => {
  const device = devName()
  const { log, lines } = fakeLog()
  const srv = await startUapiServer({ device, state: () => fakeState(), log })
  t.after(() => srv.close())
  assert.equal(srv.path, `${UAPI_DIR}/${device}.sock`)
  assert.equal(fs.statSync(srv.path).mode & 0o7777, 0o700, 'srwx------ as wireguard-go\'s')

  const show = await wg('show', device)
  assert.equal(show.code, 0, show.stderr)
  assert.match(show.stdout, new RegExp(`^interface: ${device}\\n  public key: ${ALICE_PUB.replace(/[+/]/g, '\\$&')}\\n  private key: \\(hidden\\)\\n  listening port: 51820\\n`))
  const peer1 = show.stdout.slice(show.stdout.indexOf(`peer: ${b64(PEER1)}`))
  assert.match(peer1, /^ {2}preshared key: \(hidden\)$/m)
  assert.match(peer1, /^ {2}endpoint: 198\.18\.0\.2:51820$/m)
  assert.match(peer1, /^ {2}allowed ips: 10\.244\.6\.0\/24$/m)
  assert.match(peer1, /^ {2}latest handshake: 4\d seconds ago$/m)
  assert.match(peer1, /^ {2}transfer: 117\.74 MiB received, 96\.45 KiB sent$/m)
  assert.match(peer1, /^ {2}persistent keepalive: every 25 seconds$/m)
  assert.match(show.stdout, new RegExp(`peer: ${b64(PEER2).replace(/[+/]/g, '\\$&')}\\n  allowed ips: 10\\.244\\.7\\.0/24, 10\\.244\\.8\\.0/24`))

  const dump = (await wg('show', device, 'dump')).stdout.trim().split('\n').map((l) => l.split('\t'))
  assert.deepEqual(dump[0], [b64(ALICE), ALICE_PUB, '51820', 'off'])
  const d1 = dump.find((f) => f[0] === b64(PEER1))!
  assert.deepEqual([d1[1], d1[2], d1[3], d1[5], d1[6], d1[7]], [b64(PSK), '198.18.0.2:51820', '10.244.6.0/24', '123456789', '98765', '25'])
  assert.ok(Math.abs(Number(d1[4]) - (Date.now() / 1000 - 42)) < 5, `latest handshake ${d1[4]}`)
  assert.deepEqual(dump.find((f) => f[0] === b64(PEER2))!.slice(1), ['(none)', '(none)', '10.244.7.0/24,10.244.8.0/24', '0', '0', '0', 'off'])

  const conf = (await wg('showconf', device)).stdout
  assert.match(conf, new RegExp(`^PrivateKey = ${b64(ALICE).replace(/[+/]/g, '\\$&')}$`, 'm'))
  assert.match(conf, /^ListenPort = 51820$/m)

  // `wg show` with no name lists userspace devices from the directory
  assert.match((await wg('show', 'interfaces')).stdout, new RegExp(`(^|\\s)${device}(\\s|$)`))

  const set = await wg('set', device, 'listen-port', '1234')
  assert.equal(set.code, 1)
  assert.match(set.stderr, /Unable to modify interface: Operation not permitted/)
  assert.equal((await wg('show', device, 'listen-port')).stdout.trim(), '51820', 'nothing applied')
  assert.equal(srv.counters().setsRefused, 1)
  assert.ok(lines.some((l) => l.level === 'warn' && /`wg set` refused/.test(l.msg)), JSON.stringify(lines))
  assert.ok(srv.counters().gets >= 4)

  await srv.close()
  await srv.close()
  assert.equal(fs.existsSync(srv.path), false, 'the socket file is removed')
  const gone = await wg('show', device)
  assert.notEqual(gone.code, 0)
})

// --- hostile clients, in a directory of our own ----------------------------------

async function tmpServer (t: { after: (fn: () => unknown) => void }, o: Partial<UapiOptions> = {}): Promise<UapiServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-uapi-'))
  const srv = await startUapiServer({ device: 'wg-test', state: () => fakeState(), dir: path.join(dir, 'wireguard'), ...o })
  t.after(async () => {
    await srv.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  return srv
}

/** Writes `data` (then half-closes unless `keepOpen`), resolves with all the server sent once it closes, or at `ms`. */
function talk (sock: string, data: string | Buffer, o: { keepOpen?: boolean, ms?: number } = {}): Promise<{ reply: string, closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock)
    const got: Buffer[] = []
    const timer = setTimeout(() => { c.destroy(); resolve({ reply: Buffer.concat(got).toString(), closedByServer: false }) }, o.ms ?? 3000)
    c.on('data', (d) => got.push(d))
    c.on('error', () => {}) // a reset after we wrote is how the server says no
    c.on('close', () => { clearTimeout(timer); resolve({ reply: Buffer.concat(got).toString(), closedByServer: true }) })
    c.once('connect', () => {
      c.write(data)
      if (o.keepOpen !== true) c.end()
    })
    c.once('error', (e) => { if (!c.connecting) return; clearTimeout(timer); reject(e) })
  })
}

const GET_REPLY = (): string => formatGet(fakeState()) + 'errno=0\n\n'

test('the socket: directory 0755, socket 0700; a stale socket is replaced, a live one or a file is refused', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-uapi-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const wgDir = path.join(dir, 'wireguard')
  const sock = path.join(wgDir, 'wg-a.sock')
  const srv = await startUapiServer({ device: 'wg-a', state: () => fakeState(), dir: wgDir })
  assert.equal(fs.statSync(wgDir).mode & 0o777, 0o755)
  assert.equal(fs.statSync(sock).mode & 0o777, 0o700)
  await assert.rejects(startUapiServer({ device: 'wg-a', state: () => fakeState(), dir: wgDir }), { code: 'EADDRINUSE' })
  assert.equal((await talk(sock, 'get=1\n\n')).reply, GET_REPLY(), 'the first server is untouched')

  // a process that died leaves its socket: keep a second name for it across the close
  fs.linkSync(sock, path.join(wgDir, 'wg-b.sock'))
  await srv.close()
  assert.equal(fs.existsSync(sock), false)
  assert.ok(fs.lstatSync(path.join(wgDir, 'wg-b.sock')).isSocket(), 'a stale socket')
  const b = await startUapiServer({ device: 'wg-b', state: () => fakeState(), dir: wgDir })
  assert.equal((await talk(b.path, 'get=1\n\n')).reply, GET_REPLY())
  await b.close()

  fs.writeFileSync(path.join(wgDir, 'wg-c.sock'), 'not a socket')
  await assert.rejects(startUapiServer({ device: 'wg-c', state: () => fakeState(), dir: wgDir }), { code: 'EEXIST' })
  assert.equal(fs.readFileSync(path.join(wgDir, 'wg-c.sock'), 'utf8'), 'not a socket', 'left alone')
  for (const bad of ['', '../etc', 'a/b', 'x'.repeat(16), '..']) {
    await assert.rejects(startUapiServer({ device: bad, state: () => fakeState(), dir: wgDir }), { code: 'EINVAL' }, bad)
  }
})

test('protocol: several operations on one connection; set refused with errno -1 and nothing applied; get=1 with a trailing byte', async (t) => {
  const srv = await tmpServer(t)
  const body = 'private_key=' + '44'.repeat(32) + '\nlisten_port=1\npublic_key=' + '55'.repeat(32) + '\nallowed_ip=0.0.0.0/0\n\n'
  const r = await talk(srv.path, `get=1\n\nset=1\n${body}get=1\n\n`)
  assert.equal(r.reply, GET_REPLY() + 'errno=-1\n\n' + GET_REPLY())
  const bad = await talk(srv.path, 'get=1\nX\n', { keepOpen: true })
  assert.equal(bad.reply, 'errno=-22\n\n')
  assert.equal(bad.closedByServer, true)
  // split into single bytes on the wire: the same answer
  const c = net.connect(srv.path)
  const got: Buffer[] = []
  c.on('data', (d) => got.push(d))
  await new Promise((resolve) => c.once('connect', resolve))
  for (const ch of 'get=1\n\n') { c.write(ch); await new Promise((resolve) => setTimeout(resolve, 2)) }
  c.end()
  await new Promise((resolve) => c.once('close', resolve))
  assert.equal(Buffer.concat(got).toString(), GET_REPLY())
  const n = srv.counters()
  assert.deepEqual([n.gets, n.setsRefused, n.malformed], [3, 1, 1])
})

test('hostile clients: garbage, a huge line, a silent client, too many connections, a client that never reads, a provider that throws', { timeout: 30_000 }, async (t) => {
  const { log, lines } = fakeLog()
  let throwing = false
  const many: DeviceState = { ...fakeState(), peers: Array.from({ length: 64 }, (_, i) => ({ ...fakeState().peers[0]!, publicKey: Buffer.alloc(32, i) })) }
  const srv = await tmpServer(t, {
    log,
    state: () => { if (throwing) throw new Error('no state'); return many },
    limits: { timeoutMs: 300, maxConnections: 4, maxRequestBytes: 64 * 1024, maxPendingReplyBytes: 64 * 1024 },
  })
  const full = formatGet(many) + 'errno=0\n\n'
  let before = srv.counters()
  /** how much a counter grew since the last call */
  const grew = (k: keyof ReturnType<UapiServer['counters']>): number => {
    const now = srv.counters()
    const d = now[k] - before[k]
    before = now
    return d
  }
  const works = async (what: string): Promise<void> => {
    assert.equal((await talk(srv.path, 'get=1\n\n')).reply, full, `still answering after ${what}`)
  }

  // garbage: an unknown operation ends the connection, no answer (as wireguard-go)
  for (const g of ['hello\n', 'GET=1\n\n', 'get=2\n\n', '\n', 'set=1 \n\n', Buffer.from([0, 0xff, 0x0a, 0x0a])]) {
    const r = await talk(srv.path, g, { keepOpen: true })
    assert.deepEqual(r, { reply: '', closedByServer: true }, JSON.stringify(g.toString()))
  }
  assert.equal(grew('malformed'), 6)
  // random lines from many clients in turn: never a crash, never an answer
  for (let i = 0; i < 50; i++) {
    const junk = Buffer.concat([Buffer.from(Array.from({ length: 1 + (i * 37) % 300 }, (_, j) => (i * 131 + j * 7) % 256)), Buffer.from('\n')])
    assert.equal((await talk(srv.path, junk, { keepOpen: true, ms: 1000 })).reply, '')
  }
  await works('garbage')
  before = srv.counters()

  // a line longer than all a client may send, without a newline
  const huge = await talk(srv.path, Buffer.alloc(100 * 1024, 'a'), { keepOpen: true })
  assert.equal(huge.closedByServer, true)
  // a set whose lines never end it
  const endless = await talk(srv.path, 'set=1\n' + 'listen_port=1\n'.repeat(6000), { keepOpen: true })
  assert.deepEqual(endless, { reply: '', closedByServer: true })
  assert.equal(grew('oversized'), 2)
  await works('oversized requests')

  // silent, and half a request: both closed at the deadline
  const t0 = Date.now()
  const [silent, half] = await Promise.all([talk(srv.path, '', { keepOpen: true }), talk(srv.path, 'get=1\n', { keepOpen: true })])
  assert.deepEqual([silent.closedByServer, half.closedByServer, half.reply], [true, true, ''])
  assert.ok(Date.now() - t0 < 2000, 'closed at the 300 ms deadline')
  assert.equal(grew('timeouts'), 2)

  // ten at once, four allowed: six are closed on arrival, the four time out
  const ten = await Promise.all(Array.from({ length: 10 }, async () => await talk(srv.path, '', { keepOpen: true })))
  assert.ok(ten.every((r) => r.closedByServer))
  assert.equal(grew('connectionsRefused'), 6)
  await works('too many connections')

  // asks and asks and never reads: closed once 64 KiB of answers wait (the kernel's buffer full first)
  const reader = net.connect(srv.path)
  reader.on('error', () => {})
  await new Promise((resolve) => reader.once('connect', resolve))
  reader.pause()
  reader.write('get=1\n\n'.repeat(9000))
  const deadline = Date.now() + 5000
  while (srv.counters().slowReaders === before.slowReaders && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  assert.equal(grew('slowReaders'), 1)
  // a paused socket sees no end of stream: read what is left, then it closes
  const closed = new Promise((resolve) => reader.once('close', resolve))
  reader.resume()
  await closed
  await works('a client that never reads')

  throwing = true
  assert.equal((await talk(srv.path, 'get=1\n\n')).reply, 'errno=-5\n\n')
  assert.equal(srv.counters().stateErrors, 1)
  throwing = false
  await works('a provider that threw')

  const n = srv.counters()
  assert.ok(n.connections > 70, `connections ${n.connections}`)
  // each kind logged, and not once per client
  const warned = lines.filter((l) => l.level === 'warn')
  assert.ok(warned.length <= 8, `${warned.length} warnings: ${warned.map((l) => l.msg).join('; ')}`)
  assert.ok(warned.some((l) => l.obj.kind === 'malformed') && warned.some((l) => l.obj.kind === 'timeouts') && warned.some((l) => l.obj.kind === 'connectionsRefused'))
})
