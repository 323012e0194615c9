// A stranger on the underlay sending WireGuard a node should refuse, for the
// WireGuard hostile-input test: one bounded burst of one kind (at most
// --count datagrams and --seconds seconds), from one UDP port (--port), and
// what the protocol says the node must make of each (expect: reason ->
// count), worked out here from the message as sent. Handshakes are built
// with weft's own protocol code (src/wireguard) and a fresh key pair that is
// no node's; mac1 is keyed with the node's public key (--key), as anyone who
// reads the lease can.
//
// usage: wireguard-stranger --to IP:PORT --key BASE64 --kind KIND --count N
//                           [--seconds S] [--port P] [--interval-ms I] [--burst B] [--file F] [--cookie HEX]
//   random                random datagrams of 1 to 200 bytes (half with a valid type byte)
//   forged-initiations    148 bytes, type 1, the rest random (no valid mac1)
//   stranger-initiations  valid mac1 from an unknown static key, --interval-ms apart
//   replay                each line of --file (hex) sent --count times
//   cookie-flood          initiations like the above as fast as they go; the
//                         node's cookie replies are read and opened
//   mac2-initiations      initiations carrying mac2 made with --cookie, --burst at a
//                         time (default 1), --interval-ms apart
// Prints {"stranger":{kind,sent,expect,cookieReplies,cookiesOpened,cookie}}.
import dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import { createInitiation, Handshake } from '../../src/wireguard/noise'
import { dh, hash, KEY_LEN, mac, MAC_LEN, privateKeyObject, rawPublicKey, XNONCE_LEN, xaeadOpen } from '../../src/wireguard/primitives'
import { generatePrivateKey, parseKey } from '../../src/wireguard/keys'
import { COOKIE_REPLY_SIZE, INITIATION_SIZE, KEEPALIVE_SIZE, readU32, RESPONSE_SIZE } from '../../src/wireguard/messages'
import { tai64n } from '../../src/wireguard/tai64n'

function arg (name: string, def?: string): string {
  const i = process.argv.indexOf(`--${name}`)
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]
  if (def !== undefined) return def
  throw new Error(`missing --${name}`)
}

const [ip, portText] = arg('to').split(':')
const port = Number(portText)
const nodeKey = parseKey(arg('key'), 'node key')
const kind = arg('kind')
const count = Number(arg('count'))
const seconds = Number(arg('seconds', '10'))
const intervalMs = Number(arg('interval-ms', '0'))
const burst = Number(arg('burst', '1'))
const deadline = Date.now() + seconds * 1000
const mac1Key = hash(Buffer.from('mac1----'), nodeKey)
const cookieKey = hash(Buffer.from('cookie--'), nodeKey)

const expect: Record<string, number> = {}
const tally = (reason: string): void => { expect[reason] = (expect[reason] ?? 0) + 1 }

/** What the node must make of random bytes, by the message formats (whitepaper §5.4). */
function classify (d: Buffer): string {
  if (d.length < 4 || (d[1] | d[2] | d[3]) !== 0 || d[0] < 1 || d[0] > 4) return 'bad_type'
  if (d[0] === 4) return d.length < KEEPALIVE_SIZE ? 'bad_length' : 'unknown_receiver_index'
  const size = [0, INITIATION_SIZE, RESPONSE_SIZE, COOKIE_REPLY_SIZE][d[0]]
  if (d.length !== size) return 'bad_length'
  return d[0] === 3 ? 'unknown_receiver_index' : 'bad_mac1'
}

// A stranger's static key, and initiations from it: a pool of 16, each its own sender index
const priv = privateKeyObject(generatePrivateKey())
const local = { privateKey: priv, publicKey: rawPublicKey(priv) }
const remote = { publicKey: nodeKey, presharedKey: Buffer.alloc(KEY_LEN), staticStatic: dh(priv, nodeKey) }
/** mac1 of each initiation sent, by its sender index: a cookie reply's associated data */
const mac1Of = new Map<number, Buffer>()
function initiation (cookie: Buffer | undefined): Buffer {
  const index = randomBytes(4).readUInt32LE(0)
  const m = createInitiation(local, remote, new Handshake(), index, tai64n(Date.now()))
  if (m === null) throw new Error('the node key is unusable')
  const at = m.length - 2 * MAC_LEN
  mac(mac1Key, m.subarray(0, at)).copy(m, at)
  if (cookie !== undefined) mac(cookie, m.subarray(0, at + MAC_LEN)).copy(m, at + MAC_LEN)
  mac1Of.set(index, m.subarray(at, at + MAC_LEN))
  return m
}

