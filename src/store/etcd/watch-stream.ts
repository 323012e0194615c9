// One etcd watch stream (gRPC Watch, one watcher on it) as a pull queue: the
// watch loop asks for the next response with a bound and an abort signal,
// and responses that arrive while the consumer is busy wait in order.
// etcd3's own Watcher is not used: it reconnects with its own backoff,
// skips ahead to the created header's revision (which can lose events if it
// reconnects before a catch-up is delivered) and hides compaction in an
// error; flannel's semantics need all three under our control.
import type { IDuplexStream, IWatchCreateRequest, IWatchRequest, IWatchResponse, WatchClient } from 'etcd3'
import { EtcdWatchStreamEnded } from 'etcd3'
import { StoreError } from '../store'

type Duplex = IDuplexStream<IWatchRequest, IWatchResponse>

export class WatchStream {
  private readonly queue: IWatchResponse[] = []
  private failure: unknown
  private wake: (() => void) | undefined
  private closed = false

  private constructor (private readonly stream: Duplex, private readonly where: string) {
    stream.on('data', (r) => { this.queue.push(r); this.notify() })
    stream.on('error', (err) => { this.failure ??= err; this.notify() })
    stream.on('end', () => { this.failure ??= new EtcdWatchStreamEnded(); this.notify() })
  }

  static async open (client: WatchClient, request: IWatchCreateRequest, where: string): Promise<WatchStream> {
    const ws = new WatchStream(await client.watch(), where)
    ws.stream.write({ create_request: request })
    return ws
  }

  /**
   * The next response; undefined once `signal` aborts. Throws the stream's
   * error, or StoreError EUNAVAILABLE if nothing arrives within timeoutMs
   * (a frozen or half-open etcd accepts the connection but never answers).
   */
  async next (signal: AbortSignal, timeoutMs?: number): Promise<IWatchResponse | undefined> {
    for (;;) {
      if (signal.aborted) return undefined
      const r = this.queue.shift()
      if (r !== undefined) return r
      if (this.failure !== undefined) throw this.failure
      const timedOut = await this.wait(signal, timeoutMs)
      if (timedOut) throw new StoreError('EUNAVAILABLE', `etcd at ${this.where} is unreachable: no answer to a watch request within ${timeoutMs ?? 0} ms`)
    }
  }

  /** Half-close, then cancel: releases the call so nothing keeps the process alive. */
  close (): void {
    if (this.closed) return
    this.closed = true
    // end() first makes the stream unwritable, so etcd3's error hook does not
    // treat our own cancel as a host failure and reset every other call
    try { this.stream.end() } catch { /* already finished */ }
    try { this.stream.cancel() } catch { /* already finished */ }
    this.notify()
  }

  private notify (): void {
    const w = this.wake
    this.wake = undefined
    w?.()
  }

  /** Resolves true on timeout, false on news or abort. */
  private wait (signal: AbortSignal, timeoutMs: number | undefined): Promise<boolean> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined
      const done = (timedOut: boolean): void => {
        clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
        this.wake = undefined
        resolve(timedOut)
      }
      const onAbort = (): void => done(false)
      if (timeoutMs !== undefined) timer = setTimeout(() => done(true), timeoutMs)
      signal.addEventListener('abort', onAbort, { once: true })
      this.wake = () => done(false)
    })
  }
}
