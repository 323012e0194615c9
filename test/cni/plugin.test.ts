// The CNI plugin with the real bridge and host-local plugins from Debian's
// containernetworking-plugins, attaching pod namespaces on a node.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { withTopology } from '../../lab/netns'
import type { Host, Topology } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'
import { podGsoMaxSize } from '../../src/cni/gso'

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'weft')
const CNI_PATH = '/usr/lib/cni'
const skip = netnsSkipReason() ?? (fs.existsSync(path.join(CNI_PATH, 'bridge')) ? undefined : `${CNI_PATH}/bridge not found: install containernetworking-plugins`)

interface Call { code: number, out: Record<string, unknown> }

function setup (t: { after: (fn: () => void) => void }): { dir: string, name: string, conf: (extra?: Record<string, unknown>) => string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cni-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(`${dir}/subnet.env`, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n')
  const name = `weft-test-${path.basename(dir)}`
  return {
    dir,
    name,
    conf: (extra = {}) => JSON.stringify({ cniVersion: '1.0.0', name, type: 'weft', subnetFile: `${dir}/subnet.env`, dataDir: `${dir}/data`, ipam: { dataDir: `${dir}/ipam` }, ...extra })
  }
}

async function cni (topo: Topology, h: Host, command: string, conf: string, env: Record<string, string> = {}): Promise<Call> {
  const vars = { CNI_COMMAND: command, CNI_PATH, CNI_IFNAME: 'eth0', ...env }
  const r = await topo.exec(h, ['env', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), BIN], { input: conf, allowFail: true, timeoutMs: 30_000 })
  return { code: r.code, out: r.stdout.trim() === '' ? {} : JSON.parse(r.stdout) as Record<string, unknown> }
}

test('ADD attaches a pod to cni0 with an address from our subnet, a route to the cluster network, the MTU and a GSO size of one weft message; CHECK passes; DEL detaches it and frees the address', { skip }, async (t) => {
  const { dir, name, conf } = setup(t)
  await withTopology(t, { hosts: 1, label: 'cni-add' }, async (topo) => {
    const h = topo.hosts[0]
    const pod = await topo.createNamespace('p1')
    const add = await cni(topo, h, 'ADD', conf(), { CNI_CONTAINERID: 'c1', CNI_NETNS: `/var/run/netns/${pod}` })
    assert.equal(add.code, 0, JSON.stringify(add.out))
    assert.equal(add.out.cniVersion, '1.0.0')
    const ips = add.out.ips as Array<{ address: string, gateway: string }>
    assert.equal(ips[0].address, '10.244.7.2/24')
    assert.equal(ips[0].gateway, '10.244.7.1')
    const link = JSON.parse((await topo.exec(pod, ['ip', '-j', 'addr', 'show', 'eth0'])).stdout) as Array<{ mtu: number, addr_info: Array<{ local: string }> }>
    assert.equal(link[0].mtu, 1450)
    // 44 segments of MSS 1398 plus slack: TCP's super-packets fit one UDP_SEGMENT message
    const gso = JSON.parse((await topo.exec(pod, ['ip', '-j', '-d', 'link', 'show', 'eth0'])).stdout) as Array<{ gso_max_size: number }>
    assert.equal(gso[0].gso_max_size, podGsoMaxSize(1450))
    assert.equal(podGsoMaxSize(1450), 44 * 1398 + 699 + 300)
    assert.ok(link[0].addr_info.some((a) => a.local === '10.244.7.2'))
    assert.match((await topo.exec(pod, ['ip', 'route'])).stdout, /10\.244\.0\.0\/16 via 10\.244\.7\.1/)
    assert.match((await topo.exec(h, ['ip', 'addr', 'show', 'cni0'])).stdout, /10\.244\.7\.1\/24/)
    assert.equal((await topo.exec(pod, ['ping', '-c', '1', '-W', '2', '10.244.7.1'])).code, 0)
    // saved per attachment: network, container, interface (src/cni/attachments.ts)
    const saved = `${dir}/data/${name}:c1:eth0`
    assert.ok(fs.existsSync(saved), 'the delegate config is saved for DEL')
    assert.equal(fs.statSync(saved).mode & 0o777, 0o600)
    assert.deepEqual(fs.readdirSync(`${dir}/data`), [path.basename(saved)])

    const check = await cni(topo, h, 'CHECK', conf({ prevResult: add.out }), { CNI_CONTAINERID: 'c1', CNI_NETNS: `/var/run/netns/${pod}` })
    assert.equal(check.code, 0, JSON.stringify(check.out))

    const del = await cni(topo, h, 'DEL', conf(), { CNI_CONTAINERID: 'c1', CNI_NETNS: `/var/run/netns/${pod}` })
    assert.equal(del.code, 0, JSON.stringify(del.out))
    assert.equal(fs.existsSync(saved), false)
    assert.equal((await topo.exec(pod, ['ip', 'link', 'show', 'eth0'], { allowFail: true })).code !== 0, true, 'eth0 is gone from the pod')
    // the address went back to host-local: no allocation file is left for it
    const allocated = fs.readdirSync(`${dir}/ipam`, { recursive: true }).map(String).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(path.basename(f)))
    assert.deepEqual(allocated, [])
  })
})

