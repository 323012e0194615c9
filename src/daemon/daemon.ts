// The node daemon's run loop (`weft run`), flanneld's main.go in shape:
// 1. open the store (etcd, SQLite) or, in kube mode, connect to the
//    Kubernetes API and read our Node
// 2. find the underlay interface and public IP (a node-public-ip
//    annotation overrides --public-ip, as in flanneld)
// 3. read the network config (the store's, or --net-config-path, which kube
//    mode always reads: /etc/kube-flannel/net-conf.json by default)
// 4. lease a subnet (retrying while the store is unreachable; in kube mode
//    the Node's pod CIDR, our backend data published in its annotations)
//    and write subnet.env
// 5. start the backend, then hand it peer changes from the lease manager
//    (or the Node watch) until told to stop
// Whether the store answers is tracked in one place (StoreOutage) that the
// start-up loops and the lease manager report to; /readyz and /metrics show
// it. It never exits the process: it returns an exit code to src/main.
import fs from 'node:fs'
import { WeftError } from '../errors'
import { contains, equal, formatCidr } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { contains6, equal6, formatCidr6, ip6ToString } from '../packet/net6'
import type { Ip6Net } from '../packet/net6'
import { describeSubnets, hasIPv4, leaseKey } from '../subnet/lease'
import type { Lease } from '../subnet/lease'
import { peerMisfit } from '../lease/allocate'
import { LeaseManager } from '../lease/manager'
import type { PeerEvent } from '../lease/watcher'
import { LEASE_TTL_ENV, leaseTiming } from '../lease/timing'
import type { Logger } from '../log'
import { ip4ToString } from '../packet/ip'
import { createBackend } from '../backend/table'
import type { Network } from '../backend/backend'
import { ControlServer } from './control'
import { Metrics } from './metrics'
import { OnceLog } from '../util/log-once'
import { parseNetworkConfig, FLANNEL_CODE_DEFAULT_BACKEND_TYPE } from '../subnet/config'
import type { NetworkConfig } from '../subnet/config'
import { readSubnetEnv, writeSubnetEnv } from '../subnet/env'
import { CONFIG_NOT_FOUND_HINT } from '../store/etcd/hint'
import { describeStore, openStore } from '../store/open'
import type { Store } from '../store/store'
import { StoreOutage } from '../store/outage'
import { untilStoreAnswers } from '../store/retry'
import { KUBE_NET_CONFIG_PATH } from './flags'
import type { RunFlags } from './flags'
import { Health } from './health'
import { findUnderlay } from '../kernel/iface'
import { checkPrivileges } from '../kernel/privileges'
import { backendNeeds } from './privileges'
import { KubeSubnetManager } from '../kube/manager'
import { adoptVtepMac } from '../backend/vxlan/vtep-mac'
import { startKube } from './kube'
import type { KubeStart } from './kube'

/** What the daemon needs from whichever manager holds its lease. */
type SubnetManager = Pick<LeaseManager, 'acquire' | 'run' | 'skipped'> & { readonly lease: Lease }

/** The network config, parsed, and its text if it came from the store (to put back should the store lose it). */
async function readConfig (flags: RunFlags, store: Store | undefined): Promise<{ cfg: NetworkConfig, stored: string | undefined }> {
  const file = flags.netConfigPath !== '' ? flags.netConfigPath : store === undefined ? KUBE_NET_CONFIG_PATH : ''
  if (file !== '' || store === undefined) {
    let text: string
    try {
      text = fs.readFileSync(file, 'utf8')
    } catch (err) {
      throw new WeftError('ECONFIG', `cannot read the network config ${file}: ${(err as Error).message}`)
    }
    return { cfg: parseNetworkConfig(text), stored: undefined }
  }
  const text = await store.getConfig()
  if (text === undefined) {
    const hint = store.kind === 'etcd' ? ` (${CONFIG_NOT_FOUND_HINT})` : ''
    throw new WeftError('ENOCONFIG', `no network config in ${describeStore(flags)}: set one with \`weft config set\`${hint}`)
  }
  return { cfg: parseNetworkConfig(text), stored: text }
}

