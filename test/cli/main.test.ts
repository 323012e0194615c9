// The CLI entry: help lists the commands, unknown input gets a clear message
// and a non-zero code, and nothing but src/main decides to exit.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { WeftError } from '../../src/errors'
import { main } from '../../src/main'

function capture (): { io: { out: (l: string) => void, err: (l: string) => void }, out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { io: { out: (l) => out.push(l), err: (l) => err.push(l) }, out, err }
}

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'weft')

test('--help names every command with a one-line summary', async () => {
  const c = capture()
  assert.equal(await main(['--help'], c.io), 0)
  const text = c.out.join('\n')
  assert.match(text, /usage: weft <command>/)
  assert.match(text, /probe\s+show which kernel offloads/)
})

test('an unknown command exits 2 and points at --help', async () => {
  const c = capture()
  assert.equal(await main(['frobnicate'], c.io), 2)
  assert.match(c.err.join('\n'), /unknown command 'frobnicate'.*--help/)
})

test('bin/weft runs the compiled CLI: version matches package.json', () => {
  const v = execFileSync(BIN, ['version'], { encoding: 'utf8' }).trim()
  assert.equal(v, (require('../../../package.json') as { version: string }).version)
})

test('bin/weft with a bad option prints the problem and exits 1, without a stack trace', () => {
  const r = spawnSync(BIN, ['probe', '--no-such-option'], { encoding: 'utf8' })
  assert.equal(r.status, 1)
  assert.match(r.stderr, /Unknown option '--no-such-option'/)
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/)
})

test('weft probe --json reports the offloads as JSON (run in a private network namespace when root)', () => {
  // The probe creates a transient TUN device; as root keep even that out of
  // the root namespace by giving the child a namespace of its own.
  const argv = process.getuid?.() === 0 ? ['unshare', '--net', BIN, 'probe', '--json'] : [BIN, 'probe', '--json']
  const o = JSON.parse(execFileSync(argv[0], argv.slice(1), { encoding: 'utf8' })) as Record<string, unknown>
  assert.equal(typeof o.udpGso, 'boolean')
  assert.equal(typeof o.tun, 'boolean')
})

test('weft config set refuses a net-conf the backend would refuse at start, and stores nothing', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cli-config-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const store = ['--store', `sqlite:${dir}/store.db`]
  // flannel takes it; weft's VXLAN peer table cannot hold 2^23 subnets
  await assert.rejects(main(['config', 'set', '{"Network":"10.0.0.0/7","SubnetLen":30,"Backend":{"Type":"vxlan"}}', ...store], capture().io),
    (e: unknown) => e instanceof WeftError && e.code === 'ECONFIG' && /peer table holds at most 4194304/.test(e.message))
  const get = capture()
  assert.equal(await main(['config', 'get', ...store], get.io), 1, 'nothing was stored')
  // the same network with host-gw, which keeps no table, is fine
  const ok = capture()
  assert.equal(await main(['config', 'set', '{"Network":"10.0.0.0/7","SubnetLen":30,"Backend":{"Type":"host-gw"}}', ...store], ok.io), 0)
  assert.match(ok.out.join('\n'), /backend host-gw/)
})
