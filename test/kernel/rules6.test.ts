// The IPv6 rule sets and the dual-stack manager, without root: flannel's
// ip6tables chains and `ip6 flannel-ipv6` table built from an IPv6 Network
// and subnet, which family createTrafficRules picks from what it is given,
// and how DualStackRules keeps the two families apart.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TrafficRules } from '../../src/kernel/iptables'
import { canonicalCidr, cidrFamily, forwardChain, masqChain, ruleLine } from '../../src/kernel/iptables-rules'
import { normalizeDst } from '../../src/kernel/link'
import { NftRules } from '../../src/kernel/nftables'
import { nftTable, renderNftTable } from '../../src/kernel/nftables-rules'
import { createTrafficRules, DEFAULT_TRAFFIC_SETTINGS, DualStackRules, type TrafficManager } from '../../src/kernel/traffic'
import { parseCidr6 } from '../../src/packet/net6'
import { NET6, nftListing6, POD6, v6ForwardLines, v6MasqLines } from './rules6-expect'

const lines = (set: ReturnType<typeof forwardChain>): string[] => [ruleLine(set.from, set.jump), ...set.rules.map((r) => ruleLine(set.chain, r))]

test('IPv6 CIDRs are told from IPv4 ones and printed as ip6tables, nft and Go print them', () => {
  assert.equal(cidrFamily('fc00::/48'), 6)
  assert.equal(cidrFamily(parseCidr6('fc00::/48')), 6)
  assert.equal(cidrFamily('10.244.0.0/16'), 4)
  assert.equal(cidrFamily({ ip: 0x0af40000, prefixLen: 16 }), 4)
  assert.equal(canonicalCidr('FC00:0:0::1/48'), 'fc00::/48')
  assert.equal(canonicalCidr('fc00:0:0:1:0:0:0:0/64'), 'fc00:0:0:1::/64')
  assert.equal(canonicalCidr(parseCidr6('fc00::7/48')), 'fc00::/48')
  assert.throws(() => canonicalCidr('fc00::/129'), { code: 'EBADCIDR' })
  assert.throws(() => canonicalCidr('fc00:::/48'), { code: 'EBADCIDR' })
})

test('the ip6tables chains are flannel\'s masqIP6Rules and forwardRules: the IPv4 rules with the IPv6 CIDRs and ff00::/8', () => {
  const fwd = forwardChain(NET6)
  assert.equal(fwd.table, 'filter')
  assert.deepEqual(['-N FLANNEL-FWD', ...lines(fwd)], v6ForwardLines())
  const masq = masqChain(NET6, POD6, true)
  assert.equal(masq.table, 'nat')
  assert.deepEqual(['-N FLANNEL-POSTRTG', ...lines(masq)], v6MasqLines(true))
  assert.deepEqual(['-N FLANNEL-POSTRTG', ...lines(masqChain('FC00::/48', 'fc00:0:0:1::9/64', false))], v6MasqLines(false))
  assert.throws(() => masqChain(NET6, '10.244.1.0/24', false), { code: 'EBADCIDR' })
  assert.throws(() => masqChain('10.244.0.0/16', POD6, false), { code: 'EBADCIDR' })
})

test('the nftables table for IPv6 is flannel\'s ip6 flannel-ipv6, same chains and comments', () => {
  const t = nftTable({ network: NET6, podSubnet: POD6, ipMasq: true, forwardRules: true, randomFully: true })
  assert.equal(t.family, 'ip6')
  assert.equal(t.name, 'flannel-ipv6')
  assert.equal(renderNftTable(t), nftListing6(true))
  const plain = nftTable({ network: NET6, podSubnet: POD6, ipMasq: true, forwardRules: true, randomFully: false })
  assert.equal(renderNftTable(plain), nftListing6(false))
  const none = nftTable({ network: NET6, podSubnet: POD6, ipMasq: false, forwardRules: false, randomFully: true })
  assert.equal(renderNftTable(none), 'table ip6 flannel-ipv6 {\n\tcomment "rules for flannel-ipv6"\n}\n')
  assert.throws(() => nftTable({ network: NET6, podSubnet: '10.244.1.0/24', ipMasq: true, forwardRules: true, randomFully: true }), { code: 'EBADCIDR' })
})

