// TrafficRules against real iptables, each test in namespaces of its own:
// after apply() `iptables -S` must show exactly flanneld's rules in flanneld's
// order, and check/resync/remove must notice and repair what others break.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { waitFor, withTopology, type Host, type Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { TrafficRules, versionHasRandomFully, type TrafficRulesOptions } from '../../src/kernel/iptables'
import { resyncEvery } from '../../src/kernel/traffic'

const skip = netnsSkipReason() ?? toolSkipReason('iptables', 'iptables-restore')

const NET = '10.244.0.0/16'
const POD = '10.244.1.0/24'

const FILTER_POLICIES = ['-P INPUT ACCEPT', '-P FORWARD ACCEPT', '-P OUTPUT ACCEPT']
const NAT_POLICIES = ['-P PREROUTING ACCEPT', '-P INPUT ACCEPT', '-P OUTPUT ACCEPT', '-P POSTROUTING ACCEPT']

const FORWARD_LINES = [
  '-N FLANNEL-FWD',
  '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
  '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
  '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT'
]

function masqLines (randomFully: boolean): string[] {
  const rf = randomFully ? ' --random-fully' : ''
  return [
    '-N FLANNEL-POSTRTG',
    '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
    '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
    `-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE${rf}`,
    `-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE${rf}`
  ]
}

async function ipt (topo: Topology, h: Host, table: string, ...args: string[]): Promise<string[]> {
  const r = await topo.exec(h, ['iptables', '-w', '5', '-t', table, ...args])
  return r.stdout.split('\n').filter((l) => l !== '')
}

/** Does this iptables take --random-fully (the same question TrafficRules asks)? */
async function hasRandomFully (topo: Topology, h: Host): Promise<boolean> {
  return versionHasRandomFully((await topo.exec(h, ['iptables', '--version'])).stdout)
}

function rules (h: Host, o: Partial<TrafficRulesOptions> = {}): TrafficRules {
  return new TrafficRules({ network: NET, podSubnet: POD, ipMasq: true, forwardRules: true, netns: h.ns, ...o })
}

test('apply() installs exactly flanneld\'s rules, in order; applying again changes nothing', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'ipt-apply' }, async (topo) => {
    const h = topo.hosts[0]!
    const rf = await hasRandomFully(topo, h)
    const tr = rules(h)
    assert.equal(await tr.check(), false)
    await tr.apply()
    assert.deepEqual(await ipt(topo, h, 'filter', '-S'), [...FILTER_POLICIES, ...FORWARD_LINES])
    assert.deepEqual(await ipt(topo, h, 'nat', '-S'), [...NAT_POLICIES, ...masqLines(rf)])
    assert.equal(await tr.check(), true)

    await tr.apply()
    await rules(h).apply() // a restarted daemon
    assert.deepEqual(await ipt(topo, h, 'filter', '-S'), [...FILTER_POLICIES, ...FORWARD_LINES])
    assert.deepEqual(await ipt(topo, h, 'nat', '-S'), [...NAT_POLICIES, ...masqLines(rf)])
    assert.equal(await tr.resync(), false)
  })
})

test('apply() leaves one jump, flushes strays from our chain, keeps foreign rules', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'ipt-dups' }, async (topo) => {
    const h = topo.hosts[0]!
    await ipt(topo, h, 'filter', '-A', 'FORWARD', '-s', '192.0.2.0/24', '-j', 'ACCEPT')
    await ipt(topo, h, 'filter', '-N', 'FLANNEL-FWD')
    await ipt(topo, h, 'filter', '-A', 'FLANNEL-FWD', '-s', '192.0.2.9/32', '-j', 'DROP')
    // two old jumps, one in a format of its own (no comment)
    await ipt(topo, h, 'filter', '-A', 'FORWARD', '-j', 'FLANNEL-FWD')
    await ipt(topo, h, 'filter', '-A', 'FORWARD', '-m', 'comment', '--comment', 'flanneld forward', '-j', 'FLANNEL-FWD')
    const tr = rules(h, { ipMasq: false })
    assert.equal(await tr.check(), false)
    await tr.apply()
    assert.deepEqual(await ipt(topo, h, 'filter', '-S'), [
      ...FILTER_POLICIES,
      '-N FLANNEL-FWD',
      '-A FORWARD -s 192.0.2.0/24 -j ACCEPT',
      ...FORWARD_LINES.slice(1)
    ])
    assert.equal(await tr.check(), true)
  })
})

