// Every number C and JS must agree on comes from the addon's `constants`.
// This checks that the addon exports exactly the names the TypeScript side
// declares, that each JS name is wired to the addon's value, and, where the
// number is also written down elsewhere (the virtio ABI, a packet codec, the
// pipeline's stats layout), that it agrees there too.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { constantNames, native } from '../../src/native/binding'
import * as vnet from '../../src/native/vnet'
import { SEGS_PARTIAL } from '../../src/native/batch'
import { BusyCounter } from '../../src/native/busy-poll'
import { VXLAN_FLAG_RCO } from '../../src/packet/vxlan'
import { GRO_MAX_SEGMENTS } from '../../src/dataplane/outside'
import { Count } from '../../src/dataplane/stats'

const c = native.constants

test('the addon exports exactly the constants the TypeScript side declares, each a number', () => {
  assert.deepEqual(Object.keys(c).sort(), [...constantNames].sort())
  for (const k of constantNames) assert.equal(typeof c[k], 'number', k)
})

test('the virtio_net_hdr has one JS home, src/native/vnet, equal to the addon and to the virtio ABI', () => {
  // include/uapi/linux/virtio_net.h (tun_io.c also holds the C side to it
  // when it compiles, except GSO_UDP_L4, which Debian 12's header lacks)
  const abi = { VNET_HDR_LEN: 10, VNET_F_NEEDS_CSUM: 1, VNET_F_DATA_VALID: 2, GSO_NONE: 0, GSO_TCPV4: 1, GSO_TCPV6: 4, GSO_UDP_L4: 5 } as const
  for (const [k, v] of Object.entries(abi) as Array<[keyof typeof abi, number]>) {
    assert.equal(vnet[k], c[k], k)
    assert.equal(vnet[k], v, `${k} is the kernel's`)
  }
})

test('SEGS_PARTIAL is the addon\'s, and clear of every (type << 16 | mss) a segs entry carries', () => {
  assert.equal(SEGS_PARTIAL, c.SEGS_PARTIAL)
  assert.equal(SEGS_PARTIAL & 0xffffff, 0)
})

test('the RCO flag the addon skips when checking is the one the VXLAN codec reads', () => {
  assert.equal(VXLAN_FLAG_RCO, c.VXLAN_RCO_BYTE1)
})

test('the outside path drops unchecked exactly the segments past those the addon checks', () => {
  assert.equal(GRO_MAX_SEGMENTS, c.RX_CHECK_SEGMENTS)
})

test('a BusyPoll writes its counters where BusyCounter and the pipeline\'s stats say', () => {
  assert.deepEqual(BusyCounter, { NS: c.BUSY_NS, CAUGHT: c.BUSY_CAUGHT, SUSPENDED: c.BUSY_SUSPENDED })
  // the pipeline hands it stats.subarray(Count.BUSY_POLL_NS, Count.BUSY_POLL_SUSPENDED + 1)
  assert.equal(Count.BUSY_POLL_SUSPENDED + 1 - Count.BUSY_POLL_NS, c.BUSY_COUNTERS)
  assert.equal(Count.BUSY_POLL_NS + BusyCounter.NS, Count.BUSY_POLL_NS)
  assert.equal(Count.BUSY_POLL_NS + BusyCounter.CAUGHT, Count.BUSY_POLL_CAUGHT)
  assert.equal(Count.BUSY_POLL_NS + BusyCounter.SUSPENDED, Count.BUSY_POLL_SUSPENDED)
})
