// flanneld's flag names, read the way flanneld reads them (Go's flag
// package, then coreos flagutil.SetFlagsFromEnv): from the command line,
// else from FLANNELD_<NAME> (upper case, dashes to underscores), else the
// default. Plus weft's own: --store, --state-dir, --exit-on-revoke,
// --workers, --busy-poll, --source-check.
//
// The command line as Go's flag package reads it: -name and --name alike;
// --name=value or --name value; a boolean is --name, --name=true or
// --name=false (also 1/0, t/f, TRUE/FALSE, True/False), never
// `--name false`; a repeated flag's last value wins, except the repeatable
// ones (--iface, --iface-regex). Where weft differs, on purpose:
// - an argument that is not a flag is refused (flanneld silently stops
//   reading flags there, so everything after it is ignored);
// - a FLANNELD_ variable with a value its flag refuses stops weft, naming it
//   (flanneld logs the error and runs with the default);
// - FLANNELD_IFACE may list several interfaces, comma-separated (flanneld
//   takes the whole value as one name); FLANNELD_IFACE_REGEX is one pattern,
//   as in flanneld (a regex may hold a comma);
// - flanneld's klog flags other than -v (--vmodule, --log_backtrace_at) are
//   not taken.
import { isIPv4, isIPv6 } from 'node:net'
import { WeftError } from '../errors'
import { compileIfaceRegex } from '../kernel/iface'
import { pacingFactor } from '../dataplane/pacer'
import type { StoreFlags } from '../store/open'

export interface RunFlags extends StoreFlags {
  iface: string[]
  /** --iface-regex: patterns tried after every --iface, in order */
  ifaceRegex: string[]
  /** --iface-can-reach: an IP address ('' = not given); IPv6 for an IPv6-only underlay */
  ifaceCanReach: string
  publicIp: string
  /** --public-ipv6: the IPv6 address advertised to peers when EnableIPv6 ('' = the interface's global IPv6 address) */
  publicIpv6: string
  subnetFile: string
  subnetLeaseRenewMargin: number
  ipMasq: boolean
  /** --ip-masq-fully-random-disable: MASQUERADE without --random-fully (nftables: without fully-random) */
  ipMasqFullyRandomDisable: boolean
  /** --iptables-resync: seconds between checks of the traffic rules (iptables or nftables) */
  iptablesResync: number
  /** --iptables-forward-rules (default true): install the forward accept rules */
  iptablesForwardRules: boolean
  healthzIp: string
  healthzPort: number
  stateDir: string
  exitOnRevoke: boolean
  /** --net-config-path ('' = from the store; in kube mode the daemon applies flanneld's /etc/kube-flannel/net-conf.json) */
  netConfigPath: string
  workers: number
  /** µs the dataplane keeps polling after each light batch (0 = it sleeps at once) */
  busyPoll: number
  /** drop decapsulated packets whose inner source the sending node does not hold */
  sourceCheck: boolean
  /** --kube-subnet-mgr: leases from the Kubernetes API (node podCIDRs and annotations) instead of a store */
  kubeSubnetMgr: boolean
  /** --kube-api-url ('' = in-cluster, or the kubeconfig's) */
  kubeApiUrl: string
  /** --kubeconfig-file ('' = in-cluster) */
  kubeconfigFile: string
  /** --kube-annotation-prefix (default flannel.alpha.coreos.com) */
  kubeAnnotationPrefix: string
  /** --set-node-network-unavailable (default true) */
  setNodeNetworkUnavailable: boolean
  /** -v / --v: klog verbosity (0 = info) */
  verbosity: number
  /** --version: print the version and exit */
  version: boolean
}

type Spec = {
  type: 'string' | 'boolean'
  multiple?: boolean
  default: string | boolean | string[]
  /** FLANNELD_<NAME> is read unless false (flanneld reads --version before the environment) */
  env?: false
  /** a repeatable flag's variable lists several values, comma-separated */
  split?: boolean
}

export const KUBE_NET_CONFIG_PATH = '/etc/kube-flannel/net-conf.json'
export const DEFAULT_KUBE_ANNOTATION_PREFIX = 'flannel.alpha.coreos.com'

