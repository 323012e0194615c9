// flannel's IPv6 traffic rules against the real ip6tables and nft, each test
// in a namespace of its own: a dual-stack network gets the same chains in
// iptables and ip6tables (or the tables ip flannel-ipv4 and ip6
// flannel-ipv6), an IPv6-only one only the IPv6 set; a rule deleted in one
// family is put back by resync() without the other being rewritten; remove()
// leaves nothing in either.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { withTopology, type Host, type Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { versionHasRandomFully } from '../../src/kernel/iptables'
import { createTrafficRules, DEFAULT_TRAFFIC_SETTINGS, removeOtherKind, type TrafficRulesFor } from '../../src/kernel/traffic'
import { fullListing, NET, POD } from './nft-expect'
import { NET6, nftListing6, POD6, v6ForwardLines, v6MasqLines } from './rules6-expect'

const iptSkip = netnsSkipReason() ?? toolSkipReason('iptables', 'iptables-restore', 'ip6tables', 'ip6tables-restore')
const nftSkip = netnsSkipReason() ?? toolSkipReason('nft')

const FILTER_POLICIES = ['-P INPUT ACCEPT', '-P FORWARD ACCEPT', '-P OUTPUT ACCEPT']
const NAT_POLICIES = ['-P PREROUTING ACCEPT', '-P INPUT ACCEPT', '-P OUTPUT ACCEPT', '-P POSTROUTING ACCEPT']

const V4_FORWARD = [
  '-N FLANNEL-FWD',
  '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
  '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
  '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT'
]
const V4_MASQ_HEAD = [
  '-N FLANNEL-POSTRTG',
  '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG'
]

const DUAL: Omit<TrafficRulesFor, 'netns'> = { network: NET, podSubnet: POD, network6: NET6, podSubnet6: POD6, ipMasq: true }
const ONLY6: Omit<TrafficRulesFor, 'netns'> = { network6: NET6, podSubnet6: POD6, ipMasq: true }
const NFT = { ...DEFAULT_TRAFFIC_SETTINGS, nftables: true }

async function ipt (topo: Topology, h: Host, bin: 'iptables' | 'ip6tables', table: string, ...args: string[]): Promise<string[]> {
  const r = await topo.exec(h, [bin, '-w', '5', '-t', table, ...args])
  return r.stdout.split('\n').filter((l) => l !== '')
}

async function randomFully (topo: Topology, h: Host, bin: string): Promise<boolean> {
  return versionHasRandomFully((await topo.exec(h, [bin, '--version'])).stdout)
}

async function nftListing (topo: Topology, h: Host, family: string, name: string): Promise<string | undefined> {
  const r = await topo.exec(h, ['nft', 'list', 'table', family, name], { allowFail: true })
  return r.code === 0 ? r.stdout : undefined
}

async function nftTables (topo: Topology, h: Host): Promise<string[]> {
  return (await topo.exec(h, ['nft', 'list', 'tables'])).stdout.split('\n').filter((l) => l !== '')
}

/** Does this kernel and nft take `masquerade fully-random` (the question NftRules asks)? */
async function hasFullyRandom (topo: Topology, h: Host): Promise<boolean> {
  const probe = 'table ip t {\n\tchain c {\n\t\ttype nat hook postrouting priority srcnat;\n\t\tmasquerade fully-random\n\t}\n}\n'
  return (await topo.exec(h, ['nft', '-c', '-f', '-'], { allowFail: true, input: probe })).code === 0
}

