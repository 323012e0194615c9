// The store-selecting flags shared by operator commands (config, leases).
import { parseArgs } from 'node:util'
import type { StoreFlags } from '../store/open'

export const STORE_OPTIONS = {
  'etcd-endpoints': { type: 'string' },
  'etcd-prefix': { type: 'string' },
  'etcd-keyfile': { type: 'string' },
  'etcd-certfile': { type: 'string' },
  'etcd-cafile': { type: 'string' },
  'etcd-username': { type: 'string' },
  'etcd-password': { type: 'string' },
  store: { type: 'string' }
} as const

export const STORE_USAGE = '[--store sqlite:PATH | --etcd-endpoints URLS [--etcd-prefix P] [--etcd-keyfile/--etcd-certfile/--etcd-cafile F] [--etcd-username U --etcd-password P]]'

export function parseStoreArgs (argv: string[], env: NodeJS.ProcessEnv = process.env): { flags: StoreFlags, positionals: string[] } {
  const { values, positionals } = parseArgs({ args: argv, options: STORE_OPTIONS, allowPositionals: true })
  const pick = (k: keyof typeof STORE_OPTIONS, def: string): string => values[k] ?? env[`FLANNELD_${k.toUpperCase().replace(/-/g, '_')}`] ?? def
  const endpoints = pick('etcd-endpoints', '')
  return {
    positionals,
    flags: {
      etcdEndpoints: endpoints === '' ? undefined : endpoints.split(',').map((s) => s.trim()).filter((s) => s !== ''),
      etcdPrefix: pick('etcd-prefix', '/coreos.com/network'),
      etcdKeyfile: pick('etcd-keyfile', ''),
      etcdCertfile: pick('etcd-certfile', ''),
      etcdCafile: pick('etcd-cafile', ''),
      etcdUsername: pick('etcd-username', ''),
      etcdPassword: pick('etcd-password', ''),
      store: pick('store', 'sqlite:/var/lib/weft/store.db')
    }
  }
}
