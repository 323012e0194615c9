// Discovery, what kubectl reads before anything else: /version, the core
// group's versions (/api) and resources (/api/v1), and no other groups
// (/apis). Answered in the legacy form with a plain application/json
// Content-Type, which newer clients (that ask for aggregated discovery
// first) take as "not aggregated" and read as such. Only what is served is
// listed: nodes, nodes/status, pods (get, list).
import type { JsonObject } from './json'

export const VERSION: JsonObject = {
  major: '1',
  minor: '30',
  gitVersion: 'v1.30.0-weft-lab',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2024-04-17T00:00:00Z',
  goVersion: 'go1.22.2',
  compiler: 'gc',
  platform: 'linux/amd64'
}

export function apiVersions (serverAddress: string): JsonObject {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] }
}

export const API_GROUPS: JsonObject = { kind: 'APIGroupList', apiVersion: 'v1', groups: [] }

export const NODE_VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']

export const CORE_RESOURCES: JsonObject = {
  kind: 'APIResourceList',
  groupVersion: 'v1',
  resources: [
    { name: 'nodes', singularName: 'node', namespaced: false, kind: 'Node', verbs: NODE_VERBS, shortNames: ['no'], storageVersionHash: 'XwShjMxG9Fs=' },
    { name: 'nodes/status', singularName: '', namespaced: false, kind: 'Node', verbs: ['get', 'patch', 'update'] },
    { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list'], shortNames: ['po'], categories: ['all'], storageVersionHash: 'xPOwRZ+Yhw8=' }
  ]
}