test('without ipMasq there are no masquerade rules; without forwardRules no forward rules', { skip }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'ipt-flags' }, async (topo) => {
    const [h1, h2] = [topo.hosts[0]!, topo.hosts[1]!]
    await rules(h1, { ipMasq: false }).apply()
    assert.deepEqual(await ipt(topo, h1, 'filter', '-S'), [...FILTER_POLICIES, ...FORWARD_LINES])
    assert.deepEqual(await ipt(topo, h1, 'nat', '-S'), NAT_POLICIES)

    const tr = rules(h2, { forwardRules: false, randomFully: false })
    await tr.apply()
    assert.deepEqual(await ipt(topo, h2, 'filter', '-S'), FILTER_POLICIES)
    assert.deepEqual(await ipt(topo, h2, 'nat', '-S'), [...NAT_POLICIES, ...masqLines(false)])
    assert.equal(await tr.check(), true)

    const none = rules(h2, { forwardRules: false, ipMasq: false })
    await none.apply()
    assert.equal(await none.check(), true)
  })
})

test('check() notices a missing rule, jump or chain, or a stray rule; resync() restores the exact set', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'ipt-resync' }, async (topo) => {
    const h = topo.hosts[0]!
    const rf = await hasRandomFully(topo, h)
    const tr = rules(h)
    await tr.apply()
    const filter = [...FILTER_POLICIES, ...FORWARD_LINES]
    const nat = [...NAT_POLICIES, ...masqLines(rf)]

    const breakages: Array<[string, string[]]> = [
      ['a masquerade rule deleted', ['-t', 'nat', '-D', 'FLANNEL-POSTRTG', '3']],
      ['the last masquerade rule deleted', ['-t', 'nat', '-D', 'FLANNEL-POSTRTG', '6']],
      ['a forward rule deleted', ['-t', 'filter', '-D', 'FLANNEL-FWD', '1']],
      ['the FORWARD jump deleted', ['-t', 'filter', '-D', 'FORWARD', '1']],
      ['the POSTROUTING jump deleted', ['-t', 'nat', '-D', 'POSTROUTING', '1']],
      ['a stray rule in our chain', ['-t', 'filter', '-I', 'FLANNEL-FWD', '-s', '192.0.2.1/32', '-j', 'DROP']],
      ['our chain flushed', ['-t', 'nat', '-F', 'FLANNEL-POSTRTG']]
    ]
    for (const [what, argv] of breakages) {
      await topo.exec(h, ['iptables', '-w', '5', ...argv])
      assert.equal(await tr.check(), false, what)
      assert.equal(await tr.resync(), true, what)
      assert.equal(await tr.check(), true, what)
      assert.deepEqual(await ipt(topo, h, 'filter', '-S'), filter, what)
      assert.deepEqual(await ipt(topo, h, 'nat', '-S'), nat, what)
    }

    // a chain deleted outright (jump first, or it could not go)
    await ipt(topo, h, 'filter', '-D', 'FORWARD', '1')
    await ipt(topo, h, 'filter', '-F', 'FLANNEL-FWD')
    await ipt(topo, h, 'filter', '-X', 'FLANNEL-FWD')
    assert.equal(await tr.check(), false)
    assert.equal(await tr.resync(), true)
    assert.deepEqual(await ipt(topo, h, 'filter', '-S'), filter)
  })
})

test('check() asks rule by rule when the listing differs: a duplicate jump fails, a reordering passes (as flanneld)', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'ipt-fallback' }, async (topo) => {
    const h = topo.hosts[0]!
    const tr = rules(h, { ipMasq: false })
    await tr.apply()
    await ipt(topo, h, 'filter', '-A', 'FORWARD', '-j', 'FLANNEL-FWD')
    assert.equal(await tr.check(), false)
    assert.equal(await tr.resync(), true)
    assert.deepEqual(await ipt(topo, h, 'filter', '-S'), [...FILTER_POLICIES, ...FORWARD_LINES])

    // the same rules in another order: every rule exists, so flanneld (and we) call it fine
    await ipt(topo, h, 'filter', '-D', 'FLANNEL-FWD', '1')
    await ipt(topo, h, 'filter', '-A', 'FLANNEL-FWD', '-s', NET, '-m', 'comment', '--comment', 'flanneld forward', '-j', 'ACCEPT')
    assert.equal(await tr.check(), true)
  })
})