test('DEL of a container never added succeeds; VERSION lists the spec versions; STATUS says whether the node is ready', { skip }, async (t) => {
  const { dir, conf } = setup(t)
  await withTopology(t, { hosts: 1, label: 'cni-misc' }, async (topo) => {
    const h = topo.hosts[0]
    assert.equal((await cni(topo, h, 'DEL', conf(), { CNI_CONTAINERID: 'nobody', CNI_NETNS: '' })).code, 0)
    const v = await cni(topo, h, 'VERSION', '')
    assert.deepEqual(v.out.supportedVersions, ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'])
    assert.equal((await cni(topo, h, 'STATUS', conf({ cniVersion: '1.1.0' }))).code, 0)
    fs.rmSync(`${dir}/subnet.env`)
    const down = await cni(topo, h, 'STATUS', conf({ cniVersion: '1.1.0' }))
    assert.equal(down.code, 1)
    assert.equal(down.out.code, 50)
  })
})

test('a failed ADD leaves nothing half-attached, and says why in the spec\'s error format', { skip }, async (t) => {
  const { dir, conf } = setup(t)
  await withTopology(t, { hosts: 1, label: 'cni-fail' }, async (topo) => {
    const h = topo.hosts[0]
    const bad = await cni(topo, h, 'ADD', conf(), { CNI_CONTAINERID: 'c9', CNI_NETNS: '/var/run/netns/does-not-exist' })
    assert.equal(bad.code, 1)
    assert.equal(bad.out.cniVersion, '1.0.0')
    assert.equal(typeof bad.out.code, 'number')
    assert.match(String(bad.out.msg), /bridge ADD/)
    assert.deepEqual(fs.existsSync(`${dir}/data`) ? fs.readdirSync(`${dir}/data`) : [], [], 'no saved config')
    const ipam = fs.existsSync(`${dir}/ipam`) ? fs.readdirSync(`${dir}/ipam`, { recursive: true }).map(String).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(path.basename(f))) : []
    assert.deepEqual(ipam, [], 'no address left allocated')

    fs.rmSync(`${dir}/subnet.env`)
    const pod = await topo.createNamespace('p1')
    const early = await cni(topo, h, 'ADD', conf(), { CNI_CONTAINERID: 'c1', CNI_NETNS: `/var/run/netns/${pod}` })
    assert.equal(early.out.code, 11)
    assert.match(String(early.out.msg), /subnet\.env does not exist yet: is `weft run` running/)
  })
})