test('iptables, dual stack: flannel\'s chains in iptables and ip6tables; resync repairs either family; remove() clears both', { skip: iptSkip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'ipt6-dual' }, async (topo) => {
    const h = topo.hosts[0]!
    const rf4 = await randomFully(topo, h, 'iptables')
    const rf6 = await randomFully(topo, h, 'ip6tables')
    const tr = createTrafficRules(DEFAULT_TRAFFIC_SETTINGS, { ...DUAL, netns: h.ns })
    assert.equal(tr.kind, 'iptables')
    assert.equal(await tr.check(), false)
    await tr.apply()
    assert.deepEqual(await ipt(topo, h, 'iptables', 'filter', '-S'), [...FILTER_POLICIES, ...V4_FORWARD])
    const nat4 = await ipt(topo, h, 'iptables', 'nat', '-S')
    assert.deepEqual(nat4.slice(0, NAT_POLICIES.length + 2), [...NAT_POLICIES, ...V4_MASQ_HEAD])
    assert.equal(nat4.length, NAT_POLICIES.length + 8)
    assert.ok(nat4.every((l) => !l.includes(':')), 'no IPv6 CIDR in iptables')
    assert.equal(nat4.some((l) => l.includes('--random-fully')), rf4)
    assert.deepEqual(await ipt(topo, h, 'ip6tables', 'filter', '-S'), [...FILTER_POLICIES, ...v6ForwardLines()])
    assert.deepEqual(await ipt(topo, h, 'ip6tables', 'nat', '-S'), [...NAT_POLICIES, ...v6MasqLines(rf6)])
    assert.equal(await tr.check(), true)
    assert.equal(await tr.resync(), false)

    // an IPv6 rule goes: check() sees it, resync() puts it back, IPv4 untouched
    const v4Before = await ipt(topo, h, 'iptables', 'nat', '-S')
    await ipt(topo, h, 'ip6tables', 'nat', '-D', 'FLANNEL-POSTRTG', '-s', POD6, '-d', NET6, '-m', 'comment', '--comment', 'flanneld masq', '-j', 'RETURN')
    assert.equal((await ipt(topo, h, 'ip6tables', 'nat', '-S')).length, NAT_POLICIES.length + 7)
    assert.equal(await tr.check(), false)
    assert.equal(await tr.resync(), true)
    assert.deepEqual(await ipt(topo, h, 'ip6tables', 'nat', '-S'), [...NAT_POLICIES, ...v6MasqLines(rf6)])
    assert.deepEqual(await ipt(topo, h, 'iptables', 'nat', '-S'), v4Before)

    // the IPv6 forward chain and an IPv4 jump go together: both come back
    await ipt(topo, h, 'ip6tables', 'filter', '-F', 'FLANNEL-FWD')
    await ipt(topo, h, 'iptables', 'filter', '-D', 'FORWARD', '-m', 'comment', '--comment', 'flanneld forward', '-j', 'FLANNEL-FWD')
    assert.equal(await tr.resync(), true)
    assert.deepEqual(await ipt(topo, h, 'iptables', 'filter', '-S'), [...FILTER_POLICIES, ...V4_FORWARD])
    assert.deepEqual(await ipt(topo, h, 'ip6tables', 'filter', '-S'), [...FILTER_POLICIES, ...v6ForwardLines()])
    assert.equal(await tr.check(), true)

    await tr.remove()
    for (const bin of ['iptables', 'ip6tables'] as const) {
      assert.deepEqual(await ipt(topo, h, bin, 'filter', '-S'), FILTER_POLICIES, bin)
      assert.deepEqual(await ipt(topo, h, bin, 'nat', '-S'), NAT_POLICIES, bin)
    }
    await tr.remove() // nothing left: fine
    assert.equal(await tr.check(), false)
  })
})

test('iptables, IPv6 only: only ip6tables gets rules; without --ip-masq only the forward chain', { skip: iptSkip }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'ipt6-only' }, async (topo) => {
    const [h1, h2] = [topo.hosts[0]!, topo.hosts[1]!]
    const rf6 = await randomFully(topo, h1, 'ip6tables')
    const tr = createTrafficRules(DEFAULT_TRAFFIC_SETTINGS, { ...ONLY6, netns: h1.ns })
    await tr.apply()
    assert.deepEqual(await ipt(topo, h1, 'ip6tables', 'filter', '-S'), [...FILTER_POLICIES, ...v6ForwardLines()])
    assert.deepEqual(await ipt(topo, h1, 'ip6tables', 'nat', '-S'), [...NAT_POLICIES, ...v6MasqLines(rf6)])
    assert.deepEqual(await ipt(topo, h1, 'iptables', 'filter', '-S'), FILTER_POLICIES)
    assert.deepEqual(await ipt(topo, h1, 'iptables', 'nat', '-S'), NAT_POLICIES)
    assert.equal(await tr.check(), true)
    // a foreign rule in our chain is noticed and flushed, as for IPv4
    await ipt(topo, h1, 'ip6tables', 'filter', '-A', 'FLANNEL-FWD', '-s', '2001:db8::/32', '-j', 'DROP')
    assert.equal(await tr.resync(), true)
    assert.deepEqual(await ipt(topo, h1, 'ip6tables', 'filter', '-S'), [...FILTER_POLICIES, ...v6ForwardLines()])
    await tr.remove()
    assert.deepEqual(await ipt(topo, h1, 'ip6tables', 'filter', '-S'), FILTER_POLICIES)
    assert.deepEqual(await ipt(topo, h1, 'ip6tables', 'nat', '-S'), NAT_POLICIES)

    const noMasq = createTrafficRules({ ...DEFAULT_TRAFFIC_SETTINGS, randomFully: false }, { ...ONLY6, ipMasq: false, netns: h2.ns })
    await noMasq.apply()
    assert.deepEqual(await ipt(topo, h2, 'ip6tables', 'filter', '-S'), [...FILTER_POLICIES, ...v6ForwardLines()])
    assert.deepEqual(await ipt(topo, h2, 'ip6tables', 'nat', '-S'), NAT_POLICIES)
    assert.equal(await noMasq.check(), true)
  })
})

