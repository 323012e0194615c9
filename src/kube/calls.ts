// Every call weft makes to the Kubernetes API, in RBAC's terms. The
// ClusterRole in deploy/ is checked against this list (nothing missing,
// nothing extra), and the end-to-end tests check that the calls the stand-in
// API server saw are all in it. They are flanneld's own: a weft DaemonSet
// needs no permission kube-flannel's does not have.
export interface KubeCall {
  readonly verb: 'get' | 'list' | 'watch' | 'patch'
  /** RBAC resource, with its subresource after a slash */
  readonly resource: 'nodes' | 'nodes/status' | 'pods'
  readonly why: string
}

export const KUBE_CALLS: readonly KubeCall[] = [
  { verb: 'get', resource: 'pods', why: 'find our node from POD_NAME and POD_NAMESPACE when NODE_NAME is not set' },
  { verb: 'get', resource: 'nodes', why: 'read our own node (its podCIDR and the node-public-ip annotations)' },
  { verb: 'list', resource: 'nodes', why: 'every node\'s subnet and backend data, at start and after a watch expires' },
  { verb: 'watch', resource: 'nodes', why: 'peers joining, changing and leaving' },
  { verb: 'patch', resource: 'nodes/status', why: 'publish our backend data in our node\'s annotations, and set NetworkUnavailable to False (flanneld patches both through the status subresource)' }
]
