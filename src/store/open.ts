// Which store a command talks to, from flanneld-style flags: --etcd-endpoints
// selects etcd (with flannel's layout under --etcd-prefix); otherwise the
// embedded SQLite store named by --store sqlite:PATH.
import { WeftError } from '../errors'
import type { EtcdStore as EtcdStoreType } from './etcd/etcd-store'
import { SqliteStore } from './sqlite/sqlite-store'
import type { Store } from './store'

export interface StoreFlags {
  etcdEndpoints: string[] | undefined
  etcdPrefix: string
  etcdKeyfile: string
  etcdCertfile: string
  etcdCafile: string
  etcdUsername: string
  etcdPassword: string
  store: string
}

export function openStore (f: StoreFlags): Store {
  if (f.etcdEndpoints !== undefined) {
    // Loaded only when asked for: etcd's gRPC client takes a third of a second to load.

    const { EtcdStore } = require('./etcd/etcd-store') as { EtcdStore: typeof EtcdStoreType }
    return new EtcdStore({
      endpoints: f.etcdEndpoints,
      prefix: f.etcdPrefix,
      ...(f.etcdKeyfile !== '' ? { keyFile: f.etcdKeyfile } : {}),
      ...(f.etcdCertfile !== '' ? { certFile: f.etcdCertfile } : {}),
      ...(f.etcdCafile !== '' ? { caFile: f.etcdCafile } : {}),
      ...(f.etcdUsername !== '' ? { username: f.etcdUsername } : {}),
      ...(f.etcdPassword !== '' ? { password: f.etcdPassword } : {})
    })
  }
  if (f.store.startsWith('sqlite:')) return new SqliteStore({ path: f.store.slice('sqlite:'.length) })
  throw new WeftError('EFLAG', `--store ${JSON.stringify(f.store)}: expected sqlite:PATH (or give --etcd-endpoints for etcd)`)
}

/** Where the config lives, for messages. */
export function describeStore (f: StoreFlags): string {
  return f.etcdEndpoints !== undefined ? `etcd ${f.etcdEndpoints.join(',')} under ${f.etcdPrefix}` : f.store
}
