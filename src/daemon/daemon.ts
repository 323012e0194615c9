// The node daemon's run loop (`weft run`), flanneld's main.go in shape:
// 1. find the underlay interface and public IP
// 2. open the store and read the network config (or --net-config-path)
// 3. lease a subnet (retrying while the store is unreachable) and write
//    subnet.env
// 4. start the backend, then hand it peer changes from the lease manager
//    until told to stop
// It never exits the process: it returns an exit code to src/main.
import fs from 'node:fs'
import { WeftError } from '../errors'
import { equal, formatCidr } from '../ip/net'
import type { Lease } from '../lease/lease'
import { LeaseManager } from '../lease/manager'
import type { Logger } from '../log'
import { ip4ToString } from '../packet/ip'
import { createBackend } from '../backend/table'
import type { Network } from '../backend/backend'
import { ControlServer } from './control'
import { Metrics } from './metrics'
import { parseNetworkConfig, FLANNEL_CODE_DEFAULT_BACKEND_TYPE } from '../subnet/config'
import type { NetworkConfig } from '../subnet/config'
import { readSubnetEnv, writeSubnetEnv } from '../subnet/env'
import { CONFIG_NOT_FOUND_HINT } from '../store/etcd/hint'
import { describeStore, openStore } from '../store/open'
import { StoreError, backoffMs } from '../store/store'
import type { Store } from '../store/store'
import { sleep } from '../store/decode'
import type { RunFlags } from './flags'
import { Health } from './health'
import { findUnderlay } from './iface'
import { checkPrivileges } from '../kernel/privileges'
import { backendNeeds } from './privileges'

async function readConfig (flags: RunFlags, store: Store): Promise<NetworkConfig> {
  let text: string | undefined
  if (flags.netConfigPath !== '') {
    try {
      text = fs.readFileSync(flags.netConfigPath, 'utf8')
    } catch (err) {
      throw new WeftError('ECONFIG', `cannot read the network config ${flags.netConfigPath}: ${(err as Error).message}`)
    }
  } else {
    text = await store.getConfig()
    if (text === undefined) {
      const hint = store.kind === 'etcd' ? ` (${CONFIG_NOT_FOUND_HINT})` : ''
      throw new WeftError('ENOCONFIG', `no network config in ${describeStore(flags)}: set one with \`weft config set\`${hint}`)
    }
  }
  return parseNetworkConfig(text)
}

/** Lease a subnet, waiting out an unreachable store (logged once per outage). */
async function acquire (m: LeaseManager, log: Logger, signal: AbortSignal): Promise<Lease | undefined> {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      return await m.acquire()
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 'EUNAVAILABLE')) throw err
      if (attempt === 0) log.warn({ err: err.message }, 'cannot reach the store to lease a subnet; retrying')
      await sleep(backoffMs(attempt), signal)
    }
  }
  return undefined
}

export async function runDaemon (flags: RunFlags, log: Logger, signal: AbortSignal): Promise<number> {
  const underlay = findUnderlay(flags.iface, flags.publicIp)
  log.info({ iface: underlay.name, ip: ip4ToString(underlay.ip), publicIP: ip4ToString(underlay.publicIP), mtu: underlay.mtu }, 'using the underlay interface')
  const store = openStore(flags)
  const health = new Health()
  let network: Network | undefined
  let control: ControlServer | undefined
  const metrics = new Metrics(() => network?.status() as never)
  health.setMetrics(() => metrics.text())
  try {
    if (flags.healthzPort > 0) {
      const port = await health.listen(flags.healthzIp, flags.healthzPort)
      log.info({ port }, 'serving /healthz, /readyz and /metrics')
    }
    let cfg: NetworkConfig | undefined
    for (let attempt = 0; cfg === undefined && !signal.aborted; attempt++) {
      try {
        cfg = await readConfig(flags, store)
      } catch (err) {
        if (!(err instanceof StoreError && err.code === 'EUNAVAILABLE')) throw err
        if (attempt === 0) log.warn({ err: err.message }, 'cannot reach the store to read the network config; retrying')
        await sleep(backoffMs(attempt), signal)
      }
    }
    if (cfg === undefined) return 0
    if (cfg.backendDefaulted) {
      log.warn(`the network config has no Backend: using ${cfg.backend.type} (flanneld would silently use ${FLANNEL_CODE_DEFAULT_BACKEND_TYPE})`)
    }
    // Before the lease: a daemon that cannot build its device takes nothing.
    checkPrivileges(backendNeeds(cfg.backend))
    const backend = createBackend({ config: cfg, underlay, stateDir: flags.stateDir, ipMasq: flags.ipMasq, log })
    const mtu = backend.mtu()
    const prev = readPreviousSubnet(flags.subnetFile, cfg, log)
    const manager = new LeaseManager({
      store,
      range: cfg,
      publicIP: underlay.publicIP,
      attrs: backend.leaseAttrs(),
      log,
      renewMarginSeconds: flags.subnetLeaseRenewMargin * 60,
      onRevoked: flags.exitOnRevoke ? 'exit' : 'reacquire',
      ...(prev !== undefined ? { previousSubnet: prev } : {})
    })
    const lease = await acquire(manager, log, signal)
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
      ...(network?.status() ?? {})
    }), log)
    await control.listen()
    health.setReady(true)
    log.info({ subnet: formatCidr(lease.subnet), backend: cfg.backend.type }, 'running')

    const net = network
    await manager.run(signal, {
      onPeers: (events) => {
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
      onStoreHealth: (ok) => {
        health.setStoreHealthy(ok)
        metrics.storeUp.set(ok ? 1 : 0)
        if (!ok) metrics.storeErrors.inc()
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
