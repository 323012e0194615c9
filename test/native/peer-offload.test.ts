// The peer offload's kernel side (native/src/peer_offload.c): all four
// assembled programs (IP-in-IP and VXLAN, sending and receiving) pass the
// kernel's verifier, and a map holds one entry per peer subnet (or
// address), found by longest prefix, with its counters. The programs' work
// on real packets is tested in namespaces (test/backend/ipip-offload.test.ts,
// test/backend/vxlan-offload.test.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { native } from '../../src/native'
import { parseIp4 } from '../../src/packet/ip'
import type { OffloadEntry } from '../../src/native/peer-offload'

interface Binding {
  load: (kind: number) => { prog: number, map: number }
  set: (map: number, prefix: number, prefixLen: number, entry: OffloadEntry) => void
  remove: (map: number, prefix: number, prefixLen: number) => void
  counters: (map: number, prefix: number, prefixLen: number) => [number, number] | undefined
}
const b = (native as unknown as { peerOffload: Binding }).peerOffload
const skip = process.getuid?.() !== 0 ? 'loading a BPF program needs root (CAP_BPF and CAP_NET_ADMIN)' : false

const KINDS = [[1, 'IP-in-IP send'], [2, 'VXLAN send'], [3, 'IP-in-IP receive'], [4, 'VXLAN receive']] as const
for (const [kind, name] of KINDS) {
  test(`the ${name} program passes the verifier; its map takes, finds, counts and forgets an entry`, { skip }, () => {
    const { prog, map } = b.load(kind)
    try {
      assert.ok(prog > 2 && map > 2, 'two fds')
      const subnet = parseIp4('10.244.7.0')
      const mac = Buffer.from([2, 0, 0, 0, 0, 1])
      b.set(map, subnet, 24, { saddr: parseIp4('198.18.0.1'), daddr: parseIp4('198.18.0.2'), ifindex: 1, vni: 1, port: 8472, dmac: mac, smac: mac })
      assert.deepEqual(b.counters(map, subnet, 24), [0, 0], 'a new entry has carried nothing')
      // the programs look up each packet's address as a /32: the longest prefix holding it answers
      assert.deepEqual(b.counters(map, parseIp4('10.244.7.9'), 32), [0, 0], 'an address in the subnet finds it')
      assert.equal(b.counters(map, parseIp4('10.244.8.9'), 32), undefined, 'an address outside it finds nothing')
      b.remove(map, subnet, 24)
      assert.equal(b.counters(map, subnet, 24), undefined, 'removed')
      b.remove(map, subnet, 24) // gone already: fine
      assert.throws(() => { b.set(map, subnet, 33, { saddr: 0, daddr: 0, ifindex: 1 }) }, TypeError, 'a prefix past 32 is refused before the kernel')
      assert.throws(() => { b.set(map, subnet, 24, { saddr: 0, daddr: 0, ifindex: 1, dmac: Buffer.alloc(5) }) }, TypeError, 'a MAC of 5 bytes is refused')
      assert.throws(() => { b.set(map, subnet, 24, { saddr: '198.18.0.1', daddr: 0, ifindex: 1 } as unknown as OffloadEntry) }, TypeError, 'an address as a string is refused')
    } finally {
      native.closeFd(prog)
      native.closeFd(map)
    }
  })
}

test('an unknown kind of program is refused', { skip }, () => {
  assert.throws(() => b.load(9), (err: NodeJS.ErrnoException) => err.code === 'EINVAL')
})
