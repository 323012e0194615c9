// weft daemons in kube mode on the lab's stand-in API server: the server
// runs in the topology's underlay namespace on API_IP, each node's Node
// object is made as kubelet and kube-controller-manager would make it (a
// name and a pod CIDR), and each daemon runs as the kube-flannel DaemonSet
// runs flanneld: --kube-subnet-mgr, a kubeconfig, the net-conf.json file,
// NODE_NAME (or POD_NAME and POD_NAMESPACE).
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { startDaemon } from '../../lab/daemons'
import type { Daemon } from '../../lab/daemons'
import { startKubeApi } from '../../lab/kube-api'
import type { KubeApi } from '../../lab/kube-api'
import type { Host, Topology } from '../../lab/netns'

export const API_IP = '198.18.0.250'
export const PREFIX = 'flannel.alpha.coreos.com'
export const NET_CONF = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'

export interface KubeCluster {
  api: KubeApi
  dir: string
  kubeconfig: string
  /** the Node object for host h, pod CIDR 10.244.<index>.0/24 unless told */
  addNode: (h: Host, podCIDR?: string) => Promise<void>
  /** `weft run --kube-subnet-mgr` on host h */
  start: (h: Host, o?: { extra?: string[], env?: Record<string, string>, podName?: string }) => Promise<Daemon>
}

export async function kubeCluster (t: { after: (fn: () => Promise<void> | void) => void }, topo: Topology, netConf = NET_CONF): Promise<KubeCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-kube-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const api = await startKubeApi({ topo, host: API_IP })
  t.after(async () => await api.close())
  const kubeconfig = api.kubeconfig(`${dir}/kubeconfig`)
  fs.writeFileSync(`${dir}/net-conf.json`, netConf)
  return {
    api,
    dir,
    kubeconfig,
    addNode: async (h, podCIDR) => await api.addNode({ name: h.name, podCIDR: podCIDR ?? `10.244.${h.index}.0/24`, addresses: [{ type: 'InternalIP', address: h.underlayIp }] }),
    start: async (h, o = {}) => {
      const who: Record<string, string> = o.podName !== undefined ? { POD_NAME: o.podName, POD_NAMESPACE: 'kube-flannel' } : { NODE_NAME: h.name }
      const env: NodeJS.ProcessEnv = { ...process.env, ...who, ...(o.env ?? {}) }
      delete env.KUBERNETES_SERVICE_HOST
      if (o.podName !== undefined) delete env.NODE_NAME
      return await startDaemon(topo, h, {
        dir,
        store: ['--kube-subnet-mgr', '--kubeconfig-file', kubeconfig, '--net-config-path', `${dir}/net-conf.json`],
        extra: o.extra ?? [],
        env
      })
    }
  }
}

/** The annotations flanneld would have written on a node, by their short names. */
export function flannelAnnotations (node: { metadata?: { annotations?: Record<string, string> } } | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(node?.metadata?.annotations ?? {})) if (k.startsWith(`${PREFIX}/`)) out[k.slice(PREFIX.length + 1)] = v
  return out
}