test('`weft cni install` writes the plugin wrapper and a conflist naming it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cni-install-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const { execFileSync } = await import('node:child_process')
  execFileSync(BIN, ['cni', 'install', '--bin-dir', `${dir}/bin`, '--conf-dir', `${dir}/net.d`, '--name', 'flannel'])
  const list = JSON.parse(fs.readFileSync(`${dir}/net.d/10-flannel.conflist`, 'utf8')) as { plugins: Array<{ type: string }> }
  assert.equal(list.plugins[0].type, 'flannel')
  const v = execFileSync(`${dir}/bin/flannel`, [], { env: { ...process.env, CNI_COMMAND: 'VERSION' }, encoding: 'utf8' })
  assert.ok((JSON.parse(v) as { supportedVersions: string[] }).supportedVersions.includes('1.0.0'))
})

test('several containers, as a runtime drives them: ADD, CHECK and DEL for each, distinct addresses, nothing left after', { skip }, async (t) => {
  const { dir, conf } = setup(t)
  await withTopology(t, { hosts: 1, label: 'cni-many' }, async (topo) => {
    const h = topo.hosts[0]
    const pods = await Promise.all([1, 2, 3].map(async (i) => ({ id: `c${i}`, ns: await topo.createNamespace(`p${i}`) })))
    const results: Array<Record<string, unknown>> = []
    for (const p of pods) {
      const add = await cni(topo, h, 'ADD', conf(), { CNI_CONTAINERID: p.id, CNI_NETNS: `/var/run/netns/${p.ns}` })
      assert.equal(add.code, 0, JSON.stringify(add.out))
      results.push(add.out)
    }
    const addrs = results.map((r) => (r.ips as Array<{ address: string }>)[0].address)
    assert.equal(new Set(addrs).size, 3)
    for (const [i, p] of pods.entries()) {
      const check = await cni(topo, h, 'CHECK', conf({ prevResult: results[i] }), { CNI_CONTAINERID: p.id, CNI_NETNS: `/var/run/netns/${p.ns}` })
      assert.equal(check.code, 0, JSON.stringify(check.out))
      const other = addrs[(i + 1) % 3].split('/')[0]
      assert.equal((await topo.exec(p.ns, ['ping', '-c', '1', '-W', '2', other], { allowFail: true })).code, 0, `${p.id} reaches ${other}`)
    }
    for (const p of pods) assert.equal((await cni(topo, h, 'DEL', conf(), { CNI_CONTAINERID: p.id, CNI_NETNS: `/var/run/netns/${p.ns}` })).code, 0)
    assert.deepEqual(fs.readdirSync(`${dir}/data`), [])
    const left = fs.readdirSync(`${dir}/ipam`, { recursive: true }).map(String).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(path.basename(f)))
    assert.deepEqual(left, [])
    const links = (await topo.exec(h, ['ip', '-o', 'link', 'show', 'type', 'veth'])).stdout.trim()
    assert.doesNotMatch(links, /master cni0/, 'no veth left on the bridge')
  })
})

test('bad input gets the spec\'s error shape: stdin that is not JSON, an unknown CNI_COMMAND, no CNI_NETNS on ADD', { skip }, async (t) => {
  const { conf } = setup(t)
  await withTopology(t, { hosts: 1, label: 'cni-bad' }, async (topo) => {
    const h = topo.hosts[0]
    const junk = await cni(topo, h, 'ADD', '{"cniVersion": "1.0.0", nope', { CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/x' })
    assert.equal(junk.code, 1)
    assert.equal(junk.out.code, 6)
    assert.equal(typeof junk.out.msg, 'string')
    const unknown = await cni(topo, h, 'FROB', conf(), { CNI_CONTAINERID: 'c1' })
    assert.equal(unknown.out.code, 4)
    assert.match(String(unknown.out.msg), /unknown CNI_COMMAND "FROB"/)
    const nons = await cni(topo, h, 'ADD', conf(), { CNI_CONTAINERID: 'c1' })
    assert.equal(nons.out.code, 4)
    assert.match(String(nons.out.msg), /CNI_NETNS is not set/)
    assert.equal(nons.out.cniVersion, '1.0.0')
  })
})
