// The store behind the stand-in API server: nodes and pods under one
// resourceVersion counter (etcd's revision: global, increasing, a string on
// the wire), the node events a watch replays, and the state file that
// survives a restart.
//
// History: every node event after `oldest` is kept (at most HISTORY events;
// older ones are dropped and `oldest` moves up), so a watch from any
// resourceVersion >= oldest gets exactly the events after it, and one from
// before gets 410 Expired. compact() and a restart both move `oldest` to the
// current resourceVersion: the real server's watch cache starts at its
// initial list after a restart, so every older watch expires then too.
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { clone, deepEqual, isObject, type JsonObject } from './json'

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED'

export interface StoreEvent {
  readonly type: EventType
  readonly rv: number
  /** the node after the event (DELETED: its last state, at the deletion's resourceVersion) */
  readonly object: JsonObject
  /** MODIFIED: the node before, for selectors that stop (or start) matching */
  readonly prev?: JsonObject
}

const HISTORY = 1000

interface State {
  rv: number
  nodes: JsonObject[]
  pods: JsonObject[]
  /** denied "verb resource" pairs: RBAC survives a restart */
  denied: string[]
}

/** RFC 3339 to the second, as metadata.creationTimestamp is written */
export const timestamp = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z')

export function metadataOf (o: JsonObject): JsonObject {
  return isObject(o.metadata) ? o.metadata : {}
}

export const nameOf = (o: JsonObject): string => String(metadataOf(o).name ?? '')

/** kind, apiVersion, metadata (system fields first), spec, status, then anything else: the order the server writes */
export function ordered (o: JsonObject): JsonObject {
  const md = metadataOf(o)
  const meta: JsonObject = {}
  for (const k of ['name', 'namespace', 'uid', 'resourceVersion', 'creationTimestamp']) if (md[k] !== undefined) meta[k] = md[k]!
  const out: JsonObject = {}
  for (const k of ['kind', 'apiVersion']) if (o[k] !== undefined) out[k] = o[k]!
  out.metadata = Object.assign(meta, md)
  return Object.assign(out, o, { metadata: meta })
}

export class Store {
  private rv = 0
  private oldestRv = 0
  private readonly nodes = new Map<string, JsonObject>()
  private readonly pods = new Map<string, JsonObject>()
  private history: StoreEvent[] = []
  private readonly listeners = new Set<(e: StoreEvent) => void>()
  readonly denied = new Set<string>()

  /** Loads `file` if it exists (a restart); every write is saved back to it. */
  constructor (private readonly file: string | undefined) {
    if (file === undefined || !existsSync(file)) return
    const s = JSON.parse(readFileSync(file, 'utf8')) as State
    this.rv = s.rv
    this.oldestRv = s.rv
    for (const n of s.nodes) this.nodes.set(nameOf(n), n)
    for (const p of s.pods) this.pods.set(podKey(String(metadataOf(p).namespace), nameOf(p)), p)
    for (const d of s.denied) this.denied.add(d)
  }

  get resourceVersion (): number { return this.rv }
  /** the oldest resourceVersion a watch may start from */
  get oldest (): number { return this.oldestRv }

  listNodes (): JsonObject[] {
    return [...this.nodes.keys()].sort().map((k) => this.nodes.get(k)!)
  }

  getNode (name: string): JsonObject | undefined { return this.nodes.get(name) }

  /** Stores a new node: uid, creationTimestamp and the next resourceVersion are set here. */
  createNode (node: JsonObject): JsonObject {
    const md = metadataOf(node)
    md.uid = randomUUID()
    md.creationTimestamp = timestamp()
    md.resourceVersion = String(++this.rv)
    const stored = ordered(clone({ ...node, metadata: md }))
    this.nodes.set(nameOf(stored), stored)
    this.emit({ type: 'ADDED', rv: this.rv, object: stored })
    return stored
  }

  /**
   * Replaces a node with `next` (whose metadata.resourceVersion the caller
   * has checked). A change that changes nothing writes nothing: no new
   * resourceVersion, no event, as the server's no-op update.
   */
  updateNode (next: JsonObject): JsonObject {
    const name = nameOf(next)
    const prev = this.nodes.get(name)!
    const candidate = ordered(clone(next))
    metadataOf(candidate).resourceVersion = metadataOf(prev).resourceVersion!
    if (deepEqual(candidate, prev)) return prev
    metadataOf(candidate).resourceVersion = String(++this.rv)
    this.nodes.set(name, candidate)
    this.emit({ type: 'MODIFIED', rv: this.rv, object: candidate, prev })
    return candidate
  }

  deleteNode (name: string): JsonObject {
    const prev = this.nodes.get(name)!
    this.nodes.delete(name)
    const last = clone(prev)
    metadataOf(last).resourceVersion = String(++this.rv)
    this.emit({ type: 'DELETED', rv: this.rv, object: last })
    return last
  }

  getPod (namespace: string, name: string): JsonObject | undefined { return this.pods.get(podKey(namespace, name)) }

  listPods (namespace: string | undefined): JsonObject[] {
    return [...this.pods.entries()].filter(([k]) => namespace === undefined || k.startsWith(`${namespace}/`)).sort(([a], [b]) => a < b ? -1 : 1).map(([, p]) => p)
  }

  createPod (pod: JsonObject): JsonObject {
    const md = metadataOf(pod)
    md.uid = randomUUID()
    md.creationTimestamp = timestamp()
    md.resourceVersion = String(++this.rv)
    const stored = ordered(clone({ ...pod, metadata: md }))
    this.pods.set(podKey(String(md.namespace), nameOf(stored)), stored)
    this.save()
    return stored
  }

  /** Node events after `rv`, or undefined when they are no longer kept (410). */
  since (rv: number): StoreEvent[] | undefined {
    if (rv < this.oldestRv) return undefined
    return this.history.filter((e) => e.rv > rv)
  }

  subscribe (fn: (e: StoreEvent) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  /** Forgets every event: a watch from any resourceVersion before now expires. */
  compact (): void {
    this.history = []
    this.oldestRv = this.rv
  }

  /** Writes the state file (also after a deny/allow, which are no events). */
  save (): void {
    if (this.file === undefined) return
    const s: State = { rv: this.rv, nodes: [...this.nodes.values()], pods: [...this.pods.values()], denied: [...this.denied] }
    // a rename is atomic: a SIGKILL mid-write leaves the previous state, never half of one
    writeFileSync(`${this.file}.tmp`, JSON.stringify(s))
    renameSync(`${this.file}.tmp`, this.file)
  }

  private emit (e: StoreEvent): void {
    this.history.push(e)
    if (this.history.length > HISTORY) {
      const dropped = this.history.splice(0, this.history.length - HISTORY)
      this.oldestRv = dropped[dropped.length - 1]!.rv
    }
    this.save()
    for (const l of [...this.listeners]) l(e)
  }
}

const podKey = (namespace: string, name: string): string => `${namespace}/${name}`
