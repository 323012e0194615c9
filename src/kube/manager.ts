// The kube subnet manager (flanneld --kube-subnet-mgr): the node's subnet is
// its Node's pod CIDR, its backend data lives in the Node's annotations, and
// peers are the other Nodes. It offers the daemon what the etcd/SQLite
// LeaseManager does (acquire, lease, run), so every backend works unchanged.
//
// 1. acquire(): list the nodes (the initial sync), find ours, check its pod
//    CIDR against the Network, and patch our annotations through the status
//    subresource if they differ, as flanneld does (public-ip-overwrite
//    honoured)
// 2. run(): watch nodes from the list's resourceVersion; events become
//    store events (node-table.ts) and then peer batches (LeaseWatcher); a
//    410 (the version expired) relists and applies the difference; a cut
//    or silent watch resumes from the last version seen (bookmarks keep it
//    fresh); while the API server is away forwarding goes on from the known
//    peers, and the outage is logged once (StoreOutage, /readyz)
// 3. our own node: if someone strips or changes our annotations, they are
//    put back (flanneld would leave the node unreachable until restarted)
// 4. markNetworkAvailable(): NetworkUnavailable=False, reason FlannelIsUp,
//    retried until it lands
import { WeftError } from '../errors'
import type { Logger } from '../log'
import { contains, formatCidr } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { ip4ToString } from '../packet/ip'
import { backoffMs, StoreError } from '../store/store'
import type { StoreOutage } from '../store/outage'
import { untilStoreAnswers } from '../store/retry'
import type { Lease, LeaseAttrs, Skipped } from '../subnet/lease'
import { LeaseWatcher } from '../lease/watcher'
import type { ManagerHandlers } from '../lease/manager'
import { OnceLog } from '../util/log-once'
import { sleep } from '../util/sleep'
import type { Annotations } from './annotations'
import type { KubeClient } from './client'
import { annotationsOf, nodeName, podSubnet } from './node'
import type { KubeNode } from './node'
import { NodeTable } from './node-table'
import type { TableChange } from './node-table'

export interface KubeManagerOptions {
  client: KubeClient
  nodeName: string
  names: Annotations
  /** the Network the pod CIDRs must lie in */
  network: Ip4Net
  /** our address and backend data, as the backend gives them */
  publicIP: number
  attrs: LeaseAttrs
  log: Logger
  outage: StoreOutage
  random?: () => number
  /** a watch ends after a random time in [t, 2t) and resumes (client-go's 5 minutes) */
  watchTimeoutSeconds?: number
  /** a watch that brings nothing, not even a bookmark, for this long is dropped and resumed */
  watchIdleMs?: number
}

const WATCH_TIMEOUT_S = 300
/** The API server sends a bookmark about every minute; three missed is a dead connection. */
const WATCH_IDLE_MS = 3 * 60_000

export class KubeSubnetManager {
  private current: Lease | undefined
  private resourceVersion = ''
  private readonly table: NodeTable
  private readonly watcher = new LeaseWatcher(undefined)
  private readonly invalid: OnceLog
  /** the annotation values we published, to notice someone changing them */
  private published: Record<string, string> = {}
  private readonly random: () => number
  /** called when our own node changes under us (set by run) */
  private onOwn: ((n: KubeNode) => void) | undefined

  constructor (private readonly o: KubeManagerOptions) {
    this.table = new NodeTable(o.names)
    this.random = o.random ?? Math.random
    this.invalid = new OnceLog(o.log, 'ignoring a node whose flannel annotations do not make a lease')
  }

  get outage (): StoreOutage { return this.o.outage }

  get lease (): Lease {
    if (this.current === undefined) throw new WeftError('ENOLEASE', 'no lease acquired yet')
    return this.current
  }

  /** Nodes known, and how many of them are peers (for status). */
  get nodes (): number { return this.table.size }

