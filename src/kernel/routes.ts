// Kernel routes to peers' subnets through their public IPs on the underlay,
// as flannel's RouteNetwork keeps them for host-gw (and for ipip with
// DirectRouting), in both families (flannel's routes and v6Routes):
// 1. a peer is directly connected when its public IP lies in one of the
//    underlay interface's own subnets of that family: the kernel reaches it
//    as a gateway on that link, no tunnel needed (directlyConnected,
//    directlyConnected6)
// 2. add: `ip route replace <subnet> via <public IP> dev <iface>` (`ip -6
//    route replace <subnet6> via <public IPv6> dev <iface>`); replace,
//    because a route to the same subnet through another gateway or device
//    must go first (flannel deletes it, then adds)
// 3. every 10 s the routes we own are listed, per family, and missing ones
//    re-added (someone ran `ip route flush`, the link bounced)
// 4. remove: the route is deleted; close() deletes all of ours
// Kernel calls run one at a time, in the order the lease events came, so a
// quick add-then-remove of one subnet cannot end with the route present.
// The IPv6 routes are kept apart from the IPv4 ones (their own map, keyed
// by the subnet in Go's text form) and made with `ip -6` here.
import os from 'node:os'
import { contains, formatCidr, parseCidr } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { contains6, formatCidr6, ip6ToString, parseCidr6, parseIp6 } from '../packet/net6'
import type { Ip6Net } from '../packet/net6'
import { delRoute, listRoutes, replaceRoute } from './link'
import { probe, run } from './exec'
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

/** Is `ip` on one of the global IPv6 subnets of interface `dev` (read now)? */
export function directlyConnected6 (dev: string, ip: bigint): boolean {
  for (const a of os.networkInterfaces()[dev] ?? []) {
    if (a.family !== 'IPv6' || a.cidr === null) continue
    // a link-local subnet (fe80::/64, on every link) says nothing about whether the peer is on this one
    if (a.address.toLowerCase().startsWith('fe80:')) continue
    try {
      if (contains6(parseCidr6(a.cidr.replace(/%[^/]*/, '')), ip)) return true
    } catch {
      continue
    }
  }
  return false
}

/** `ip -6 -j route show dev <dev>`: the main table's IPv6 routes out of dev, as (dst, gateway) in Go's text form. */
export async function listRoutes6 (dev: string): Promise<Array<{ dst: string, via?: string }>> {
  const text = await run(['ip', '-6', '-j', 'route', 'show', 'dev', dev])
  // older iproute2 prints nothing at all (not "[]") when there is nothing to show
  const rows = (text.trim() === '' ? [] : JSON.parse(text)) as Array<{ dst?: string, gateway?: string }>
  return rows.map((r) => ({ dst: canonical6(r.dst ?? 'default'), ...(r.gateway !== undefined ? { via: canonicalAddr6(r.gateway) } : {}) }))
}

/** iproute2 prints what inet_ntop gives; weft compares in Go's form (the same for what peers use, but parse to be sure). */
function canonical6 (dst: string): string {
  if (dst === 'default') return '::/0'
  try {
    return formatCidr6(parseCidr6(dst.includes('/') ? dst : `${dst}/128`))
  } catch {
    return dst
  }
}

function canonicalAddr6 (a: string): string {
  try {
    return ip6ToString(parseIp6(a))
  } catch {
    return a
  }
}

export interface PeerRoutesOptions {
  /** the underlay interface */
  dev: string
  log: Logger
  checkMs?: number
}

/** The kernel calls and the book of one family's routes; PeerRoutes does the rest alike for both. */
interface RouteFamily {
  /** subnet (CIDR in the family's text) -> gateway (its text) of the routes we installed */
  readonly owned: Map<string, string>
  /** the log field naming the subnet */
  readonly field: 'subnet' | 'subnet6'
  /** '' or 'IPv6 ', in messages */
  readonly word: string
  readonly replace: (dst: string, gw: string) => Promise<unknown>
  readonly list: () => Promise<Array<{ dst: string, via?: string }>>
  readonly tryDelete: (dst: string, gw: string) => Promise<void>
}

export class PeerRoutes {
  private readonly v4: RouteFamily = {
    owned: new Map(),
    field: 'subnet',
    word: '',
    replace: (dst, gw) => replaceRoute({ dst, via: gw, dev: this.o.dev }),
    list: () => listRoutes(this.o.dev),
    tryDelete: (dst, gw) => this.tryDelete(dst, gw)
  }

