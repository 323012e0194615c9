// `weft run` with "EnableNFTables": true and --ip-masq, in namespaces, on a
// PATH whose iptables commands only record that they were run: flannel's
// nftables table is installed and kept, pods reach each other and (through
// the masquerade) a host outside the overlay, no iptables command runs and no
// FLANNEL-* chain appears, and the table goes when the daemon stops.
// Also: an --iface whose link has no carrier is still the underlay.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { BIN, cluster, startDaemon } from '../../lab/daemons'
import { waitFor, withTopology, type Host, type Topology } from '../../lab/netns'
import { addPods } from '../../lab/pods'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { ping } from '../../lab/traffic'
import { nftTable, renderNftTable } from '../../src/kernel/nftables-rules'
import { formatCidr } from '../../src/packet/net'

const CONFIG = '{"Network":"10.244.0.0/16","EnableNFTables":true,"Backend":{"Type":"vxlan"}}'
const skip = netnsSkipReason() ?? toolSkipReason('nft', 'iptables-save', 'ping')
const IPTABLES_TOOLS = ['iptables', 'iptables-restore', 'iptables-save', 'ip6tables', 'ip6tables-restore', 'ip6tables-save', 'iptables-legacy', 'iptables-nft', 'iptables-legacy-restore', 'iptables-nft-restore']

/** A directory of stand-ins for every iptables command: each appends its argv to `log` and fails. */
function fakeIptables (dir: string): { bin: string, log: string } {
  const bin = path.join(dir, 'fake-bin')
  const log = path.join(dir, 'iptables-calls.log')
  fs.mkdirSync(bin, { recursive: true })
  for (const t of IPTABLES_TOOLS) {
    fs.writeFileSync(path.join(bin, t), `#!/bin/sh\necho "$0 $*" >> '${log}'\necho "${t}: not installed (test stand-in)" >&2\nexit 127\n`, { mode: 0o755 })
  }
  return { bin, log }
}

async function nftListing (topo: Topology, h: Host): Promise<string | undefined> {
  const r = await topo.exec(h, ['nft', 'list', 'table', 'ip', 'flannel-ipv4'], { allowFail: true })
  return r.code === 0 ? r.stdout : undefined
}

async function fullyRandom (topo: Topology, h: Host): Promise<boolean> {
  const probe = 'table ip t {\n\tchain c {\n\t\ttype nat hook postrouting priority srcnat;\n\t\tmasquerade fully-random\n\t}\n}\n'
  return (await topo.exec(h, ['nft', '-c', '-f', '-'], { allowFail: true, input: probe })).code === 0
}

