// The kube subnet manager (flanneld --kube-subnet-mgr): the node's subnet is
// its Node's pod CIDR, its backend data lives in the Node's annotations, and
// peers are the other Nodes. It offers the daemon what the etcd/SQLite
// LeaseManager does (acquire, lease, run), so every backend works unchanged.
//
// 1. acquire(): list the nodes (the initial sync), find ours, check its pod
//    CIDRs against the Network and IPv6Network (per family the network has),
//    and patch our annotations through the status subresource if they
//    differ, as flanneld does (public-ip-overwrite and public-ipv6-overwrite
//    honoured; the IPv6 ones written only when flanneld writes them)
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
import { contains6, formatCidr6 } from '../packet/net6'
import type { Ip6Net } from '../packet/net6'
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
import { annotationsOf, nodeName, podSubnets } from './node'
import type { KubeNode } from './node'
import { NodeTable } from './node-table'
import type { TableChange } from './node-table'

export interface KubeManagerOptions {
  client: KubeClient
  nodeName: string
  names: Annotations
  /** the Network the IPv4 pod CIDRs must lie in */
  network: Ip4Net
  /** the IPv6Network the IPv6 pod CIDRs must lie in (the network's EnableIPv6); absent: no IPv6 */
  network6?: Ip6Net
  /** the network's EnableIPv4 (default true); false: an IPv6-only network, `network` unused */
  enableIPv4?: boolean
  /** our address and backend data, as the backend gives them (attrs.publicIPv6 and backendV6Data: the IPv6 ones) */
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
    this.table = new NodeTable(o.names, { ipv4: o.enableIPv4 ?? true, ipv6: o.network6 !== undefined })
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
    const sub = podSubnets(own)
    if ('reason' in sub) {
      throw new WeftError('ENOPODCIDR', sub.unassigned === true
        ? `node ${JSON.stringify(this.o.nodeName)} pod cidr not assigned (kube-controller-manager assigns one with --allocate-node-cidrs)`
        : `node ${JSON.stringify(this.o.nodeName)}: ${sub.reason}`)
    }
    const ipv4 = this.o.enableIPv4 ?? true
    const network6 = this.o.network6
    // flannel goes on with an empty subnet of a family the network has and
    // the node lacks (and its backend then fails obscurely); weft says so
    if (ipv4 && sub.subnet === undefined) throw new WeftError('ENOPODCIDR', `node ${JSON.stringify(this.o.nodeName)} has no IPv4 pod CIDR, and the network has IPv4 (EnableIPv4): give the node one in spec.podCIDRs, or set EnableIPv4 false`)
    if (network6 !== undefined && sub.subnet6 === undefined) throw new WeftError('ENOPODCIDR', `node ${JSON.stringify(this.o.nodeName)} has no IPv6 pod CIDR, and the network has IPv6 (EnableIPv6): give the node one in spec.podCIDRs (kube-controller-manager's --cluster-cidr with an IPv6 CIDR)`)
    const subnet: Ip4Net = ipv4 && sub.subnet !== undefined ? sub.subnet : { ip: 0, prefixLen: 0 }
    if (ipv4 && (!contains(this.o.network, subnet.ip) || subnet.prefixLen < this.o.network.prefixLen)) {
      throw new WeftError('ESUBNET', `subnet "${formatCidr(this.o.network)}" specified in the flannel net config doesn't contain "${formatCidr(subnet)}" PodCIDR of the "${this.o.nodeName}" node`)
    }
    const subnet6 = network6 !== undefined ? sub.subnet6 : undefined
    if (network6 !== undefined && subnet6 !== undefined && (!contains6(network6, subnet6.ip) || subnet6.prefixLen < network6.prefixLen)) {
      throw new WeftError('ESUBNET', `subnet "${formatCidr6(network6)}" specified in the flannel net config doesn't contain "${formatCidr6(subnet6)}" IPv6 PodCIDR of the "${this.o.nodeName}" node`)
    }
    await this.publish(own)
    this.current = { subnet, ...(subnet6 !== undefined ? { subnet6 } : {}), attrs: this.o.attrs, expiration: null, revision: 0 }
    this.watcher.setOwn(this.current)
    const { skipped } = this.table.reset(list.nodes)
    this.warnSkipped(skipped)
    log.info({ node: this.o.nodeName, ...(ipv4 ? { subnet: formatCidr(subnet) } : {}), ...(subnet6 !== undefined ? { subnet6: formatCidr6(subnet6) } : {}), nodes: list.nodes.length }, 'our subnet is the node\'s pod CIDR')
    return this.current
  }

  /** The node-public-ip annotation flanneld reads at start (its GetStoredPublicIP): overrides --public-ip when set. */
  static storedPublicIP (n: KubeNode, names: Annotations): string | undefined {
    const v = annotationsOf(n)[names.nodePublicIP]
    return typeof v === 'string' && v !== '' ? v : undefined
  }

  /** The node-public-ipv6 annotation flanneld reads at start with node-public-ip: overrides --public-ipv6 when set. */
  static storedPublicIPv6 (n: KubeNode, names: Annotations): string | undefined {
    const v = annotationsOf(n)[names.nodePublicIPv6]
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

  /**
   * The annotations flanneld's AcquireLease writes, given what the node has
   * now: backend-type and kube-subnet-manager always; backend-data and
   * public-ip unless a vxlan node has no IPv4 backend data (IPv6-only: then
   * they are not written; another backend writes "null" and "0.0.0.0", as
   * flanneld does); backend-v6-data and public-ipv6 for vxlan with IPv6
   * backend data, and for host-gw (and wireguard with its data) with a
   * public IPv6, never otherwise. public-ip-overwrite and
   * public-ipv6-overwrite win over our own addresses.
   */
  private wanted (n: KubeNode): Record<string, string> {
    const names = this.o.names
    const a = annotationsOf(n)
    const attrs = this.o.attrs
    const type = attrs.backendType
    const bd = JSON.stringify(attrs.backendData ?? null)
    const v6bd = JSON.stringify(attrs.backendV6Data ?? null)
    const pub6 = attrs.publicIPv6
    const want: Record<string, string> = { [names.backendType]: type }
    if ((type === 'vxlan' && bd !== 'null') || (type === 'wireguard' && bd !== 'null') || type !== 'vxlan') {
      const overwrite = a[names.publicIPOverwrite]
      want[names.backendData] = bd
      want[names.publicIP] = typeof overwrite === 'string' && overwrite !== '' ? overwrite : ip4ToString(this.o.publicIP)
    }
    // (flanneld would crash printing a vxlan node's missing PublicIPv6; weft writes no IPv6 annotations then)
    if (pub6 !== null && ((type === 'vxlan' && v6bd !== 'null') || (type === 'wireguard' && v6bd !== 'null') || type === 'host-gw' || type === 'extension')) {
      const overwrite6 = a[names.publicIPv6Overwrite]
      want[names.backendV6Data] = v6bd
      want[names.publicIPv6] = typeof overwrite6 === 'string' && overwrite6 !== '' ? overwrite6 : pub6
    }
    want[names.subnetKubeManaged] = 'true'
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
    const overwrite6 = have[this.o.names.publicIPv6Overwrite]
    if (typeof overwrite6 === 'string' && overwrite6 !== '' && diff[this.o.names.publicIPv6] !== undefined) {
      this.o.log.info({ publicIPv6: overwrite6, annotation: this.o.names.publicIPv6Overwrite }, 'publishing the public IPv6 from the node annotation')
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
