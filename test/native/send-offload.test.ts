// The send offload's kernel side (native/src/send_offload.c): both
// assembled programs (IP-in-IP, VXLAN) pass the kernel's verifier, and the
// map holds one entry per peer subnet, found by longest prefix, with its
// counters. The programs' work on real packets is tested in namespaces
// (test/backend/ipip-offload.test.ts, test/backend/vxlan-offload.test.ts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { native } from '../../src/native'
import { parseIp4 } from '../../src/packet/ip'

interface Binding {
  load: (kind: number) => { prog: number, map: number }
  set: (map: number, prefix: number, prefixLen: number, saddr: number, daddr: number, ifindex: number, vni?: number, dmac?: Buffer, smac?: Buffer) => void
  remove: (map: number, prefix: number, prefixLen: number) => void
  counters: (map: number, prefix: number, prefixLen: number) => [number, number] | undefined
}
const tx = (native as unknown as { sendOffload: Binding }).sendOffload
const skip = process.getuid?.() !== 0 ? 'loading a BPF program needs root (CAP_BPF and CAP_NET_ADMIN)' : false

for (const [kind, name] of [[1, 'IP-in-IP'], [2, 'VXLAN']] as const) {
  test(`the ${name} program passes the verifier; the map takes, finds, counts and forgets a peer subnet`, { skip }, () => {
    const { prog, map } = tx.load(kind)
    try {
      assert.ok(prog > 2 && map > 2, 'two fds')
      const subnet = parseIp4('10.244.7.0')
      const mac = Buffer.from([2, 0, 0, 0, 0, 1])
      if (kind === 2) tx.set(map, subnet, 24, parseIp4('198.18.0.1'), parseIp4('198.18.0.2'), 1, 1, mac, mac)
      else tx.set(map, subnet, 24, parseIp4('198.18.0.1'), parseIp4('198.18.0.2'), 1)
      assert.deepEqual(tx.counters(map, subnet, 24), [0, 0], 'a new entry has sent nothing')
      // the program looks up each packet's destination as a /32: the longest prefix holding it answers
      assert.deepEqual(tx.counters(map, parseIp4('10.244.7.9'), 32), [0, 0], 'an address in the subnet finds it')
      assert.equal(tx.counters(map, parseIp4('10.244.8.9'), 32), undefined, 'an address outside it finds nothing')
      tx.remove(map, subnet, 24)
      assert.equal(tx.counters(map, subnet, 24), undefined, 'removed')
      tx.remove(map, subnet, 24) // gone already: fine
      assert.throws(() => { tx.set(map, subnet, 33, 0, 0, 1) }, TypeError, 'a prefix past 32 is refused before the kernel')
      assert.throws(() => { tx.set(map, subnet, 24, 0, 0, 1, 1, Buffer.alloc(5), mac) }, TypeError, 'a MAC of 5 bytes is refused')
    } finally {
      native.closeFd(prog)
      native.closeFd(map)
    }
  })
}

test('an unknown kind of program is refused', { skip }, () => {
  assert.throws(() => tx.load(3), (err: NodeJS.ErrnoException) => err.code === 'EINVAL')
})
