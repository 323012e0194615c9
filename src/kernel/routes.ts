// Kernel routes to peers' subnets through their public IPs on the underlay,
// as flannel's RouteNetwork keeps them for host-gw (and for ipip with
// DirectRouting):
// 1. a peer is directly connected when its public IP lies in one of the
//    underlay interface's own IPv4 subnets: the kernel reaches it as a
//    gateway on that link, no tunnel needed (directlyConnected)
// 2. add: `ip route replace <subnet> via <public IP> dev <iface>`; replace,
//    because a route to the same subnet through another gateway or device
//    must go first (flannel deletes it, then adds)
// 3. every 10 s the routes we own are listed and missing ones re-added
//    (someone ran `ip route flush`, the link bounced)
// 4. remove: the route is deleted; close() deletes all of ours
// Kernel calls run one at a time, in the order the lease events came, so a
// quick add-then-remove of one subnet cannot end with the route present.
import os from 'node:os'
import { contains, formatCidr, parseCidr } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { delRoute, listRoutes, replaceRoute } from './link'
import type { Logger } from '../log'
import { ip4ToString } from '../packet/ip'

/** flannel re-checks the routes it added this often */
export const ROUTE_CHECK_MS = 10_000

/** Is `ip` on one of the IPv4 subnets of interface `dev` (read now, so address changes count)? */
export function directlyConnected (dev: string, ip: number): boolean {
  for (const a of os.networkInterfaces()[dev] ?? []) {
    if (a.family !== 'IPv4' || a.cidr === null) continue
    if (contains(parseCidr(a.cidr), ip)) return true
  }
  return false
}

export interface PeerRoutesOptions {
  /** the underlay interface */
  dev: string
  log: Logger
  checkMs?: number
}

export class PeerRoutes {
  /** subnet (CIDR) -> gateway (dotted) of the routes we installed */
  private readonly owned = new Map<string, string>()
  private queue: Promise<void> = Promise.resolve()
  private readonly timer: NodeJS.Timeout
  private closed = false
  /** routes found missing and put back by the periodic check */
  readded = 0

  constructor (private readonly o: PeerRoutesOptions) {
    this.timer = setInterval(() => { this.enqueue(() => this.check()) }, o.checkMs ?? ROUTE_CHECK_MS)
    this.timer.unref()
  }

  get dev (): string { return this.o.dev }

  /** Route subnet via the peer's public IP; resolves true once installed, false if the kernel refused. */
  add (subnet: Ip4Net, via: number): Promise<boolean> {
    const dst = formatCidr(subnet)
    const gw = ip4ToString(via)
    return this.enqueue(async () => {
      if (this.closed) return false
      try {
        await replaceRoute({ dst, via: gw, dev: this.o.dev })
      } catch (err) {
        this.o.log.warn({ subnet: dst, via: gw, dev: this.o.dev, err: (err as Error).message }, 'the kernel refused the route to a peer')
        return false
      }
      this.owned.set(dst, gw)
      this.o.log.info({ subnet: dst, via: gw, dev: this.o.dev }, 'route added')
      return true
    })
  }

  /** Delete our route to subnet, if we have one. */
  remove (subnet: Ip4Net): Promise<void> {
    const dst = formatCidr(subnet)
    return this.enqueue(async () => {
      const gw = this.owned.get(dst)
      if (gw === undefined) return
      this.owned.delete(dst)
      await this.tryDelete(dst, gw)
      this.o.log.info({ subnet: dst, via: gw, dev: this.o.dev }, 'route removed')
    })
  }

  has (subnet: Ip4Net): boolean {
    return this.owned.has(formatCidr(subnet))
  }

  get size (): number { return this.owned.size }

  /** Stop checking and delete every route we installed. Idempotent. */
  close (): Promise<void> {
    clearInterval(this.timer)
    return this.enqueue(async () => {
      this.closed = true
      for (const [dst, gw] of this.owned) await this.tryDelete(dst, gw)
      this.owned.clear()
    })
  }

  /** Put back what is missing (flannel: every 10 s). */
  private async check (): Promise<void> {
    if (this.closed || this.owned.size === 0) return
    let present: Set<string>
    try {
      present = new Set((await listRoutes(this.o.dev)).map((r) => `${r.dst} ${r.via ?? ''}`))
    } catch (err) {
      this.o.log.warn({ dev: this.o.dev, err: (err as Error).message }, 'could not list routes to check them')
      return
    }
    for (const [dst, gw] of this.owned) {
      if (present.has(`${dst} ${gw}`)) continue
      try {
        await replaceRoute({ dst, via: gw, dev: this.o.dev })
        this.readded++
        this.o.log.warn({ subnet: dst, via: gw, dev: this.o.dev }, 'a route to a peer was missing; re-added it')
      } catch (err) {
        this.o.log.warn({ subnet: dst, via: gw, dev: this.o.dev, err: (err as Error).message }, 'could not re-add a missing route')
      }
    }
  }

  private async tryDelete (dst: string, gw: string): Promise<void> {
    try {
      await delRoute({ dst, via: gw, dev: this.o.dev })
    } catch (err) {
      this.o.log.warn({ subnet: dst, via: gw, err: (err as Error).message }, 'could not delete a route to a peer')
    }
  }

  private enqueue<T> (fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn)
    this.queue = next.then(() => {}, () => {})
    return next
  }
}