export const RUN_FLAGS: Record<string, Spec & { help: string }> = {
  'etcd-endpoints': { type: 'string', default: '', help: 'comma-separated etcd endpoints; selects the etcd store (flanneld default http://127.0.0.1:4001,http://127.0.0.1:2379; weft\'s default is its embedded store)' },
  'etcd-prefix': { type: 'string', default: '/coreos.com/network', help: 'etcd prefix' },
  'etcd-keyfile': { type: 'string', default: '', help: 'TLS key for etcd (TLS is used when key and cert are both given)' },
  'etcd-certfile': { type: 'string', default: '', help: 'TLS certificate for etcd' },
  'etcd-cafile': { type: 'string', default: '', help: 'CA bundle for etcd' },
  'etcd-username': { type: 'string', default: '', help: 'etcd user' },
  'etcd-password': { type: 'string', default: '', help: 'etcd password' },
  store: { type: 'string', default: 'sqlite:/var/lib/weft/store.db', help: 'the embedded store, sqlite:PATH (ignored when --etcd-endpoints is given)' },
  'kube-subnet-mgr': { type: 'boolean', default: false, help: 'take the subnet from the Kubernetes API (the node\'s podCIDR, leases as node annotations) instead of a store' },
  'kube-api-url': { type: 'string', default: '', help: 'Kubernetes API server URL; not needed when running in a pod' },
  'kubeconfig-file': { type: 'string', default: '', help: 'kubeconfig file; not needed when running in a pod' },
  'kube-annotation-prefix': { type: 'string', default: DEFAULT_KUBE_ANNOTATION_PREFIX, help: 'Kubernetes annotation prefix; may contain one "/", else "/" is appended' },
  'set-node-network-unavailable': { type: 'boolean', default: true, help: 'kube mode: clear the node\'s NetworkUnavailable condition once ready (default true; --set-node-network-unavailable=false leaves it alone)' },
  iface: { type: 'string', multiple: true, split: true, default: [], help: 'interface (name or IPv4 address) for the underlay; repeatable, tried in order, first match wins; default: the one holding --public-ip, else the default route\'s (FLANNELD_IFACE may list several, comma-separated: flanneld takes it as one)' },
  'iface-regex': { type: 'string', multiple: true, default: [], help: 'regex for the underlay interface, matched against every interface\'s IPv4 addresses, then names; repeatable, tried after every --iface; JavaScript syntax (RE2\'s inline flags such as (?i) are refused)' },
  'iface-can-reach': { type: 'string', default: '', help: 'use the interface (and source address) the kernel routes this address through, as `ip route get` says (an IPv6 address on an IPv6-only network); tried after every --iface and --iface-regex' },
  'public-ip': { type: 'string', default: '', help: 'IP advertised to peers (default: the interface\'s)' },
  'public-ipv6': { type: 'string', default: '', help: 'IPv6 address advertised to peers when the network config has EnableIPv6 (default: the interface\'s first global IPv6 address)' },
  'subnet-file': { type: 'string', default: '/run/flannel/subnet.env', help: 'where to write subnet.env' },
  'subnet-lease-renew-margin': { type: 'string', default: '60', help: 'renew the lease this many minutes before it expires (1..1439)' },
  'ip-masq': { type: 'boolean', default: false, help: 'masquerade traffic leaving the overlay' },
  'ip-masq-fully-random-disable': { type: 'boolean', default: false, help: 'masquerade without --random-fully (nftables: without fully-random)' },
  'iptables-resync': { type: 'string', default: '5', help: 'seconds between checks that repair the traffic rules, iptables or nftables (1..86400; flanneld takes 0 and then checks without pause, and never checks its nftables rules)' },
  'iptables-forward-rules': { type: 'boolean', default: true, help: 'accept forwarded traffic from and to the network (FLANNEL-FWD; nftables: chain forward); --iptables-forward-rules=false installs none (default true)' },
  'healthz-ip': { type: 'string', default: '0.0.0.0', help: 'address for /healthz, /readyz and /metrics (anyone who reaches it may ask; 127.0.0.1 keeps it to the node)' },
  'healthz-port': { type: 'string', default: '0', help: 'port for /healthz, /readyz and /metrics (0 = off)' },
  'state-dir': { type: 'string', default: '/var/lib/weft', help: 'where weft keeps node state (VTEP MAC)' },
  'exit-on-revoke': { type: 'boolean', default: false, help: 'exit (as flanneld does) instead of re-acquiring when our lease is revoked' },
  'net-config-path': { type: 'string', default: '', help: `read the network config from this file instead of the store; with --kube-subnet-mgr the default is ${KUBE_NET_CONFIG_PATH} (flanneld's)` },
  workers: { type: 'string', default: '1', help: 'dataplane threads for the vxlan backend (1..8): a TUN queue and a UDP socket each, flows spread over them by the kernel' },
  'source-check': { type: 'string', default: 'on', help: 'drop packets from a peer whose inner source lies in a subnet it does not hold (another node\'s, or ours) or is one of this node\'s addresses; off: accept any inner source, as flanneld does (docs/threat-model.md)' },
  'busy-poll': { type: 'string', default: '0', help: 'microseconds the dataplane keeps polling after each light batch instead of sleeping (0..1000000, 0 = off); cuts a round trip by tens of µs, keeps a core busy while such traffic lasts (README: Running a node)' },
  v: { type: 'string', default: '0', help: 'log verbosity (-v N or --v N), as flanneld\'s klog -v: 0 logs info and up, 1 to 5 add debug, 6 and more trace; WEFT_LOG_LEVEL, when set, wins' },
  version: { type: 'boolean', default: false, env: false, help: 'print the version and exit' }
}