export async function runDaemon (flags: RunFlags, log: Logger, signal: AbortSignal): Promise<number> {
  const timing = leaseTiming(flags.subnetLeaseRenewMargin)
  if (timing.overridden && !flags.kubeSubnetMgr) {
    log.warn({ ttlSeconds: timing.ttlSeconds, renewMarginSeconds: timing.renewMarginSeconds }, `${LEASE_TTL_ENV} is set: leases last ${timing.ttlSeconds} s instead of flannel's 24 h (a setting for tests)`)
  }
  const store = flags.kubeSubnetMgr ? undefined : openStore(flags)
  let kube: KubeStart | undefined
  const describe = (): string => kube?.describe ?? describeStore(flags)
  let network: Network | undefined
  let control: ControlServer | undefined
  const outage = new StoreOutage(log, {
    onError: (_err, op) => metrics.storeErrors.inc({ op }),
    onChange: (up) => {
      metrics.storeUp.set(up ? 1 : 0)
      if (!up) metrics.storeOutages.inc()
    }
  })
  const metrics = new Metrics(() => network?.status() as never, () => outage.downForMs)
  const health = new Health({ log, onRefused: (reason) => metrics.httpRefused.inc({ server: 'healthz', reason }) })
  health.setMetrics(() => metrics.text())
  health.setStore(() => outage.up ? undefined : { reason: outage.reason ?? 'unknown', forMs: outage.downForMs })
  try {
    if (flags.healthzPort > 0) {
      const port = await health.listen(flags.healthzIp, flags.healthzPort)
      log.info({ port }, 'serving /healthz, /readyz and /metrics')
    }
    if (flags.kubeSubnetMgr) {
      kube = await startKube(flags, log, outage, signal)
      if (kube === undefined) return 0
    }
    const read = await untilStoreAnswers({ outage, op: 'config', msg: 'cannot reach the store to read the network config; retrying', signal }, async () => await readConfig(flags, store))
    if (read === undefined) return 0
    const { cfg, stored } = read
    const publicIp = kube?.storedPublicIP ?? flags.publicIp
    // flanneld too reads the config first: which addresses the interface needs depends on its families
    const family = cfg.enableIPv6 ? (cfg.enableIPv4 ? 'dual' : 'ipv6') : 'ipv4'
    const underlay = findUnderlay({ iface: flags.iface, ifaceRegex: flags.ifaceRegex, ifaceCanReach: flags.ifaceCanReach, publicIp, family, ...(cfg.enableIPv6 ? { publicIpv6: kube?.storedPublicIPv6 ?? flags.publicIpv6 } : {}), log })
    const publicIPv6 = underlay.publicIPv6
    log.info({ iface: underlay.name, ip: ip4ToString(underlay.ip), publicIP: ip4ToString(underlay.publicIP), ...(publicIPv6 !== undefined ? { publicIPv6: ip6ToString(publicIPv6) } : {}), mtu: underlay.mtu }, 'using the underlay interface')
    if (!cfg.enableIPv6 && flags.publicIpv6 !== '') log.warn({ publicIPv6: flags.publicIpv6 }, '--public-ipv6 is not used: the network config does not enable IPv6')
    if (cfg.backendDefaulted) {
      log.warn(`the network config has no Backend: using ${cfg.backend.type} (flanneld would silently use ${FLANNEL_CODE_DEFAULT_BACKEND_TYPE})`)
    }
    if (kube?.storedVtepMac !== undefined && cfg.backend.type === 'vxlan' && adoptVtepMac(flags.stateDir, cfg.backend.vni, kube.storedVtepMac)) {
      log.info({ vtepMAC: kube.storedVtepMac }, 'kept the VTEP MAC our node\'s annotation gives its peers')
    }
    if (kube?.storedVtepMac6 !== undefined && cfg.backend.type === 'vxlan' && cfg.enableIPv6 && adoptVtepMac(flags.stateDir, cfg.backend.vni, kube.storedVtepMac6, 6)) {
      log.info({ vtepMAC6: kube.storedVtepMac6 }, 'kept the IPv6 VTEP MAC our node\'s annotation gives its peers')
    }
    // Before the lease: a daemon that cannot build its device takes nothing.
    checkPrivileges(backendNeeds(cfg.backend))
    if (flags.workers > 1 && cfg.backend.type !== 'vxlan') log.warn({ workers: flags.workers, backend: cfg.backend.type }, 'only the vxlan backend runs more than one dataplane worker: running one')
    const backend = createBackend({ config: cfg, underlay, ...(publicIPv6 !== undefined ? { publicIPv6 } : {}), stateDir: flags.stateDir, ipMasq: flags.ipMasq, workers: flags.workers, busyPoll: flags.busyPoll, sourceCheck: flags.sourceCheck, rules: { forwardRules: flags.iptablesForwardRules, randomFully: !flags.ipMasqFullyRandomDisable, resyncSeconds: flags.iptablesResync }, log })
    const mtu = backend.mtu()
    const prev = readPreviousSubnet(flags.subnetFile, cfg, log)
    const manager: SubnetManager = kube !== undefined
      ? new KubeSubnetManager({ client: kube.client, nodeName: kube.nodeName, names: kube.names, network: cfg.network, ...(cfg.ipv6Network !== undefined ? { network6: cfg.ipv6Network } : {}), enableIPv4: cfg.enableIPv4, publicIP: underlay.publicIP, attrs: backend.leaseAttrs(), log, outage })
      : new LeaseManager({
        store: store as Store,
        range: cfg,
        publicIP: underlay.publicIP,
        attrs: backend.leaseAttrs(),
        log,
        ttlSeconds: timing.ttlSeconds,
        renewMarginSeconds: timing.renewMarginSeconds,
        renewRetryMs: timing.renewRetryMs,
        onRevoked: flags.exitOnRevoke ? 'exit' : 'reacquire',
        outage,
        ...(prev.subnet !== undefined ? { previousSubnet: prev.subnet } : {}),
        ...(prev.subnet6 !== undefined ? { previousSubnet6: prev.subnet6 } : {})
      })
    metrics.skippedLeases = () => manager.skipped
    const lease = await untilStoreAnswers({ outage, op: 'acquire', msg: kube !== undefined ? 'cannot reach the Kubernetes API to publish our node\'s lease; retrying' : 'cannot reach the store to lease a subnet; retrying', signal }, async () => await manager.acquire())
    if (lease === undefined) return 0
    const writeEnv = (l: Lease): void => {
      writeSubnetEnv(flags.subnetFile, {
        ...(cfg.enableIPv4 ? { network: cfg.network, subnet: l.subnet } : {}),
        ...(cfg.ipv6Network !== undefined && l.subnet6 !== undefined ? { network6: cfg.ipv6Network, subnet6: l.subnet6 } : {}),
        mtu,
        ipMasq: flags.ipMasq
      })
      log.info({ file: flags.subnetFile, subnet: describeSubnets(l.subnet, l.subnet6), mtu }, 'wrote subnet.env')
    }
    network = await backend.start(lease)
    writeEnv(lease)
    control = new ControlServer(flags.stateDir, () => ({
      lease: {
        subnet: hasIPv4(manager.lease) ? formatCidr(manager.lease.subnet) : '-',
        publicIP: ip4ToString(manager.lease.attrs.publicIP),
        expiration: manager.lease.expiration,
        ...(manager.lease.subnet6 !== undefined ? { subnet6: formatCidr6(manager.lease.subnet6), publicIPv6: manager.lease.attrs.publicIPv6 } : {})
      },
      ready: health.isReady,
      store: describe(),
      storeUp: outage.up,
      ...(network?.status() ?? {})
    }), log, { onRefused: (reason) => metrics.httpRefused.inc({ server: 'control', reason }) })
    await control.listen()
    health.setReady(true)
    log.info({ subnet: describeSubnets(lease.subnet, lease.subnet6), backend: cfg.backend.type }, 'running')

    const net = network
    if (manager instanceof KubeSubnetManager && flags.setNodeNetworkUnavailable) void manager.markNetworkAvailable(signal)
    // A lease for a subnet this network cannot hold (left from an older
    // Network, or written by hand) costs that entry only: skipped, named once.
    // Named once each, in bounded memory and at a bounded rate: a writer can invent them without end.
    const foreign = new OnceLog(log, 'ignoring a lease that is not a subnet of this network')
    const fits = (e: PeerEvent): boolean => {
      // a peer of one family in a dual-stack network is a peer (of that family's half)
      const misfit = kube !== undefined ? (inNetworks(e.lease, cfg) ? undefined : 'its pod CIDR is not in the network') : peerMisfit(e.lease, cfg)
      if (misfit === undefined) return true
      const key = leaseKey(e.lease)
      if (e.type === 'added') {
        foreign.warn(key, {
          subnet: describeSubnets(e.lease.subnet, e.lease.subnet6),
          reason: misfit,
          ...(cfg.enableIPv4 ? { network: formatCidr(cfg.network), subnetLen: cfg.subnetLen } : {}),
          ...(cfg.ipv6Network !== undefined ? { ipv6Network: formatCidr6(cfg.ipv6Network), ipv6SubnetLen: cfg.ipv6SubnetLen } : {})
        })
      } else foreign.forget(key)
      return false
    }
    await manager.run(signal, {
      onPeers: (all) => {
        const events = all.filter(fits)
        if (events.length === 0) return
        for (const e of events) {
          log.debug({ subnet: describeSubnets(e.lease.subnet, e.lease.subnet6), publicIP: ip4ToString(e.lease.attrs.publicIP), ...(e.lease.attrs.publicIPv6 !== null ? { publicIPv6: e.lease.attrs.publicIPv6 } : {}), backend: e.lease.attrs.backendType }, e.type === 'added' ? 'peer added' : 'peer removed')
        }
        for (const e of events) metrics.peerEvents.inc({ type: e.type })
        metrics.watchBatches.inc()
        metrics.lastWatchEvent.setToCurrentTime()
        net.handlePeers(events)
      },
      onRenewed: () => metrics.renewals.inc(),
      onLeaseChanged: (l) => { void net.setLease(l).then(() => writeEnv(l), (err: Error) => log.error({ err: err.message }, 'could not move the device to the new subnet')) },
      onStoreRecreated: async () => {
        // the config lived in the lost store too; every node holds it, and
        // nodes that start later need it
        if (stored === undefined || store === undefined || await store.getConfig() !== undefined) return
        await store.putConfig(stored)
        log.warn('the recreated store had no network config; put back the one this node runs with')
      }
    })
    log.info('stopped; the lease is kept for the next start')
    return 0
  } finally {
    await control?.close()
    await network?.close()
    await health.close()
    await store?.close()
  }
}

