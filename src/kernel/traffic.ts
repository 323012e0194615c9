// The one interface the backends use for flanneld's traffic rules (the
// forward accepts and the --ip-masq masquerade), whichever kernel interface
// carries them: iptables (iptables.ts, flannel's default) or nftables
// (nftables.ts, net-conf.json "EnableNFTables": true), as flannel's
// trafficmngr.TrafficManager has two implementations. The backends pick
// neither by hand: startTrafficRules() does, from TrafficSettings.
//
// Nothing on the nftables path runs iptables (or ip6tables): a host without
// them at all works in that mode.
import type { Logger } from '../log'
import { KernelCommandError, probe } from './exec'
import { TrafficRules } from './iptables'
import type { Cidr } from './iptables-rules'
import { NftRules } from './nftables'
import { NFT_TABLES_ALL, nftRemoveScript } from './nftables-rules'

/** What both kinds of rules do; every method is safe to call again and serialised against the others. */
export interface TrafficManager {
  readonly kind: 'iptables' | 'nftables'
  /** Installs every rule this configuration wants, atomically, replacing whatever of ours was there. */
  apply: () => Promise<void>
  /** Are our rules all present, as applied, and nothing foreign among them? */
  check: () => Promise<boolean>
  /** apply() if check() says anything is missing or changed; resolves true if it had to. */
  resync: () => Promise<boolean>
  /** Removes our rules (all of them, whatever the options); idempotent. */
  remove: () => Promise<void>
}

/** How a node's rules are chosen and kept: the net-conf's EnableNFTables and flanneld's flags. */
export interface TrafficSettings {
  /** net-conf.json EnableNFTables: nftables table flannel-ipv4 instead of iptables chains */
  readonly nftables: boolean
  /** --iptables-forward-rules (default true): the forward accept rules */
  readonly forwardRules: boolean
  /** false = --ip-masq-fully-random-disable; else fully random masquerade where the kernel/tool has it */
  readonly randomFully: boolean
  /** --iptables-resync, in ms (default 5000): how often the rules are checked and repaired */
  readonly resyncMs: number
}

export const DEFAULT_RESYNC_MS = 5000

export const DEFAULT_TRAFFIC_SETTINGS: TrafficSettings = { nftables: false, forwardRules: true, randomFully: true, resyncMs: DEFAULT_RESYNC_MS }

export interface TrafficRulesFor {
  /** the flannel Network */
  network: Cidr
  /** this node's lease subnet */
  podSubnet: Cidr
  /** --ip-masq */
  ipMasq: boolean
  log?: Logger
  /** run the commands in this network namespace (tests only) */
  netns?: string
}

/** The rules for these settings (nothing is run until apply()). */
export function createTrafficRules (s: TrafficSettings, o: TrafficRulesFor): TrafficManager {
  const common = { network: o.network, podSubnet: o.podSubnet, ipMasq: o.ipMasq, forwardRules: s.forwardRules, randomFully: s.randomFully, ...(o.log !== undefined ? { log: o.log } : {}), ...(o.netns !== undefined ? { netns: o.netns } : {}) }
  return s.nftables ? new NftRules(common) : new TrafficRules(common)
}

/**
 * A backend's first rules: what the other kind may have left removed
 * (removeOtherKind), then these created and applied.
 */
export async function startTrafficRules (s: TrafficSettings, o: TrafficRulesFor): Promise<TrafficManager> {
  await removeOtherKind(s, o.log, o.netns)
  const rules = createTrafficRules(s, o)
  await rules.apply()
  return rules
}

/**
 * flanneld at start removes the rules of the mode it is not in, so a node
 * switched between the two does not keep both. In iptables mode weft does
 * the same: it deletes the nftables tables flannel-ipv4 and flannel-ipv6
 * (when there is no nft on the host, there is nothing to delete). In
 * nftables mode it does *not* look for FLANNEL-* iptables chains, as
 * flanneld does: that path runs no iptables at all (a host may have none).
 * weft removes its own rules on a clean stop, so only a crashed iptables-mode
 * node leaves chains behind; `weft run` with EnableNFTables false once, or
 * iptables -F/-X FLANNEL-FWD, FLANNEL-POSTRTG, clears them.
 */
export async function removeOtherKind (s: TrafficSettings, log?: Logger, netns?: string): Promise<void> {
  if (s.nftables) return
  try {
    const r = await probe(['nft', '-f', '-'], { input: nftRemoveScript(NFT_TABLES_ALL), timeoutMs: 20_000, ...(netns !== undefined ? { netns } : {}) })
    if (r.code !== 0) log?.debug({ stderr: r.stderr.trim() }, 'could not remove nftables tables flannel-ipv4/flannel-ipv6 (iptables mode)')
  } catch (err) {
    if (err instanceof KernelCommandError && err.notFound) return
    log?.debug({ err: (err as Error).message }, 'could not remove nftables tables flannel-ipv4/flannel-ipv6 (iptables mode)')
  }
}

/**
 * Calls rules.resync() every intervalMs (flanneld's --iptables-resync) until
 * the returned stop() is called: each run starts intervalMs after the last
 * one ended, so a slow tool never piles calls up. A failure is logged and
 * the next tick tries again. The timer does not keep the process alive.
 */
export function resyncEvery (rules: () => Pick<TrafficManager, 'resync'> & { readonly kind?: TrafficManager['kind'] }, intervalMs: number, log?: Logger): () => Promise<void> {
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let inFlight: Promise<unknown> = Promise.resolve()
  const schedule = (): void => {
    if (stopped) return
    timer = setTimeout(() => {
      const r = rules()
      inFlight = r.resync().catch((err: unknown) => {
        log?.warn({ err: (err as Error).message }, `could not re-apply the ${r.kind ?? 'iptables'} rules`)
      }).finally(schedule)
    }, intervalMs)
    timer.unref()
  }
  schedule()
  return async () => {
    stopped = true
    clearTimeout(timer)
    await inFlight
  }
}
