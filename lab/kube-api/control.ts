// The control channel between the handle (index.ts) and the server program
// (main.ts): one JSON object a line, requests on the program's stdin,
// answers (matched by id) on its stdout. The first stdout line says the
// server listens. It works the same in the root namespace and in a
// topology's underlay, where the handle's own sockets cannot reach.

/** The program's one argument (JSON). */
export interface ServerConfig {
  host: string
  /** 0: any free port (the ready line says which) */
  port: number
  /** PEM files; absent: plain HTTP */
  certFile?: string
  keyFile?: string
  token: string
  /** the user the token authenticates as, named in Forbidden messages */
  user: string
  /** the state file: loaded at start, written on every change */
  stateFile: string
  /** every resource call, one JSON line each, appended */
  callsFile: string
  bookmarkMs: number
}

export interface NodeSpec {
  name: string
  podCIDR?: string
  podCIDRs?: string[]
  annotations?: Record<string, string>
  labels?: Record<string, string>
  addresses?: Array<{ type: string, address: string }>
}

/** One call in RBAC's terms; `code` is the HTTP status it was answered with. */
export interface KubeApiCall {
  verb: string
  resource: string
  name?: string
  namespace?: string
  code: number
}

/** One HTTP request, resource or not: what kubectl (or a daemon) asked for. */
export interface RequestLine { method: string, url: string, code: number }

/** What the handle asks; on the wire with an `id` (ControlRequest). */
export type ControlOp =
  | { op: 'addNode', node: NodeSpec }
  | { op: 'annotate', name: string, annotations: Record<string, string | null> }
  | { op: 'getNode', name: string }
  | { op: 'deleteNode', name: string }
  | { op: 'addPod', namespace: string, name: string, nodeName: string }
  | { op: 'cutWatches', midEvent: boolean }
  | { op: 'compact' }
  | { op: 'deny', verb: string, resource: string }
  | { op: 'allowAll' }
  | { op: 'requests' }
  | { op: 'resourceVersion' }

export type ControlRequest = ControlOp & { id: number }

export type ControlAnswer = { id: number, ok: true, result?: unknown } | { id: number, ok: false, error: string }

export interface ReadyLine { ready: true, port: number }