/**
 * kube mode: a pod CIDR need only lie in the Network (kube-controller-manager
 * picks its size, not SubnetLen), as in flanneld; each family the network
 * has, and the lease carries, must.
 */
function inNetworks (l: Lease, cfg: NetworkConfig): boolean {
  if (cfg.enableIPv4 && hasIPv4(l) && !(l.subnet.prefixLen >= cfg.network.prefixLen && contains(cfg.network, l.subnet.ip))) return false
  const n6 = cfg.ipv6Network
  if (n6 !== undefined && l.subnet6 !== undefined && !(l.subnet6.prefixLen >= n6.prefixLen && contains6(n6, l.subnet6.ip))) return false
  return (cfg.enableIPv4 && hasIPv4(l)) || (n6 !== undefined && l.subnet6 !== undefined)
}

/** The subnets from the previous subnet.env, each if it belongs to this network (flannel PR #752). */
function readPreviousSubnet (file: string, cfg: NetworkConfig, log: Logger): { subnet?: Ip4Net, subnet6?: Ip6Net } {
  try {
    const env = readSubnetEnv(file)
    if (env === undefined) return {}
    return {
      ...(cfg.enableIPv4 && env.network !== undefined && env.subnet !== undefined && equal(env.network, cfg.network) ? { subnet: env.subnet } : {}),
      ...(cfg.ipv6Network !== undefined && env.network6 !== undefined && env.subnet6 !== undefined && equal6(env.network6, cfg.ipv6Network) ? { subnet6: env.subnet6 } : {})
    }
  } catch (err) {
    log.warn({ file, err: (err as Error).message }, 'ignoring an unreadable previous subnet.env')
    return {}
  }
}
