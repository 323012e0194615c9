// flanneld's rule set, built without touching iptables: every line as
// `iptables -S` prints it, compared with the lines flanneld v0.28 installs
// (pkg/trafficmngr/iptables/iptables.go), in order.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseCidr } from '../../src/packet/net'
import { canonicalCidr, forwardChain, isJumpTo, masqChain, quoteToken, ruleLine, type ChainSet } from '../../src/kernel/iptables-rules'
import { versionHasRandomFully } from '../../src/kernel/iptables'

function lines (set: ChainSet): string[] {
  return [ruleLine(set.from, set.jump), ...set.rules.map((r) => ruleLine(set.chain, r))]
}

test('forward rules', () => {
  const set = forwardChain('10.244.0.0/16')
  assert.equal(set.table, 'filter')
  assert.deepEqual(lines(set), [
    '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
    '-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT',
    '-A FLANNEL-FWD -d 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT'
  ])
})

test('masquerade rules, with --random-fully', () => {
  const set = masqChain('10.244.0.0/16', '10.244.1.0/24', true)
  assert.equal(set.table, 'nat')
  assert.deepEqual(lines(set), [
    '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
    '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s 10.244.1.0/24 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.1.0/24 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully',
    '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully'
  ])
})

test('masquerade rules, without --random-fully', () => {
  const l = lines(masqChain('10.244.0.0/16', '10.244.1.0/24', false))
  assert.equal(l[5], '-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE')
  assert.equal(l[6], '-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE')
})

test('CIDRs are printed as iptables prints them back; parsed nets work too', () => {
  assert.equal(canonicalCidr('10.244.7.9/16'), '10.244.0.0/16')
  assert.deepEqual(forwardChain(parseCidr('10.244.0.0/16')), forwardChain('10.244.0.0/16'))
  assert.throws(() => forwardChain('10.244.0.0'), { code: 'EBADCIDR' })
})

test('random-fully support by iptables version, as go-iptables decides', () => {
  assert.equal(versionHasRandomFully('iptables v1.8.9 (nf_tables)'), true)
  assert.equal(versionHasRandomFully('iptables v1.6.2'), true)
  assert.equal(versionHasRandomFully('iptables v1.6.1'), false)
  assert.equal(versionHasRandomFully('iptables v1.4.21'), false)
  assert.equal(versionHasRandomFully('garbage'), false)
})

test('tokens are quoted the way iptables-save quotes them', () => {
  assert.equal(quoteToken('flanneld masq'), '"flanneld masq"')
  assert.equal(quoteToken('a "q" \\x'), '"a \\"q\\" \\\\x"')
  assert.equal(quoteToken('!'), '!')
})

test('jump detection ignores how the rest of the line looks', () => {
  assert.ok(isJumpTo('-A FORWARD -j FLANNEL-FWD', 'FORWARD', 'FLANNEL-FWD'))
  assert.ok(isJumpTo('-A FORWARD -m comment --comment "old" -g FLANNEL-FWD', 'FORWARD', 'FLANNEL-FWD'))
  assert.ok(!isJumpTo('-A FORWARD -j FLANNEL-FWD2', 'FORWARD', 'FLANNEL-FWD'))
  assert.ok(!isJumpTo('-A FLANNEL-FWD -j ACCEPT', 'FORWARD', 'FLANNEL-FWD'))
})
