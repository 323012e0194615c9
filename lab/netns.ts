// N "hosts" as network namespaces on a shared L2 underlay.
//
//   wt-<runid>-h1 [eth0 198.18.0.1/24] ──veth── [h1 ┐
//   wt-<runid>-h2 [eth0 198.18.0.2/24] ──veth── [h2 ┼ br0]  wt-<runid>-u
//   ...                                           ...┘
//
// Everything lives in namespaces we create: veths are created inside the
// underlay namespace with their peer placed straight into the host namespace,
// so no link ever exists in the root namespace, even if setup dies midway.
// Underlay addresses come from 198.18.0.0/15 (benchmarking range) only.
//
// Teardown is belt and braces: destroy() (idempotent), withTopology()'s
// finally, node:test's t.after, process exit/SIGINT/SIGTERM hooks, and
// cleanupStale() at the next createTopology() for runs that were SIGKILLed.

import { execFileSync } from 'node:child_process'
import type { TestContext } from 'node:test'
import { creatorPid, newRunId, NS_PREFIX, pidAlive } from './names'
import {
  killGroup,
  ProcHandle,
  runToCompletion,
  settlesWithin,
  type ChildHandle,
  type ExecOptions,
  type ExecResult,
  type SpawnOptions,
  type Tracked,
} from './proc'

export { waitFor, type WaitForOptions } from './wait'
export type { ChildHandle, ExecOptions, ExecResult, ExitInfo, SpawnOptions, StreamName } from './proc'

export const UNDERLAY_PREFIX = '198.18.0.'
export const UNDERLAY_PREFIX_LEN = 24
/** With `ipv6`, host i also has 2001:2::i/64 (RFC 5180's benchmarking range, as 198.18.0.0/15 is). */
export const UNDERLAY6_PREFIX = '2001:2::'
export const UNDERLAY6_PREFIX_LEN = 64
const MAX_HOSTS = 254 // 198.18.0.1 .. 198.18.0.254
const IP_TIMEOUT_MS = 10_000
const TERM_GRACE_MS = 1000

export interface Host {
  /** 1-based; host i has underlay address 198.18.0.i. */
  readonly index: number;
  /** 'h1', 'h2', ... */
  readonly name: string;
  /** Namespace name, `wt-<runid>-h<index>`. */
  readonly ns: string;
  /** e.g. '198.18.0.1' (prefix length 24). */
  readonly underlayIp: string;
  /** e.g. '2001:2::1' (prefix length 64), when the topology has `ipv6`; else undefined */
  readonly underlayIp6: string | undefined;
  readonly ifname: 'eth0';
}

export interface TopologyOptions {
  hosts: number;
  /** Shown in error messages. */
  label?: string;
  /** MTU of the underlay (veths and bridge); default 1500. */
  mtu?: number;
  /**
   * Keep IPv6 enabled in the namespaces, and give each host an IPv6
   * underlay address too (UNDERLAY6_PREFIX + index, no duplicate address
   * detection so it is usable at once). Off by default so the underlay
   * carries no router/neighbour solicitations or MLD reports that would
   * confuse packet counts and captures.
   */
  ipv6?: boolean;
  /**
   * 'veth' (the default): the hosts' links are plain veths, which carry a
   * GSO packet whole to the other host: nothing is ever segmented or merged
   * on the underlay, the best case for the kernel's own tunnels. 'nic': each
   * host's eth0 behaves like a NIC without tunnel offloads (virtio_net's
   * common case): super-packets of UDP tunnels, UDP and IP-in-IP are
   * segmented in software before it, and what arrives goes through GRO
   * (NAPI on, its bridge port without TSO, and a flush timeout standing in
   * for a NIC's interrupt coalescing). Needs ethtool.
   */
  underlay?: 'veth' | 'nic';
}

