// The one interface the backends use for flanneld's traffic rules (the
// forward accepts and the --ip-masq masquerade), whichever kernel interface
// carries them: iptables (iptables.ts, flannel's default) or nftables
// (nftables.ts, net-conf.json "EnableNFTables": true), as flannel's
// trafficmngr.TrafficManager has two implementations. The backends pick
// neither by hand: startTrafficRules() does, from TrafficSettings.
//
// Nothing on the nftables path runs iptables (or ip6tables): a host without
// them at all works in that mode.
//
// A dual-stack network gets both families' rules (flanneld's ip6tables set,
// or its `ip6 flannel-ipv6` table, from the IPv6Network and the lease's IPv6
// subnet), an IPv6-only one only the IPv6 rules: one manager per family, each
// applied in a transaction of its own as flanneld does, behind the one
// TrafficManager (DualStackRules).
import { WeftError } from '../errors'
import type { Logger } from '../log'
import { KernelCommandError, probe } from './exec'
import { TrafficRules } from './iptables'
import { canonicalCidr, cidrFamily, type Cidr, type Family } from './iptables-rules'
import { NftRules } from './nftables'
import { NFT_TABLES_ALL, nftRemoveScript } from './nftables-rules'
import { SerialRules, type RulesOptions } from './serial-rules'

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
  /** net-conf.json EnableNFTables: nftables tables ip flannel-ipv4 / ip6 flannel-ipv6 instead of iptables / ip6tables chains */
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

/** The networks the rules are for: the IPv4 pair, the IPv6 pair, or both (dual stack). */
export interface TrafficRulesFor {
  /** the flannel Network (absent: no IPv4, an IPv6-only network) */
  network?: Cidr
  /** this node's lease subnet (with network) */
  podSubnet?: Cidr
  /** the flannel IPv6Network, e.g. "fc00::/48" (absent: no IPv6) */
  network6?: string
  /** this node's lease IPv6 subnet, e.g. "fc00:0:0:1::/64" (with network6) */
  podSubnet6?: string
  /** --ip-masq */
  ipMasq: boolean
  log?: Logger
  /** run the commands in this network namespace (tests only) */
  netns?: string
}

/**
 * The rules for these settings (nothing is run until apply()): one family's
 * manager itself, or both behind a DualStackRules. Throws EINVAL for a
 * network without its subnet (or the other way round), a CIDR of the wrong
 * family, or neither family; EBADCIDR for a CIDR that does not parse.
 */
export function createTrafficRules (s: TrafficSettings, o: TrafficRulesFor): TrafficManager {
  const base = { ipMasq: o.ipMasq, forwardRules: s.forwardRules, randomFully: s.randomFully, ...(o.log !== undefined ? { log: o.log } : {}), ...(o.netns !== undefined ? { netns: o.netns } : {}) }
  const make = (opts: RulesOptions): TrafficManager => s.nftables ? new NftRules(opts) : new TrafficRules(opts)
  const parts: TrafficManager[] = []
  const v4 = pairOf(4, o.network, o.podSubnet)
  if (v4 !== undefined) parts.push(make({ ...base, ...v4 }))
  const v6 = pairOf(6, o.network6, o.podSubnet6)
  if (v6 !== undefined) parts.push(make({ ...base, ...v6 }))
  if (parts.length === 0) throw new WeftError('EINVAL', 'traffic rules need a network and pod subnet: IPv4 (network, podSubnet), IPv6 (network6, podSubnet6) or both')
  return parts.length === 1 ? parts[0]! : new DualStackRules(parts[0]!, parts[1]!)
}

/** One family's network and subnet, both or neither, and of that family. */
function pairOf (family: Family, network: Cidr | undefined, podSubnet: Cidr | undefined): { network: Cidr, podSubnet: Cidr } | undefined {
  if (network === undefined && podSubnet === undefined) return undefined
  const names = family === 6 ? ['network6', 'podSubnet6'] : ['network', 'podSubnet']
  if (network === undefined || podSubnet === undefined) {
    throw new WeftError('EINVAL', `traffic rules: ${network === undefined ? `${names[1]} without ${names[0]}` : `${names[0]} without ${names[1]}`}`)
  }
  for (const [name, c] of [[names[0], network], [names[1], podSubnet]] as const) {
    if (cidrFamily(c) !== family) throw new WeftError('EINVAL', `traffic rules: ${name} ${JSON.stringify(typeof c === 'string' ? c : canonicalCidr(c))} is not an IPv${family} CIDR`)
  }
  return { network, podSubnet }
}

/**
 * A dual-stack network's rules: the IPv4 and the IPv6 manager of one kind,
 * IPv4 first. Each family stays atomic on its own (flanneld's families are
 * separate transactions too); one family failing does not keep the other
 * from being applied, repaired or removed: the first error is thrown after
 * both were tried.
 */
export class DualStackRules extends SerialRules implements TrafficManager {
  readonly kind: TrafficManager['kind']
  protected readonly missingMsg = 'traffic rules are missing or changed; re-applying them'
  protected readonly log: Logger | undefined = undefined

  constructor (readonly v4: TrafficManager, readonly v6: TrafficManager) {
    super()
    if (v4.kind !== v6.kind) throw new WeftError('EINVAL', `dual-stack traffic rules of two kinds: ${v4.kind} and ${v6.kind}`)
    this.kind = v4.kind
  }

  protected async doApply (): Promise<void> {
    await both([this.v4, this.v6], async (m) => { await m.apply() })
  }

  protected async doCheck (): Promise<boolean> {
    return await this.v4.check() && await this.v6.check()
  }

  protected async doRemove (): Promise<void> {
    await both([this.v4, this.v6], async (m) => { await m.remove() })
  }

  /** Each family is checked and repaired on its own: a missing IPv6 rule does not rewrite the IPv4 ones. */
  override resync (): Promise<boolean> {
    return this.serial(async () => (await both([this.v4, this.v6], async (m) => await m.resync())).some((x) => x))
  }
}

/** f on each in turn, every one tried; the first failure rethrown after the last. */
async function both<T> (ms: readonly TrafficManager[], f: (m: TrafficManager) => Promise<T>): Promise<T[]> {
  const out: T[] = []
  let failed: { err: unknown } | undefined
  for (const m of ms) {
    try {
      out.push(await f(m))
    } catch (err) {
      failed ??= { err }
    }
  }
  if (failed !== undefined) throw failed.err
  return out
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
 * the same: it deletes the nftables tables `ip flannel-ipv4` and `ip6
 * flannel-ipv6`, both whatever the network's families (when there is no nft
 * on the host, there is nothing to delete). In
 * nftables mode it does *not* look for FLANNEL-* iptables chains, as
 * flanneld does: that path runs no iptables at all (a host may have none).
 * weft removes its own rules on a clean stop, so only a crashed iptables-mode
 * node leaves chains behind; `weft run` with EnableNFTables false once, or
 * iptables -F/-X FLANNEL-FWD, FLANNEL-POSTRTG (and ip6tables for IPv6), clears them.
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
