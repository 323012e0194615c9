// flannel's WatchLeases loop over one etcd watch stream at a time: watch the
// subnets prefix from the last revision delivered + 1; on compaction list
// again and hand over a snapshot; on any failure report it, back off (100 ms
// doubling to 5 s, jittered) and resume from the same revision, so nothing
// is lost or delivered twice.
import type { IEvent, IWatchResponse, WatchClient } from 'etcd3'
import type { Skipped } from '../../subnet/lease'
import { backoffMs } from '../store'
import type { LeaseList, StoreError, StoreEvent, WatchBatch, WatchOptions } from '../store'
import { sleep } from '../../util/sleep'
import { WatchStream } from './watch-stream'

export interface WatchContext {
  readonly watchClient: WatchClient
  /** key range of <prefix>/subnets/ */
  readonly key: Buffer
  readonly rangeEnd: Buffer
  readonly where: string
  readonly dialTimeoutMs: number
  /** aborts when the store closes */
  readonly closing: AbortSignal
  list (): Promise<LeaseList>
  /** turns one response's events into store events (TTL look-ups included) */
  decode (events: readonly IEvent[]): Promise<{ events: StoreEvent[], skipped: Skipped[] }>
  toStoreError (err: unknown): StoreError
  /**
   * Makes etcd3 sign in again. It caches the auth token and only notices a
   * stale one (etcd restarted: simple tokens live in its memory) on a unary
   * call, never on a watch, so a watch alone would be refused forever.
   */
  refreshAuth (): Promise<void>
}

/** Aborts when either signal does; dispose() drops the listeners so a long-lived store signal does not collect them. */
function linked (a: AbortSignal, b: AbortSignal): { signal: AbortSignal, dispose: () => void } {
  const ac = new AbortController()
  const abort = (): void => ac.abort()
  if (a.aborted || b.aborted) ac.abort()
  a.addEventListener('abort', abort, { once: true })
  b.addEventListener('abort', abort, { once: true })
  return { signal: ac.signal, dispose: () => { a.removeEventListener('abort', abort); b.removeEventListener('abort', abort) } }
}

function eventRevision (e: StoreEvent): number {
  return e.type === 'put' ? e.lease.revision : e.revision
}

export async function * watchLeases (ctx: WatchContext, fromRevision: number, opts: WatchOptions): AsyncGenerator<WatchBatch> {
  const { signal, dispose } = linked(opts.signal, ctx.closing)
  let rev = fromRevision
  let attempt = 0
  let failing = false
  try {
    while (!signal.aborted) {
      let stream: WatchStream | undefined
      try {
        stream = await WatchStream.open(ctx.watchClient, { key: ctx.key, range_end: ctx.rangeEnd, start_revision: rev + 1 }, ctx.where)
        let created = false
        for (;;) {
          // until etcd accepts the watch, a silent server counts as a failure
          const res: IWatchResponse | undefined = await stream.next(signal, created ? undefined : ctx.dialTimeoutMs)
          if (res === undefined) return
          // created and canceled together is a refusal (auth, permissions,
          // compaction), not a recovery
          if (res.created && !res.canceled && !created) {
            created = true
            attempt = 0
            if (failing) { failing = false; opts.onRecover?.() }
          }
          if (res.compact_revision !== '0' && res.compact_revision !== '') {
            // rev+1 is gone from history: start over from a fresh list, as
            // flannel does since PRs #2471/#2524
            stream.close()
            const list = await ctx.list()
            rev = list.revision
            if (signal.aborted) return
            yield { events: [], snapshot: list.leases, reason: 'compacted', revision: rev, skipped: list.skipped }
            break
          }
          if (res.canceled) {
            throw new Error(`etcd cancelled the watch${res.cancel_reason !== '' ? `: ${res.cancel_reason}` : ''}`)
          }
          if (res.events.length === 0) continue
          const { events, skipped } = await ctx.decode(res.events)
          // the events' own revisions, not the header's: while catching up,
          // etcd sends at most 1000 revisions per response but stamps it with
          // the current revision, so the header can run ahead of what came
          const last = Number(res.events[res.events.length - 1].kv.mod_revision)
          const revision = Math.max(rev, last, ...events.map(eventRevision))
          rev = revision
          if (signal.aborted) return
          yield { events, revision, skipped }
        }
      } catch (err) {
        if (signal.aborted) return
        failing = true
        const e = ctx.toStoreError(err)
        opts.onError?.(e)
        if (/invalid auth token/.test(e.message)) await ctx.refreshAuth()
        await sleep(backoffMs(attempt++), signal)
      } finally {
        stream?.close()
      }
    }
  } finally {
    dispose()
  }
}
