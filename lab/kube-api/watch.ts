// Watch streams: HTTP 200, then newline-delimited JSON events
// {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}} in
// chunks. From resourceVersion absent or "0": ADDED for every node, then
// changes; from N: exactly the events after N, or (N older than the kept
// history) one ERROR event with a 410 Expired Status and the end, as the
// real server answers an expired watch. Selectors are applied as the watch
// cache applies them: a node that stops matching is DELETED for this watch,
// one that starts is ADDED.
import type { ServerResponse } from 'node:http'
import type { JsonObject } from './json'
import type { Store, StoreEvent } from './objects'
import type { Selector } from './select'
import { expired } from './status'
import { toTable, type Include, type TableVersion } from './table'

export interface WatchOptions {
  /** resourceVersion as given ('' when absent) */
  rv: string
  selector: Selector
  bookmarks: boolean
  bookmarkMs: number
  /** end the stream after this long (timeoutSeconds) */
  timeoutMs?: number
  /** sendInitialEvents=true: ADDED for every node, then a bookmark that says they are all sent */
  initialEvents: boolean
  table?: { version: TableVersion, include: Include }
}

/** A slow reader holding more than this unread is cut off, as the server drops a watcher it cannot keep up with. */
const MAX_BUFFERED = 16 << 20

interface Wire { type: string, object: JsonObject }

interface OpenWatch {
  res: ServerResponse
  /** an event line to write half of */
  line: () => string
  /** no more events: the stream is being cut */
  stop: () => void
}

/** Open watches, so a test can cut them all. */
export class Watches {
  private readonly open = new Set<OpenWatch>()

  add (w: OpenWatch): () => void {
    this.open.add(w)
    return () => this.open.delete(w)
  }

  /** Destroys every open watch's socket (midEvent: after writing half of an event line); returns how many. */
  cut (midEvent: boolean): number {
    const n = this.open.size
    for (const w of [...this.open]) {
      this.open.delete(w)
      w.stop()
      const sock = w.res.socket
      if (!midEvent) {
        sock?.destroy()
        continue
      }
      const line = w.line()
      // destroy only once the half line is out of our buffers, so the client sees it
      w.res.write(line.slice(0, Math.max(1, Math.floor(line.length / 2))), () => sock?.destroy())
    }
    return n
  }

  get size (): number { return this.open.size }
}

const bookmark = (rv: number, initialEnd = false): Wire => ({
  type: 'BOOKMARK',
  object: { kind: 'Node', apiVersion: 'v1', metadata: initialEnd ? { resourceVersion: String(rv), annotations: { 'k8s.io/initial-events-end': 'true' } } : { resourceVersion: String(rv) } }
})

/** The event as this watch sees it through its selector, or undefined. */
function filtered (e: StoreEvent, sel: Selector): Wire | undefined {
  if (e.type !== 'MODIFIED') return sel(e.object) ? { type: e.type, object: e.object } : undefined
  const was = sel(e.prev!)
  const is = sel(e.object)
  if (was && is) return { type: 'MODIFIED', object: e.object }
  if (is) return { type: 'ADDED', object: e.object }
  if (was) {
    // the old object at the event's resourceVersion, as the watch cache sends it
    const gone = structuredClone(e.prev!)
    ;(gone.metadata as JsonObject).resourceVersion = String(e.rv)
    return { type: 'DELETED', object: gone }
  }
  return undefined
}

/**
 * Serves one watch on `res` until the client goes, timeoutSeconds passes
 * (a clean end) or the watch is cut. The caller has checked o.rv's syntax.
 */
export function serveWatch (store: Store, watches: Watches, res: ServerResponse, o: WatchOptions): void {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' })
  res.flushHeaders()
  const fromZero = o.rv === '' || o.rv === '0'
  const backlog = fromZero || o.initialEvents ? undefined : store.since(Number(o.rv))
  if (!fromZero && !o.initialEvents && backlog === undefined) {
    res.end(JSON.stringify({ type: 'ERROR', object: expired(o.rv, store.oldest).status }) + '\n')
    return
  }

  let headers = true
  const encode = (w: Wire): string => {
    if (o.table === undefined || w.type === 'BOOKMARK' || w.type === 'ERROR') return JSON.stringify(w) + '\n'
    // only the first event of a watch carries the column definitions
    const object = toTable('Node', [w.object], { version: o.table.version, include: o.table.include, headers })
    headers = false
    return JSON.stringify({ type: w.type, object }) + '\n'
  }
  let finished = false
  const send = (w: Wire): void => {
    if (finished) return
    res.write(encode(w))
    if (res.writableLength > MAX_BUFFERED) res.socket?.destroy()
  }

  if (backlog === undefined) {
    for (const n of store.listNodes()) if (o.selector(n)) send({ type: 'ADDED', object: n })
    if (o.initialEvents && o.bookmarks) send(bookmark(store.resourceVersion, true))
  } else {
    for (const e of backlog) {
      const w = filtered(e, o.selector)
      if (w !== undefined) send(w)
    }
  }
  const unsubscribe = store.subscribe((e) => {
    const w = filtered(e, o.selector)
    if (w !== undefined) send(w)
  })
  // what a cut mid-event writes half of: the next bookmark, whether or not this watch asked for them
  const unregister = watches.add({ res, line: () => JSON.stringify(bookmark(store.resourceVersion)) + '\n', stop: () => finish(false) })
  const tick = o.bookmarks ? setInterval(() => send(bookmark(store.resourceVersion)), o.bookmarkMs) : undefined
  const timeout = o.timeoutMs === undefined ? undefined : setTimeout(() => finish(true), o.timeoutMs)
  const finish = (end: boolean): void => {
    if (finished) return
    finished = true
    unsubscribe()
    unregister()
    clearInterval(tick)
    clearTimeout(timeout)
    if (end) res.end()
  }
  // 'close' on the response: the stream ended, or the client (or a cut) closed the connection
  res.on('close', () => finish(false))
}
