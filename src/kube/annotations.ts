// The Node annotations flanneld publishes and reads, named from
// --kube-annotation-prefix the way flannel's pkg/subnet/kube names them: a
// prefix without a slash gets one ("example.com" -> "example.com/"), one
// with a slash but no trailing separator gets a dash ("example.com/x" ->
// "example.com/x-"), and the result must look like an annotation name's
// DNS prefix.
import { WeftError } from '../errors'

export const DEFAULT_ANNOTATION_PREFIX = 'flannel.alpha.coreos.com'

export interface Annotations {
  /** "true" on every node a flannel-compatible daemon manages; nodes without it are not peers */
  readonly subnetKubeManaged: string
  readonly backendData: string
  readonly backendV6Data: string
  readonly backendType: string
  /** the address peers send to (the node's, or public-ip-overwrite's) */
  readonly publicIP: string
  readonly publicIPv6: string
  /** set by an operator: the public IP this node should use, read at start (flanneld's GetStoredPublicIP) */
  readonly nodePublicIP: string
  readonly nodePublicIPv6: string
  /** set by an operator: publish this address instead of the node's own (a node behind NAT) */
  readonly publicIPOverwrite: string
  readonly publicIPv6Overwrite: string
}

const PREFIX_FORMAT = /^(?:[a-z0-9_-]+\.)+[a-z0-9_-]+\/(?:[a-z0-9_-]+-)?$/

export function annotationNames (prefix: string): Annotations {
  const slashes = prefix.split('/').length - 1
  if (slashes > 1) throw new WeftError('EFLAG', `--kube-annotation-prefix ${JSON.stringify(prefix)}: may contain at most one slash`)
  let p = slashes === 0 ? `${prefix}/` : prefix
  if (!p.endsWith('/') && !p.endsWith('-')) p += '-'
  if (!PREFIX_FORMAT.test(p)) throw new WeftError('EFLAG', `--kube-annotation-prefix ${JSON.stringify(prefix)}: must be in the format fqdn/[0-9a-z-_]*`)
  return {
    subnetKubeManaged: `${p}kube-subnet-manager`,
    backendData: `${p}backend-data`,
    backendV6Data: `${p}backend-v6-data`,
    backendType: `${p}backend-type`,
    publicIP: `${p}public-ip`,
    publicIPv6: `${p}public-ipv6`,
    nodePublicIP: `${p}node-public-ip`,
    nodePublicIPv6: `${p}node-public-ipv6`,
    publicIPOverwrite: `${p}public-ip-overwrite`,
    publicIPv6Overwrite: `${p}public-ipv6-overwrite`
  }
}