/** What a 'nic' underlay turns off on each host's eth0: the offloads a NIC without tunnel support lacks, so GSO segments before it. */
export const NIC_LIKE_OFF = ['tx-udp_tnl-segmentation', 'tx-udp_tnl-csum-segmentation', 'tx-udp-segmentation', 'tx-gre-segmentation', 'tx-gre-csum-segmentation', 'tx-ipxip4-segmentation', 'tx-ipxip6-segmentation'] as const
/** ns a merged packet may wait in GRO for the next poll on a 'nic' underlay */
export const NIC_LIKE_GRO_FLUSH_NS = 200_000

/** A host, or a namespace name of this topology, or a host name such as 'h1'. */
export type Target = Host | string

export interface Topology {
  readonly runId: string;
  readonly label: string;
  readonly mtu: number;
  /** Namespace holding bridge `br0`. */
  readonly underlayNs: string;
  /** what the hosts' links behave like (TopologyOptions.underlay) */
  readonly underlay: 'veth' | 'nic';
  readonly hosts: readonly Host[];
  /** Every namespace this topology created (underlay first). */
  readonly namespaces: readonly string[];
  /** Run argv to completion inside a namespace of this topology (`ip netns exec`). */
  exec(target: Target, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Start a long-running process inside a namespace; killed at destroy(). */
  spawn(target: Target, argv: readonly string[], opts?: SpawnOptions): ChildHandle;
  /** A host joining later: next index, same underlay. */
  addHost(): Promise<Host>;
  /**
   * An extra namespace `wt-<runid>-<suffix>` (lo up, IPv6 as the hosts'),
   * e.g. a pod: a valid exec/spawn target, deleted by destroy() like the
   * rest. Nothing is linked to it. Resolves with the namespace name.
   */
  createNamespace(suffix: string): Promise<string>;
  /** Kill every process group started here and delete every namespace. Idempotent. */
  destroy(): Promise<void>;
}

/** Topologies not yet destroyed, for the process-exit safety net. */
const live = new Set<TopologyImpl>()

class TopologyImpl implements Topology {
  readonly runId = newRunId()
  readonly label: string
  readonly mtu: number
  readonly underlayNs: string
  readonly hosts: Host[] = []
  readonly namespaces: string[] = []
  private readonly ipv6: boolean
  readonly underlay: 'veth' | 'nic'
  /** Live exec/spawn children (and our own `ip` calls) -- all killed at teardown. */
  private readonly children = new Set<Tracked>()
  /** Serialises addHost() so concurrent calls get distinct, ordered indexes. */
  private hostQueue: Promise<unknown> = Promise.resolve()
  private destroying: Promise<void> | undefined

  constructor (opts: TopologyOptions) {
    this.label = opts.label ?? 'topology'
    this.mtu = opts.mtu ?? 1500
    this.ipv6 = opts.ipv6 ?? false
    this.underlay = opts.underlay ?? 'veth'
    this.underlayNs = this.nsName('u')
  }

  private nsName (suffix: string): string {
    return `${NS_PREFIX}${this.runId}-${suffix}`
  }

  private tag (): string {
    return `[${this.label} ${this.runId}]`
  }

  /** An `ip` management call from the root namespace; it only ever targets our namespaces. */
  private ip (...args: string[]): Promise<ExecResult> {
    return runToCompletion(['ip', ...args], undefined, { timeoutMs: IP_TIMEOUT_MS }, this.children, `${this.tag()} ip ${args.join(' ')}`)
  }

  async init (hosts: number): Promise<void> {
    const u = this.underlayNs
    await this.addNamespace(u)
    // STP is off by default, so bridge ports forward as soon as they are up.
    await this.ip('-n', u, 'link', 'add', 'br0', 'type', 'bridge')
    await this.ip('-n', u, 'link', 'set', 'br0', 'mtu', String(this.mtu), 'up')
    for (let i = 0; i < hosts; i++) await this.addHost()
  }

