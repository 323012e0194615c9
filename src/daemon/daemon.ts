// The node daemon's run loop (`weft run`), flanneld's main.go in shape:
// 1. find the underlay interface and public IP
// 2. open the store and read the network config (or --net-config-path)
// 3. lease a subnet (retrying while the store is unreachable) and write
//    subnet.env
// 4. start the backend, then hand it peer changes from the lease manager
//    until told to stop
// Whether the store answers is tracked in one place (StoreOutage) that the
// start-up loops and the lease manager report to; /readyz and /metrics show
// it. It never exits the process: it returns an exit code to src/main.
import fs from 'node:fs'
import { WeftError } from '../errors'
import { equal, formatCidr } from '../packet/net'
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
import type { RunFlags } from './flags'
import { Health } from './health'
import { findUnderlay } from '../kernel/iface'
import { checkPrivileges } from '../kernel/privileges'
import { backendNeeds } from './privileges'

/** The network config, parsed, and its text if it came from the store (to put back should the store lose it). */
async function readConfig (flags: RunFlags, store: Store): Promise<{ cfg: NetworkConfig, stored: string | undefined }> {
  if (flags.netConfigPath !== '') {
    let text: string
    try {
      text = fs.readFileSync(flags.netConfigPath, 'utf8')
    } catch (err) {
      throw new WeftError('ECONFIG', `cannot read the network config ${flags.netConfigPath}: ${(err as Error).message}`)
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
  const underlay = findUnderlay(flags.iface, flags.publicIp)
  log.info({ iface: underlay.name, ip: ip4ToString(underlay.ip), publicIP: ip4ToString(underlay.publicIP), mtu: underlay.mtu }, 'using the underlay interface')
  const timing = leaseTiming(flags.subnetLeaseRenewMargin)
  if (timing.overridden) {
    log.warn({ ttlSeconds: timing.ttlSeconds, renewMarginSeconds: timing.renewMarginSeconds }, `${LEASE_TTL_ENV} is set: leases last ${timing.ttlSeconds} s instead of flannel's 24 h (a setting for tests)`)
  }
  const store = openStore(flags)
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
    const read = await untilStoreAnswers({ outage, op: 'config', msg: 'cannot reach the store to read the network config; retrying', signal }, async () => await readConfig(flags, store))
    if (read === undefined) return 0
    const { cfg, stored } = read
    if (cfg.backendDefaulted) {
      log.warn(`the network config has no Backend: using ${cfg.backend.type} (flanneld would silently use ${FLANNEL_CODE_DEFAULT_BACKEND_TYPE})`)
    }
    // Before the lease: a daemon that cannot build its device takes nothing.
    checkPrivileges(backendNeeds(cfg.backend))
    if (flags.workers > 1 && cfg.backend.type !== 'vxlan') log.warn({ workers: flags.workers, backend: cfg.backend.type }, 'only the vxlan backend runs more than one dataplane worker: running one')
    const backend = createBackend({ config: cfg, underlay, stateDir: flags.stateDir, ipMasq: flags.ipMasq, workers: flags.workers, busyPoll: flags.busyPoll, sourceCheck: flags.sourceCheck, log })
    const mtu = backend.mtu()
    const prev = readPreviousSubnet(flags.subnetFile, cfg, log)
    const manager = new LeaseManager({
      store,
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
    const lease = await untilStoreAnswers({ outage, op: 'acquire', msg: 'cannot reach the store to lease a subnet; retrying', signal }, async () => await manager.acquire())
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
      store: describeStore(flags),
      storeUp: outage.up,
      ...(network?.status() ?? {})
    }), log, { onRefused: (reason) => metrics.httpRefused.inc({ server: 'control', reason }) })
    await control.listen()
    health.setReady(true)
    log.info({ subnet: formatCidr(lease.subnet), backend: cfg.backend.type }, 'running')

    const net = network
    // A lease for a subnet this network cannot hold (left from an older
    // Network, or written by hand) costs that entry only: skipped, named once.
    // Named once each, in bounded memory and at a bounded rate: a writer can invent them without end.
    const foreign = new OnceLog(log, 'ignoring a lease that is not a subnet of this network')
    const fits = (e: PeerEvent): boolean => {
      if (fitsRange(e.lease.subnet, cfg)) return true
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
        if (stored === undefined || await store.getConfig() !== undefined) return
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
    await store.close()
  }
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
