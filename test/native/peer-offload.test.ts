// The peer offload's kernel side (native/src/peer_offload.c): all four
// assembled programs (IP-in-IP and VXLAN, sending and receiving) pass the
// kernel's verifier, and a map holds one entry per peer subnet (or
// address), found by longest prefix, with its counters; the receive program
// keeps a flow's packets on one path (run on frames with BPF_PROG_TEST_RUN).
// The programs' work on real packets is tested in namespaces
// (test/backend/ipip-offload.test.ts, test/backend/vxlan-offload.test.ts).
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
  testRun: (prog: number, frame: Buffer, gsoSize: number) => number
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

// The receive program's verdicts (linux/pkt_cls.h)
const TAKEN = 7 // TC_ACT_REDIRECT: into the TUN by the kernel
const TO_WEFT = -1 // TC_ACT_UNSPEC: on to weft's socket

/** A VXLAN frame from 198.18.0.2 to us (198.18.0.1), a TCP segment inside from `src` to `dst`. */
function vxlanFrame (src: string, dst: string): Buffer {
  const f = Buffer.alloc(14 + 20 + 8 + 8 + 14 + 20 + 20 + 100)
  f.writeUInt16BE(0x0800, 12)
  f.writeUInt8(0x45, 14)
  f.writeUInt16BE(f.length - 14, 16)
  f.writeUInt8(64, 22)
  f.writeUInt8(17, 23)
  f.writeUInt32BE(parseIp4('198.18.0.2'), 26)
  f.writeUInt32BE(parseIp4('198.18.0.1'), 30)
  f.writeUInt16BE(50000, 34)
  f.writeUInt16BE(8472, 36)
  f.writeUInt16BE(f.length - 34, 38)
  f.writeUInt8(0x08, 42) // VXLAN: the I flag; VNI 1
  f.writeUInt32BE(1 << 8, 46)
  OUR_MAC.copy(f, 50)
  f.writeUInt16BE(0x0800, 62)
  f.writeUInt8(0x45, 64)
  f.writeUInt16BE(f.length - 64, 66)
  f.writeUInt8(64, 72)
  f.writeUInt8(6, 73)
  f.writeUInt32BE(parseIp4(src), 76)
  f.writeUInt32BE(parseIp4(dst), 80)
  return f
}
const OUR_MAC = Buffer.from([2, 0, 0, 0, 0, 1])

test('a flow whose super-packet the receive program left to weft sends its next packets to weft too, so none overtakes it', { skip }, (t) => {
  const { prog, map } = b.load(4)
  try {
    b.set(map, parseIp4('198.18.0.2'), 32, {
      saddr: parseIp4('198.18.0.1'),
      daddr: parseIp4('198.18.0.2'),
      ifindex: 1,
      vni: 1,
      port: 8472,
      smac: OUR_MAC,
      peerNet: parseIp4('10.244.2.0'),
      peerMask: 0xffffff00,
      ourNet: parseIp4('10.244.1.0'),
      ourMask: 0xffffff00,
      net: parseIp4('10.244.0.0'),
      netMask: 0xffff0000
    })
    const flow = vxlanFrame('10.244.2.5', '10.244.1.5')
    assert.equal(b.testRun(prog, flow, 0), TAKEN, 'a single packet from a known peer: the kernel takes it')
    const superVerdict = b.testRun(prog, flow, 1400)
    if (superVerdict === TAKEN) {
      t.skip('this kernel clears a super-packet\'s tunnel marks (bpf_skb_adjust_room\'s DECAP flags): it takes super-packets too, so no flow goes to weft')
      return
    }
    assert.equal(superVerdict, TO_WEFT, 'a super-packet: to weft (this kernel cannot clear its tunnel marks)')
    assert.equal(b.testRun(prog, flow, 0), TO_WEFT, 'the same flow\'s next single packet follows it to weft')
    assert.equal(b.testRun(prog, vxlanFrame('10.244.2.6', '10.244.1.5'), 0), TAKEN, 'another flow is still the kernel\'s')
    assert.equal(b.counters(map, parseIp4('198.18.0.2'), 32)?.[0], 2, 'the kernel counted the two it took')
  } finally {
    native.closeFd(prog)
    native.closeFd(map)
  }
})
