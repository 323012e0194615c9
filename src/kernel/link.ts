// Addresses, links and routes through iproute2, as flannel programs them
// (lease address on the tunnel device, per-peer `via <gw> dev <dev> onlink`
// routes). Adds and deletes are idempotent so the daemon can re-run them after
// a restart or on a resync without first working out what is already there.
// Each failure path re-reads the kernel's state instead of parsing iproute2's
// error text, which differs between versions.
import { WeftError } from '../errors'
import { probe, run, type KernelOptions } from './exec'

export { enableForwarding, getSysctl, setSysctl } from './sysctl'

export interface RouteSpec {
  /** destination CIDR ("10.244.2.0/24"); a bare address means /32, "default" means 0.0.0.0/0 */
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

/** "default" → 0.0.0.0/0, a bare address → /32 (how `ip -j` prints host routes). */
export function normalizeDst (dst: string): string {
  if (dst === 'default') return '0.0.0.0/0'
  if (dst.includes('/')) return dst
  return dst.includes(':') ? `${dst}/128` : `${dst}/32`
}

function splitCidr (cidr: string): { ip: string, prefixLen: number } {
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(cidr)
  if (m === null) throw new WeftError('EKERNEL', `invalid address ${JSON.stringify(cidr)}: expected address/prefix-length`)
  return { ip: m[1]!, prefixLen: Number(m[2]) }
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

/** Addresses on dev, as "a.b.c.d/len" (IPv6 too, lowercased as ip prints it). */
export async function listAddresses (dev: string, opts: KernelOptions = {}): Promise<string[]> {
  const links = parseJson<IpAddrJson[]>(await run(['ip', '-j', 'addr', 'show', 'dev', dev], opts), `ip addr show dev ${dev}`)
  const out: string[] = []
  for (const l of links) for (const a of l.addr_info ?? []) if (a.local !== undefined) out.push(`${a.local}/${String(a.prefixlen)}`)
  return out
}

async function hasAddress (dev: string, cidr: string, opts: KernelOptions): Promise<boolean> {
  const { ip, prefixLen } = splitCidr(cidr)
  const want = `${ip.toLowerCase()}/${prefixLen}`
  return (await listAddresses(dev, opts)).includes(want)
}

/** Adds cidr (e.g. "10.244.1.0/32") to dev; the same address already there is success. */
export async function addAddress (dev: string, cidr: string, opts: KernelOptions = {}): Promise<void> {
  splitCidr(cidr)
  const r = await probe(['ip', 'addr', 'add', cidr, 'dev', dev], opts)
  if (r.code === 0) return
  if (await linkExists(dev, opts) && await hasAddress(dev, cidr, opts)) return
  await run(['ip', 'addr', 'add', cidr, 'dev', dev], opts) // fails again, with the kernel's reason
}

/** Removes cidr from dev; an address (or device) already gone is success. */
export async function delAddress (dev: string, cidr: string, opts: KernelOptions = {}): Promise<void> {
  splitCidr(cidr)
  const r = await probe(['ip', 'addr', 'del', cidr, 'dev', dev], opts)
  if (r.code === 0) return
  if (!await linkExists(dev, opts) || !await hasAddress(dev, cidr, opts)) return
  await run(['ip', 'addr', 'del', cidr, 'dev', dev], opts)
}

function parseRoute (j: IpRouteJson, dev: string): Route {
  const r: Route = { dst: normalizeDst(j.dst ?? 'default'), dev: j.dev ?? dev, onlink: (j.flags ?? []).includes('onlink') }
  if (j.gateway !== undefined) r.via = j.gateway
  if (j.scope !== undefined) r.scope = j.scope
  if (j.protocol !== undefined) r.protocol = j.protocol
  if (j.prefsrc !== undefined) r.prefsrc = j.prefsrc
  if (j.metric !== undefined) r.metric = j.metric
  return r
}

/** Routes of the main table that leave through dev (`ip -j route show dev <dev>`). */
export async function listRoutes (dev: string, opts: KernelOptions = {}): Promise<Route[]> {
  const rows = parseJson<IpRouteJson[]>(await run(['ip', '-j', 'route', 'show', 'dev', dev], opts), `ip route show dev ${dev}`)
  return rows.map((j) => parseRoute(j, dev))
}

/** Main-table routes for exactly this destination, on any device. */
async function routesTo (dst: string, opts: KernelOptions): Promise<Route[]> {
  const rows = parseJson<IpRouteJson[]>(await run(['ip', '-j', 'route', 'show', 'exact', normalizeDst(dst)], opts), `ip route show exact ${dst}`)
  return rows.map((j) => parseRoute(j, ''))
}

function routeArgs (spec: RouteSpec): string[] {
  const args = [normalizeDst(spec.dst)]
  if (spec.via !== undefined) args.push('via', spec.via)
  args.push('dev', spec.dev)
  if (spec.onlink === true) args.push('onlink')
  return args
}

function sameRoute (r: Route, spec: RouteSpec): boolean {
  return r.dev === spec.dev && r.via === spec.via && r.onlink === (spec.onlink === true)
}

/** `ip route add`; an identical route already there is success, a different one to the same dst is not. */
export async function addRoute (spec: RouteSpec, opts: KernelOptions = {}): Promise<void> {
  const r = await probe(['ip', 'route', 'add', ...routeArgs(spec)], opts)
  if (r.code === 0) return
  if ((await routesTo(spec.dst, opts)).some((x) => sameRoute(x, spec))) return
  await run(['ip', 'route', 'add', ...routeArgs(spec)], opts)
}

/** `ip route replace`: whatever route had this dst (and metric) becomes this one. */
export async function replaceRoute (spec: RouteSpec, opts: KernelOptions = {}): Promise<void> {
  await run(['ip', 'route', 'replace', ...routeArgs(spec)], opts)
}

/** Deletes the route to dst (narrowed by dev/via when given); one already gone is success. */
export async function delRoute (spec: { dst: string, dev?: string, via?: string }, opts: KernelOptions = {}): Promise<void> {
  const args = [normalizeDst(spec.dst)]
  if (spec.via !== undefined) args.push('via', spec.via)
  if (spec.dev !== undefined) args.push('dev', spec.dev)
  const r = await probe(['ip', 'route', 'del', ...args], opts)
  if (r.code === 0) return
  if (spec.dev !== undefined && !await linkExists(spec.dev, opts)) return
  const left = (await routesTo(spec.dst, opts)).filter((x) =>
    (spec.dev === undefined || x.dev === spec.dev) && (spec.via === undefined || x.via === spec.via))
  if (left.length === 0) return
  await run(['ip', 'route', 'del', ...args], opts)
}