function envName (flag: string): string {
  return `FLANNELD_${flag.toUpperCase().replace(/-/g, '_')}`
}

/** Go's strconv.ParseBool, which flag and flagutil use for booleans. */
export function parseGoBool (s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false
  return undefined
}

type Value = string | boolean | string[]

/** The command line, as Go's flag package reads it (see the top of this file); only flags given. */
function parseCommandLine (argv: readonly string[]): Map<string, Value> {
  const given = new Map<string, Value>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      if (i + 1 < argv.length) throw new WeftError('EFLAG', `unexpected argument ${JSON.stringify(argv[i + 1])}: weft run takes flags only`)
      break
    }
    if (!arg.startsWith('-') || arg === '-') throw new WeftError('EFLAG', `unexpected argument ${JSON.stringify(arg)}: weft run takes flags only (flanneld would ignore it and every flag after it)`)
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1)
    if (body === '' || body.startsWith('-') || body.startsWith('=')) throw new WeftError('EFLAG', `bad flag syntax: ${arg}`)
    const eq = body.indexOf('=')
    const name = eq < 0 ? body : body.slice(0, eq)
    let value = eq < 0 ? undefined : body.slice(eq + 1)
    const spec = Object.hasOwn(RUN_FLAGS, name) ? RUN_FLAGS[name] : undefined
    if (spec === undefined) throw new WeftError('EFLAG', `unknown flag ${arg.startsWith('--') ? '--' : '-'}${name} (\`weft help run\` lists them)`)
    if (spec.type === 'boolean') {
      const b = value === undefined ? true : parseGoBool(value)
      if (b === undefined) throw new WeftError('EFLAG', `--${name}=${value ?? ''}: a boolean flag takes true or false (--${name}=false)`)
      given.set(name, b)
      continue
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new WeftError('EFLAG', `--${name} needs a value`)
      value = argv[++i]!
    }
    if (spec.multiple === true) given.set(name, [...(given.get(name) as string[] | undefined ?? []), value])
    else given.set(name, value)
  }
  return given
}

