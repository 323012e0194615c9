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
import type { Lease } from '../subnet/lease'
import { fitsRange } from '../lease/allocate'
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
    const publicIp = kube?.storedPublicIP ?? flags.publicIp
    const underlay = findUnderlay({ iface: flags.iface, ifaceRegex: flags.ifaceRegex, ifaceCanReach: flags.ifaceCanReach, publicIp, log })
    log.info({ iface: underlay.name, ip: ip4ToString(underlay.ip), publicIP: ip4ToString(underlay.publicIP), mtu: underlay.mtu }, 'using the underlay interface')
    const read = await untilStoreAnswers({ outage, op: 'config', msg: 'cannot reach the store to read the network config; retrying', signal }, async () => await readConfig(flags, store))
    if (read === undefined) return 0
    const { cfg, stored } = read
    if (cfg.backendDefaulted) {
      log.warn(`the network config has no Backend: using ${cfg.backend.type} (flanneld would silently use ${FLANNEL_CODE_DEFAULT_BACKEND_TYPE})`)
    }
    if (kube?.storedVtepMac !== undefined && cfg.backend.type === 'vxlan' && adoptVtepMac(flags.stateDir, cfg.backend.vni, kube.storedVtepMac)) {
      log.info({ vtepMAC: kube.storedVtepMac }, 'kept the VTEP MAC our node\'s annotation gives its peers')
    }
    // Before the lease: a daemon that cannot build its device takes nothing.
    checkPrivileges(backendNeeds(cfg.backend))
    if (flags.workers > 1 && cfg.backend.type !== 'vxlan') log.warn({ workers: flags.workers, backend: cfg.backend.type }, 'only the vxlan backend runs more than one dataplane worker: running one')
    const backend = createBackend({ config: cfg, underlay, stateDir: flags.stateDir, ipMasq: flags.ipMasq, workers: flags.workers, busyPoll: flags.busyPoll, sourceCheck: flags.sourceCheck, rules: { forwardRules: flags.iptablesForwardRules, randomFully: !flags.ipMasqFullyRandomDisable, resyncSeconds: flags.iptablesResync }, log })
    const mtu = backend.mtu()
    const prev = readPreviousSubnet(flags.subnetFile, cfg, log)
    const manager: SubnetManager = kube !== undefined
      ? new KubeSubnetManager({ client: kube.client, nodeName: kube.nodeName, names: kube.names, network: cfg.network, publicIP: underlay.publicIP, attrs: backend.leaseAttrs(), log, outage })
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
        ...(prev !== undefined ? { previousSubnet: prev } : {})
      })
    metrics.skippedLeases = () => manager.skipped
    const lease = await untilStoreAnswers({ outage, op: 'acquire', msg: kube !== undefined ? 'cannot reach the Kubernetes API to publish our node\'s lease; retrying' : 'cannot reach the store to lease a subnet; retrying', signal }, async () => await manager.acquire())
    if (lease === undefined) return 0
    const writeEnv = (l: Lease): void => {
      writeSubnetEnv(flags.subnetFile, { network: cfg.network, subnet: l.subnet, mtu, ipMasq: flags.ipMasq })
      log.info({ file: flags.subnetFile, subnet: formatCidr(l.subnet), mtu }, 'wrote subnet.env')
    }
    network = await backend.start(lease)
    writeEnv(lease)
    control = new ControlServer(flags.stateDir, () => ({
      lease: { subnet: formatCidr(manager.lease.subnet), publicIP: ip4ToString(manager.lease.attrs.publicIP), expiration: manager.lease.expiration },
      ready: health.isReady,
      store: describe(),
      storeUp: outage.up,
      ...(network?.status() ?? {})
    }), log, { onRefused: (reason) => metrics.httpRefused.inc({ server: 'control', reason }) })
    await control.listen()
    health.setReady(true)
    log.info({ subnet: formatCidr(lease.subnet), backend: cfg.backend.type }, 'running')

    const net = network
    if (manager instanceof KubeSubnetManager && flags.setNodeNetworkUnavailable) void manager.markNetworkAvailable(signal)
    // A lease for a subnet this network cannot hold (left from an older
    // Network, or written by hand) costs that entry only: skipped, named once.
    // Named once each, in bounded memory and at a bounded rate: a writer can invent them without end.
    const foreign = new OnceLog(log, 'ignoring a lease that is not a subnet of this network')
    const fits = (e: PeerEvent): boolean => {
      if (kube !== undefined ? inNetwork(e.lease.subnet, cfg.network) : fitsRange(e.lease.subnet, cfg)) return true
      const key = formatCidr(e.lease.subnet)
      if (e.type === 'added') foreign.warn(key, { subnet: key, network: formatCidr(cfg.network), subnetLen: cfg.subnetLen })
      else foreign.forget(key)
      return false
    }
    await manager.run(signal, {
      onPeers: (all) => {
        const events = all.filter(fits)
        if (events.length === 0) return
        for (const e of events) {
          log.debug({ subnet: formatCidr(e.lease.subnet), publicIP: ip4ToString(e.lease.attrs.publicIP), backend: e.lease.attrs.backendType }, e.type === 'added' ? 'peer added' : 'peer removed')
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

/** kube mode: a pod CIDR need only lie in the Network (kube-controller-manager picks its size, not SubnetLen), as in flanneld. */
function inNetwork (s: Ip4Net, network: Ip4Net): boolean {
  return s.prefixLen >= network.prefixLen && contains(network, s.ip)
}

/** The subnet from the previous subnet.env, if it belongs to this network (flannel PR #752). */
function readPreviousSubnet (file: string, cfg: NetworkConfig, log: Logger): NetworkConfig['network'] | undefined {
  try {
    const env = readSubnetEnv(file)
    if (env === undefined || !equal(env.network, cfg.network)) return undefined
    return env.subnet
  } catch (err) {
    log.warn({ file, err: (err as Error).message }, 'ignoring an unreadable previous subnet.env')
    return undefined
  }
}
