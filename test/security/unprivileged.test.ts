// weft run without root: uid 65534 holding only CAP_NET_ADMIN and
// CAP_NET_RAW (ambient), in test namespaces, on a SQLite store the test
// makes that user own. Two such nodes lease, build their TUN devices, set
// ip_forward and their iptables rules, and carry pod traffic; a stop cleans
// up. Without a capability, or the TUN device, or a writable ip_forward
// that needs writing, the daemon stops before it leases, saying what is
// missing (EPRIVILEGE).
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { fetchStatus } from '../../src/daemon/control'
import { formatCidr } from '../../src/packet/net'
import type { Ip4Net } from '../../src/packet/net'
import { readSubnetEnv } from '../../src/subnet/env'
import { withTopology, waitFor } from '../../lab/netns'
import type { ChildHandle, Host, Topology } from '../../lab/netns'
import { addPods } from '../../lab/pods'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { pingMatrix } from '../../lab/traffic'
import { asUser, NET_ADMIN_AND_RAW, NOBODY, procCreds } from './as-user'
import type { AsUserOptions } from './as-user'

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'weft')
const VXLAN = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const IPIP = '{"Network":"10.244.0.0/16","Backend":{"Type":"ipip"}}'
const skip = netnsSkipReason() ?? toolSkipReason('setpriv', 'iptables', 'ping')
const BOTH = ['net_admin', 'net_raw']
const TUN_OK = { uid: NOBODY, mode: 0o600 }

interface LogLine { level: number, msg: string, [k: string]: unknown }
const logs = (c: ChildHandle): LogLine[] => c.stderrLines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine)

/** A temp dir owned by NOBODY holding a store with `config`, written by NOBODY (no capability needed for that). */
function storeDir (t: { after: (fn: () => void) => void }, config: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-unpriv-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.chownSync(dir, NOBODY, NOBODY)
  execFileSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all',
    process.execPath, BIN, 'config', 'set', config, '--store', `sqlite:${dir}/store.db`], { stdio: 'pipe', timeout: 10_000 })
  return dir
}

function runArgv (dir: string, h: Host): string[] {
  return [process.execPath, BIN, 'run', '--store', `sqlite:${dir}/store.db`, '--subnet-file', `${dir}/${h.name}/subnet.env`,
    '--state-dir', `${dir}/${h.name}`, '--iface', 'eth0']
}

function spawnAs (topo: Topology, h: Host, dir: string, o: Partial<AsUserOptions>): ChildHandle {
  return topo.spawn(h, asUser(runArgv(dir, h), { uid: NOBODY, caps: BOTH, tun: TUN_OK, ...o }))
}

const leases = (dir: string): Array<{ subnet: string }> =>
  JSON.parse(execFileSync(BIN, ['leases', '--json', '--store', `sqlite:${dir}/store.db`], { encoding: 'utf8' })) as Array<{ subnet: string }>

const mode = (file: string): string => '0' + (fs.statSync(file).mode & 0o7777).toString(8)

async function sysctl (topo: Topology, h: Host, kv?: string): Promise<string> {
  const argv = kv === undefined ? ['sysctl', '-n', 'net.ipv4.ip_forward'] : ['sysctl', '-qw', kv]
  return (await topo.exec(h, argv)).stdout.trim()
}

/** The daemon's own exit (within 15 s) and the one line main prints for its error. */
async function failure (d: ChildHandle): Promise<{ code: number | null, line: string }> {
  let timer: NodeJS.Timeout | undefined
  // a bound on the wait, not a pause: the race ends as soon as the daemon exits
  const late = new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), 15_000) })
  const exit = await Promise.race([d.exited, late])
  clearTimeout(timer)
  if (exit === undefined) {
    await d.stop(1000)
    assert.fail(`the daemon was still running after 15 s: ${d.stderr.slice(-800)}`)
  }
  return { code: exit.code, line: d.stderrLines.find((l) => l.startsWith('weft: ')) ?? `(no error line) ${d.stderr.slice(-800)}` }
}

