// Pods attached by weft's own CNI plugin (bin/weft run as a CNI plugin,
// delegating to Debian's bridge and host-local in /usr/lib/cni), the way a
// kubelet attaches them: ADD with the conf on stdin and the CNI_* variables,
// inside the node's namespace, reading the node's subnet.env.
import fs from 'node:fs'
import path from 'node:path'
import { BIN } from './daemons'
import type { Host, Topology } from './netns'
import type { Pod } from './pods'

export const CNI_PATH = '/usr/lib/cni'

/** Why pods cannot be attached by the real plugins here, or undefined. */
export function cniSkipReason (): string | undefined {
  return fs.existsSync(path.join(CNI_PATH, 'bridge')) ? undefined : `${CNI_PATH}/bridge not found: install containernetworking-plugins`
}

export interface CniPodsOptions {
  /** the node's subnet.env, as the daemon wrote it */
  subnetFile: string
  /** where the plugin and host-local keep their state for this node */
  dataDir: string
  count: number
}

/**
 * `count` pods on host h through `CNI_COMMAND=ADD`; resolves with their
 * addresses: `ip` the IPv4 one (the IPv6 one on an IPv6-only node), `ip6`
 * the IPv6 one when the node has IPv6.
 */
export async function cniPods (topo: Topology, h: Host, o: CniPodsOptions): Promise<Pod[]> {
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'cbr0', type: 'weft', subnetFile: o.subnetFile, dataDir: `${o.dataDir}/cni`, ipam: { dataDir: `${o.dataDir}/ipam` } })
  const pods: Pod[] = []
  for (let i = 1; i <= o.count; i++) {
    const name = `${h.name}c${i}`
    const ns = await topo.createNamespace(name)
    const vars = { CNI_COMMAND: 'ADD', CNI_PATH, CNI_IFNAME: 'eth0', CNI_CONTAINERID: name, CNI_NETNS: `/var/run/netns/${ns}` }
    const r = await topo.exec(h, ['env', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), BIN], { input: conf, allowFail: true, timeoutMs: 30_000 })
    if (r.code !== 0) throw new Error(`CNI ADD of ${name} on ${h.name} failed (${r.code}): ${r.stdout}${r.stderr}`)
    const out = JSON.parse(r.stdout) as { ips?: Array<{ address: string }> }
    const addrs = (out.ips ?? []).map((a) => a.address.split('/')[0])
    const ip4 = addrs.find((a) => !a.includes(':'))
    const ip6 = addrs.find((a) => a.includes(':'))
    const ip = ip4 ?? ip6
    if (ip === undefined) throw new Error(`CNI ADD of ${name} on ${h.name} gave no address: ${r.stdout}`)
    pods.push({ name, ns, ip, host: h, ...(ip6 !== undefined ? { ip6 } : {}) })
  }
  return pods
}
