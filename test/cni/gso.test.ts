// The pod GSO size: TCP's super-packets, as the kernel sizes them, fit one
// UDP_SEGMENT message of weft's encapsulated segments (src/kernel/gso.ts,
// shared with the TUN device, which the node's own TCP leaves by).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { podGsoMaxSize } from '../../src/cni/gso'
import { fittedGsoMaxSize } from '../../src/kernel/gso'

/** TCP's size goal in segments (tcp_xmit_size_goal) for a MAX_TCP_HEADER of `mth` */
const segmentsTcpSends = (gso: number, mss: number, mth: number): number => Math.floor((gso - 1 - mth) / mss)

test('at every MTU from 576 to 1500, the super-packets TCP sends fit one message of VXLAN segments, with or without timestamps, whichever MAX_TCP_HEADER the kernel has', () => {
  for (let mtu = 576; mtu <= 1500; mtu++) {
    const gso = podGsoMaxSize(mtu)
    assert.ok(gso !== undefined && gso < 65536, `mtu ${mtu}`)
    for (const options of [12, 0]) {
      const mss = mtu - 40 - options
      const segment = 22 + 40 + options + mss // VXLAN + Ethernet, IP, TCP, payload: mtu + 22
      for (const mth of [256, 320]) {
        const n = segmentsTcpSends(gso, mss, mth)
        assert.ok(n * segment <= 65507 && n <= 64, `mtu ${mtu}, options ${options}, MAX_TCP_HEADER ${mth}: ${n} segments of ${segment} fit 65507`)
        // and, with timestamps (Linux's default), exactly as many as one message holds
        if (options === 12) assert.equal(n, Math.min(64, Math.floor(65507 / segment)), `mtu ${mtu}, MAX_TCP_HEADER ${mth}: ${n} segments fill the message`)
      }
    }
  }
})

test('VXLAN\'s 1450: 44 segments of 1398 (46 by default, which take two messages)', () => {
  assert.equal(segmentsTcpSends(podGsoMaxSize(1450) as number, 1398, 320), 44)
  assert.equal(segmentsTcpSends(65536, 1398, 320), 46)
})

test('jumbo MTUs and nonsense leave the default alone', () => {
  assert.equal(podGsoMaxSize(8950), undefined)
  assert.equal(podGsoMaxSize(100), undefined)
  assert.equal(podGsoMaxSize(1450.5), undefined)
})

test('the size is shared with the TUN device (src/kernel/gso.ts): the pod\'s is VXLAN\'s, and for flannel\'s udp, whose segments carry no header of weft\'s, the super-packets fit and fill a message too', () => {
  for (let mtu = 576; mtu <= 1500; mtu++) assert.equal(podGsoMaxSize(mtu), fittedGsoMaxSize(mtu, 22))
  for (let mtu = 576; mtu <= 1500; mtu++) {
    const gso = fittedGsoMaxSize(mtu, 0)
    assert.ok(gso !== undefined && gso < 65536, `mtu ${mtu}`)
    const mss = mtu - 52
    for (const mth of [256, 320]) {
      const n = segmentsTcpSends(gso, mss, mth)
      assert.equal(n, Math.min(64, Math.floor(65507 / mtu)), `mtu ${mtu}, MAX_TCP_HEADER ${mth}: ${n} segments of ${mtu} fill one message`)
    }
  }
  // the udp backend's device on a 1500 underlay: 1472, 44 segments of 1420
  assert.equal(segmentsTcpSends(fittedGsoMaxSize(1472, 0) as number, 1420, 320), 44)
  assert.equal(fittedGsoMaxSize(1450, -1), undefined)
})
