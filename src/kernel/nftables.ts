// Installs and keeps flanneld's nftables rules (nftables-rules.ts has the
// rules), for a net-conf with "EnableNFTables": true, the way flanneld's
// nftables traffic manager does, with `nft` (Debian's nftables package):
// - apply() replaces the table `ip flannel-ipv4` whole in one `nft -f -`
//   transaction (nothing half-present, nothing stale or foreign kept);
// - check() compares `nft list table` with what weft renders, or with what
//   nft printed right after our last apply() (another nft version may print
//   the same rules in other words); resync() re-applies on any difference;
// - remove() deletes the table.
// No iptables binary is ever run on this path.
//
// Where weft differs from flanneld, on purpose:
// - flanneld writes its nftables rules once and never looks again (its
//   resync period is for iptables only); weft checks them every
//   --iptables-resync seconds, as it does its iptables rules.
// - remove() exists: flanneld leaves the table when it stops (it deletes it
//   at its next start in iptables mode, as weft does too: traffic.ts).
// - the kube-proxy mark is matched as a bit, not as an exact value
//   (nftables-rules.ts says why).
// - one table per family the network has: flanneld makes both `ip
//   flannel-ipv4` and `ip6 flannel-ipv6` at start, the one of a family the
//   network lacks left empty; weft does not make that empty table.
// One instance is one family (an IPv6 Network and subnet: `ip6
// flannel-ipv6`); traffic.ts pairs two for a dual-stack network, each
// family's table replaced in a transaction of its own, as flanneld does.
import { WeftError } from '../errors'
import type { Logger } from '../log'
import { KernelCommandError, probe, type ProbeResult } from './exec'
import { sameFamily, type Family } from './iptables-rules'
import { nftApplyScript, nftRandomFullyProbe, nftRemoveScript, nftTable, nftTableOf, renderNftTable, sameListing, type NftTable } from './nftables-rules'
import type { TrafficManager } from './traffic'
import { SerialRules, type RulesOptions } from './serial-rules'

export interface NftRulesOptions extends RulesOptions {
  /** the nft binary (default nft) */
  nft?: string
}

const CMD_TIMEOUT_MS = 20_000

/** Per nft binary and namespace: does it take `masquerade fully-random`? */
const randomFullyCache = new Map<string, Promise<boolean>>()
/** Per nft binary and namespace: false once a table comment was refused (old kernel or nft). */
const commentsCache = new Map<string, boolean>()

export class NftRules extends SerialRules implements TrafficManager {
  readonly kind = 'nftables'
  /** 4: table ip flannel-ipv4, 6: table ip6 flannel-ipv6; from the network's CIDR */
  readonly family: Family
  private readonly opts: NftRulesOptions
  private readonly bin: string
  private readonly key: string
  /** our table, as `nft list table` and `delete table` name it */
  private readonly tableRef: { family: string, name: string }
  /** what `nft list table` printed right after our last apply() */
  private applied: string | undefined
  protected readonly missingMsg: string
  protected get log (): Logger | undefined { return this.opts.log }

  constructor (opts: NftRulesOptions) {
    super()
    this.opts = { ...opts }
    this.bin = opts.nft ?? 'nft'
    this.key = `${this.bin}\0${opts.netns ?? ''}`
    // Fail on a bad CIDR (or a family mix) now, not at the first apply().
    this.family = sameFamily(opts.network, opts.podSubnet)
    nftTable({ network: opts.network, podSubnet: opts.podSubnet, ipMasq: true, forwardRules: true, randomFully: false })
    this.tableRef = nftTableOf(this.family)
    this.missingMsg = `the nftables table ${this.tableName} is missing or changed; recreating it`
  }

  /** "ip flannel-ipv4" or "ip6 flannel-ipv6", for messages */
  private get tableName (): string { return `${this.tableRef.family} ${this.tableRef.name}` }

  /** The table this configuration installs. */
  async table (): Promise<NftTable> {
    const rf = this.opts.ipMasq && this.opts.randomFully !== false && await this.supportsRandomFully()
    return nftTable({ network: this.opts.network, podSubnet: this.opts.podSubnet, ipMasq: this.opts.ipMasq, forwardRules: this.opts.forwardRules, randomFully: rf })
  }

