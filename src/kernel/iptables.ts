// Installs and keeps flanneld's iptables rules (see iptables-rules.ts for
// the rules themselves), the way flanneld's iptables traffic manager does:
// chains are created or flushed and the rules written in one
// `iptables-restore --noflush` transaction, so a rule is never half-present
// and nothing foreign lands between ours; resync() re-applies everything if
// anything is missing, for flannel's every-5-seconds loop.
//
// Where weft differs from flanneld, on purpose:
// - apply() deletes *every* jump to our chain before appending one, so the
//   jump exists exactly once; flanneld deletes a single copy per bootstrap.
// - check() also notices a foreign rule added to our chains and a duplicated
//   jump (flanneld only checks that each of its rules exists).
// - remove() exists: flanneld leaves its rules behind when it stops (only its
//   nftables mode cleans iptables up, and then looks for FLANNEL-FWD in `nat`).
// One instance is one family: an IPv6 Network and subnet make it run
// ip6tables and ip6tables-restore (flanneld's IPv6 set: the same chains in
// ip6tables' tables); traffic.ts pairs two for a dual-stack network.
// The nftables twin, for "EnableNFTables": true, is nftables.ts; both
// implement traffic.ts's TrafficManager, which is all the backends see.
import { WeftError } from '../errors'
import type { Logger } from '../log'
import { KernelCommandError, probe, type ProbeResult } from './exec'
import { forwardChain, isJumpTo, masqChain, ruleLine, sameFamily, type ChainSet, type Family, type Table } from './iptables-rules'
import type { TrafficManager } from './traffic'
import { SerialRules, type RulesOptions } from './serial-rules'

export interface TrafficRulesOptions extends RulesOptions {
  /** binaries to use (e.g. iptables-legacy); default iptables and iptables-restore, or ip6tables and ip6tables-restore for an IPv6 network */
  iptables?: string
  iptablesRestore?: string
}

// Seconds iptables waits for the xtables lock. Daemons in sibling namespaces
// share that lock (it is a file, not per-namespace), so they must wait, not fail.
const LOCK_WAIT_S = '5'
const CMD_TIMEOUT_MS = 20_000

/** Per iptables binary: does it know MASQUERADE --random-fully? */
const randomFullyCache = new Map<string, Promise<boolean>>()

/** flannel (go-iptables HasRandomFully) decides by version: iptables >= 1.6.2. */
export function versionHasRandomFully (versionOutput: string): boolean {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(versionOutput)
  if (m === null) return false
  const [a, b, c] = [Number(m[1]), Number(m[2]), Number(m[3])]
  return a > 1 || (a === 1 && (b > 6 || (b === 6 && c >= 2)))
}

export class TrafficRules extends SerialRules implements TrafficManager {
  readonly kind = 'iptables'
  /** 4: iptables, 6: ip6tables; from the network's CIDR */
  readonly family: Family
  private readonly opts: TrafficRulesOptions
  private readonly bin: string
  private readonly restoreBin: string
  protected readonly missingMsg: string
  protected get log (): Logger | undefined { return this.opts.log }

  constructor (opts: TrafficRulesOptions) {
    super()
    this.opts = { ...opts }
    // Fail on a bad CIDR (or a family mix) now, not at the first apply().
    this.family = sameFamily(opts.network, opts.podSubnet)
    forwardChain(opts.network)
    masqChain(opts.network, opts.podSubnet, false)
    const v6 = this.family === 6
    this.bin = opts.iptables ?? (v6 ? 'ip6tables' : 'iptables')
    this.restoreBin = opts.iptablesRestore ?? (v6 ? 'ip6tables-restore' : 'iptables-restore')
    this.missingMsg = v6 ? 'some ip6tables rules are missing; deleting and recreating them' : 'some iptables rules are missing; deleting and recreating them'
  }

  /** The chains this configuration installs, in the order they are applied. */
  async chainSets (): Promise<ChainSet[]> {
    const sets: ChainSet[] = []
    if (this.opts.forwardRules) sets.push(forwardChain(this.opts.network))
    if (this.opts.ipMasq) {
      const rf = this.opts.randomFully !== false && await this.supportsRandomFully()
      sets.push(masqChain(this.opts.network, this.opts.podSubnet, rf))
    }
    return sets
  }

  /** Deletes the jumps to, and then, FLANNEL-FWD and FLANNEL-POSTRTG, whatever the options. */
  protected async doRemove (): Promise<void> {
    for (const set of [forwardChain(this.opts.network), masqChain(this.opts.network, this.opts.podSubnet, false)]) {
      await this.removeSet(set)
    }
  }

  /** Creates or flushes our chains, writes our rules, and leaves exactly one jump to each. */
  protected async doApply (): Promise<void> {
    for (const set of await this.chainSets()) {
      // A jump listed by `-S` may vanish before the restore runs (someone else
      // cleaning up), failing the whole transaction: one more try re-reads.
      try {
        await this.applySet(set)
      } catch (err) {
        if (!(err instanceof KernelCommandError)) throw err // e.g. iptables not installed: no point
        this.opts.log?.warn({ err }, `applying ${set.chain} (${this.bin}) failed; retrying once`)
        await this.applySet(set)
      }
    }
    this.opts.log?.debug(`${this.bin} rules applied`)
  }

