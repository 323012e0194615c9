// Who may touch what a node leaves on disk: the control socket 0660 (the
// daemon's user and group; connecting needs write permission), the SQLite
// store and its -wal and -shm files 0600, subnet.env 0644 (world-readable
// as flannel's, never writable). Checked under umask 000, the worst a
// service manager can hand us.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { ControlServer, fetchStatus } from '../../src/daemon/control'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { captureLogger } from '../helpers/log'
import { withTopology } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'weft')
const mode = (file: string): string => '0' + (fs.statSync(file).mode & 0o7777).toString(8)

function tmp (t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-modes-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Runs fn with umask 000, restoring the old one after. */
async function withUmask0<T> (fn: () => Promise<T>): Promise<T> {
  const old = process.umask(0)
  try { return await fn() } finally { process.umask(old) }
}

/** Every path under dir, dir included. */
function walk (dir: string): string[] {
  return [dir, ...fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)])]
}

test('the control socket is 0660 under umask 000, replaces a stale one, and leaves no staging directory behind', async (t) => {
  const dir = tmp(t)
  fs.writeFileSync(path.join(dir, 'weft.sock'), 'left by a killed daemon')
  const { log, find } = captureLogger()
  const c = new ControlServer(dir, () => ({ ok: true }), log)
  await withUmask0(() => c.listen())
  try {
    assert.ok(fs.statSync(c.path).isSocket())
    assert.equal(mode(c.path), '0660')
    assert.deepEqual(fs.readdirSync(dir), ['weft.sock'])
    assert.deepEqual(await fetchStatus(dir), { ok: true })
    assert.deepEqual(find(/world-writable/), [], 'a 0700 temp dir is fine')
  } finally { await c.close() }
  assert.deepEqual(fs.readdirSync(dir), [], 'close() removes the socket')
})

test('a world-writable state dir is warned about (anyone could replace the socket)', async (t) => {
  const dir = tmp(t)
  fs.chmodSync(dir, 0o777)
  const { log, find } = captureLogger()
  const c = new ControlServer(dir, () => ({}), log)
  await c.listen()
  await c.close()
  assert.equal(find(/the state dir is world-writable/).length, 1)
  assert.equal(find(/the state dir is world-writable/)[0]?.mode, '0777')
})

test('the SQLite store and its -wal and -shm files are 0600 under umask 000', async (t) => {
  const dir = tmp(t)
  const file = path.join(dir, 'sub', 'store.db')
  const store = await withUmask0(async () => {
    const s = new SqliteStore({ path: file })
    await s.putConfig('{"Network":"10.244.0.0/16"}')
    return s
  })
  try {
    for (const f of [file, `${file}-wal`, `${file}-shm`]) assert.equal(mode(f), '0600', f)
    assert.equal(mode(path.dirname(file)), '0755')
  } finally { await store.close() }
})

test('a daemon started under umask 000 leaves nothing world-writable: socket 0660, store 0600, subnet.env 0644', { skip: netnsSkipReason(), timeout: 30_000 }, async (t) => {
  const dir = tmp(t)
  await withTopology(t, { hosts: 1, label: 'file-modes' }, async (topo) => {
    const h = topo.hosts[0]!
    const umask0 = (argv: string[]): string[] => ['sh', '-c', 'umask 000 && exec "$@"', 'umask0', ...argv]
    await topo.exec(h, umask0([process.execPath, BIN, 'config', 'set', '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}', '--store', `sqlite:${dir}/db/store.db`]))
    const d = topo.spawn(h, umask0([process.execPath, BIN, 'run', '--store', `sqlite:${dir}/db/store.db`, '--subnet-file', `${dir}/run/subnet.env`, '--state-dir', `${dir}/state`, '--iface', 'eth0']))
    await d.waitForLine(/"msg":"running"/, 20_000)
    try {
      assert.equal(mode(`${dir}/state/weft.sock`), '0660')
      for (const f of ['store.db', 'store.db-wal', 'store.db-shm']) assert.equal(mode(`${dir}/db/${f}`), '0600', f)
      assert.equal(mode(`${dir}/run/subnet.env`), '0644')
      const open = walk(dir).filter((f) => f !== dir && (fs.statSync(f).mode & 0o002) !== 0)
      assert.deepEqual(open, [], 'nothing world-writable')
      t.diagnostic(walk(dir).filter((f) => f !== dir).map((f) => `${mode(f)} ${path.relative(dir, f)}`).join(', '))
    } finally {
      assert.equal((await d.stop(5000)).code, 0, d.stderr.slice(-800))
    }
  })
})
