// NftRules against the real nft, each test in namespaces of its own: after
// apply() `nft list table ip flannel-ipv4` must show exactly flannel's
// table; check/resync must notice and repair what others break; remove()
// must leave nothing; and no iptables chain is ever made.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { waitFor, withTopology, type Host, type Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { NftRules, type NftRulesOptions } from '../../src/kernel/nftables'
import { DEFAULT_TRAFFIC_SETTINGS, removeOtherKind, resyncEvery } from '../../src/kernel/traffic'
import { fullListing, masqRules, NET, POD } from './nft-expect'

const skip = netnsSkipReason() ?? toolSkipReason('nft')

async function listing (topo: Topology, h: Host): Promise<string | undefined> {
  const r = await topo.exec(h, ['nft', 'list', 'table', 'ip', 'flannel-ipv4'], { allowFail: true })
  return r.code === 0 ? r.stdout : undefined
}

async function tables (topo: Topology, h: Host): Promise<string[]> {
  return (await topo.exec(h, ['nft', 'list', 'tables'])).stdout.split('\n').filter((l) => l !== '')
}

/** Does this kernel and nft take `masquerade fully-random` (the question NftRules asks)? */
async function hasFullyRandom (topo: Topology, h: Host): Promise<boolean> {
  const probe = 'table ip t {\n\tchain c {\n\t\ttype nat hook postrouting priority srcnat;\n\t\tmasquerade fully-random\n\t}\n}\n'
  return (await topo.exec(h, ['nft', '-c', '-f', '-'], { allowFail: true, input: probe })).code === 0
}

function rules (h: Host, o: Partial<NftRulesOptions> = {}): NftRules {
  return new NftRules({ network: NET, podSubnet: POD, ipMasq: true, forwardRules: true, netns: h.ns, ...o })
}

/** The handle of the rule in our table whose text contains `text`. */
async function handleOf (topo: Topology, h: Host, text: string): Promise<string> {
  const out = (await topo.exec(h, ['nft', '-a', 'list', 'table', 'ip', 'flannel-ipv4'])).stdout
  const line = out.split('\n').find((l) => l.includes(text) && / # handle \d+$/.test(l))
  assert.ok(line !== undefined, `no rule with ${text} in\n${out}`)
  return /# handle (\d+)$/.exec(line)![1]!
}

test('apply() installs exactly flannel\'s table; applying again (or a restarted daemon) changes nothing; no iptables chain appears', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'nft-apply' }, async (topo) => {
    const h = topo.hosts[0]!
    const rf = await hasFullyRandom(topo, h)
    const tr = rules(h)
    assert.equal(tr.kind, 'nftables')
    assert.equal(await tr.check(), false)
    await tr.apply()
    assert.equal(await listing(topo, h), fullListing(rf))
    assert.equal(await tr.check(), true)
    await tr.apply()
    await rules(h).apply()
    assert.equal(await listing(topo, h), fullListing(rf))
    assert.equal(await tr.resync(), false)
    assert.deepEqual(await tables(topo, h), ['table ip flannel-ipv4'], 'one table, and no iptables-nft tables (ip filter, ip nat)')
  })
})

test('the flags choose the chains: no masquerade without ipMasq, no forward chain without forwardRules, plain masquerade when fully-random is disabled', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'nft-flags' }, async (topo) => {
    const h = topo.hosts[0]!
    await rules(h, { ipMasq: false }).apply()
    assert.doesNotMatch((await listing(topo, h))!, /postrtg/)
    assert.match((await listing(topo, h))!, /chain forward/)

    // a daemon restarted with other flags: the table is rebuilt, the old chain gone
    const tr = rules(h, { forwardRules: false, randomFully: false })
    await tr.apply()
    const l = (await listing(topo, h))!
    assert.doesNotMatch(l, /chain forward/)
    assert.ok(masqRules(false).every((r) => l.includes(`\t\t${r}\n`)), l)
    assert.doesNotMatch(l, /fully-random/)
    assert.equal(await tr.check(), true)

    const none = rules(h, { forwardRules: false, ipMasq: false })
    await none.apply()
    assert.equal(await listing(topo, h), 'table ip flannel-ipv4 {\n\tcomment "rules for flannel-ipv4"\n}\n')
    assert.equal(await none.check(), true)
  })
})