  async acquire (): Promise<Lease> {
    const { client, log } = this.o
    const list = await client.listNodes()
    this.resourceVersion = list.resourceVersion
    const own = list.nodes.find((n) => nodeName(n) === this.o.nodeName)
    if (own === undefined) throw new WeftError('ENONODE', `node ${JSON.stringify(this.o.nodeName)} does not exist in the Kubernetes API (NODE_NAME, or the pod's spec.nodeName, must name this node)`)
    const sub = podSubnet(own)
    if ('reason' in sub) {
      throw new WeftError('ENOPODCIDR', sub.unassigned === true
        ? `node ${JSON.stringify(this.o.nodeName)} pod cidr not assigned (kube-controller-manager assigns one with --allocate-node-cidrs)`
        : `node ${JSON.stringify(this.o.nodeName)}: ${sub.reason}`)
    }
    const subnet = sub.subnet
    if (!contains(this.o.network, subnet.ip) || subnet.prefixLen < this.o.network.prefixLen) {
      throw new WeftError('ESUBNET', `subnet "${formatCidr(this.o.network)}" specified in the flannel net config doesn't contain "${formatCidr(subnet)}" PodCIDR of the "${this.o.nodeName}" node`)
    }
    await this.publish(own)
    this.current = { subnet, attrs: this.o.attrs, expiration: null, revision: 0 }
    this.watcher.setOwn(subnet)
    const { skipped } = this.table.reset(list.nodes)
    this.warnSkipped(skipped)
    log.info({ node: this.o.nodeName, subnet: formatCidr(subnet), nodes: list.nodes.length }, 'our subnet is the node\'s pod CIDR')
    return this.current
  }

  /** The node-public-ip annotation flanneld reads at start (its GetStoredPublicIP): overrides --public-ip when set. */
  static storedPublicIP (n: KubeNode, names: Annotations): string | undefined {
    const v = annotationsOf(n)[names.nodePublicIP]
    return typeof v === 'string' && v !== '' ? v : undefined
  }

  /** Watch until the signal aborts. */
  async run (signal: AbortSignal, h: ManagerHandlers): Promise<void> {
    const first = this.watcher.reset(this.table.leases())
    if (first.length > 0) h.onPeers(first)
    this.onOwn = (n) => { void this.republish(n, signal) }
    const timeout = this.o.watchTimeoutSeconds ?? WATCH_TIMEOUT_S
    /** watches in a row that could not be made: an outage */
    let failures = 0
    /** streams in a row that broke after the server took them, with no event between */
    let cuts = 0
    while (!signal.aborted) {
      let connected = false
      try {
        await this.o.client.watchNodes(this.resourceVersion, {
          onConnected: () => {
            connected = true
            if (failures > 0) { failures = 0; this.o.outage.answered() }
          },
          onEvent: (type, node) => {
            cuts = 0
            const rv = node.metadata?.resourceVersion
            if (typeof rv === 'string' && rv !== '') this.resourceVersion = rv
            if (type === 'BOOKMARK') return
            this.apply(type === 'DELETED' ? this.table.delete(node) : this.table.put(node), h)
            if (nodeName(node) === this.o.nodeName && type !== 'DELETED') this.onOwn?.(node)
            if (nodeName(node) === this.o.nodeName && type === 'DELETED') this.o.log.warn({ node: this.o.nodeName }, 'our Node object was deleted; forwarding goes on, and our annotations are put back if it returns')
          }
        }, signal, { timeoutSeconds: Math.floor(timeout * (1 + this.random())), idleMs: this.o.watchIdleMs ?? WATCH_IDLE_MS })
        // the server ended the watch (its timeout, a restart): resume from the last version seen
        if (failures > 0) { failures = 0; this.o.outage.answered() }
      } catch (err) {
        if (signal.aborted) break
        if (err instanceof StoreError && err.code === 'ECOMPACTED') {
          if (!await this.relist(signal, h)) break
          failures = 0
          continue
        }
        const e = err instanceof StoreError ? err : new StoreError('ESTORE', (err as Error).message)
        if (connected) {
          // a stream that broke after the server took it (cut by a proxy or a
          // load balancer, or the server going down): resume at once from the
          // last version seen; whether the API is away, the next watch tells
          this.o.log.debug({ err: e.message }, 'the node watch broke; resuming')
          await sleep(cuts === 0 ? 0 : backoffMs(cuts - 1, this.random), signal)
          cuts++
          continue
        }
        this.o.outage.failed(e, 'watch', 'lost the Kubernetes API; forwarding continues from the known peers, retrying')
        await sleep(backoffMs(failures++, this.random), signal)
      }
    }
    this.onOwn = undefined
  }