  private readonly v6: RouteFamily = {
    owned: new Map(),
    field: 'subnet6',
    word: 'IPv6 ',
    replace: (dst, gw) => run(['ip', '-6', 'route', 'replace', dst, 'via', gw, 'dev', this.o.dev]),
    list: () => listRoutes6(this.o.dev),
    tryDelete: (dst, gw) => this.tryDelete6(dst, gw)
  }

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
    return this.addIn(this.v4, formatCidr(subnet), ip4ToString(via))
  }

  /** Delete our route to subnet, if we have one. */
  remove (subnet: Ip4Net): Promise<void> {
    return this.removeIn(this.v4, formatCidr(subnet))
  }

  has (subnet: Ip4Net): boolean {
    return this.v4.owned.has(formatCidr(subnet))
  }

  /** Route an IPv6 subnet via the peer's public IPv6; resolves true once installed, false if the kernel refused. */
  add6 (subnet: Ip6Net, via: bigint): Promise<boolean> {
    return this.addIn(this.v6, formatCidr6(subnet), ip6ToString(via))
  }

  /** Delete our route to an IPv6 subnet, if we have one. */
  remove6 (subnet: Ip6Net): Promise<void> {
    return this.removeIn(this.v6, formatCidr6(subnet))
  }

  has6 (subnet: Ip6Net): boolean {
    return this.v6.owned.has(formatCidr6(subnet))
  }

  /** routes installed, both families */
  get size (): number { return this.v4.owned.size + this.v6.owned.size }

  /** Stop checking and delete every route we installed. Idempotent. */
  close (): Promise<void> {
    clearInterval(this.timer)
    return this.enqueue(async () => {
      this.closed = true
      for (const f of [this.v4, this.v6]) {
        for (const [dst, gw] of f.owned) await f.tryDelete(dst, gw)
        f.owned.clear()
      }
    })
  }

  private addIn (f: RouteFamily, dst: string, gw: string): Promise<boolean> {
    return this.enqueue(async () => {
      if (this.closed) return false
      try {
        await f.replace(dst, gw)
      } catch (err) {
        this.o.log.warn({ [f.field]: dst, via: gw, dev: this.o.dev, err: (err as Error).message }, 'the kernel refused the route to a peer')
        return false
      }
      f.owned.set(dst, gw)
      this.o.log.info({ [f.field]: dst, via: gw, dev: this.o.dev }, 'route added')
      return true
    })
  }

  private removeIn (f: RouteFamily, dst: string): Promise<void> {
    return this.enqueue(async () => {
      const gw = f.owned.get(dst)
      if (gw === undefined) return
      f.owned.delete(dst)
      await f.tryDelete(dst, gw)
      this.o.log.info({ [f.field]: dst, via: gw, dev: this.o.dev }, 'route removed')
    })
  }

  /** Put back what is missing, each family (flannel: every 10 s). */
  private async check (): Promise<void> {
    await this.checkIn(this.v4)
    await this.checkIn(this.v6)
  }

  private async checkIn (f: RouteFamily): Promise<void> {
    if (this.closed || f.owned.size === 0) return
    let present: Set<string>
    try {
      present = new Set((await f.list()).map((r) => `${r.dst} ${r.via ?? ''}`))
    } catch (err) {
      this.o.log.warn({ dev: this.o.dev, err: (err as Error).message }, `could not list ${f.word}routes to check them`)
      return
    }
    for (const [dst, gw] of f.owned) {
      if (present.has(`${dst} ${gw}`)) continue
      try {
        await f.replace(dst, gw)
        this.readded++
        this.o.log.warn({ [f.field]: dst, via: gw, dev: this.o.dev }, 'a route to a peer was missing; re-added it')
      } catch (err) {
        this.o.log.warn({ [f.field]: dst, via: gw, dev: this.o.dev, err: (err as Error).message }, 'could not re-add a missing route')
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

  /** `ip -6 route del`; a route (or device) already gone is success, anything else is logged. */
  private async tryDelete6 (dst: string, gw: string): Promise<void> {
    const r = await probe(['ip', '-6', 'route', 'del', dst, 'via', gw, 'dev', this.o.dev])
    if (r.code === 0) return
    try {
      if (!(await listRoutes6(this.o.dev)).some((x) => x.dst === dst && x.via === gw)) return
    } catch {
      return // the device is gone, and its routes with it
    }
    this.o.log.warn({ subnet6: dst, via: gw, err: r.stderr.trim() }, 'could not delete a route to a peer')
  }

  private enqueue<T> (fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn)
    this.queue = next.then(() => {}, () => {})
    return next
  }
}