test('two daemons running as uid 65534 with only CAP_NET_ADMIN and CAP_NET_RAW lease, build their devices and carry pod traffic', { skip, timeout: 60_000 }, async (t) => {
  const dir = storeDir(t, VXLAN)
  const hostTunBefore = fs.statSync('/dev/net/tun')
  await withTopology(t, { hosts: 2, label: 'unpriv' }, async (topo) => {
    const hosts = topo.hosts.slice(0, 2)
    // ip_forward starts off: the daemon itself must turn it on
    for (const h of hosts) await sysctl(topo, h, 'net.ipv4.ip_forward=0')
    const nodes = hosts.map((h) => spawnAs(topo, h, dir, {}))
    for (const d of nodes) await d.waitForLine(/"msg":"running"/, 20_000)

    for (const [i, d] of nodes.entries()) {
      const h = hosts[i]!
      const creds = procCreds(d.pid)
      assert.deepEqual(creds, { uid: NOBODY, eff: NET_ADMIN_AND_RAW, amb: NET_ADMIN_AND_RAW, bnd: NET_ADMIN_AND_RAW }, `${h.name}: the daemon is not root and holds just the two capabilities`)
      assert.match((await topo.exec(h, ['ip', '-d', 'link', 'show', 'dev', 'weft.1'])).stdout, /\btun\b/, `${h.name}: TUN device weft.1`)
      assert.equal(await sysctl(topo, h), '1', `${h.name}: the daemon set ip_forward`)
      assert.match((await topo.exec(h, ['iptables', '-S', 'FLANNEL-FWD'])).stdout, /-A FLANNEL-FWD -s 10\.244\.0\.0\/16/, `${h.name}: iptables rules`)
      // what it made is its own, and not open to others
      const state = `${dir}/${h.name}`
      for (const f of [state, `${state}/weft.sock`, `${state}/subnet.env`]) assert.equal(fs.statSync(f).uid, NOBODY, f)
      assert.equal(mode(`${state}/weft.sock`), '0660')
      assert.equal(mode(`${state}/subnet.env`), '0644')
    }
    for (const f of ['store.db', 'store.db-wal', 'store.db-shm']) assert.equal(mode(`${dir}/${f}`), '0600', f)
    assert.equal(leases(dir).length, 2)

    const pods = []
    for (const h of hosts) {
      const env = readSubnetEnv(`${dir}/${h.name}/subnet.env`)
      assert.ok(env !== undefined)
      pods.push(...await addPods(topo, h, { subnet: formatCidr(env.subnet as Ip4Net), count: 1, mtu: env.mtu }))
    }
    await waitFor(async () => (await Promise.all(hosts.map((h) => fetchStatus(`${dir}/${h.name}`) as Promise<{ peers: unknown[] }>))).every((s) => s.peers.length === 1), { what: 'each node lists the other', timeoutMs: 5000 })
    const m = await pingMatrix(topo, pods)
    assert.deepEqual(m.failed, [], 'pods ping each other across the two unprivileged nodes')
    assert.equal(m.ok.length, 2)

    // a clean stop, still unprivileged: device and rules go
    for (const [i, d] of nodes.entries()) {
      const exit = await d.stop(5000)
      assert.equal(exit.code, 0, d.stderr.slice(-800))
      assert.notEqual((await topo.exec(hosts[i]!, ['iptables', '-S', 'FLANNEL-FWD'], { allowFail: true })).code, 0, 'FLANNEL-FWD removed')
      assert.deepEqual(logs(d).filter((l) => l.level >= 50), [], 'no error logs')
    }
  })
  // the TUN node the test made lived in the daemons' own mount namespaces only
  const after = fs.statSync('/dev/net/tun')
  assert.deepEqual([after.ino, after.mode, after.uid], [hostTunBefore.ino, hostTunBefore.mode, hostTunBefore.uid])
  assert.doesNotMatch(fs.readFileSync('/proc/self/mountinfo', 'utf8'), /weft-test-tun/)
})

test('without what it needs the daemon stops before leasing, with EPRIVILEGE naming the missing piece', { skip, timeout: 60_000 }, async (t) => {
  const dir = storeDir(t, VXLAN)
  const ipipDir = storeDir(t, IPIP)
  await withTopology(t, { hosts: 1, label: 'unpriv-fail' }, async (topo) => {
    const h = topo.hosts[0]!

    const noAdmin = await failure(spawnAs(topo, h, dir, { caps: ['net_raw'] }))
    assert.equal(noAdmin.code, 1)
    assert.match(noAdmin.line, /^weft: weft run \(uid 65534\) cannot work here: CAP_NET_ADMIN is missing \(to create the TUN device/)
    assert.match(noAdmin.line, /AmbientCapabilities=CAP_NET_ADMIN/)
    assert.match(noAdmin.line, /\[EPRIVILEGE\]$/)

    const noTun = await failure(spawnAs(topo, h, dir, { tun: { uid: 0, mode: 0o600 } }))
    assert.equal(noTun.code, 1)
    assert.match(noTun.line, /cannot open \/dev\/net\/tun for reading and writing \(EACCES; it is mode 0600, owner uid 0\)/)
    assert.match(noTun.line, /\[EPRIVILEGE\]$/)
    assert.doesNotMatch(noTun.line, /CAP_/, 'the capabilities are there: only the file mode is named')

    const ipipNoRaw = await failure(spawnAs(topo, h, ipipDir, { caps: ['net_admin'] }))
    assert.equal(ipipNoRaw.code, 1)
    assert.match(ipipNoRaw.line, /CAP_NET_RAW is missing \(for the ipip backend's raw IP socket\)/)
    assert.match(ipipNoRaw.line, /AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW /)

    // ip_forward must change but /proc/sys is read-only (a container): say what to set
    await sysctl(topo, h, 'net.ipv4.ip_forward=0')
    const roOff = await failure(spawnAs(topo, h, dir, { readOnlySysctls: true }))
    assert.equal(roOff.code, 1)
    assert.match(roOff.line, /net\.ipv4\.ip_forward is 0 and this process cannot change it \(EROFS\): set it before starting weft, as root: sysctl -w net\.ipv4\.ip_forward=1/)

    for (const f of [noAdmin, noTun, ipipNoRaw, roOff]) t.diagnostic(f.line)
    assert.deepEqual(leases(dir), [], 'none of them took a lease')
    assert.deepEqual(leases(ipipDir), [])

    // ...while one already right is only read: the daemon runs
    await sysctl(topo, h, 'net.ipv4.ip_forward=1')
    const roOn = spawnAs(topo, h, dir, { readOnlySysctls: true })
    await roOn.waitForLine(/"msg":"running"/, 20_000)
    assert.equal((await roOn.stop(5000)).code, 0, roOn.stderr.slice(-800))
  })
})