const sock = dgram.createSocket('udp4')
let sent = 0
let cookieReplies = 0
let cookiesOpened = 0
let cookie: Buffer | undefined
let lastReply = 0
sock.on('message', (m) => {
  if (m.length !== COOKIE_REPLY_SIZE || m[0] !== 3) return
  cookieReplies++
  lastReply = Date.now()
  const ad = mac1Of.get(readU32(m, 4))
  const c = ad === undefined ? null : xaeadOpen(cookieKey, m.subarray(8, 8 + XNONCE_LEN), m.subarray(8 + XNONCE_LEN), ad)
  if (c !== null && c.length === MAC_LEN) { cookiesOpened++; cookie = c }
})

const turn = async (): Promise<void> => await new Promise((resolve) => setImmediate(resolve))
const pause = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

async function send (d: Buffer, reason: string): Promise<void> {
  await new Promise<void>((resolve, reject) => sock.send(d, port, ip, (err) => err ? reject(err) : resolve()))
  sent++
  tally(reason)
}

async function main (): Promise<void> {
  await new Promise<void>((resolve) => sock.bind(Number(arg('port', '0')), resolve))
  const more = (): boolean => sent < count && Date.now() < deadline
  if (kind === 'random') {
    while (more()) {
      const d = randomBytes(1 + Math.floor(Math.random() * 200))
      // half of them behind a type byte of 1 to 4 and zero reserved bytes, to reach the checks behind those
      if (d.length >= 4 && (d[0] & 1) === 1) { d[0] = 1 + (d[1] & 3); d[1] = d[2] = d[3] = 0 }
      await send(d, classify(d))
    }
  } else if (kind === 'forged-initiations') {
    while (more()) { const d = randomBytes(INITIATION_SIZE); d[0] = 1; d[1] = d[2] = d[3] = 0; await send(d, 'bad_mac1') }
  } else if (kind === 'stranger-initiations') {
    while (more()) { await send(initiation(undefined), 'unknown_peer'); await pause(intervalMs) }
  } else if (kind === 'replay') {
    const lines = fs.readFileSync(arg('file'), 'utf8').split('\n').filter((l) => l !== '').map((l) => Buffer.from(l, 'hex'))
    for (let r = 0; more(); r++) for (const d of lines) { if (!more()) break; await send(d, 'replay') }
  } else if (kind === 'cookie-flood') {
    const pool = Array.from({ length: 16 }, () => initiation(undefined))
    // as fast as they go, a turn of the loop now and then to read the cookie replies
    for (let i = 0; more(); i++) { await send(pool[i % pool.length], 'unknown_peer'); if (i % 32 === 31) await turn() }
  } else if (kind === 'mac2-initiations') {
    const c = Buffer.from(arg('cookie'), 'hex')
    const pool = Array.from({ length: 16 }, () => initiation(c))
    for (let i = 0; more(); i++) { await send(pool[i % pool.length], 'unknown_peer'); if (i % burst === burst - 1) await pause(intervalMs) }
  } else {
    throw new Error(`unknown --kind ${kind}`)
  }
  // the last replies: until none came for 300 ms (at most 2 s)
  lastReply = Math.max(lastReply, Date.now())
  for (const end = Date.now() + 2000; Date.now() < end && Date.now() - lastReply < 300;) await pause(20)
  process.stdout.write(JSON.stringify({ stranger: { kind, sent, expect, cookieReplies, cookiesOpened, cookie: cookie?.toString('hex') ?? null } }) + '\n')
  sock.close()
}

main().catch((err: Error) => { process.stderr.write(`${err.stack ?? err.message}\n`); process.exit(1) })
