// `weft run` on the embedded store, several daemons in namespaces sharing one
// SQLite file: leasing, subnet.env, peers, restarts, revocation, bad input.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseCidr } from '../../src/packet/net'
import type { Ip4Net } from '../../src/packet/net'
import { readSubnetEnv } from '../../src/subnet/env'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { withTopology, waitFor } from '../../lab/netns'
import type { ChildHandle, Host, Topology } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'weft')
const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'

function tmpdir (t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-run-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

function weft (dir: string, ...args: string[]): string {
  return execFileSync(BIN, [...args, '--store', `sqlite:${dir}/store.db`], { encoding: 'utf8' })
}

function daemon (topo: Topology, h: Host, dir: string, ...extra: string[]): ChildHandle {
  return topo.spawn(h, [process.execPath, BIN, 'run', '--store', `sqlite:${dir}/store.db`, '--subnet-file', `${dir}/${h.name}/subnet.env`,
    '--state-dir', `${dir}/${h.name}`, '--iface', 'eth0', ...extra])
}

interface LogLine { msg: string, time: number, [k: string]: unknown }
const lines = (c: ChildHandle): LogLine[] => c.stderrLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine)

test('three daemons lease distinct subnets, write subnet.env, and each sees the other two', { skip: netnsSkipReason() }, async (t) => {
  const dir = tmpdir(t)
  weft(dir, 'config', 'set', CONFIG)
  await withTopology(t, { hosts: 3, label: 'run-three' }, async (topo) => {
    const ds = topo.hosts.map((h) => daemon(topo, h, dir))
    for (const d of ds) await d.waitForLine(/"msg":"running"/, 15_000)
    const envs = topo.hosts.map((h) => readSubnetEnv(`${dir}/${h.name}/subnet.env`))
    assert.equal(new Set(envs.map((e) => `${e?.subnet?.ip}`)).size, 3)
    for (const e of envs) {
      assert.equal(e?.mtu, 1450)
      assert.equal(e?.ipMasq, false)
      assert.deepEqual(e?.network, parseCidr('10.244.0.0/16'))
    }
    for (const d of ds) await waitFor(() => lines(d).filter((l) => l.msg === 'peer added to the FDB').length === 2, { what: 'two peers', timeoutMs: 5000 })
    const table = weft(dir, 'leases')
    for (const h of topo.hosts) assert.match(table, new RegExp(`${h.underlayIp.replace(/\./g, '\\.')}\\s+vxlan\\s+([0-9a-f]{2}:){5}[0-9a-f]{2}\\s+in 2[34]h`))
    assert.match(table, /3 leases/)
  })
})

test('a daemon killed with SIGKILL and started again gets the same subnet and the same VTEP MAC', { skip: netnsSkipReason() }, async (t) => {
  const dir = tmpdir(t)
  weft(dir, 'config', 'set', CONFIG)
  await withTopology(t, { hosts: 1, label: 'run-restart' }, async (topo) => {
    const [h1] = topo.hosts
    const first = daemon(topo, h1, dir)
    await first.waitForLine(/"msg":"running"/, 15_000)
    const before = weft(dir, 'leases', '--json')
    first.kill('SIGKILL')
    await first.exited
    const second = daemon(topo, h1, dir)
    await second.waitForLine(/"msg":"running"/, 15_000)
    assert.match(second.stderr, /reusing it/)
    const after = weft(dir, 'leases', '--json')
    const pick = (s: string) => (JSON.parse(s) as Array<{ subnet: string, backendData: unknown }>).map((l) => [l.subnet, l.backendData])
    assert.deepEqual(pick(after), pick(before))
  })
})

test('a lease deleted under a running daemon is noticed within a second, logged, and taken back', { skip: netnsSkipReason() }, async (t) => {
  const dir = tmpdir(t)
  weft(dir, 'config', 'set', CONFIG)
  await withTopology(t, { hosts: 1, label: 'run-revoke' }, async (topo) => {
    const d = daemon(topo, topo.hosts[0], dir)
    await d.waitForLine(/"msg":"running"/, 15_000)
    const env = readSubnetEnv(`${dir}/h1/subnet.env`)
    assert.ok(env !== undefined)
    const store = new SqliteStore({ path: `${dir}/store.db` })
    const t0 = Date.now()
    await store.deleteLease(env.subnet as Ip4Net)
    await store.close()
    const line = await d.waitForLine(/lease has been revoked/, 5000)
    const noticed = (JSON.parse(line) as LogLine).time
    assert.ok(noticed - t0 < 1000, `noticed after ${noticed - t0} ms`)
    await waitFor(() => /3 leases|1 lease$/m.test(weft(dir, 'leases')), { what: 'lease taken back', timeoutMs: 5000 })
    assert.equal(d.running, true, 'the daemon keeps running')
  })
})

