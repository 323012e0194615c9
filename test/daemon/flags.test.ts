// `weft run` reads flanneld's flags, and FLANNELD_* variables for the ones not given.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { logLevelFor, parseGoBool, parseRunFlags, runFlagsHelp, wantsVersion, RUN_FLAGS } from '../../src/daemon/flags'
import { main } from '../../src/main'

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

test('an unknown flag is refused, naming it; so is an argument that is not a flag (flanneld would stop reading flags there)', () => {
  assert.throws(() => parseRunFlags(['--etcd-endpoint', 'x'], {}), /unknown flag --etcd-endpoint/)
  assert.throws(() => parseRunFlags(['-etcd-endpoint=x'], {}), /unknown flag -etcd-endpoint/)
  assert.throws(() => parseRunFlags(['--ip-masq', 'false'], {}), /unexpected argument "false"/)
  assert.throws(() => parseRunFlags(['--', '--ip-masq'], {}), /unexpected argument "--ip-masq"/)
  assert.throws(() => parseRunFlags(['---iface', 'x'], {}), /bad flag syntax: ---iface/)
  assert.throws(() => parseRunFlags(['--iface'], {}), /--iface needs a value/)
  assert.throws(() => parseRunFlags(['--constructor'], {}), /unknown flag --constructor/)
})

