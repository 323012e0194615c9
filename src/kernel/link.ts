// Addresses, links and routes through iproute2, as flannel programs them
// (lease address on the tunnel device, per-peer `via <gw> dev <dev> onlink`
// routes). Adds and deletes are idempotent so the daemon can re-run them after
// a restart or on a resync without first working out what is already there.
// Each failure path re-reads the kernel's state instead of parsing iproute2's
// error text, which differs between versions.
//
// IPv6 works through the same functions: an IPv6 destination, gateway or
// address makes them run `ip -6` (iproute2 infers the family when adding,
// but shows only IPv4 routes unless told), and IPv6 text is compared and
// returned in one canonical form, RFC 5952's, which Go, flannel and
// iproute2 all print.
import { WeftError } from '../errors'
import { ip6ToString, parseIp6 } from '../packet/net6'
import { probe, run, type KernelOptions } from './exec'

export { enableForwarding, getSysctl, setSysctl, type ForwardingOptions } from './sysctl'

export type IpFamily = 4 | 6

export interface FamilyOptions extends KernelOptions {
  /** which family to list: 4 (the default, as before IPv6) or 6 */
  family?: IpFamily
}

export interface RouteSpec {
  /**
   * destination CIDR ("10.244.2.0/24", "fc00:0:0:2::/64"); a bare address
   * means /32 or /128; "default" means 0.0.0.0/0, or ::/0 when `via` is
   * IPv6 (write "::/0" for an IPv6 default route without a gateway)
   */
  dst: string
  dev: string
  /** gateway address */
  via?: string
  /** gateway need not be on a connected subnet (flannel's vxlan and ipip routes) */
  onlink?: boolean
}

export interface Route {
  /** always CIDR form */
  dst: string
  dev: string
  via?: string
  onlink: boolean
  scope?: string
  protocol?: string
  prefsrc?: string
  metric?: number
}

interface IpRouteJson {
  dst?: string
  dev?: string
  gateway?: string
  flags?: string[]
  scope?: string
  protocol?: string
  prefsrc?: string
  metric?: number
}

interface IpAddrJson {
  addr_info?: Array<{ family?: string, local?: string, prefixlen?: number }>
}

/**
 * "default" → 0.0.0.0/0 (::/0 for family 6), a bare address → /32 or /128
 * (how `ip -j` prints host routes), IPv6 text → its canonical form
 * ("FC00:0:0:2:0::/64" → "fc00:0:0:2::/64"). IPv4 text is kept as given.
 */
export function normalizeDst (dst: string, family: IpFamily = 4): string {
  if (dst === 'default') return family === 6 ? '::/0' : '0.0.0.0/0'
  if (!dst.includes(':')) return dst.includes('/') ? dst : `${dst}/32`
  const slash = dst.indexOf('/')
  const addr = canonicalIp6(slash < 0 ? dst : dst.slice(0, slash))
  return `${addr}/${slash < 0 ? '128' : dst.slice(slash + 1)}`
}

/** IPv6 text in RFC 5952 form; anything that does not parse is an EKERNEL error naming it. */
function canonicalIp6 (text: string): string {
  try {
    return ip6ToString(parseIp6(text))
  } catch (err) {
    throw new WeftError('EKERNEL', `invalid IPv6 address ${JSON.stringify(text)}`, { cause: err })
  }
}

/**
 * An address iproute2 printed, IPv6 in canonical form (it prints RFC 5952
 * already; this only guards against an older one that does not). Kept as
 * printed if we cannot read it: one odd entry must not fail a whole listing.
 */
function listedIp (addr: string): string {
  if (!addr.includes(':')) return addr
  try {
    return ip6ToString(parseIp6(addr))
  } catch {
    return addr
  }
}

/** A route destination iproute2 printed, as normalizeDst writes it, or as printed if we cannot read it. */
function listedDst (dst: string, family: IpFamily): string {
  try {
    return normalizeDst(dst, family)
  } catch {
    return dst
  }
}

/** An IPv6 address is the only kind with a colon. */
const familyOf = (addr: string): IpFamily => addr.includes(':') ? 6 : 4

/** `ip` or `ip -6`: only IPv6 needs saying (IPv4 commands stay as they were). */
const ipCmd = (family: IpFamily): string[] => family === 6 ? ['ip', '-6'] : ['ip']

