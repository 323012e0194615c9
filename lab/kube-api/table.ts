// Server-side printing: kubectl's default output asks for a meta.k8s.io
// Table (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), and the
// server fills the columns kubectl shows (pkg/printers/internalversion:
// printNode, printPod). Without it kubectl would fall back to NAME and AGE.
import { isObject, type Json, type JsonObject } from './json'
import { metadataOf, nameOf } from './objects'

export type TableVersion = 'v1' | 'v1beta1'
/** includeObject: what each row carries besides its cells */
export type Include = 'None' | 'Metadata' | 'Object'

interface Column { name: string, type: string, format: string, description: string, priority: number }

const col = (name: string, description: string, priority = 0, format = ''): Column => ({ name, type: 'string', format, description, priority })

const NAME = col('Name', 'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically.', 0, 'name')
const AGE = col('Age', 'CreationTimestamp is a timestamp representing the server time when this object was created.')

const COLUMNS: Record<'Node' | 'Pod', Column[]> = {
  Node: [NAME, col('Status', 'The status of the node'), col('Roles', 'The roles of the node'), AGE,
    col('Version', 'Kubelet Version reported by the node.'), col('Internal-IP', 'List of addresses reachable to the node. Queried from cloud provider, if available.', 1),
    col('External-IP', 'List of addresses reachable to the node. Queried from cloud provider, if available.', 1),
    col('OS-Image', 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).', 1),
    col('Kernel-Version', "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
    col('Container-Runtime', 'ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).', 1)],
  Pod: [NAME, col('Ready', 'The aggregate readiness state of this pod for accepting traffic.'), col('Status', 'The aggregate status of the containers in this pod.'),
    col('Restarts', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'), AGE,
    col('IP', 'IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.', 1),
    col('Node', 'NodeName is a request to schedule this pod onto a specific node. If it is non-empty, the scheduler simply schedules this pod onto that node, assuming that it fits resource requirements.', 1),
    col('Nominated Node', 'nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.', 1),
    col('Readiness Gates', 'If specified, all readiness gates will be evaluated for pod readiness.', 1)]
}

/** k8s.io/apimachinery/pkg/util/duration.HumanDuration */
export function humanDuration (ms: number): string {
  const s = Math.trunc(ms / 1000)
  if (s < -1) return '<invalid>'
  if (s < 0) return '0s'
  if (s < 120) return `${s}s`
  const m = Math.trunc(s / 60)
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`
  if (m < 180) return `${m}m`
  const h = Math.trunc(m / 60)
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`
  if (h < 48) return `${h}h`
  const d = Math.trunc(h / 24)
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`
  if (h < 24 * 365 * 2) return `${d}d`
  const y = Math.trunc(d / 365)
  if (h < 24 * 365 * 8) return d % 365 === 0 ? `${y}y` : `${y}y${d % 365}d`
  return `${y}y`
}

function age (o: JsonObject): string {
  const ts = metadataOf(o).creationTimestamp
  return typeof ts === 'string' ? humanDuration(Date.now() - Date.parse(ts)) : '<unknown>'
}

const obj = (v: Json | undefined): JsonObject => isObject(v) ? v : {}
const list = (v: Json | undefined): Json[] => Array.isArray(v) ? v : []

function nodeCells (n: JsonObject): Json[] {
  const status = obj(n.status)
  const ready = list(status.conditions).map(obj).find((c) => c.type === 'Ready')
  const states = ready === undefined ? ['Unknown'] : [ready.status === 'True' ? 'Ready' : 'NotReady']
  if (obj(n.spec).unschedulable === true) states.push('SchedulingDisabled')
  const roles = new Set<string>()
  for (const [k, v] of Object.entries(obj(metadataOf(n).labels))) {
    if (k.startsWith('node-role.kubernetes.io/')) roles.add(k.slice('node-role.kubernetes.io/'.length))
    else if (k === 'kubernetes.io/role' && typeof v === 'string') roles.add(v)
  }
  const addr = (type: string): string => String(list(status.addresses).map(obj).find((a) => a.type === type)?.address ?? '<none>')
  const info = obj(status.nodeInfo)
  const orUnknown = (v: Json | undefined): string => typeof v === 'string' && v !== '' ? v : '<unknown>'
  return [nameOf(n), states.join(','), roles.size === 0 ? '<none>' : [...roles].sort().join(','), age(n), String(info.kubeletVersion ?? ''),
    addr('InternalIP'), addr('ExternalIP'), orUnknown(info.osImage), orUnknown(info.kernelVersion), orUnknown(info.containerRuntimeVersion)]
}

function podCells (p: JsonObject): Json[] {
  const spec = obj(p.spec)
  const status = obj(p.status)
  return [nameOf(p), `0/${list(spec.containers).length}`, String(status.phase ?? 'Pending'), '0', age(p),
    String(status.podIP ?? '<none>'), String(spec.nodeName ?? '<none>'), '<none>', '<none>']
}

function rowObject (o: JsonObject, include: Include, version: TableVersion): JsonObject | undefined {
  if (include === 'None') return undefined
  if (include === 'Object') return o
  return { kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${version}`, metadata: metadataOf(o) }
}

/**
 * `objs` as a Table. `headers` false leaves the column definitions out, as
 * the server does after the first event of a watch.
 */
export function toTable (kind: 'Node' | 'Pod', objs: JsonObject[], o: { version: TableVersion, include: Include, listRv?: string, headers?: boolean }): JsonObject {
  const rows = objs.map((x) => {
    const row: JsonObject = { cells: (kind === 'Pod' ? podCells : nodeCells)(x) }
    const ro = rowObject(x, o.include, o.version)
    if (ro !== undefined) row.object = ro
    return row
  })
  return {
    kind: 'Table',
    apiVersion: `meta.k8s.io/${o.version}`,
    metadata: o.listRv === undefined ? {} : { resourceVersion: o.listRv },
    columnDefinitions: o.headers === false ? null : COLUMNS[kind] as unknown as Json[],
    rows
  }
}