  private async addNamespace (ns: string): Promise<void> {
    this.namespaces.push(ns) // before creating it: a failure halfway is still torn down
    await this.ip('netns', 'add', ns)
    await this.ip('-n', ns, 'link', 'set', 'lo', 'up')
    // Must precede link creation: new links copy the namespace's `default` settings.
    // With IPv6: no duplicate address detection, whose second of a
    // tentative link-local address holds a new bridge's first neighbour
    // solicitations (and the packets waiting on them) in every fresh
    // namespace: a lab artefact, not something a test should measure.
    const keys = ['all', 'default'].map((k) => this.ipv6 ? `net.ipv6.conf.${k}.accept_dad=0` : `net.ipv6.conf.${k}.disable_ipv6=1`)
    await runToCompletion(['sysctl', '-qw', ...keys], ns, { timeoutMs: IP_TIMEOUT_MS }, this.children, `${this.tag()} sysctl in ${ns}`)
  }

  addHost (): Promise<Host> {
    const next = this.hostQueue.then(() => this.doAddHost())
    this.hostQueue = next.catch(() => {})
    return next
  }

  private async doAddHost (): Promise<Host> {
    if (this.destroying) throw new Error(`${this.tag()} addHost() after destroy()`)
    const index = this.hosts.length + 1
    if (index > MAX_HOSTS) throw new Error(`${this.tag()} at most ${MAX_HOSTS} hosts fit in ${UNDERLAY_PREFIX}0/${UNDERLAY_PREFIX_LEN}`)
    const name = `h${index}`
    const ns = this.nsName(name)
    const underlayIp = `${UNDERLAY_PREFIX}${index}`
    const u = this.underlayNs
    const mtu = String(this.mtu)
    await this.addNamespace(ns)
    // Created in the underlay namespace, peer placed directly into the host: never in root.
    await this.ip('-n', u, 'link', 'add', name, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', mtu, 'netns', ns)
    await this.ip('-n', u, 'link', 'set', name, 'master', 'br0', 'up')
    await this.ip('-n', ns, 'addr', 'add', `${underlayIp}/${UNDERLAY_PREFIX_LEN}`, 'dev', 'eth0')
    const underlayIp6 = this.ipv6 ? `${UNDERLAY6_PREFIX}${index.toString(16)}` : undefined
    if (underlayIp6 !== undefined) await this.ip('-n', ns, 'addr', 'add', `${underlayIp6}/${UNDERLAY6_PREFIX_LEN}`, 'dev', 'eth0', 'nodad')
    await this.ip('-n', ns, 'link', 'set', 'eth0', 'up')
    if (this.underlay === 'nic') await this.nicLike(ns, name)
    const host: Host = { index, name, ns, underlayIp, underlayIp6, ifname: 'eth0' }
    this.hosts.push(host)
    return host
  }

  /** eth0 in `ns` as a NIC without tunnel offloads, with GRO fed by bridge port `port` (TopologyOptions.underlay). */
  private async nicLike (ns: string, port: string): Promise<void> {
    const tag = `${this.tag()} nic-like underlay in ${ns}`
    const off = NIC_LIKE_OFF.flatMap((f) => [f, 'off'])
    await runToCompletion(['ethtool', '-K', 'eth0', ...off, 'gro', 'on'], ns, { timeoutMs: IP_TIMEOUT_MS }, this.children, tag)
    // veth merges only what a peer without TSO sends
    await runToCompletion(['ethtool', '-K', port, 'tso', 'off'], this.underlayNs, { timeoutMs: IP_TIMEOUT_MS }, this.children, tag)
    await runToCompletion(['sh', '-c', `echo ${NIC_LIKE_GRO_FLUSH_NS} > /sys/class/net/eth0/gro_flush_timeout && echo 2 > /sys/class/net/eth0/napi_defer_hard_irqs`], ns, { timeoutMs: IP_TIMEOUT_MS }, this.children, tag)
  }

  async createNamespace (suffix: string): Promise<string> {
    if (this.destroying) throw new Error(`${this.tag()} createNamespace() after destroy()`)
    // 'u' and 'h<N>' belong to the underlay and to (future) hosts.
    if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(suffix) || suffix === 'u' || /^h\d+$/.test(suffix)) {
      throw new Error(`${this.tag()} createNamespace: bad or reserved suffix ${JSON.stringify(suffix)}`)
    }
    const ns = this.nsName(suffix)
    if (this.namespaces.includes(ns)) throw new Error(`${this.tag()} createNamespace: ${ns} already exists`)
    await this.addNamespace(ns)
    return ns
  }