export function parseRunFlags (argv: string[], env: NodeJS.ProcessEnv = process.env): RunFlags {
  const given = parseCommandLine(argv)
  const get = (k: string): Value => {
    const v = given.get(k)
    if (v !== undefined) return v
    const spec = RUN_FLAGS[k]!
    const e = spec.env === false ? undefined : env[envName(k)]
    if (e !== undefined && e !== '') {
      if (spec.type === 'boolean') {
        const b = parseGoBool(e)
        if (b === undefined) throw new WeftError('EFLAG', `${envName(k)}=${JSON.stringify(e)}: must be true or false`)
        return b
      }
      if (spec.multiple === true) return spec.split === true ? e.split(',') : [e]
      return e
    }
    return spec.default
  }
  const num = (k: string, min: number, max: number): number => {
    const s = String(get(k))
    const n = Number(s)
    if (s.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new WeftError('EFLAG', `--${k} ${JSON.stringify(s)}: must be a whole number from ${min} to ${max}`)
    return n
  }
  const endpoints = String(get('etcd-endpoints'))
  const ifaceRegex = get('iface-regex') as string[]
  for (const r of ifaceRegex) compileIfaceRegex(r)
  const ifaceCanReach = String(get('iface-can-reach'))
  // an IPv6 one is for an IPv6-only network (EnableIPv4 false); the underlay's choice says so if it is not one
  if (ifaceCanReach !== '' && !isIPv4(ifaceCanReach) && !isIPv6(ifaceCanReach)) {
    throw new WeftError('EFLAG', `--iface-can-reach ${JSON.stringify(ifaceCanReach)}: not an IP address`)
  }
  const publicIpv6 = String(get('public-ipv6'))
  if (publicIpv6 !== '' && !isIPv6(publicIpv6)) throw new WeftError('EFLAG', `--public-ipv6 ${JSON.stringify(publicIpv6)} is not an IPv6 address`)
  // read again by each dataplane as it is built, after the lease: refused here, before anything is set up
  try { pacingFactor(env.WEFT_UDP_PACING) } catch {
    throw new WeftError('EFLAG', `WEFT_UDP_PACING=${JSON.stringify(env.WEFT_UDP_PACING)}: takes off, or a factor above 0 (unset: 2)`)
  }
  return {
    etcdEndpoints: endpoints === '' ? undefined : endpoints.split(',').map((x) => x.trim()).filter((x) => x !== ''),
    etcdPrefix: String(get('etcd-prefix')),
    etcdKeyfile: String(get('etcd-keyfile')),
    etcdCertfile: String(get('etcd-certfile')),
    etcdCafile: String(get('etcd-cafile')),
    etcdUsername: String(get('etcd-username')),
    etcdPassword: String(get('etcd-password')),
    store: String(get('store')),
    iface: get('iface') as string[],
    ifaceRegex,
    ifaceCanReach,
    publicIp: String(get('public-ip')),
    publicIpv6,
    subnetFile: String(get('subnet-file')),
    subnetLeaseRenewMargin: num('subnet-lease-renew-margin', 1, 1439),
    ipMasq: get('ip-masq') === true,
    ipMasqFullyRandomDisable: get('ip-masq-fully-random-disable') === true,
    iptablesResync: num('iptables-resync', 1, 86400),
    iptablesForwardRules: get('iptables-forward-rules') === true,
    healthzIp: String(get('healthz-ip')),
    healthzPort: num('healthz-port', 0, 65535),
    stateDir: String(get('state-dir')),
    exitOnRevoke: get('exit-on-revoke') === true,
    netConfigPath: String(get('net-config-path')),
    workers: num('workers', 1, 8),
    busyPoll: num('busy-poll', 0, 1_000_000),
    sourceCheck: onOff('source-check', String(get('source-check'))),
    kubeSubnetMgr: get('kube-subnet-mgr') === true,
    kubeApiUrl: String(get('kube-api-url')),
    kubeconfigFile: String(get('kubeconfig-file')),
    kubeAnnotationPrefix: String(get('kube-annotation-prefix')),
    setNodeNetworkUnavailable: get('set-node-network-unavailable') === true,
    verbosity: num('v', -(2 ** 31), 2 ** 31 - 1),
    version: get('version') === true
  }
}

function onOff (flag: string, s: string): boolean {
  if (s === 'on' || s === 'true' || s === '1') return true
  if (s === 'off' || s === 'false' || s === '0') return false
  throw new WeftError('EFLAG', `--${flag} ${JSON.stringify(s)}: must be on or off`)
}

/** The pino level for a klog verbosity: 0 (and below) info, 1..5 debug, 6 and up trace (flannel logs its rule payloads at 6). */
export function logLevelFor (verbosity: number): 'info' | 'debug' | 'trace' {
  if (verbosity <= 0) return 'info'
  return verbosity < 6 ? 'debug' : 'trace'
}

/**
 * Does this command line ask for the version (and parse)? For src/main, which
 * prints it. As in flanneld, the environment is not read for it, so a bad
 * FLANNELD_ variable does not stand in the way.
 */
export function wantsVersion (argv: string[]): boolean {
  try {
    return parseRunFlags(argv, {}).version
  } catch {
    return false // the run itself reports the error
  }
}

export function runFlagsHelp (): string {
  const flags = Object.entries(RUN_FLAGS).map(([k, s]) => {
    const dflt = s.type === 'string' && s.default !== '' && !s.help.includes('(default ') ? ` (default ${String(s.default)})` : ''
    const env = s.env === false ? '' : `; env ${envName(k)}`
    return `  --${k}${s.type === 'string' ? ' VALUE' : ''}\n      ${s.help}${dflt}${env}`
  })
  return [
    ...flags,
    '',
    'Flags are read as flanneld reads them: -name or --name, --name=VALUE or --name VALUE; a boolean',
    'is --name or --name=true|false (not --name false). Unlike flanneld, an argument that is not a flag',
    'is refused (flanneld ignores it and every flag after it), and a FLANNELD_ variable with a bad value',
    'stops weft (flanneld logs it and uses the default).'
  ].join('\n')
}
