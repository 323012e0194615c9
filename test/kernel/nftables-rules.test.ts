// flanneld's nftables rules (pkg/trafficmngr/nftables, v0.28), built without
// touching nft: the table, chains, hooks, priorities, comments and rules in
// flannel's order, as `nft list table ip flannel-ipv4` prints them; the
// transaction that replaces the table whole; the one that removes it.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  NFT_TABLE,
  nftApplyScript,
  nftForwardChain,
  nftMasqChain,
  nftRandomFullyProbe,
  nftRemoveScript,
  NFT_TABLES_ALL,
  nftTable,
  renderNftTable,
  sameListing
} from '../../src/kernel/nftables-rules'
import { createTrafficRules, DEFAULT_TRAFFIC_SETTINGS } from '../../src/kernel/traffic'
import { NftRules } from '../../src/kernel/nftables'
import { TrafficRules } from '../../src/kernel/iptables'

import { fullListing, masqRules, NET, POD } from './nft-expect'

test('the forward chain: filter hook forward at priority filter (0), the Network accepted both ways', () => {
  const c = nftForwardChain('10.244.7.1/16') // host bits dropped, as flannel's IP4Net.String()
  assert.deepEqual(c, {
    name: 'forward',
    comment: 'chain to accept flannel traffic',
    type: 'filter',
    hook: 'forward',
    priority: 'filter',
    rules: ['ip saddr 10.244.0.0/16 accept', 'ip daddr 10.244.0.0/16 accept']
  })
})

test('the masquerade chain: nat hook postrouting at priority srcnat (100), flannel\'s six rules in order, fully-random when asked', () => {
  const c = nftMasqChain(NET, POD, true)
  assert.deepEqual([c.name, c.type, c.hook, c.priority, c.comment], ['postrtg', 'nat', 'postrouting', 'srcnat', 'chain to manage traffic masquerading by flannel'])
  assert.deepEqual(c.rules, masqRules(true))
  assert.deepEqual(nftMasqChain(NET, POD, false).rules, masqRules(false))
  // flannel writes `meta mark 0x4000 return` (an exact value: any other bit set and kube-proxy's packet is NATed twice); weft tests the bit, as flannel's iptables rule does
  assert.match(c.rules[0]!, /^meta mark & 0x00004000 == 0x00004000 return$/)
})

test('the table: always there (flannel makes it at start), with the chains the flags ask for', () => {
  const t = nftTable({ network: NET, podSubnet: POD, ipMasq: true, forwardRules: true, randomFully: true })
  assert.equal(renderNftTable(t), fullListing(true))
  const none = nftTable({ network: NET, podSubnet: POD, ipMasq: false, forwardRules: false, randomFully: true })
  assert.equal(renderNftTable(none), 'table ip flannel-ipv4 {\n\tcomment "rules for flannel-ipv4"\n}\n')
  const masqOnly = nftTable({ network: NET, podSubnet: POD, ipMasq: true, forwardRules: false, randomFully: false })
  assert.deepEqual(masqOnly.chains.map((c) => c.name), ['postrtg'])
  assert.equal(renderNftTable(masqOnly, false).includes('comment'), false, 'comments can be left out (old kernels)')
  assert.throws(() => nftTable({ network: 'nonsense', podSubnet: POD, ipMasq: true, forwardRules: true, randomFully: true }))
})

test('apply is one transaction that declares, deletes and rebuilds the table; remove declares and deletes (so neither fails on a missing table)', () => {
  const t = nftTable({ network: NET, podSubnet: POD, ipMasq: true, forwardRules: true, randomFully: false })
  assert.equal(nftApplyScript(t), `table ip ${NFT_TABLE}\ndelete table ip ${NFT_TABLE}\n${fullListing(false)}`)
  assert.equal(nftRemoveScript(), 'table ip flannel-ipv4\ndelete table ip flannel-ipv4\n')
  assert.equal(nftRemoveScript(NFT_TABLES_ALL), 'table ip flannel-ipv4\ndelete table ip flannel-ipv4\ntable ip6 flannel-ipv6\ndelete table ip6 flannel-ipv6\n')
  assert.match(nftRandomFullyProbe(), /masquerade fully-random/)
  assert.doesNotMatch(nftRandomFullyProbe(), /flannel-ipv4/, 'the probe touches no table of ours')
})

test('listings compare as nft prints them, indentation and blank lines aside', () => {
  assert.ok(sameListing(fullListing(true), fullListing(true).replace(/\t/g, '    ').replace(/\n\n/g, '\n')))
  assert.ok(!sameListing(fullListing(true), fullListing(false)))
  assert.ok(!sameListing(fullListing(true), fullListing(true).replace('\t\tip daddr 10.244.0.0/16 accept\n', '')))
})

test('the traffic settings pick the kind: nftables for EnableNFTables, iptables otherwise, with the same options', () => {
  const o = { network: NET, podSubnet: POD, ipMasq: true }
  const n = createTrafficRules({ ...DEFAULT_TRAFFIC_SETTINGS, nftables: true }, o)
  assert.ok(n instanceof NftRules)
  assert.equal(n.kind, 'nftables')
  const i = createTrafficRules(DEFAULT_TRAFFIC_SETTINGS, o)
  assert.ok(i instanceof TrafficRules)
  assert.equal(i.kind, 'iptables')
  assert.deepEqual(DEFAULT_TRAFFIC_SETTINGS, { nftables: false, forwardRules: true, randomFully: true, resyncMs: 5000 })
})