function splitCidr (cidr: string): { ip: string, prefixLen: number } {
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(cidr)
  if (m === null) throw new WeftError('EKERNEL', `invalid address ${JSON.stringify(cidr)}: expected address/prefix-length`)
  return { ip: m[1]!, prefixLen: Number(m[2]) }
}

/** Fails on a malformed address before ip runs (IPv4 text is left for ip to judge, as before). */
function checkCidr (cidr: string): void {
  const { ip } = splitCidr(cidr)
  if (familyOf(ip) === 6) canonicalIp6(ip)
}

function parseJson<T> (text: string, what: string): T {
  try {
    // Older iproute2 prints nothing at all (not "[]") when there is nothing to show.
    return (text.trim() === '' ? [] : JSON.parse(text)) as T
  } catch (err) {
    throw new WeftError('EKERNEL', `cannot parse the JSON of ${what}: ${(err as Error).message}`, { cause: err })
  }
}

export async function linkExists (dev: string, opts: KernelOptions = {}): Promise<boolean> {
  const r = await probe(['ip', 'link', 'show', 'dev', dev], opts)
  return r.code === 0
}

/** `ip link set <dev> up`; already up is fine (the kernel treats it as a no-op). */
export async function setLinkUp (dev: string, opts: KernelOptions = {}): Promise<void> {
  await run(['ip', 'link', 'set', 'dev', dev, 'up'], opts)
}

/**
 * Addresses on dev, as "a.b.c.d/len" and "fc00:0:0:1::/len" (RFC 5952):
 * both families, or only `family`'s when given (IPv6 includes the
 * link-local fe80:: one the kernel adds to most devices).
 */
export async function listAddresses (dev: string, opts: FamilyOptions = {}): Promise<string[]> {
  const { family, ...kernel } = opts
  const argv = family === 6 ? ['ip', '-6', '-j', 'addr', 'show', 'dev', dev] : family === 4 ? ['ip', '-4', '-j', 'addr', 'show', 'dev', dev] : ['ip', '-j', 'addr', 'show', 'dev', dev]
  const links = parseJson<IpAddrJson[]>(await run(argv, kernel), `ip addr show dev ${dev}`)
  const out: string[] = []
  for (const l of links) {
    for (const a of l.addr_info ?? []) {
      if (a.local === undefined) continue
      out.push(`${listedIp(a.local)}/${String(a.prefixlen)}`)
    }
  }
  return out
}

async function hasAddress (dev: string, cidr: string, opts: KernelOptions): Promise<boolean> {
  const { ip, prefixLen } = splitCidr(cidr)
  const want = `${ip.includes(':') ? canonicalIp6(ip) : ip}/${prefixLen}`
  return (await listAddresses(dev, { ...opts, family: familyOf(ip) })).includes(want)
}

/** Adds cidr (e.g. "10.244.1.0/32", "fc00:0:0:1::/128") to dev; the same address already there is success. */
export async function addAddress (dev: string, cidr: string, opts: KernelOptions = {}): Promise<void> {
  checkCidr(cidr)
  const r = await probe(['ip', 'addr', 'add', cidr, 'dev', dev], opts)
  if (r.code === 0) return
  if (await linkExists(dev, opts) && await hasAddress(dev, cidr, opts)) return
  await run(['ip', 'addr', 'add', cidr, 'dev', dev], opts) // fails again, with the kernel's reason
}

/** Removes cidr from dev; an address (or device) already gone is success. */
export async function delAddress (dev: string, cidr: string, opts: KernelOptions = {}): Promise<void> {
  checkCidr(cidr)
  const r = await probe(['ip', 'addr', 'del', cidr, 'dev', dev], opts)
  if (r.code === 0) return
  if (!await linkExists(dev, opts) || !await hasAddress(dev, cidr, opts)) return
  await run(['ip', 'addr', 'del', cidr, 'dev', dev], opts)
}

