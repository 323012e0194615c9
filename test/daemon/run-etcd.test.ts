// `weft run` on a real etcd (Debian's etcd-server) with flannel's layout.
// etcd runs in the topology's underlay namespace on 198.18.0.254, so the
// daemons in the host namespaces reach it over the underlay, as nodes reach
// a cluster's etcd; the test drives it with etcdctl from there.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { withTopology, waitFor } from '../../lab/netns'
import type { ChildHandle, Host, Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'weft')
const GET = path.join(__dirname, '..', 'fixtures', 'http-get.js')
const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const EP = 'http://198.18.0.254:2379'
const skip = netnsSkipReason() ?? toolSkipReason('etcd', 'etcdctl')

interface Etcd { start: () => Promise<void>, stop: () => Promise<void>, ctl: (...args: string[]) => Promise<string> }

async function etcdIn (t: { after: (fn: () => void) => void }, topo: Topology): Promise<Etcd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-etcd-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  await topo.exec(topo.underlayNs, ['ip', 'addr', 'add', '198.18.0.254/24', 'dev', 'br0'])
  let proc: ChildHandle | undefined
  const ctl = async (...args: string[]): Promise<string> => (await topo.exec(topo.underlayNs, ['env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints', EP, '--command-timeout=3s', ...args], { timeoutMs: 10_000 })).stdout
  const start = async (): Promise<void> => {
    proc = topo.spawn(topo.underlayNs, ['etcd', '--name', 'e', '--data-dir', `${dir}/data`, '--listen-client-urls', EP, '--advertise-client-urls', EP,
      '--listen-peer-urls', 'http://198.18.0.254:2380', '--initial-advertise-peer-urls', 'http://198.18.0.254:2380', '--initial-cluster', 'e=http://198.18.0.254:2380', '--log-level', 'error'])
    await waitFor(async () => (await topo.exec(topo.underlayNs, ['env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints', EP, '--command-timeout=1s', 'endpoint', 'health'], { allowFail: true })).code === 0, { what: 'etcd healthy', timeoutMs: 20_000, intervalMs: 200 })
  }
  await start()
  return { start, stop: async () => { await proc?.stop(3000) }, ctl }
}

function daemon (topo: Topology, h: Host, dir: string, ...extra: string[]): ChildHandle {
  return topo.spawn(h, [process.execPath, BIN, 'run', '--etcd-endpoints', EP, '--subnet-file', `${dir}/${h.name}/subnet.env`, '--state-dir', `${dir}/${h.name}`, '--iface', 'eth0', ...extra])
}

interface LogLine { msg: string, time: number, [k: string]: unknown }
const logs = (c: ChildHandle): LogLine[] => c.stderrLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine)

function tmp (t: { after: (fn: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-etcd-run-'))
  t.after(() => fs.rmSync(d, { recursive: true, force: true }))
  return d
}

test('daemons on etcd write flannel\'s keys and find each other; a flannel lease written by hand with etcdctl is shown by `weft leases`', { skip, timeout: 90_000 }, async (t) => {
  const dir = tmp(t)
  await withTopology(t, { hosts: 2, label: 'etcd-run' }, async (topo) => {
    const etcd = await etcdIn(t, topo)
    await etcd.ctl('put', '/coreos.com/network/config', CONFIG)
    await etcd.ctl('put', '/coreos.com/network/subnets/10.244.200.0-24', '{"PublicIP":"198.18.0.200","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:11:22:33:44:55"}}')
    const [a, b] = topo.hosts.map((h) => daemon(topo, h, dir))
    for (const d of [a, b]) await d.waitForLine(/"msg":"running"/, 20_000)
    const keys = (await etcd.ctl('get', '--prefix', '--keys-only', '/coreos.com/network/subnets/')).split('\n').filter((l) => l !== '')
    assert.equal(keys.length, 3)
    const value = (await etcd.ctl('get', '--print-value-only', keys.find((k) => !k.endsWith('200.0-24')) ?? '')).trim()
    // flannel's lease byte for byte, plus weft's "RemCsumRx" (remote checksum offload), which flannel's decoder ignores
    assert.match(value, /^\{"PublicIP":"198\.18\.0\.[12]","PublicIPv6":null,"BackendType":"vxlan","BackendData":\{"VNI":1,"VtepMAC":"([0-9a-f]{2}:){5}[0-9a-f]{2}","RemCsumRx":true\}\}$/)
    for (const d of [a, b]) await waitFor(() => logs(d).filter((l) => l.msg === 'peer added to the FDB').length === 2, { what: 'two peers each', timeoutMs: 5000 })
    const table = await topo.exec(topo.hosts[0], [process.execPath, BIN, 'leases', '--etcd-endpoints', EP])
    assert.match(table.stdout, /10\.244\.200\.0\/24\s+198\.18\.0\.200\s+vxlan\s+0e:11:22:33:44:55\s+reservation/)
    assert.match(table.stdout, /3 leases/)
  })
})

test('an etcd unreachable at start-up is named and waited for; when it comes, the daemon leases and runs', { skip, timeout: 90_000 }, async (t) => {
  const dir = tmp(t)
  await withTopology(t, { hosts: 1, label: 'etcd-late' }, async (topo) => {
    const etcd = await etcdIn(t, topo)
    await etcd.ctl('put', '/coreos.com/network/config', CONFIG)
    await etcd.stop()
    const d = daemon(topo, topo.hosts[0], dir)
    await d.waitForLine(/cannot reach the store to read the network config; retrying/, 20_000)
    assert.match(d.stderr, /198\.18\.0\.254:2379/, 'the message names the endpoint')
    assert.equal(d.running, true)
    await etcd.start()
    await d.waitForLine(/"msg":"running"/, 30_000)
  })
})

test('etcd going away under a running daemon: reported once, /readyz says degraded, traffic state kept; back again: ready, and changes made meanwhile arrive', { skip, timeout: 120_000 }, async (t) => {
  const dir = tmp(t)
  await withTopology(t, { hosts: 2, label: 'etcd-blip' }, async (topo) => {
    const etcd = await etcdIn(t, topo)
    await etcd.ctl('put', '/coreos.com/network/config', CONFIG)
    const a = daemon(topo, topo.hosts[0], dir, '--healthz-ip', '127.0.0.1', '--healthz-port', '8081')
    await a.waitForLine(/"msg":"running"/, 20_000)
    const readyz = async (): Promise<{ status: number, body: string }> => JSON.parse((await topo.exec(topo.hosts[0], [process.execPath, GET, 'http://127.0.0.1:8081/readyz'])).stdout) as { status: number, body: string }
    assert.equal((await readyz()).status, 200)
    await etcd.stop()
    await a.waitForLine(/lost the store; forwarding continues from the cached peers, retrying/, 30_000)
    assert.deepEqual(await readyz(), { status: 503, body: 'weft is degraded: the store is unreachable\n' })
    assert.equal(logs(a).filter((l) => /lost the store/.test(l.msg)).length, 1, 'reported once per outage')
    await etcd.start()
    // a node that joins while we were blind still reaches us once the watch resumes
    const b = daemon(topo, topo.hosts[1], dir)
    await b.waitForLine(/"msg":"running"/, 30_000)
    await a.waitForLine(/the store is back/, 30_000)
    await waitFor(() => logs(a).some((l) => l.msg === 'peer added to the FDB'), { what: 'the new peer', timeoutMs: 10_000 })
    assert.equal((await readyz()).status, 200)
    assert.ok(logs(a).every((l) => l.level !== 50 && l.level !== 60), 'no error-level logs')
  })
})
