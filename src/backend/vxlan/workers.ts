// A VXLAN dataplane on more than one core: pipeline 0 on the main thread as
// always, and one more per extra worker thread, each over its own TUN queue
// (IFF_MULTI_QUEUE) and its own UDP socket on the same port (SO_REUSEPORT).
// 1. the kernel spreads the work: a TUN queue is picked per flow (and follows
//    the queue a flow's replies were written to), a socket per inner flow by
//    the cBPF program on the group (native/src/sock.c)
// 2. a worker builds the same Pipeline over its fds, its own Fdb and encap;
//    its counters live in a SharedArrayBuffer that this side reads and sums
// 3. every change to the main Fdb (peer added, moved, gone) and to our
//    subnet is posted to each worker, which applies it between batches.
//    The copies replay the same changes in the same order, so a peer has the
//    same index everywhere and per-peer counters sum by index
// 4. close: each worker closes its fds and exits; one that has not exited
//    after CLOSE_MS is terminated. A worker that dies on its own is logged,
//    and its fds closed if it never took them: the kernel then spreads the
//    flows over the queues and sockets left
// Threads rather than processes: the fds, the addon and the table stay in one
// process, and a worker costs no store connection of its own.
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import type { Ip4Net } from '../../packet/net'
import type { Logger } from '../../log'
import { C, COUNTER_NAMES } from '../../native/counters'
import { closeFd } from '../../native/tun'
import type { Fdb } from '../../dataplane/fdb'
import { PER_PEER } from '../../dataplane/fdb'
import { UNKNOWN_RING } from '../../dataplane/outside'
import { dataplaneSnapshot } from '../../dataplane/pipeline'
import type { DataplaneSnapshot, Pipeline } from '../../dataplane/pipeline'
import { STAT_SLOTS } from '../../dataplane/stats'

/** How long a worker may take to close its fds and exit before it is terminated. */
const CLOSE_MS = 2000

/** What a worker is built from: plain data, posted once (workerData). */
export interface WorkerSpec {
  /** the worker's TUN queue and UDP socket; the worker owns them from now on */
  tunFd: number
  sockFd: number
  mtu: number
  batch: number
  offloads: { vnet: boolean, tso: boolean, gro: boolean, uso: boolean, gso: boolean }
  /** the worker's loop keeps polling this long (µs) after each light batch (0: sleeps at once) */
  busyPollUs: number
  fdb: { network: Ip4Net, subnetLen: number, port: number, capacity: number }
  vxlan: { vni: number, mac: string, remCsum: boolean }
  checkSource: boolean
  shared: SharedArrayBuffer
}

/** Main -> worker. */
export type WorkerMessage =
  | { op: 'set', subnet: Ip4Net, publicIP: number, mac: Uint8Array | undefined, port: number, remCsum: boolean }
  | { op: 'delete', subnet: Ip4Net }
  | { op: 'own', ip: number, prefixLen: number }
  | { op: 'local', addrs: number[] }
  | { op: 'close' }

/** Worker -> main: 'took' once it owns an fd (it closes with the thread from then on). */
export type WorkerReport = { op: 'took', fd: 'tun' | 'sock' } | { op: 'fatal', where: 'inside' | 'outside', errno: number }

/** The views over one worker's SharedArrayBuffer. */
export interface SharedCounters {
  stats: Float64Array
  tun: Float64Array
  sock: Float64Array
  perPeer: Float64Array
  unknown: Uint32Array
  spoofed: Uint32Array
}

/** Lays out (or, given the buffer, re-opens) a worker's shared counters. */
export function sharedCounters (capacity: number, sab?: SharedArrayBuffer): { sab: SharedArrayBuffer, views: SharedCounters } {
  const n = COUNTER_NAMES.length
  const f64 = STAT_SLOTS + 2 * n + capacity * PER_PEER
  const buf = sab ?? new SharedArrayBuffer(f64 * 8 + 2 * UNKNOWN_RING * 4)
  let at = 0
  const f = (len: number): Float64Array => { const v = new Float64Array(buf, at * 8, len); at += len; return v }
  const stats = f(STAT_SLOTS)
  const tun = f(n)
  const sock = f(n)
  const perPeer = f(capacity * PER_PEER)
  return { sab: buf, views: { stats, tun, sock, perPeer, unknown: new Uint32Array(buf, at * 8, UNKNOWN_RING), spoofed: new Uint32Array(buf, at * 8 + UNKNOWN_RING * 4, UNKNOWN_RING) } }
}

export interface WorkerGroupOptions {
  /** pipeline 0, on this thread, over queue 0 and socket 0 */
  main: Pipeline
  fdb: Fdb
  /** one per extra worker, fds included */
  specs: Array<Omit<WorkerSpec, 'shared'>>
  log: Logger
}

export class WorkerGroup {
  readonly stats: Float64Array
  private readonly workers: Worker[] = []
  private readonly shared: SharedCounters[] = []
  private readonly exited: Array<Promise<void>> = []
  private closing: Promise<void> | undefined