test('createTrafficRules: one family gives that family\'s manager, both a DualStackRules of one kind', () => {
  const v4 = { network: '10.244.0.0/16', podSubnet: '10.244.1.0/24' }
  const v6 = { network6: NET6, podSubnet6: POD6 }
  const nft = { ...DEFAULT_TRAFFIC_SETTINGS, nftables: true }

  const only4 = createTrafficRules(DEFAULT_TRAFFIC_SETTINGS, { ...v4, ipMasq: true })
  assert.ok(only4 instanceof TrafficRules)
  assert.equal(only4.family, 4)

  const only6 = createTrafficRules(DEFAULT_TRAFFIC_SETTINGS, { ...v6, ipMasq: true })
  assert.ok(only6 instanceof TrafficRules)
  assert.equal(only6.family, 6)
  const only6n = createTrafficRules(nft, { ...v6, ipMasq: true })
  assert.ok(only6n instanceof NftRules)
  assert.equal(only6n.family, 6)

  const dual = createTrafficRules(DEFAULT_TRAFFIC_SETTINGS, { ...v4, ...v6, ipMasq: true })
  assert.ok(dual instanceof DualStackRules)
  assert.equal(dual.kind, 'iptables')
  assert.equal((dual.v4 as TrafficRules).family, 4)
  assert.equal((dual.v6 as TrafficRules).family, 6)
  const dualn = createTrafficRules(nft, { ...v4, ...v6, ipMasq: false })
  assert.ok(dualn instanceof DualStackRules)
  assert.equal(dualn.kind, 'nftables')
  assert.ok(dualn.v6 instanceof NftRules)

  const einval = { code: 'EINVAL' }
  assert.throws(() => createTrafficRules(DEFAULT_TRAFFIC_SETTINGS, { ipMasq: true }), einval)
  assert.throws(() => createTrafficRules(DEFAULT_TRAFFIC_SETTINGS, { network6: NET6, ipMasq: true }), einval)
  assert.throws(() => createTrafficRules(DEFAULT_TRAFFIC_SETTINGS, { podSubnet: '10.244.1.0/24', ipMasq: true }), einval)
  assert.throws(() => createTrafficRules(DEFAULT_TRAFFIC_SETTINGS, { network6: '10.244.0.0/16', podSubnet6: '10.244.1.0/24', ipMasq: true }), einval)
  assert.throws(() => createTrafficRules(DEFAULT_TRAFFIC_SETTINGS, { network: NET6, podSubnet: POD6, ipMasq: true }), einval)
  assert.throws(() => createTrafficRules(DEFAULT_TRAFFIC_SETTINGS, { network6: 'fc00::/200', podSubnet6: POD6, ipMasq: true }), { code: 'EBADCIDR' })
})

/** A TrafficManager that records calls and can be told to fail or to find its rules missing. */
class FakeRules implements TrafficManager {
  calls: string[] = []
  present = false
  fail = false
  constructor (private readonly name: string, private readonly log: string[], readonly kind: TrafficManager['kind'] = 'iptables') {}
  private note (op: string): void {
    this.calls.push(op)
    this.log.push(`${this.name}.${op}`)
    if (this.fail) throw new Error(`${this.name} ${op} failed`)
  }

  async apply (): Promise<void> { this.note('apply'); this.present = true }
  async check (): Promise<boolean> { this.note('check'); return this.present }
  async resync (): Promise<boolean> {
    this.note('resync')
    if (this.present) return false
    this.present = true
    return true
  }

  async remove (): Promise<void> { this.note('remove'); this.present = false }
}

test('DualStackRules: IPv4 then IPv6; a resync repairs only the family that needs it; one family failing does not stop the other', async () => {
  const log: string[] = []
  const a = new FakeRules('v4', log)
  const b = new FakeRules('v6', log)
  const d = new DualStackRules(a, b)
  assert.equal(await d.check(), false)
  await d.apply()
  assert.equal(await d.check(), true)
  assert.deepEqual(log.splice(0), ['v4.check', 'v4.apply', 'v6.apply', 'v4.check', 'v6.check'])

  b.present = false
  assert.equal(await d.resync(), true)
  assert.equal(await d.resync(), false)
  assert.deepEqual(a.calls.filter((c) => c === 'apply'), ['apply'], 'IPv4 was not rewritten')

  a.fail = true
  log.length = 0
  await assert.rejects(d.remove(), /v4 remove failed/)
  assert.deepEqual(log, ['v4.remove', 'v6.remove'])
  assert.equal(b.present, false)
  await assert.rejects(d.apply(), /v4 apply failed/)
  assert.equal(b.present, true, 'IPv6 applied although IPv4 failed')

  assert.throws(() => new DualStackRules(a, new FakeRules('n', [], 'nftables')), { code: 'EINVAL' })
})

test('normalizeDst writes IPv6 destinations as iproute2 and Go print them', () => {
  assert.equal(normalizeDst('FC00:0:0:2:0:0:0:0/64'), 'fc00:0:0:2::/64')
  assert.equal(normalizeDst('fc00::1'), 'fc00::1/128')
  assert.equal(normalizeDst('default', 6), '::/0')
  assert.equal(normalizeDst('default'), '0.0.0.0/0')
  assert.equal(normalizeDst('10.244.2.0/24'), '10.244.2.0/24')
  assert.equal(normalizeDst('10.244.2.1'), '10.244.2.1/32')
  assert.throws(() => normalizeDst('fc00:::1/64'), { code: 'EKERNEL' })
})
