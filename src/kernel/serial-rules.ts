// What the iptables and nftables rule sets share: every operation runs one
// at a time (a resync tick must never interleave with remove() at SIGTERM),
// and resync() is check() then apply() inside one turn.
import type { Logger } from '../log'
import type { Cidr } from './iptables-rules'

/** What both rule sets are built from: flanneld's flags and the lease (one IP family: the CIDRs'). */
export interface RulesOptions {
  /** the flannel Network, e.g. "10.244.0.0/16", or its IPv6Network, e.g. "fc00::/48" */
  network: Cidr
  /** this node's lease subnet, e.g. "10.244.1.0/24", or its IPv6 subnet, e.g. "fc00:0:0:1::/64" */
  podSubnet: Cidr
  /** flanneld --ip-masq: the masquerade rules */
  ipMasq: boolean
  /** flanneld --iptables-forward-rules (default on there): the forward accept rules */
  forwardRules: boolean
  /** false = flanneld --ip-masq-fully-random-disable; default: fully random if the tool and kernel take it */
  randomFully?: boolean
  /** run the commands in this network namespace (tests only) */
  netns?: string
  log?: Logger
}

export abstract class SerialRules {
  /** serialises apply/check/resync/remove */
  private queue: Promise<unknown> = Promise.resolve()

  protected abstract doApply (): Promise<void>
  protected abstract doCheck (): Promise<boolean>
  protected abstract doRemove (): Promise<void>
  /** said at info when resync() finds something missing */
  protected abstract readonly missingMsg: string
  protected abstract readonly log: Logger | undefined

  /** Installs our rules, atomically, replacing whatever of ours was there. */
  apply (): Promise<void> {
    return this.serial(() => this.doApply())
  }

  /** Are our rules all present, as applied, and nothing foreign among them? */
  check (): Promise<boolean> {
    return this.serial(() => this.doCheck())
  }

  /** Re-applies if anything is missing or changed; resolves true if it had to. */
  resync (): Promise<boolean> {
    return this.serial(async () => {
      if (await this.doCheck()) return false
      this.log?.info(this.missingMsg)
      await this.doApply()
      return true
    })
  }

  /** Removes our rules, whatever the options; idempotent. */
  remove (): Promise<void> {
    return this.serial(() => this.doRemove())
  }

  /** Runs f after every operation queued before it has settled. */
  protected serial<T> (f: () => Promise<T>): Promise<T> {
    const p = this.queue.then(f, f)
    this.queue = p.catch(() => {})
    return p
  }
}
