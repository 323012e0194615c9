// flanneld's flag names, read the way flanneld reads them: from the command
// line, else from FLANNELD_<NAME> (upper case, dashes to underscores), else
// the default. Plus weft's own: --store, --state-dir, --exit-on-revoke,
// --workers, --busy-poll.
import { parseArgs } from 'node:util'
import { WeftError } from '../errors'
import type { StoreFlags } from '../store/open'

export interface RunFlags extends StoreFlags {
  iface: string[]
  publicIp: string
  subnetFile: string
  subnetLeaseRenewMargin: number
  ipMasq: boolean
  healthzIp: string
  healthzPort: number
  stateDir: string
  exitOnRevoke: boolean
  netConfigPath: string
  workers: number
  /** µs the dataplane keeps polling after each light batch (0 = it sleeps at once) */
  busyPoll: number
  /** drop decapsulated packets whose inner source the sending node does not hold */
  sourceCheck: boolean
}

type Spec = { type: 'string' | 'boolean', multiple?: boolean, default: string | boolean | string[] }

export const RUN_FLAGS: Record<string, Spec & { help: string }> = {
  'etcd-endpoints': { type: 'string', default: '', help: 'comma-separated etcd endpoints; selects the etcd store (flanneld default http://127.0.0.1:4001,http://127.0.0.1:2379)' },
  'etcd-prefix': { type: 'string', default: '/coreos.com/network', help: 'etcd prefix' },
  'etcd-keyfile': { type: 'string', default: '', help: 'TLS key for etcd (TLS is used when key and cert are both given)' },
  'etcd-certfile': { type: 'string', default: '', help: 'TLS certificate for etcd' },
  'etcd-cafile': { type: 'string', default: '', help: 'CA bundle for etcd' },
  'etcd-username': { type: 'string', default: '', help: 'etcd user' },
  'etcd-password': { type: 'string', default: '', help: 'etcd password' },
  store: { type: 'string', default: 'sqlite:/var/lib/weft/store.db', help: 'the embedded store, sqlite:PATH (ignored when --etcd-endpoints is given)' },
  iface: { type: 'string', multiple: true, default: [], help: 'interface (name or IP) for the underlay; repeatable, first match wins; default: the default route\'s' },
  'public-ip': { type: 'string', default: '', help: 'IP advertised to peers (default: the interface\'s)' },
  'subnet-file': { type: 'string', default: '/run/flannel/subnet.env', help: 'where to write subnet.env' },
  'subnet-lease-renew-margin': { type: 'string', default: '60', help: 'renew the lease this many minutes before it expires (1..1439)' },
  'ip-masq': { type: 'boolean', default: false, help: 'masquerade traffic leaving the overlay' },
  'healthz-ip': { type: 'string', default: '0.0.0.0', help: 'address for /healthz, /readyz and /metrics (anyone who reaches it may ask; 127.0.0.1 keeps it to the node)' },
  'healthz-port': { type: 'string', default: '0', help: 'port for /healthz, /readyz and /metrics (0 = off)' },
  'state-dir': { type: 'string', default: '/var/lib/weft', help: 'where weft keeps node state (VTEP MAC)' },
  'exit-on-revoke': { type: 'boolean', default: false, help: 'exit (as flanneld does) instead of re-acquiring when our lease is revoked' },
  'net-config-path': { type: 'string', default: '', help: 'read the network config from this file instead of the store' },
  workers: { type: 'string', default: '1', help: 'dataplane threads for the vxlan backend (1..8): a TUN queue and a UDP socket each, flows spread over them by the kernel' },
  'source-check': { type: 'string', default: 'on', help: 'drop packets from a peer whose inner source lies in a subnet it does not hold (another node\'s, or ours) or is one of this node\'s addresses; off: accept any inner source, as flanneld does (docs/threat-model.md)' },
  'busy-poll': { type: 'string', default: '0', help: 'microseconds the dataplane keeps polling after each light batch instead of sleeping (0..1000000, 0 = off); cuts a round trip by tens of µs, keeps a core busy while such traffic lasts (README: Running a node)' }
}

function envName (flag: string): string {
  return `FLANNELD_${flag.toUpperCase().replace(/-/g, '_')}`
}

export function parseRunFlags (argv: string[], env: NodeJS.ProcessEnv = process.env): RunFlags {
  const options: Record<string, { type: 'string' | 'boolean', multiple?: boolean }> = {}
  for (const [k, s] of Object.entries(RUN_FLAGS)) options[k] = { type: s.type, ...(s.multiple === true ? { multiple: true } : {}) }
  const { values } = parseArgs({ args: argv, options, allowPositionals: false, strict: true })
  const v = values as Record<string, string | boolean | string[] | undefined>
  const get = (k: string): string | boolean | string[] => {
    if (v[k] !== undefined) return v[k] as string | boolean | string[]
    const e = env[envName(k)]
    const spec = RUN_FLAGS[k]
    if (e !== undefined && e !== '') {
      if (spec.type === 'boolean') return e === 'true' || e === '1'
      return spec.multiple === true ? e.split(',') : e
    }
    return spec.default
  }
  const num = (k: string, min: number, max: number): number => {
    const s = String(get(k))
    const n = Number(s)
    if (!Number.isInteger(n) || n < min || n > max) throw new WeftError('EFLAG', `--${k} ${JSON.stringify(s)}: must be a whole number from ${min} to ${max}`)
    return n
  }
  const endpoints = String(get('etcd-endpoints'))
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
    publicIp: String(get('public-ip')),
    subnetFile: String(get('subnet-file')),
    subnetLeaseRenewMargin: num('subnet-lease-renew-margin', 1, 1439),
    ipMasq: get('ip-masq') === true,
    healthzIp: String(get('healthz-ip')),
    healthzPort: num('healthz-port', 0, 65535),
    stateDir: String(get('state-dir')),
    exitOnRevoke: get('exit-on-revoke') === true,
    netConfigPath: String(get('net-config-path')),
    workers: num('workers', 1, 8),
    busyPoll: num('busy-poll', 0, 1_000_000),
    sourceCheck: onOff('source-check', String(get('source-check')))
  }
}

function onOff (flag: string, s: string): boolean {
  if (s === 'on' || s === 'true' || s === '1') return true
  if (s === 'off' || s === 'false' || s === '0') return false
  throw new WeftError('EFLAG', `--${flag} ${JSON.stringify(s)}: must be on or off`)
}

export function runFlagsHelp (): string {
  return Object.entries(RUN_FLAGS).map(([k, s]) => `  --${k}${s.type === 'string' ? ' VALUE' : ''}\n      ${s.help}${s.type === 'string' && s.default !== '' ? ` (default ${String(s.default)})` : ''}; env ${envName(k)}`).join('\n')
}