test('nftables, dual stack: tables ip flannel-ipv4 and ip6 flannel-ipv6; resync repairs the IPv6 one; remove() deletes both', { skip: nftSkip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'nft6-dual' }, async (topo) => {
    const h = topo.hosts[0]!
    const rf = await hasFullyRandom(topo, h)
    const tr = createTrafficRules(NFT, { ...DUAL, netns: h.ns })
    assert.equal(tr.kind, 'nftables')
    assert.equal(await tr.check(), false)
    await tr.apply()
    assert.equal(await nftListing(topo, h, 'ip', 'flannel-ipv4'), fullListing(rf))
    assert.equal(await nftListing(topo, h, 'ip6', 'flannel-ipv6'), nftListing6(rf))
    assert.deepEqual(await nftTables(topo, h), ['table ip flannel-ipv4', 'table ip6 flannel-ipv6'], 'our two tables and no iptables-nft ones')
    assert.equal(await tr.check(), true)
    assert.equal(await tr.resync(), false)

    // a rule of the IPv6 table goes, then the whole table: each time it comes back
    const out = (await topo.exec(h, ['nft', '-a', 'list', 'table', 'ip6', 'flannel-ipv6'])).stdout
    const handle = /ip6 daddr fc00::\/48 accept # handle (\d+)/.exec(out)?.[1]
    assert.ok(handle !== undefined, out)
    await topo.exec(h, ['nft', 'delete', 'rule', 'ip6', 'flannel-ipv6', 'forward', 'handle', handle])
    assert.equal(await tr.check(), false)
    assert.equal(await tr.resync(), true)
    assert.equal(await nftListing(topo, h, 'ip6', 'flannel-ipv6'), nftListing6(rf))
    await topo.exec(h, ['nft', 'delete', 'table', 'ip6', 'flannel-ipv6'])
    assert.equal(await tr.resync(), true)
    assert.equal(await nftListing(topo, h, 'ip6', 'flannel-ipv6'), nftListing6(rf))
    assert.equal(await nftListing(topo, h, 'ip', 'flannel-ipv4'), fullListing(rf))

    await tr.remove()
    assert.deepEqual(await nftTables(topo, h), [])
    await tr.remove()

    // iptables mode removes what nftables mode left, in both families
    await tr.apply()
    await removeOtherKind(DEFAULT_TRAFFIC_SETTINGS, undefined, h.ns)
    assert.deepEqual(await nftTables(topo, h), [])
  })
})

test('nftables, IPv6 only: only the table ip6 flannel-ipv6', { skip: nftSkip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'nft6-only' }, async (topo) => {
    const h = topo.hosts[0]!
    const rf = await hasFullyRandom(topo, h)
    const tr = createTrafficRules(NFT, { ...ONLY6, netns: h.ns })
    await tr.apply()
    assert.deepEqual(await nftTables(topo, h), ['table ip6 flannel-ipv6'])
    assert.equal(await nftListing(topo, h, 'ip6', 'flannel-ipv6'), nftListing6(rf))
    assert.equal(await tr.check(), true)
    await tr.remove()
    assert.deepEqual(await nftTables(topo, h), [])
  })
})