test('check() notices a deleted rule, chain or table, a flushed chain, a foreign rule; resync() restores the exact table', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'nft-resync' }, async (topo) => {
    const h = topo.hosts[0]!
    const rf = await hasFullyRandom(topo, h)
    const tr = rules(h)
    await tr.apply()
    const nft = async (...argv: string[]): Promise<void> => { await topo.exec(h, ['nft', ...argv]) }
    const breakages: Array<[string, () => Promise<void>]> = [
      ['a masquerade rule deleted', async () => await nft('delete', 'rule', 'ip', 'flannel-ipv4', 'postrtg', 'handle', await handleOf(topo, h, 'meta mark'))],
      ['a forward rule deleted', async () => await nft('delete', 'rule', 'ip', 'flannel-ipv4', 'forward', 'handle', await handleOf(topo, h, 'ip daddr 10.244.0.0/16 accept'))],
      ['a foreign rule in our chain', async () => await nft('insert', 'rule', 'ip', 'flannel-ipv4', 'forward', 'ip', 'saddr', '192.0.2.1', 'drop')],
      ['a foreign chain in our table', async () => await nft('add', 'chain', 'ip', 'flannel-ipv4', 'extra')],
      ['our chain flushed', async () => await nft('flush', 'chain', 'ip', 'flannel-ipv4', 'postrtg')],
      ['our chain deleted', async () => await nft('delete', 'chain', 'ip', 'flannel-ipv4', 'forward')],
      ['our table deleted', async () => await nft('delete', 'table', 'ip', 'flannel-ipv4')]
    ]
    for (const [what, breakIt] of breakages) {
      await breakIt()
      assert.equal(await tr.check(), false, what)
      assert.equal(await tr.resync(), true, what)
      assert.equal(await tr.check(), true, what)
      assert.equal(await listing(topo, h), fullListing(rf), what)
    }
  })
})

test('the resync loop repairs in the background at its period until stopped', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'nft-loop' }, async (topo) => {
    const h = topo.hosts[0]!
    const rf = await hasFullyRandom(topo, h)
    const tr = rules(h)
    await tr.apply()
    const stop = resyncEvery(() => tr, 100)
    try {
      await topo.exec(h, ['nft', 'delete', 'table', 'ip', 'flannel-ipv4'])
      await waitFor(async () => (await listing(topo, h)) === fullListing(rf), { timeoutMs: 5000, what: 'the resync loop to put the table back' })
    } finally {
      await stop()
    }
    await topo.exec(h, ['nft', 'delete', 'table', 'ip', 'flannel-ipv4'])
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(await listing(topo, h), undefined, 'stopped: nothing puts it back')
  })
})

test('remove() deletes the table, is idempotent, and leaves other tables alone; iptables mode removes flannel\'s nftables tables at start', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'nft-remove' }, async (topo) => {
    const h = topo.hosts[0]!
    await rules(h).remove() // nothing there yet
    await topo.exec(h, ['nft', 'add', 'table', 'ip', 'other'])
    const tr = rules(h)
    await tr.apply()
    await tr.remove()
    assert.equal(await listing(topo, h), undefined)
    assert.deepEqual(await tables(topo, h), ['table ip other'])
    await tr.remove()
    assert.equal(await tr.check(), false)

    // a node switched back to iptables loses what nftables mode left (as flanneld's CleanUp)
    await rules(h).apply()
    await topo.exec(h, ['nft', 'add', 'table', 'ip6', 'flannel-ipv6'])
    await removeOtherKind({ ...DEFAULT_TRAFFIC_SETTINGS, nftables: true }, undefined, h.ns)
    assert.notEqual(await listing(topo, h), undefined, 'nftables mode keeps its own table')
    await removeOtherKind(DEFAULT_TRAFFIC_SETTINGS, undefined, h.ns)
    assert.deepEqual(await tables(topo, h), ['table ip other'])
  })
})