  /** NetworkUnavailable=False with flanneld's reason and message, retried until the API takes it (or the signal aborts). */
  async markNetworkAvailable (signal: AbortSignal): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const patch = { status: { conditions: [{ type: 'NetworkUnavailable', status: 'False', reason: 'FlannelIsUp', message: 'Flannel is running on this node', lastTransitionTime: now, lastHeartbeatTime: now }] } }
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        await this.o.client.patchNodeStatus(this.o.nodeName, patch)
        this.o.log.info({ node: this.o.nodeName }, 'set the node\'s NetworkUnavailable condition to False')
        return
      } catch (err) {
        if (attempt === 0) this.o.log.warn({ err: (err as Error).message }, 'could not set the node\'s NetworkUnavailable condition; retrying')
        await sleep(backoffMs(attempt, this.random), signal)
      }
    }
  }

  /** After a 410: list again, and apply the difference to what peers we knew. */
  private async relist (signal: AbortSignal, h: ManagerHandlers): Promise<boolean> {
    const list = await untilStoreAnswers({ outage: this.o.outage, op: 'watch', msg: 'cannot list the nodes again after the watch expired; retrying', signal, random: this.random }, async () => await this.o.client.listNodes())
    if (list === undefined) return false
    this.resourceVersion = list.resourceVersion
    const { leases, skipped } = this.table.reset(list.nodes)
    this.warnSkipped(skipped)
    const peers = this.watcher.reset(leases)
    this.o.log.info({ nodes: list.nodes.length, added: peers.filter((e) => e.type === 'added').length, removed: peers.filter((e) => e.type === 'removed').length },
      'the node watch expired; listed the nodes again and applied the difference')
    if (peers.length > 0) h.onPeers(peers)
    const own = list.nodes.find((n) => nodeName(n) === this.o.nodeName)
    if (own !== undefined) this.onOwn?.(own)
    return true
  }

  private apply (c: TableChange, h: ManagerHandlers): void {
    this.warnSkipped(c.skipped)
    if (c.events.length === 0) return
    const peers = this.watcher.update(c.events)
    if (peers.length > 0) h.onPeers(peers)
  }

  /** The annotations flanneld's AcquireLease writes, given what the node has now. */
  private wanted (n: KubeNode): Record<string, string> {
    const names = this.o.names
    const a = annotationsOf(n)
    const overwrite = a[names.publicIPOverwrite]
    const want: Record<string, string> = {
      [names.backendType]: this.o.attrs.backendType,
      [names.backendData]: JSON.stringify(this.o.attrs.backendData ?? null),
      [names.publicIP]: typeof overwrite === 'string' && overwrite !== '' ? overwrite : ip4ToString(this.o.publicIP),
      [names.subnetKubeManaged]: 'true'
    }
    return want
  }

  /** Patch our annotations if any differs; a strategic merge patch of metadata through /status, as flanneld sends it. */
  private async publish (n: KubeNode): Promise<void> {
    const want = this.wanted(n)
    const have = annotationsOf(n)
    const diff: Record<string, string> = {}
    for (const [k, v] of Object.entries(want)) if (have[k] !== v) diff[k] = v
    this.published = want
    if (Object.keys(diff).length === 0) return
    const overwrite = have[this.o.names.publicIPOverwrite]
    if (typeof overwrite === 'string' && overwrite !== '' && diff[this.o.names.publicIP] !== undefined) {
      this.o.log.info({ publicIP: overwrite, annotation: this.o.names.publicIPOverwrite }, 'publishing the public IP from the node annotation')
    }
    await this.o.client.patchNodeStatus(this.o.nodeName, { metadata: { annotations: diff } })
    this.o.log.info({ node: this.o.nodeName, annotations: Object.keys(diff) }, 'published our backend data in the node\'s annotations')
  }

  private republishing = false
  /** Someone changed our node: put our annotations back if they differ from what we published. */
  private async republish (n: KubeNode, signal: AbortSignal): Promise<void> {
    const want = this.wanted(n)
    const have = annotationsOf(n)
    const changed = Object.entries(want).some(([k, v]) => have[k] !== v) || Object.entries(this.published).some(([k, v]) => want[k] !== v)
    if (!changed || this.republishing) return
    this.republishing = true
    try {
      this.o.log.warn({ node: this.o.nodeName }, 'our node\'s flannel annotations were changed or removed; putting them back')
      for (let attempt = 0; !signal.aborted; attempt++) {
        try {
          await this.publish(n)
          return
        } catch (err) {
          if (attempt === 0) this.o.log.warn({ err: (err as Error).message }, 'could not put our annotations back; retrying')
          await sleep(backoffMs(attempt, this.random), signal)
        }
      }
    } finally {
      this.republishing = false
    }
  }

  private warnSkipped (skipped: readonly Skipped[]): void {
    for (const s of skipped) this.invalid.warn(`${s.key}\u0000${s.reason}`, { node: s.key.replace(/^node /, ''), reason: s.reason })
  }

  /** How many nodes with flannel's annotations were skipped as malformed (each once). */
  get skipped (): number { return this.invalid.total }
}
