// Every Node's lease as one list, for `weft leases --kube-subnet-mgr`: what
// each weft or flanneld node would route to, in each family the node has.
import type { LeaseList } from '../store/store'
import { annotationNames } from './annotations'
import { KubeClient } from './client'
import type { KubeClientOptions } from './client'
import { NodeTable } from './node-table'

export async function listNodeLeases (o: KubeClientOptions & { annotationPrefix: string }): Promise<LeaseList & { server: string }> {
  const names = annotationNames(o.annotationPrefix)
  const client = new KubeClient(o)
  const list = await client.listNodes()
  // no network config here: each node's lease of whichever families it has
  const { leases, skipped } = new NodeTable(names, 'auto').reset(list.nodes)
  return { leases, skipped, revision: 0, server: client.server }
}