test('EnableNFTables with --ip-masq: flannel\'s nftables table, kept and removed; pods talk, the outside is masqueraded; not one iptables call', { skip, timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'nft-daemon', timeoutMs: 100_000 }, async (topo) => {
    const [h1, h2, h3] = [topo.hosts[0]!, topo.hosts[1]!, topo.hosts[2]!]
    const c = cluster(t, topo, CONFIG)
    const fake = fakeIptables(c.dir)
    const env = { ...process.env, PATH: `${fake.bin}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` }
    const store = ['--store', `sqlite:${c.dir}/store.db`]
    // a resync every second, so the check-and-repair path runs too
    const extra = ['--ip-masq', '--iptables-resync', '1']
    const d1 = await startDaemon(topo, h1, { dir: c.dir, store, extra, env })
    const d2 = await startDaemon(topo, h2, { dir: c.dir, store, extra, env })
    assert.match(d1.child.stderr, /"rules":"nftables"/)

    const rf = await fullyRandom(topo, h1)
    for (const d of [d1, d2]) {
      const want = renderNftTable(nftTable({ network: '10.244.0.0/16', podSubnet: formatCidr(d.env().subnet), ipMasq: true, forwardRules: true, randomFully: rf }))
      assert.equal(await nftListing(topo, d.host), want, d.host.name)
    }

    const [p1] = await addPods(topo, h1, { subnet: formatCidr(d1.env().subnet), count: 1, mtu: d1.env().mtu })
    const [p2] = await addPods(topo, h2, { subnet: formatCidr(d2.env().subnet), count: 1, mtu: d2.env().mtu })
    await waitFor(async () => (await ping(topo, p1!, p2!.ip, { count: 1, waitS: 1 })).received === 1, { what: 'pod to pod over the overlay', timeoutMs: 10_000 })
    assert.equal((await ping(topo, p2!, p1!.ip, { count: 3, intervalS: 0.2 })).received, 3)

    // h3 runs no weft and has no route back to the pods: only a masqueraded ping gets an answer
    const back = await topo.exec(h3, ['ip', 'route', 'get', p1!.ip], { allowFail: true })
    assert.notEqual(back.code, 0, 'h3 cannot route to the pod network')
    assert.equal((await ping(topo, p1!, h3.underlayIp, { count: 3, intervalS: 0.2 })).received, 3, 'pod to a host outside the overlay, masqueraded')

    // someone deletes the table: the 1 s resync puts it back
    await topo.exec(h1, ['nft', 'delete', 'table', 'ip', 'flannel-ipv4'])
    await waitFor(async () => (await nftListing(topo, h1)) !== undefined, { what: 'the table back', timeoutMs: 5000 })
    await d1.child.waitForLine(/flannel-ipv4 is missing or changed; recreating it/, 2000)

    // no iptables anywhere: not run, no FLANNEL chains
    assert.equal(fs.existsSync(fake.log), false, `iptables commands were run:\n${fs.existsSync(fake.log) ? fs.readFileSync(fake.log, 'utf8') : ''}`)
    for (const h of [h1, h2]) {
      const saved = (await topo.exec(h, ['iptables-save'])).stdout
      assert.doesNotMatch(saved, /FLANNEL/, h.name)
    }

    // SIGTERM: the table goes with the daemon
    for (const d of [d1, d2]) {
      d.child.kill('SIGTERM')
      const exit = await d.child.exited
      assert.equal(exit.code, 0, d.child.stderr)
      assert.equal(await nftListing(topo, d.host), undefined, `${d.host.name}: table left behind`)
    }
    assert.equal(fs.existsSync(fake.log), false, 'no iptables command at stop either')
  })
})

test('--iptables-forward-rules=false: nftables mode makes the table with the masquerade chain only', { skip, timeout: 60_000 }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'nft-noforward', timeoutMs: 50_000 }, async (topo) => {
    const h = topo.hosts[0]!
    const c = cluster(t, topo, CONFIG)
    const d = await c.start(h, '--ip-masq', '--iptables-forward-rules=false', '--ip-masq-fully-random-disable')
    const l = (await nftListing(topo, h)) ?? ''
    assert.doesNotMatch(l, /chain forward/)
    assert.match(l, /chain postrtg/)
    assert.doesNotMatch(l, /fully-random/)
    await d.child.stop()
  })
})

test('--iface naming a link without carrier (its veth peer down): the daemon takes it, with its address, and runs', { skip: netnsSkipReason(), timeout: 60_000 }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'nocarrier-daemon', timeoutMs: 50_000 }, async (topo) => {
    const h = topo.hosts[0]!
    await topo.exec(h, ['ip', 'link', 'add', 'vx0', 'type', 'veth', 'peer', 'name', 'vx1'])
    await topo.exec(h, ['ip', 'addr', 'add', '198.19.7.1/24', 'dev', 'vx0'])
    await topo.exec(h, ['ip', 'link', 'set', 'vx0', 'up'])
    assert.match((await topo.exec(h, ['ip', 'link', 'show', 'vx0'])).stdout, /NO-CARRIER/)
    const c = cluster(t, topo, '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}')
    const child = topo.spawn(h, [process.execPath, BIN, 'run', '--store', `sqlite:${c.dir}/store.db`, '--subnet-file', `${c.dir}/h1/subnet.env`, '--state-dir', `${c.dir}/h1`, '--iface', 'vx0'])
    const line = await child.waitForLine(/"msg":"using the underlay interface"/, 20_000)
    const j = JSON.parse(line) as Record<string, unknown>
    assert.deepEqual([j.iface, j.ip, j.publicIP], ['vx0', '198.19.7.1', '198.19.7.1'])
    await child.waitForLine(/"msg":"running"/, 20_000)
    assert.match(c.weft('leases'), /198\.19\.7\.1/)
    await child.stop()
  })
})
