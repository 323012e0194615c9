// Keys as `wg` prints them and flannel's key file: created once (as flannel
// writes it: base64, no newline, 0400, directory made), kept across
// restarts, refused with a typed error that names the file.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { WeftError } from '../../src/errors'
import {
  DEFAULT_KEY_FILE,
  encodeKey,
  generatePrivateKey,
  KEY_FILE_MODE,
  keyFilePath,
  loadOrCreateKey,
  loadOrCreateKeyFile,
  parseKey,
  parsePsk,
  publicKeyOf,
} from '../../src/wireguard/keys'
import { toolSkipReason } from '../../lab/skip'

function tmpDir (t: { after: (fn: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-wgkey-'))
  t.after(() => fs.rmSync(d, { recursive: true, force: true }))
  return d
}

function rejects (fn: () => unknown, code: string, re: RegExp, secret?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof WeftError, `a WeftError, got ${String(e)}`)
    assert.equal(e.code, code)
    assert.match(e.message, re)
    if (secret) assert.ok(!e.message.includes(secret), 'the message does not quote the key material')
    return true
  })
}

test('public keys as RFC 7748 derives them; generated private keys are clamped and round-trip through base64', () => {
  const alice = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex')
  assert.equal(publicKeyOf(alice).toString('hex'), '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')
  for (let i = 0; i < 50; i++) {
    const k = generatePrivateKey()
    assert.equal(k[0]! & 7, 0)
    assert.equal(k[31]! & 0xc0, 0x40)
    const text = encodeKey(k)
    assert.match(text, /^[A-Za-z0-9+/]{43}=$/)
    assert.deepEqual(parseKey(text), k)
  }
})

test('`wg genkey` keys parse, and our public key matches `wg pubkey`', { skip: toolSkipReason('wg') }, () => {
  for (let i = 0; i < 5; i++) {
    const text = execFileSync('wg', ['genkey'], { encoding: 'utf8' })
    assert.ok(text.endsWith('\n'))
    const ours = encodeKey(publicKeyOf(parseKey(text)))
    assert.equal(ours, execFileSync('wg', ['pubkey'], { input: text, encoding: 'utf8' }).trim())
    const mine = encodeKey(generatePrivateKey())
    assert.equal(encodeKey(publicKeyOf(parseKey(mine))), execFileSync('wg', ['pubkey'], { input: mine, encoding: 'utf8' }).trim())
  }
})

test('bad key text is EWGKEY, saying what was wrong without quoting it; a PSK is parsed the same way', () => {
  const secret = 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2Vj'
  rejects(() => parseKey('', 'private key'), 'EWGKEY', /^private key is empty$/)
  rejects(() => parseKey(secret.slice(0, 40), 'private key'), 'EWGKEY', /40 characters/, secret.slice(0, 40))
  rejects(() => parseKey(secret.slice(0, 43) + '!', 'private key'), 'EWGKEY', /not a base64 32-byte key/, secret.slice(0, 43))
  rejects(() => parsePsk('nope'), 'EWGKEY', /^preshared key is 4 characters/)
  assert.equal(parsePsk(`  ${encodeKey(Buffer.alloc(32, 7))}\n`).length, 32)
})

test('the key file: $WIREGUARD_KEY_FILE if set, else /run/flannel/wgkey', () => {
  assert.equal(keyFilePath({}), DEFAULT_KEY_FILE)
  assert.equal(DEFAULT_KEY_FILE, '/run/flannel/wgkey')
  assert.equal(keyFilePath({ WIREGUARD_KEY_FILE: '/tmp/k' }), '/tmp/k')
  assert.equal(keyFilePath({ WIREGUARD_KEY_FILE: '' }), DEFAULT_KEY_FILE)
})

test('a missing key file is created as flannel writes it (base64, no newline, 0400, directory made) and the same key is read on every later start', (t) => {
  const file = path.join(tmpDir(t), 'run', 'flannel', 'wgkey')
  const first = loadOrCreateKey(file)
  assert.equal(first.created, true)
  assert.equal(first.file, file)
  const text = fs.readFileSync(file, 'utf8')
  assert.match(text, /^[A-Za-z0-9+/]{43}=$/, 'the key alone, no newline')
  assert.deepEqual(parseKey(text), first.keyPair.privateKey)
  assert.equal(fs.statSync(file).mode & 0o777, KEY_FILE_MODE)
  assert.equal(KEY_FILE_MODE, 0o400)
  assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o755)
  assert.deepEqual(fs.readdirSync(path.dirname(file)), ['wgkey'], 'no temporary file left')
  const again = loadOrCreateKey(file)
  assert.equal(again.created, false)
  assert.deepEqual(again.keyPair.publicKey, first.keyPair.publicKey)
  assert.deepEqual(loadOrCreateKeyFile(file).privateKey, first.keyPair.privateKey)
})

test('a key file written by `wg genkey > file` (with its newline) is read', (t) => {
  const file = path.join(tmpDir(t), 'wgkey')
  const key = generatePrivateKey()
  fs.writeFileSync(file, encodeKey(key) + '\n', { mode: 0o600 })
  const r = loadOrCreateKey(file)
  assert.equal(r.created, false)
  assert.deepEqual(r.keyPair.privateKey, key)
})

test('a key file that holds no key, cannot be read or cannot be written is EWGKEYFILE naming the file', (t) => {
  const dir = tmpDir(t)
  const bad = path.join(dir, 'bad')
  fs.writeFileSync(bad, 'not a key at all\n')
  rejects(() => loadOrCreateKey(bad), 'EWGKEYFILE', new RegExp(`^${bad}: not a WireGuard private key: its content is 16 characters`))
  const empty = path.join(dir, 'empty')
  fs.writeFileSync(empty, '')
  rejects(() => loadOrCreateKey(empty), 'EWGKEYFILE', /empty: not a WireGuard private key: its content is empty/)
  rejects(() => loadOrCreateKey(dir), 'EWGKEYFILE', new RegExp(`^${dir}: cannot read the WireGuard private key: EISDIR`))
  const underFile = path.join(bad, 'wgkey')
  rejects(() => loadOrCreateKey(underFile), 'EWGKEYFILE', new RegExp(`^${underFile}: cannot (read|write) the WireGuard private key: ENOTDIR`))
})

test('processes starting together on a missing key file agree on one key', async (t) => {
  const file = path.join(tmpDir(t), 'wgkey')
  const script = `process.stdout.write(require(${JSON.stringify(path.join(__dirname, '..', '..', 'src', 'wireguard', 'keys.js'))}).loadOrCreateKey(${JSON.stringify(file)}).keyPair.publicKey.toString('base64'))`
  const run = promisify(execFile)
  const outs = await Promise.all(Array.from({ length: 6 }, () => run(process.execPath, ['-e', script])))
  const keys = new Set(outs.map((o) => o.stdout))
  assert.equal(keys.size, 1)
  assert.equal(encodeKey(publicKeyOf(parseKey(fs.readFileSync(file, 'utf8')))), [...keys][0])
})