  /** Deletes the table (all our rules, whatever the options). */
  protected async doRemove (): Promise<void> {
    const existed = (await this.list()) !== undefined
    await this.script(nftRemoveScript([this.tableRef]))
    this.applied = undefined
    if (existed) this.opts.log?.info(`removed nftables table ${this.tableName}`)
  }

  /** Replaces the table whole, in one transaction. */
  protected async doApply (): Promise<void> {
    const t = await this.table()
    let comments = commentsCache.get(this.key) ?? true
    try {
      await this.script(nftApplyScript(t, comments))
    } catch (err) {
      // kernels before 5.10 (nft before 0.9.7) take no table or chain comments
      if (!comments || !(err instanceof KernelCommandError) || !/comment/i.test(err.stderr)) throw err
      comments = false
      commentsCache.set(this.key, false)
      this.opts.log?.info('nftables here takes no comments on tables and chains; applying the rules without them')
      await this.script(nftApplyScript(t, false))
    }
    const now = await this.list()
    if (now !== undefined && !sameListing(now, renderNftTable(t, comments))) {
      this.opts.log?.debug({ listing: now }, 'this nft prints our table in its own words; checking against that listing from now on')
    }
    this.applied = now
    this.opts.log?.debug(`nftables rules applied (${this.tableName})`)
  }

  /** Is the table there, with exactly our chains and rules? */
  protected async doCheck (): Promise<boolean> {
    const now = await this.list()
    if (now === undefined) return false
    const t = await this.table()
    if (sameListing(now, renderNftTable(t, commentsCache.get(this.key) ?? true))) return true
    return this.applied !== undefined && sameListing(now, this.applied)
  }

  /** `nft list table ip flannel-ipv4` (or ip6 flannel-ipv6), or undefined if there is no such table. */
  private async list (): Promise<string | undefined> {
    const argv = ['list', 'table', this.tableRef.family, this.tableRef.name]
    const r = await this.tool(argv)
    if (r.code === 0) return r.stdout
    if (/No such file or directory/.test(r.stderr)) return undefined
    throw new KernelCommandError([this.bin, ...argv], r.code, r.stderr, false)
  }

  /** `nft -f -` with this script: one transaction, all or nothing. */
  private async script (text: string, check = false): Promise<ProbeResult> {
    const argv = check ? ['-c', '-f', '-'] : ['-f', '-']
    const r = await this.tool(argv, text)
    if (r.code !== 0 && !check) {
      throw new KernelCommandError([this.bin, ...argv], r.code, r.stderr, false, `${r.stderr.trim() || `exit status ${r.code}`} (input: ${JSON.stringify(text)})`)
    }
    return r
  }

  private async tool (args: string[], input?: string): Promise<ProbeResult> {
    try {
      return await probe([this.bin, ...args], { netns: this.opts.netns, timeoutMs: CMD_TIMEOUT_MS, input })
    } catch (err) {
      throw notFound(err, this.bin)
    }
  }

  /** flannel's checkRandomfully: a check-only transaction with a `masquerade fully-random` rule. */
  private supportsRandomFully (): Promise<boolean> {
    let p = randomFullyCache.get(this.key)
    if (p === undefined) {
      p = this.script(nftRandomFullyProbe(), true).then((r) => {
        if (r.code !== 0) this.opts.log?.warn({ stderr: r.stderr.trim() }, 'nftables: masquerade fully-random is not supported here; masquerading without it')
        return r.code === 0
      })
      randomFullyCache.set(this.key, p)
      // A failed probe (nft missing) must not stick: it may be installed later.
      p.catch(() => randomFullyCache.delete(this.key))
    }
    return p
  }
}

function notFound (err: unknown, bin: string): unknown {
  if (!(err instanceof KernelCommandError) || !err.notFound) return err
  return new WeftError('EKERNEL',
    `${bin} not found: install the nftables package (the network config has "EnableNFTables": true), or set EnableNFTables to false to use iptables`,
    { cause: err })
}