  private async applySet (set: ChainSet): Promise<void> {
    const stale = (await this.listChain(set.table, set.from)).filter((l) => isJumpTo(l, set.from, set.chain))
    await this.restore([
      `*${set.table}`,
      // Declaring a chain creates it, or flushes it even under --noflush.
      `:${set.chain} - [0:0]`,
      // iptables -S prints lines iptables-restore reads back: delete them verbatim.
      ...stale.map((l) => '-D' + l.slice(2)),
      ruleLine(set.from, set.jump),
      ...set.rules.map((r) => ruleLine(set.chain, r)),
      'COMMIT'
    ])
  }

  /** Are all our chains, rules and jumps present (and nothing foreign in our chains)? */
  protected async doCheck (): Promise<boolean> {
    for (const set of await this.chainSets()) {
      if (!await this.checkSet(set)) return false
    }
    return true
  }

  private async checkSet (set: ChainSet): Promise<boolean> {
    const mine = await this.tryListChain(set.table, set.chain)
    if (mine === undefined) return false
    const rules = mine.filter((l) => l.startsWith(`-A ${set.chain} `))
    const jumps = (await this.listChain(set.table, set.from)).filter((l) => isJumpTo(l, set.from, set.chain))
    // Fast path, the steady state: iptables prints exactly what we wrote.
    const want = set.rules.map((r) => ruleLine(set.chain, r))
    if (jumps.length === 1 && jumps[0] === ruleLine(set.from, set.jump) && rules.length === want.length && rules.every((l, i) => l === want[i])) {
      return true
    }
    // Otherwise ask iptables rule by rule (-C), which does not depend on how
    // this iptables version prints rules; order is not checked (as flanneld).
    // Jumps are counted by target alone, so a duplicate is caught (and
    // resync's apply() collapses it) however this iptables prints it.
    if (rules.length !== set.rules.length || jumps.length !== 1) return false
    for (const [chain, spec] of [[set.from, set.jump] as const, ...set.rules.map((r) => [set.chain, r] as const)]) {
      const r = await this.ipt(set.table, ['-C', chain, ...spec])
      if (r.code === 1) return false
      if (r.code !== 0) throw this.failed(set.table, ['-C', chain, ...spec], r)
    }
    return true
  }

  private async removeSet (set: ChainSet): Promise<void> {
    const jumps = (await this.listChain(set.table, set.from)).filter((l) => isJumpTo(l, set.from, set.chain))
    const exists = (await this.tryListChain(set.table, set.chain)) !== undefined
    if (jumps.length === 0 && !exists) return
    await this.restore([
      `*${set.table}`,
      ...jumps.map((l) => '-D' + l.slice(2)),
      ...(exists ? [`-F ${set.chain}`, `-X ${set.chain}`] : []),
      'COMMIT'
    ])
    this.opts.log?.info(`removed ${this.bin} chain ${set.chain} (${set.table})`)
  }

  /** `iptables -S <chain>` lines, or undefined if the chain does not exist (exit status 1). */
  private async tryListChain (table: Table, chain: string): Promise<string[] | undefined> {
    const r = await this.ipt(table, ['-S', chain])
    if (r.code === 1) return undefined
    if (r.code !== 0) throw this.failed(table, ['-S', chain], r)
    return r.stdout.split('\n').filter((l) => l !== '')
  }

  /** `iptables -S <chain>` lines of a chain that must exist (a built-in one). */
  private async listChain (table: Table, chain: string): Promise<string[]> {
    const r = await this.ipt(table, ['-S', chain])
    if (r.code !== 0) throw this.failed(table, ['-S', chain], r)
    return r.stdout.split('\n').filter((l) => l !== '')
  }

  private async ipt (table: Table, args: string[]): Promise<ProbeResult> {
    return await this.tool(this.bin, ['-w', LOCK_WAIT_S, '-t', table, ...args])
  }

  private async restore (lines: string[]): Promise<void> {
    const argv = [this.restoreBin, '-w', LOCK_WAIT_S, '--noflush']
    const r = await this.tool(this.restoreBin, argv.slice(1), lines.join('\n') + '\n')
    if (r.code !== 0) {
      throw new KernelCommandError(argv, r.code, r.stderr, false, `${r.stderr.trim() || `exit status ${r.code}`} (input: ${JSON.stringify(lines.join('\n'))})`)
    }
  }

  private async tool (bin: string, args: string[], input?: string): Promise<ProbeResult> {
    try {
      return await probe([bin, ...args], { netns: this.opts.netns, timeoutMs: CMD_TIMEOUT_MS, input })
    } catch (err) {
      throw notFound(err, bin)
    }
  }

  private failed (table: Table, args: string[], r: ProbeResult): KernelCommandError {
    return new KernelCommandError([this.bin, '-w', LOCK_WAIT_S, '-t', table, ...args], r.code, r.stderr, false)
  }

  private supportsRandomFully (): Promise<boolean> {
    let p = randomFullyCache.get(this.bin)
    if (p === undefined) {
      p = this.tool(this.bin, ['--version']).then((r) => versionHasRandomFully(r.stdout))
      randomFullyCache.set(this.bin, p)
      // A failed probe (iptables missing) must not stick: it may be installed later.
      p.catch(() => randomFullyCache.delete(this.bin))
    }
    return p
  }
}

function notFound (err: unknown, bin: string): unknown {
  if (!(err instanceof KernelCommandError) || !err.notFound) return err
  return new WeftError('EKERNEL',
    `${bin} not found: install the iptables package (it has ip6tables too), or set "EnableNFTables": true in the network config to use nftables (or run without --ip-masq and with --iptables-forward-rules=false)`,
    { cause: err })
}