test('WEFT_UDP_PACING: unset, off or a factor above 0; anything else stops `weft run` before it sets anything up, naming the value', () => {
  for (const ok of [undefined, '', 'off', '0', '2', '1.5', '8']) assert.doesNotThrow(() => parseRunFlags([], ok === undefined ? {} : { WEFT_UDP_PACING: ok }), `WEFT_UDP_PACING=${String(ok)}`)
  for (const bad of ['on', 'OFF', '-1', 'fast', '2x']) {
    assert.throws(() => parseRunFlags([], { WEFT_UDP_PACING: bad }), (err: Error & { code?: string }) => err.code === 'EFLAG' && err.message.includes(`WEFT_UDP_PACING=${JSON.stringify(bad)}: takes off, or a factor above 0`))
  }
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

test('the command line as Go\'s flag package reads it: -name or --name, =value or a separate value, the last value wins', () => {
  const f = parseRunFlags(['-iface', 'eth1', '--iface=eth2', '-public-ip=192.0.2.7', '--subnet-file', '/tmp/a', '-subnet-file', '/tmp/b', '-healthz-port=8081'], {})
  assert.deepEqual(f.iface, ['eth1', 'eth2'])
  assert.equal(f.publicIp, '192.0.2.7')
  assert.equal(f.subnetFile, '/tmp/b')
  assert.equal(f.healthzPort, 8081)
  // a value that starts with a dash is still the value, as in Go
  assert.equal(parseRunFlags(['--kube-annotation-prefix', '-odd'], {}).kubeAnnotationPrefix, '-odd')
})

test('every boolean takes --flag, --flag=true and --flag=false (and Go\'s other spellings); anything else is refused', () => {
  for (const [name, spec] of Object.entries(RUN_FLAGS)) {
    if (spec.type !== 'boolean') continue
    const key = name.replace(/-([a-z])/g, (_m: string, c: string) => c.toUpperCase()) as keyof ReturnType<typeof parseRunFlags>
    const field = key
    assert.equal(parseRunFlags([`--${name}`], {})[field], true, name)
    assert.equal(parseRunFlags([`--${name}=true`], {})[field], true, name)
    assert.equal(parseRunFlags([`--${name}=false`], {})[field], false, name)
    assert.equal(parseRunFlags([`-${name}=0`], {})[field], false, name)
    assert.equal(parseRunFlags([`-${name}=T`], {})[field], true, name)
    assert.throws(() => parseRunFlags([`--${name}=yes`], {}), new RegExp(`--${name}=yes: a boolean flag takes true or false`))
  }
  for (const s of ['1', 't', 'T', 'TRUE', 'true', 'True']) assert.equal(parseGoBool(s), true)
  for (const s of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.equal(parseGoBool(s), false)
  for (const s of ['', 'yes', 'no', 'on', 'tRuE']) assert.equal(parseGoBool(s), undefined)
})

test('--set-node-network-unavailable is on unless turned off, by the flag or FLANNELD_SET_NODE_NETWORK_UNAVAILABLE=false', () => {
  assert.equal(parseRunFlags([], {}).setNodeNetworkUnavailable, true)
  assert.equal(parseRunFlags(['--set-node-network-unavailable=false'], {}).setNodeNetworkUnavailable, false)
  assert.equal(parseRunFlags([], { FLANNELD_SET_NODE_NETWORK_UNAVAILABLE: 'false' }).setNodeNetworkUnavailable, false)
  assert.equal(parseRunFlags([], { FLANNELD_SET_NODE_NETWORK_UNAVAILABLE: '0' }).setNodeNetworkUnavailable, false)
  // the command line wins over the environment, either way
  assert.equal(parseRunFlags(['--set-node-network-unavailable'], { FLANNELD_SET_NODE_NETWORK_UNAVAILABLE: 'false' }).setNodeNetworkUnavailable, true)
  assert.equal(parseRunFlags(['--ip-masq=false'], { FLANNELD_IP_MASQ: 'true' }).ipMasq, false)
  assert.throws(() => parseRunFlags([], { FLANNELD_SET_NODE_NETWORK_UNAVAILABLE: 'nope' }), /FLANNELD_SET_NODE_NETWORK_UNAVAILABLE="nope": must be true or false/)
})

test('kube flags: flanneld\'s names and defaults, from the command line or FLANNELD_*', () => {
  const d = parseRunFlags([], {})
  assert.equal(d.kubeSubnetMgr, false)
  assert.equal(d.kubeApiUrl, '')
  assert.equal(d.kubeconfigFile, '')
  assert.equal(d.kubeAnnotationPrefix, 'flannel.alpha.coreos.com')
  assert.equal(d.netConfigPath, '', 'the daemon applies the kube default itself')
  const f = parseRunFlags(['--kube-subnet-mgr', '--kube-api-url', 'https://10.96.0.1:443', '--kubeconfig-file=/etc/k.conf', '--kube-annotation-prefix', 'example.com/x'], {})
  assert.deepEqual([f.kubeSubnetMgr, f.kubeApiUrl, f.kubeconfigFile, f.kubeAnnotationPrefix], [true, 'https://10.96.0.1:443', '/etc/k.conf', 'example.com/x'])
  const e = parseRunFlags([], { FLANNELD_KUBE_SUBNET_MGR: 'true', FLANNELD_KUBECONFIG_FILE: '/k', FLANNELD_KUBE_API_URL: 'https://a' })
  assert.deepEqual([e.kubeSubnetMgr, e.kubeconfigFile, e.kubeApiUrl], [true, '/k', 'https://a'])
  assert.match(runFlagsHelp(), /--net-config-path VALUE\n.*--kube-subnet-mgr the default is \/etc\/kube-flannel\/net-conf\.json/)
})

test('--iface-regex (repeatable, one pattern per FLANNELD_IFACE_REGEX even with a comma), --iface-can-reach, --public-ipv6: checked when read', () => {
  const f = parseRunFlags(['--iface-regex', '^eth[0-9]{1,2}$', '--iface-regex=198\\.18\\.', '--iface-can-reach', '198.18.0.9'], {})
  assert.deepEqual(f.ifaceRegex, ['^eth[0-9]{1,2}$', '198\\.18\\.'])
  assert.equal(f.ifaceCanReach, '198.18.0.9')
  assert.deepEqual(parseRunFlags([], { FLANNELD_IFACE_REGEX: '^en[a-z]{1,3}0$' }).ifaceRegex, ['^en[a-z]{1,3}0$'])
  assert.deepEqual(parseRunFlags([], { FLANNELD_IFACE: 'eth0,eth1' }).iface, ['eth0', 'eth1'])
  assert.throws(() => parseRunFlags(['--iface-regex', '(?i)eth'], {}), /--iface-regex "\(\?i\)eth": not a regular expression/)
  assert.throws(() => parseRunFlags(['--iface-can-reach', 'example.com'], {}), /--iface-can-reach "example.com": not an IP address/)
  // an IPv6 one is for an IPv6-only network's underlay
  assert.equal(parseRunFlags(['--iface-can-reach', '2001:db8::1'], {}).ifaceCanReach, '2001:db8::1')
  assert.equal(parseRunFlags(['--public-ipv6', '2001:db8::7'], {}).publicIpv6, '2001:db8::7')
  assert.equal(parseRunFlags([], {}).publicIpv6, '')
  assert.throws(() => parseRunFlags(['--public-ipv6', '192.0.2.1'], {}), /--public-ipv6 "192.0.2.1" is not an IPv6 address/)
})

test('--iptables-resync (default 5 s, 1..86400), --iptables-forward-rules (default on), --ip-masq-fully-random-disable (default off)', () => {
  const d = parseRunFlags([], {})
  assert.deepEqual([d.iptablesResync, d.iptablesForwardRules, d.ipMasqFullyRandomDisable], [5, true, false])
  const f = parseRunFlags(['--iptables-resync', '30', '--iptables-forward-rules=false', '--ip-masq-fully-random-disable'], {})
  assert.deepEqual([f.iptablesResync, f.iptablesForwardRules, f.ipMasqFullyRandomDisable], [30, false, true])
  assert.equal(parseRunFlags([], { FLANNELD_IPTABLES_FORWARD_RULES: 'false' }).iptablesForwardRules, false)
  assert.throws(() => parseRunFlags(['--iptables-resync', '0'], {}), /--iptables-resync "0": must be a whole number from 1 to 86400/)
  assert.throws(() => parseRunFlags(['--iptables-resync', ''], {}), /--iptables-resync/)
})

test('-v / --v: klog\'s verbosity as a number, mapped to a log level; --version is a flag too, never read from the environment', () => {
  assert.equal(parseRunFlags([], {}).verbosity, 0)
  assert.equal(parseRunFlags(['-v', '2'], {}).verbosity, 2)
  assert.equal(parseRunFlags(['--v=6'], {}).verbosity, 6)
  assert.equal(parseRunFlags([], { FLANNELD_V: '3' }).verbosity, 3)
  assert.throws(() => parseRunFlags(['-v', 'high'], {}), /--v "high": must be a whole number/)
  assert.throws(() => parseRunFlags(['-v'], {}), /--v needs a value/)
  assert.deepEqual([-1, 0, 1, 5, 6, 10].map(logLevelFor), ['info', 'info', 'debug', 'debug', 'trace', 'trace'])
  assert.equal(parseRunFlags(['--version'], {}).version, true)
  assert.equal(parseRunFlags([], { FLANNELD_VERSION: 'true' }).version, false)
  assert.equal(wantsVersion(['--version=true']), true)
  assert.equal(wantsVersion(['--version', '--bogus']), false, 'a bad command line is the run\'s to report')
})

test('weft run --version prints the version from package.json and exits 0 without starting anything', async () => {
  const out: string[] = []
  const err: string[] = []
  const code = await main(['run', '--version'], { out: (l) => out.push(l), err: (l) => err.push(l) })
  assert.equal(code, 0)
  assert.deepEqual(out, [(require('../../../package.json') as { version: string }).version])
  assert.deepEqual(err, [])
})
