// `weft run` reads flanneld's flags, and FLANNELD_* variables for the ones not given.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { parseRunFlags } from '../../src/daemon/flags'

test('defaults are flanneld\'s, with the embedded store selected', () => {
  const f = parseRunFlags([], {})
  assert.equal(f.etcdEndpoints, undefined)
  assert.equal(f.store, 'sqlite:/var/lib/weft/store.db')
  assert.equal(f.etcdPrefix, '/coreos.com/network')
  assert.equal(f.subnetFile, '/run/flannel/subnet.env')
  assert.equal(f.subnetLeaseRenewMargin, 60)
  assert.equal(f.healthzPort, 0)
  assert.equal(f.ipMasq, false)
})

test('FLANNELD_<NAME> fills a flag that the command line did not give; the command line wins', () => {
  const env = { FLANNELD_ETCD_ENDPOINTS: 'http://127.0.0.1:2379,http://127.0.0.1:4001', FLANNELD_IFACE: 'eth1', FLANNELD_IP_MASQ: 'true', FLANNELD_SUBNET_FILE: '/tmp/x.env' }
  const f = parseRunFlags(['--subnet-file', '/tmp/y.env'], env)
  assert.deepEqual(f.etcdEndpoints, ['http://127.0.0.1:2379', 'http://127.0.0.1:4001'])
  assert.deepEqual(f.iface, ['eth1'])
  assert.equal(f.ipMasq, true)
  assert.equal(f.subnetFile, '/tmp/y.env')
})

test('--subnet-lease-renew-margin outside 1..1439 is refused, naming the flag', () => {
  assert.throws(() => parseRunFlags(['--subnet-lease-renew-margin', '1440'], {}), /--subnet-lease-renew-margin "1440": must be a whole number from 1 to 1439/)
  assert.throws(() => parseRunFlags(['--subnet-lease-renew-margin', 'soon'], {}), /renew-margin/)
})

test('an unknown flag is refused', () => {
  assert.throws(() => parseRunFlags(['--etcd-endpoint', 'x'], {}), /Unknown option '--etcd-endpoint'/)
})

test('--busy-poll: off unless told; a window in µs up to a second, from the flag or FLANNELD_BUSY_POLL; anything else refused naming the flag', () => {
  assert.equal(parseRunFlags([], {}).busyPoll, 0)
  assert.equal(parseRunFlags(['--busy-poll', '20000'], {}).busyPoll, 20000)
  assert.equal(parseRunFlags([], { FLANNELD_BUSY_POLL: '500' }).busyPoll, 500)
  assert.throws(() => parseRunFlags(['--busy-poll', '1000001'], {}), /--busy-poll "1000001": must be a whole number from 0 to 1000000/)
  assert.throws(() => parseRunFlags(['--busy-poll', '-1'], {}), /--busy-poll/)
})

test('--workers: one dataplane thread unless told, 1..8 accepted, anything else refused naming the flag', () => {
  assert.equal(parseRunFlags([], {}).workers, 1)
  assert.equal(parseRunFlags(['--workers', '2'], {}).workers, 2)
  assert.equal(parseRunFlags([], { FLANNELD_WORKERS: '8' }).workers, 8)
  assert.throws(() => parseRunFlags(['--workers', '0'], {}), /--workers "0": must be a whole number from 1 to 8/)
  assert.throws(() => parseRunFlags(['--workers', 'all'], {}), /--workers/)
})