  /** Only namespaces of this topology are valid targets: nothing runs in the root namespace. */
  private resolve (target: Target): string {
    if (this.destroying) throw new Error(`${this.tag()} topology already destroyed`)
    const ns = typeof target === 'string' ? this.hosts.find((h) => h.name === target)?.ns ?? target : target.ns
    if (!this.namespaces.includes(ns)) {
      throw new Error(`${this.tag()} ${JSON.stringify(typeof target === 'string' ? target : target.ns)} is not a namespace of this topology`)
    }
    return ns
  }

  exec (target: Target, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    let ns: string
    try {
      ns = this.resolve(target)
    } catch (e) {
      return Promise.reject(e)
    }
    return runToCompletion(argv, ns, opts, this.children, `${this.tag()} ${ns}: ${argv.join(' ')}`)
  }

  spawn (target: Target, argv: readonly string[], opts: SpawnOptions = {}): ChildHandle {
    const h = new ProcHandle(argv, this.resolve(target), opts)
    this.children.add(h)
    void h.exited.then(() => this.children.delete(h))
    return h
  }

  destroy (): Promise<void> {
    this.destroying ??= this.doDestroy()
    return this.destroying
  }

  private async doDestroy (): Promise<void> {
    // 1. Process groups: SIGTERM, a short grace, then SIGKILL.
    const kids = [...this.children]
    for (const c of kids) if (c.running) killGroup(c.pid, 'SIGTERM')
    const allExited = Promise.all(kids.map((c) => c.exited))
    if (!(await settlesWithin(allExited, TERM_GRACE_MS))) {
      for (const c of kids) if (c.running) killGroup(c.pid, 'SIGKILL')
      await settlesWithin(allExited, 5000)
    }
    // 2. Anything that left our process groups (daemonised) but still sits in
    //    our namespaces would keep them, and their links, alive.
    const noop = new Set<Tracked>()
    for (const ns of this.namespaces) {
      const r = await runToCompletion(['ip', 'netns', 'pids', ns], undefined, { allowFail: true, timeoutMs: IP_TIMEOUT_MS }, noop)
      for (const pid of parsePids(r.stdout)) killPid(pid)
    }
    // 3. Deleting a namespace deletes its links (and the veth peers with them).
    for (const ns of [...this.namespaces].reverse()) {
      await runToCompletion(['ip', 'netns', 'delete', ns], undefined, { allowFail: true, timeoutMs: IP_TIMEOUT_MS }, noop)
    }
    live.delete(this)
    const left = (await listNamespaces()).filter((n) => this.namespaces.includes(n))
    if (left.length) throw new Error(`${this.tag()} destroy() could not delete namespaces: ${left.join(', ')}`)
  }

  /** Synchronous last resort from the process exit/signal hooks. */
  teardownSync (): void {
    for (const c of this.children) if (c.running) tryIgnore(() => killGroup(c.pid, 'SIGKILL'))
    for (const ns of this.namespaces) {
      tryIgnore(() => {
        const out = execFileSync('ip', ['netns', 'pids', ns], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 2000 })
        for (const pid of parsePids(out.toString())) killPid(pid)
      })
      tryIgnore(() => execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore', timeout: 2000 }))
    }
  }
}

function tryIgnore (f: () => void): void {
  try {
    f()
  } catch {
    // best effort: the thing is probably gone already
  }
}

function parsePids (out: string): number[] {
  return out
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number)
    .filter((pid) => pid > 1 && pid !== process.pid)
}

function killPid (pid: number): void {
  tryIgnore(() => process.kill(pid, 'SIGKILL'))
}

/** Names from `ip netns list` (lines look like `name (id: 3)` or just `name`). */
export async function listNamespaces (): Promise<string[]> {
  const r = await runToCompletion(['ip', 'netns', 'list'], undefined, { timeoutMs: IP_TIMEOUT_MS }, new Set())
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean)
}

