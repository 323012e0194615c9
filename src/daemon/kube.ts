// Kube mode's start (flanneld --kube-subnet-mgr): the API client from
// --kubeconfig-file, --kube-api-url or the pod's service account; which
// node we are (NODE_NAME, else the node our pod, POD_NAMESPACE/POD_NAME, is
// scheduled on); our Node as it stands, for the node-public-ip annotation
// that overrides --public-ip; and flanneld's environment knobs.
import { WeftError } from '../errors'
import type { Logger } from '../log'
import { annotationNames } from '../kube/annotations'
import type { Annotations } from '../kube/annotations'
import { KubeClient } from '../kube/client'
import { KubeSubnetManager } from '../kube/manager'
import { storedVtepMac } from '../kube/node'
import type { KubeNode } from '../kube/node'
import type { StoreOutage } from '../store/outage'
import { untilStoreAnswers } from '../store/retry'

export interface KubeFlags {
  kubeconfigFile: string
  kubeApiUrl: string
  kubeAnnotationPrefix: string
}

export interface KubeStart {
  client: KubeClient
  names: Annotations
  nodeName: string
  /** the node-public-ip annotation, when an operator set one: overrides --public-ip */
  storedPublicIP: string | undefined
  /** the node-public-ipv6 annotation, likewise for --public-ipv6 */
  storedPublicIPv6: string | undefined
  /** the VTEP MAC the node's backend-data annotation carries (flanneld's GetStoredMacAddresses) */
  storedVtepMac: string | undefined
  /** and the IPv6 device's, from backend-v6-data */
  storedVtepMac6: string | undefined
  describe: string
}

/**
 * Connects and reads our node, waiting out an API server that does not
 * answer (one warning per outage, /readyz says why). Undefined if stopped
 * meanwhile. Throws for what waiting cannot fix: no config, no node name,
 * RBAC refusing a call (the error names the verb and resource).
 */
export async function startKube (flags: KubeFlags, log: Logger, outage: StoreOutage, signal: AbortSignal, env: NodeJS.ProcessEnv = process.env): Promise<KubeStart | undefined> {
  const names = annotationNames(flags.kubeAnnotationPrefix)
  checkEnv(env, log)
  const client = new KubeClient({ kubeconfig: flags.kubeconfigFile, apiUrl: flags.kubeApiUrl, env })
  const wait = async <T>(msg: string, fn: () => Promise<T>): Promise<T | undefined> => await untilStoreAnswers({ outage, op: 'config', msg, signal }, fn)
  let nodeName = env.NODE_NAME ?? ''
  if (nodeName === '') {
    const pod = env.POD_NAME ?? ''
    const ns = env.POD_NAMESPACE ?? ''
    if (pod === '' || ns === '') throw new WeftError('ENONODE', 'kube subnet manager: set NODE_NAME, or POD_NAME and POD_NAMESPACE (the DaemonSet passes them from the downward API)')
    const spec = await wait('cannot reach the Kubernetes API to find our node from our pod; retrying', async () => await client.getPod(ns, pod))
    if (spec === undefined) return undefined
    nodeName = spec.spec?.nodeName ?? ''
    if (nodeName === '') throw new WeftError('ENONODE', `node name not present in pod spec '${ns}/${pod}'`)
  }
  const node: KubeNode | undefined = await wait('cannot reach the Kubernetes API to read our node; retrying', async () => await client.getNode(nodeName))
  if (node === undefined) return undefined
  const storedPublicIP = KubeSubnetManager.storedPublicIP(node, names)
  if (storedPublicIP !== undefined) log.info({ publicIP: storedPublicIP, annotation: names.nodePublicIP }, 'using the public IP from the node annotation')
  const storedPublicIPv6 = KubeSubnetManager.storedPublicIPv6(node, names)
  if (storedPublicIPv6 !== undefined) log.info({ publicIPv6: storedPublicIPv6, annotation: names.nodePublicIPv6 }, 'using the public IPv6 from the node annotation')
  return { client, names, nodeName, storedPublicIP, storedPublicIPv6, storedVtepMac: storedVtepMac(node, names), storedVtepMac6: storedVtepMac(node, names, true), describe: `the Kubernetes API at ${client.server} as node ${nodeName}` }
}

/**
 * EVENT_QUEUE_DEPTH sizes flanneld's channel between its informer and its
 * backend; weft hands node changes to the backend as they arrive, so there
 * is no queue to size, but a value flanneld would refuse is refused here
 * too. CONT_WHEN_CACHE_NOT_READY lets flanneld go on after its 10-minute
 * wait for the first list; weft never gives up waiting (it says so once and
 * keeps trying), so there is nothing to continue past.
 */
function checkEnv (env: NodeJS.ProcessEnv, log: Logger): void {
  const depth = env.EVENT_QUEUE_DEPTH
  if (depth !== undefined && depth !== '' && !/^[+-]?\d+$/.test(depth)) {
    throw new WeftError('EFLAG', `env EVENT_QUEUE_DEPTH=${depth} format error: expected a whole number`)
  }
  const cont = env.CONT_WHEN_CACHE_NOT_READY
  if (cont !== undefined && cont !== '' && cont !== 'true' && cont !== 'false') {
    log.warn({ CONT_WHEN_CACHE_NOT_READY: cont }, 'CONT_WHEN_CACHE_NOT_READY is neither true nor false; ignored (weft waits for the API server without a deadline)')
  }
}