test('resyncEvery() repairs in the background until stopped', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'ipt-loop' }, async (topo) => {
    const h = topo.hosts[0]!
    const tr = rules(h)
    await tr.apply()
    const stop = resyncEvery(() => tr, 100)
    try {
      await ipt(topo, h, 'filter', '-D', 'FLANNEL-FWD', '2')
      await waitFor(async () => (await ipt(topo, h, 'filter', '-S', 'FLANNEL-FWD')).length === 3, { timeoutMs: 5000, what: 'the resync loop to restore FLANNEL-FWD' })
    } finally {
      await stop()
    }
    assert.deepEqual(await ipt(topo, h, 'filter', '-S'), [...FILTER_POLICIES, ...FORWARD_LINES])
  })
})

test('remove() leaves no FLANNEL chain and no jump; it is idempotent', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'ipt-remove' }, async (topo) => {
    const h = topo.hosts[0]!
    await rules(h).remove() // nothing there yet
    await ipt(topo, h, 'filter', '-A', 'FORWARD', '-s', '192.0.2.0/24', '-j', 'ACCEPT')
    const tr = rules(h)
    await tr.apply()
    await tr.remove()
    assert.deepEqual(await ipt(topo, h, 'filter', '-S'), [...FILTER_POLICIES, '-A FORWARD -s 192.0.2.0/24 -j ACCEPT'])
    assert.deepEqual(await ipt(topo, h, 'nat', '-S'), NAT_POLICIES)
    await tr.remove()
    assert.equal(await tr.check(), false)

    // remove() also takes chains this configuration would not install, and
    // tolerates half-gone state (a chain without its jump)
    await rules(h, { ipMasq: true }).apply()
    await ipt(topo, h, 'nat', '-D', 'POSTROUTING', '1')
    await rules(h, { ipMasq: false, forwardRules: false }).remove()
    assert.deepEqual(await ipt(topo, h, 'filter', '-S'), [...FILTER_POLICIES, '-A FORWARD -s 192.0.2.0/24 -j ACCEPT'])
    assert.deepEqual(await ipt(topo, h, 'nat', '-S'), NAT_POLICIES)
  })
})

test('daemons in sibling namespaces apply at once without tripping over the xtables lock', { skip }, async (t) => {
  await withTopology(t, { hosts: 4, label: 'ipt-concurrent' }, async (topo) => {
    await Promise.all(topo.hosts.map(async (h) => {
      const tr = rules(h)
      await Promise.all([tr.apply(), tr.apply(), tr.resync()])
      assert.equal(await tr.check(), true)
    }))
    for (const h of topo.hosts) assert.deepEqual(await ipt(topo, h, 'filter', '-S'), [...FILTER_POLICIES, ...FORWARD_LINES])
  })
})

test('a missing iptables binary is a clear EKERNEL', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'ipt-missing' }, async (topo) => {
    const h = topo.hosts[0]!
    const tr = rules(h, { iptables: 'weft-no-such-iptables' })
    await assert.rejects(tr.apply(), { code: 'EKERNEL', message: /^weft-no-such-iptables not found: install the iptables package/ })
    await assert.rejects(tr.check(), { code: 'EKERNEL', message: /not found/ })
    const tr2 = rules(h, { iptablesRestore: 'weft-no-such-iptables-restore', ipMasq: false })
    await assert.rejects(tr2.apply(), { code: 'EKERNEL', message: /^weft-no-such-iptables-restore not found/ })
    assert.deepEqual(await ipt(topo, h, 'filter', '-S'), FILTER_POLICIES)
  })
})

test('bad CIDRs fail at construction', () => {
  assert.throws(() => new TrafficRules({ network: '10.244.0.0', podSubnet: POD, ipMasq: true, forwardRules: true }), { code: 'EBADCIDR' })
  assert.throws(() => new TrafficRules({ network: NET, podSubnet: 'x', ipMasq: false, forwardRules: true }), { code: 'EBADCIDR' })
})