function parseRoute (j: IpRouteJson, dev: string, family: IpFamily): Route {
  const r: Route = { dst: listedDst(j.dst ?? 'default', family), dev: j.dev ?? dev, onlink: (j.flags ?? []).includes('onlink') }
  if (j.gateway !== undefined) r.via = listedIp(j.gateway)
  if (j.scope !== undefined) r.scope = j.scope
  if (j.protocol !== undefined) r.protocol = j.protocol
  if (j.prefsrc !== undefined) r.prefsrc = listedIp(j.prefsrc)
  if (j.metric !== undefined) r.metric = j.metric
  return r
}

/**
 * Routes of the main table that leave through dev (`ip -j route show dev
 * <dev>`): IPv4 ones, or with `family: 6` IPv6 ones (`ip -6`; the kernel's
 * own fe80::/64 among them).
 */
export async function listRoutes (dev: string, opts: FamilyOptions = {}): Promise<Route[]> {
  const { family = 4, ...kernel } = opts
  const rows = parseJson<IpRouteJson[]>(await run([...ipCmd(family), '-j', 'route', 'show', 'dev', dev], kernel), `ip route show dev ${dev}`)
  return rows.map((j) => parseRoute(j, dev, family))
}

/** The family of a route: its destination's, or for "default" its gateway's. */
function routeFamily (spec: { dst: string, via?: string }): IpFamily {
  return spec.dst === 'default' && spec.via !== undefined ? familyOf(spec.via) : familyOf(spec.dst)
}

/** Main-table routes for exactly this destination, on any device. */
async function routesTo (spec: { dst: string, via?: string }, opts: KernelOptions): Promise<Route[]> {
  const family = routeFamily(spec)
  const dst = normalizeDst(spec.dst, family)
  const rows = parseJson<IpRouteJson[]>(await run([...ipCmd(family), '-j', 'route', 'show', 'exact', dst], opts), `ip route show exact ${dst}`)
  return rows.map((j) => parseRoute(j, '', family))
}

/** A gateway as the kernel lists it (IPv6 in canonical form), so a route we add compares equal to its listing. */
function viaArg (via: string): string {
  return via.includes(':') ? canonicalIp6(via) : via
}

function routeArgs (spec: RouteSpec): string[] {
  const args = [normalizeDst(spec.dst, routeFamily(spec))]
  if (spec.via !== undefined) args.push('via', viaArg(spec.via))
  args.push('dev', spec.dev)
  if (spec.onlink === true) args.push('onlink')
  return args
}

function sameRoute (r: Route, spec: RouteSpec): boolean {
  return r.dev === spec.dev && r.via === (spec.via === undefined ? undefined : viaArg(spec.via)) && r.onlink === (spec.onlink === true)
}

/** `ip route add`; an identical route already there is success, a different one to the same dst is not. */
export async function addRoute (spec: RouteSpec, opts: KernelOptions = {}): Promise<void> {
  const argv = [...ipCmd(routeFamily(spec)), 'route', 'add', ...routeArgs(spec)]
  const r = await probe(argv, opts)
  if (r.code === 0) return
  if ((await routesTo(spec, opts)).some((x) => sameRoute(x, spec))) return
  await run(argv, opts)
}

/** `ip route replace`: whatever route had this dst (and metric) becomes this one. */
export async function replaceRoute (spec: RouteSpec, opts: KernelOptions = {}): Promise<void> {
  await run([...ipCmd(routeFamily(spec)), 'route', 'replace', ...routeArgs(spec)], opts)
}

/** Deletes the route to dst (narrowed by dev/via when given); one already gone is success. */
export async function delRoute (spec: { dst: string, dev?: string, via?: string }, opts: KernelOptions = {}): Promise<void> {
  const family = routeFamily(spec)
  const via = spec.via === undefined ? undefined : viaArg(spec.via)
  const args = [normalizeDst(spec.dst, family)]
  if (via !== undefined) args.push('via', via)
  if (spec.dev !== undefined) args.push('dev', spec.dev)
  const argv = [...ipCmd(family), 'route', 'del', ...args]
  const r = await probe(argv, opts)
  if (r.code === 0) return
  if (spec.dev !== undefined && !await linkExists(spec.dev, opts)) return
  const left = (await routesTo(spec, opts)).filter((x) =>
    (spec.dev === undefined || x.dev === spec.dev) && (via === undefined || x.via === via))
  if (left.length === 0) return
  await run(argv, opts)
}