  constructor (private readonly o: WorkerGroupOptions) {
    this.stats = o.main.stats
    const file = path.join(__dirname, 'worker-thread.js')
    for (const [k, spec] of o.specs.entries()) {
      let w: Worker
      const { sab, views } = sharedCounters(spec.fdb.capacity)
      try {
        w = new Worker(file, { workerData: { ...spec, shared: sab } })
      } catch (err) {
        // the workers started so far close their own fds; these have no owner yet
        for (const s of o.specs.slice(k)) { closeFd(s.tunFd); closeFd(s.sockFd) }
        void this.close()
        throw err
      }
      const id = k + 1
      const took = { tun: false, sock: false }
      w.on('message', (m: WorkerReport) => {
        if (m.op === 'took') took[m.fd] = true
        else o.log.error({ worker: id, where: m.where, errno: m.errno }, 'a dataplane worker stopped reading after a fatal I/O error')
      })
      w.on('error', (err) => { o.log.error({ worker: id, err: err.message }, 'a dataplane worker failed') })
      this.exited.push(new Promise((resolve) => {
        w.once('exit', (code) => {
          // a worker that died before taking its fds leaves them open: its
          // TUN queue and socket would still take a share of the traffic
          if (!took.tun) closeFd(spec.tunFd)
          if (!took.sock) closeFd(spec.sockFd)
          // the rest of the dataplane goes on: the kernel spreads the flows over the queues and sockets left
          if (this.closing === undefined) o.log.error({ worker: id, code }, 'a dataplane worker exited: its share of the flows moves to the others')
          resolve()
        })
      }))
      // the thread must not keep the daemon alive on its own
      w.unref()
      this.workers.push(w)
      this.shared.push(views)
    }
    // every change to the table from now on, in order (the copies start empty, as the table does)
    o.fdb.follow({
      set: (subnet, publicIP, mac, port, remCsum) => { this.post({ op: 'set', subnet, publicIP, mac: mac === undefined ? undefined : Uint8Array.from(mac.subarray(0, 6)), port, remCsum }) },
      delete: (subnet) => { this.post({ op: 'delete', subnet }) }
    })
  }

  setOwnSubnet (ip: number, prefixLen: number): void {
    this.o.main.setOwnSubnet(ip, prefixLen)
    this.post({ op: 'own', ip, prefixLen })
  }

  setLocalAddresses (addrs: readonly number[]): void {
    this.o.main.setLocalAddresses(addrs)
    this.post({ op: 'local', addrs: [...addrs] })
  }

  unknownRings (): Uint32Array[] {
    return [...this.o.main.unknownRings(), ...this.shared.map((s) => s.unknown)]
  }

  spoofRings (): Uint32Array[] {
    return [...this.o.main.spoofRings(), ...this.shared.map((s) => s.spoofed)]
  }

  peerCounter (index: number, which: number): number {
    let n = this.o.main.peerCounter(index, which)
    for (const s of this.shared) n += s.perPeer[index * PER_PEER + which]
    return n
  }

  /** The sum over every pipeline, and what each one carried (`workers`, this thread's first). */
  snapshot (): DataplaneSnapshot & { workers: Array<Record<string, number>> } {
    const main = this.o.main.ioCounters()
    const stats = Float64Array.from(this.o.main.stats)
    const tun = Float64Array.from(main.tun)
    const sock = Float64Array.from(main.sock)
    const each = [this.o.main.snapshot()]
    for (const s of this.shared) {
      for (let i = 0; i < stats.length; i++) stats[i] += s.stats[i]
      for (let i = 0; i < tun.length; i++) { tun[i] += s.tun[i]; sock[i] += s.sock[i] }
      each.push(dataplaneSnapshot(s.stats, s.tun, s.sock))
    }
    // an errno is not a count: the last one any pipeline saw
    tun[C.lastErrno] = Math.max(main.tun[C.lastErrno], ...this.shared.map((x) => x.tun[C.lastErrno]))
    sock[C.lastErrno] = Math.max(main.sock[C.lastErrno], ...this.shared.map((x) => x.sock[C.lastErrno]))
    const all = dataplaneSnapshot(stats, tun, sock)
    const workers = each.map((w) => ({ inside_packets: w.counters.inside_packets, outside_packets: w.counters.outside_packets, busy_poll_caught: w.counters.busy_poll_caught }))
    return { ...all, workers }
  }

  /** Closes pipeline 0 now, and resolves once every worker has closed its fds and exited. */
  async close (): Promise<void> {
    if (this.closing !== undefined) return await this.closing
    this.o.main.close()
    this.post({ op: 'close' })
    this.closing = (async () => {
      // a ref'd timer: the workers are unref'd, and on shutdown nothing else may keep the loop alive until they are gone
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => { resolve('late') }, CLOSE_MS) })
      try {
        for (const [k, w] of this.workers.entries()) {
          if (await Promise.race([this.exited[k], late]) === 'late') {
            this.o.log.warn({ worker: k + 1 }, 'a dataplane worker did not stop in time: terminating it')
            await w.terminate()
          }
        }
      } finally {
        clearTimeout(timer)
      }
    })()
    return await this.closing
  }

  private post (m: WorkerMessage): void {
    for (const w of this.workers) w.postMessage(m)
  }
}
