// `weft leases`: every lease in the store, as a table for people.
import { parseArgs } from 'node:util'
import { field } from '../go-json'
import { formatCidr } from '../packet/net'
import { formatCidr6 } from '../packet/net6'
import { hasIPv4 } from '../subnet/lease'
import type { Lease } from '../subnet/lease'
import { ip4ToString } from '../packet/ip'
import { openStore } from '../store/open'
import type { LeaseList } from '../store/store'
import { DEFAULT_ANNOTATION_PREFIX } from '../kube/annotations'
import { listNodeLeases } from '../kube/list'
import type { Command } from './command'
import { parseStoreArgs, STORE_OPTIONS, STORE_USAGE } from './store-flags'

function expiry (ms: number | null, now: number): string {
  if (ms === null) return 'reservation'
  const s = Math.max(0, Math.round((ms - now) / 1000))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return h > 0 ? `in ${h}h${String(m).padStart(2, '0')}m` : `in ${m}m${String(s % 60).padStart(2, '0')}s`
}

/** A store value's string made safe for a terminal: no control characters, at most 64 characters. */
function printable (s: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
  return clean.length > 64 ? `${clean.slice(0, 63)}…` : clean
}

/** A WireGuard public key as flannel writes it: standard base64 of 32 bytes. */
function isWireguardKey (s: string): boolean {
  return /^[A-Za-z0-9+/]{43}=$/.test(s) && Buffer.from(s, 'base64').length === 32
}

/**
 * What a lease's BackendData says about reaching the node, read the way
 * flannel reads it (Go's encoding/json: keys in any case): vxlan's VtepMAC,
 * wireguard's PublicKey and Port ("key <base64> port 51820"); a value that
 * is not what flannel writes is named, not shown.
 */
function backendData (type: string, data: unknown): string {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return '-'
  const d = data as Record<string, unknown>
  if (type === 'wireguard') {
    const key = field(d, 'PublicKey')
    const port = field(d, 'Port')
    const keyText = typeof key === 'string' && isWireguardKey(key) ? key : '(invalid)'
    const portText = typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535 ? String(port) : '(invalid)'
    return `key ${keyText} port ${portText}`
  }
  const mac = field(d, 'VtepMAC')
  return typeof mac === 'string' ? printable(mac) : '-'
}

/** By IPv4 subnet, then IPv6 subnet (IPv6-only leases, whose IPv4 part is 0.0.0.0/0, first). */
function byAddress (a: Lease, b: Lease): number {
  if (a.subnet.ip !== b.subnet.ip) return a.subnet.ip - b.subnet.ip
  const x = a.subnet6?.ip ?? -1n
  const y = b.subnet6?.ip ?? -1n
  return x < y ? -1 : x > y ? 1 : 0
}

const KUBE_OPTIONS = {
  'kube-subnet-mgr': { type: 'boolean' },
  'kubeconfig-file': { type: 'string' },
  'kube-api-url': { type: 'string' },
  'kube-annotation-prefix': { type: 'string' }
} as const

export const leases: Command = {
  name: 'leases',
  summary: 'list the subnet leases in the store (subnets, public IPs, backend, VTEP MAC or WireGuard key and port, expiry)',
  usage: `weft leases [--json] ${STORE_USAGE}\n       weft leases [--json] --kube-subnet-mgr [--kubeconfig-file F] [--kube-api-url URL] [--kube-annotation-prefix P]   (every Node's lease)`,
  async run (argv, io) {
    const { values } = parseArgs({ args: argv, options: { ...STORE_OPTIONS, ...KUBE_OPTIONS, json: { type: 'boolean' } }, allowPositionals: true })
    const kube = values['kube-subnet-mgr'] === true
    const store = kube ? undefined : openStore(parseStoreArgs(argv.filter((a) => a !== '--json')).flags)
    try {
      const list: LeaseList = store !== undefined
        ? await store.listLeases()
        : await listNodeLeases({ kubeconfig: values['kubeconfig-file'] ?? '', apiUrl: values['kube-api-url'] ?? '', annotationPrefix: values['kube-annotation-prefix'] ?? DEFAULT_ANNOTATION_PREFIX })
      const now = Date.now()
      const rows = [...list.leases].sort(byAddress)
      if (values.json === true) {
        io.out(JSON.stringify(rows.map((l) => ({
          subnet: hasIPv4(l) ? formatCidr(l.subnet) : null,
          subnet6: l.subnet6 !== undefined ? formatCidr6(l.subnet6) : null,
          publicIP: ip4ToString(l.attrs.publicIP),
          publicIPv6: l.attrs.publicIPv6,
          backendType: l.attrs.backendType,
          backendData: l.attrs.backendData ?? null,
          backendV6Data: l.attrs.backendV6Data ?? null,
          expiration: l.expiration === null ? null : new Date(l.expiration).toISOString()
        }))))
      } else {
        // the IPv6 columns only where some lease has IPv6, so an IPv4 cluster's table stays as it was
        const v6 = rows.some((l) => l.subnet6 !== undefined || l.attrs.publicIPv6 !== null || l.attrs.backendV6Data !== undefined)
        const table = [['SUBNET', ...(v6 ? ['IPV6 SUBNET'] : []), 'PUBLIC IP', ...(v6 ? ['PUBLIC IPV6'] : []), 'BACKEND', 'BACKEND DATA', ...(v6 ? ['BACKEND V6 DATA'] : []), ...(kube ? [] : ['EXPIRES'])]]
        for (const l of rows) {
          const type = l.attrs.backendType
          table.push([
            hasIPv4(l) ? formatCidr(l.subnet) : '-',
            ...(v6 ? [l.subnet6 !== undefined ? formatCidr6(l.subnet6) : '-'] : []),
            ip4ToString(l.attrs.publicIP),
            ...(v6 ? [l.attrs.publicIPv6 !== null ? printable(l.attrs.publicIPv6) : '-'] : []),
            type === '' ? 'udp' : printable(type),
            backendData(type, l.attrs.backendData),
            ...(v6 ? [backendData(type, l.attrs.backendV6Data)] : []),
            ...(kube ? [] : [expiry(l.expiration, now)])
          ])
        }
        const w = table[0].map((_, i) => Math.max(...table.map((r) => r[i].length)))
        for (const r of table) io.out(r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd())
        io.out(`${rows.length} lease${rows.length === 1 ? '' : 's'}`)
      }
      for (const s of list.skipped) io.err(`skipped ${s.key}: ${s.reason}`)
      return 0
    } finally {
      await store?.close()
    }
  }
}