/**
 * Deletes leftover harness namespaces (`wt-*`) whose creating process is no
 * longer alive, killing whatever still runs inside them first. Namespaces of
 * live runs (other test files running in parallel) are left alone.
 * Returns the names deleted.
 */
export async function cleanupStale (prefix: string = NS_PREFIX): Promise<string[]> {
  if (!prefix.startsWith(NS_PREFIX)) throw new Error(`cleanupStale: prefix must start with ${NS_PREFIX}`)
  const deleted: string[] = []
  const noop = new Set<Tracked>()
  for (const ns of await listNamespaces()) {
    if (!ns.startsWith(prefix)) continue
    const pid = creatorPid(ns)
    if (pid === undefined || pidAlive(pid)) continue
    const r = await runToCompletion(['ip', 'netns', 'pids', ns], undefined, { allowFail: true, timeoutMs: IP_TIMEOUT_MS }, noop)
    for (const p of parsePids(r.stdout)) killPid(p)
    const d = await runToCompletion(['ip', 'netns', 'delete', ns], undefined, { allowFail: true, timeoutMs: IP_TIMEOUT_MS }, noop)
    if (d.code === 0) deleted.push(ns)
  }
  return deleted
}

/** Builds the topology; on any failure tears down whatever was already made, then rethrows. */
export async function createTopology (opts: TopologyOptions): Promise<Topology> {
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > MAX_HOSTS) {
    throw new RangeError(`createTopology: hosts must be an integer in 1..${MAX_HOSTS}, got ${opts.hosts}`)
  }
  if (opts.mtu !== undefined && (!Number.isInteger(opts.mtu) || opts.mtu < 68 || opts.mtu > 65535)) {
    throw new RangeError(`createTopology: mtu must be an integer in 68..65535, got ${opts.mtu}`)
  }
  await cleanupStale()
  const topo = new TopologyImpl(opts)
  live.add(topo)
  installExitHooks()
  try {
    await topo.init(opts.hosts)
  } catch (e) {
    await topo.destroy().catch(() => {}) // the setup error is the interesting one
    throw e
  }
  return topo
}

export interface WithTopologyOptions extends TopologyOptions {
  /** Destroy the topology and reject if `fn` has not finished by then; default 120000. */
  timeoutMs?: number;
}

/**
 * Creates a topology, runs `fn` on it, and always destroys it afterwards
 * (also via `t.after` when a test context is given). If `fn` throws, its
 * error wins over any teardown error.
 */
export async function withTopology<T> (
  t: TestContext | undefined,
  opts: WithTopologyOptions,
  fn: (topo: Topology) => Promise<T>
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 120_000
  const topo = await createTopology(opts)
  t?.after(() => topo.destroy())
  let timer: NodeJS.Timeout | undefined
  let result: T
  try {
    const run = fn(topo)
    run.catch(() => {}) // if we time out, its later rejection must not go unhandled
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`[${topo.label} ${topo.runId}] withTopology: callback did not finish within ${timeoutMs}ms`)), timeoutMs)
    })
    result = await Promise.race([run, timeout])
  } catch (e) {
    clearTimeout(timer)
    await topo.destroy().catch(() => {})
    throw e
  }
  clearTimeout(timer)
  await topo.destroy()
  return result
}

// --- process-level safety nets ---------------------------------------------

function teardownAllSync (): void {
  for (const topo of live) topo.teardownSync()
  live.clear()
}

let exitHooked = false
const signalHooks = new Map<NodeJS.Signals, () => void>()

function installExitHooks (): void {
  if (!exitHooked) {
    process.on('exit', teardownAllSync)
    exitHooked = true
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    if (signalHooks.has(sig)) continue
    const hook = () => {
      teardownAllSync()
      process.removeListener(sig, hook)
      signalHooks.delete(sig)
      // Listening replaced Node's default "terminate on signal". If nobody
      // else handles it, restore that by re-raising with no listener left.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig)
    }
    signalHooks.set(sig, hook)
    process.on(sig, hook)
  }
}