test('bad input in the store is reported once and hurts nothing: a value that is not JSON, a key that does not parse', { skip: netnsSkipReason() }, async (t) => {
  const dir = tmpdir(t)
  weft(dir, 'config', 'set', CONFIG)
  const store = new SqliteStore({ path: `${dir}/store.db` })
  store.putRaw('10.244.200.0-24', '{"PublicIP": not json')
  store.putRaw('garbage-key', '{"PublicIP":"198.18.0.99","PublicIPv6":null}')
  await store.close()
  await withTopology(t, { hosts: 2, label: 'run-bad-store' }, async (topo) => {
    const ds = topo.hosts.map((h) => daemon(topo, h, dir))
    for (const d of ds) await d.waitForLine(/"msg":"running"/, 15_000)
    for (const d of ds) await waitFor(() => lines(d).some((l) => l.msg === 'peer added to the FDB'), { what: 'peer', timeoutMs: 5000 })
    for (const d of ds) {
      const warned = lines(d).filter((l) => l.msg === 'ignoring a store entry that is not a valid lease')
      assert.deepEqual(warned.map((l) => l.key).sort(), ['10.244.200.0-24', 'garbage-key'])
      assert.ok(lines(d).every((l) => l.level !== 50), 'no error logged')
    }
    const envs = topo.hosts.map((h) => readSubnetEnv(`${dir}/${h.name}/subnet.env`)?.subnet?.ip)
    assert.ok(!envs.includes(parseCidr('10.244.200.0/24').ip), 'the subnet behind the broken value was not handed out')
  })
  const check = new SqliteStore({ path: `${dir}/store.db` })
  const list = await check.listLeases()
  await check.close()
  assert.equal(list.leases.length, 2)
  assert.deepEqual(list.skipped.map((s) => s.key).sort(), ['10.244.200.0-24', 'garbage-key'], 'the broken entries are left as they were')
})

test('a config that is not JSON, or out of range, stops `weft run` with a message naming the problem', { skip: netnsSkipReason() }, async (t) => {
  const dir = tmpdir(t)
  await withTopology(t, { hosts: 1, label: 'run-bad-config' }, async (topo) => {
    fs.writeFileSync(`${dir}/broken.json`, '{"Network": "10.244.0.0/16",')
    const a = await topo.exec(topo.hosts[0], [process.execPath, BIN, 'run', '--iface', 'eth0', '--net-config-path', `${dir}/broken.json`, '--store', `sqlite:${dir}/store.db`, '--subnet-file', `${dir}/s.env`, '--state-dir', dir], { allowFail: true })
    assert.equal(a.code, 1)
    assert.match(a.stderr, /weft: net-conf: .*JSON/)
    assert.doesNotMatch(a.stderr, /^\s+at /m, 'no stack trace')
    fs.writeFileSync(`${dir}/range.json`, '{"Network": "10.244.0.0/16", "SubnetLen": 31}')
    const b = await topo.exec(topo.hosts[0], [process.execPath, BIN, 'run', '--iface', 'eth0', '--net-config-path', `${dir}/range.json`, '--store', `sqlite:${dir}/store.db`, '--subnet-file', `${dir}/s.env`, '--state-dir', dir], { allowFail: true })
    assert.equal(b.code, 1)
    assert.match(b.stderr, /SubnetLen 31/)
    const c = await topo.exec(topo.hosts[0], [process.execPath, BIN, 'run', '--iface', 'eth0', '--store', `sqlite:${dir}/empty.db`, '--subnet-file', `${dir}/s.env`, '--state-dir', dir], { allowFail: true })
    assert.equal(c.code, 1)
    assert.match(c.stderr, /no network config in sqlite:.*weft config set/)
  })
})
