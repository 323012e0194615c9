// Which interface carries the underlay and which address we advertise,
// chosen as flanneld chooses (main.go and pkg/ipmatch LookupExtIface):
// 1. each --iface in turn, a name or an address (the interface holding it);
// 2. then each --iface-regex in turn, matched first against every
//    interface's IPv4 addresses, then against the interfaces' names;
// 3. then --iface-can-reach IP: the interface (and source address) the
//    kernel would route IP through (`ip route get IP`);
// the first that yields an interface with an IPv4 address wins. With none of
// them given: the interface holding --public-ip if there is one, else the
// default route's. --public-ip overrides the advertised address (NAT).
//
// Links and addresses come from `ip -j addr show`, as flannel reads them over
// netlink: a link that is down or has no carrier still has its addresses
// (Node's os.networkInterfaces() leaves such links out). An interface's
// address is its first usable IPv4 one in flannel's order: global before
// link-local, permanent before dynamic, primary before secondary; never a
// deprecated one, nor loopback, multicast or broadcast.
//
// Where weft differs from flanneld:
// - --public-ip given without any --iface* and held by no interface (NAT):
//   flanneld stops ("Failed to find any valid interface to use"); weft uses
//   the default route's interface, as it did before flanneld changed.
// - a regex is JavaScript's, not Go's RE2: the same for ordinary patterns;
//   RE2's inline flags such as (?i) are refused when the flags are read.
// - IPv4 only: an IPv6 --iface or --iface-can-reach matches nothing.
import { execFileSync } from 'node:child_process'
import { isIPv4, isIPv6 } from 'node:net'
import { WeftError } from '../errors'
import type { Logger } from '../log'
import { parseIp4 } from '../packet/ip'

export interface Underlay {
  /** interface name */
  readonly name: string
  /** the interface's IPv4 address (uint32) */
  readonly ip: number
  /** the address peers send to (uint32) */
  readonly publicIP: number
  readonly mtu: number
}

export interface UnderlayOptions {
  /** --iface: names or addresses, in order */
  iface?: readonly string[]
  /** --iface-regex: patterns, in order, after every --iface */
  ifaceRegex?: readonly string[]
  /** --iface-can-reach: an IPv4 address, after every regex ('' or absent: none) */
  ifaceCanReach?: string
  /** --public-ip ('' or absent: the interface's address) */
  publicIp?: string
  /** candidates that did not match are logged here (info, as flanneld) */
  log?: Logger
  /** look in this named network namespace (tests) */
  netns?: string
}

/** One IPv4 address of a link, with the flags flannel sorts and filters by. */
export interface LinkAddress {
  readonly ip: string
  readonly prefixLen: number
  /** not IFA_F_PERMANENT (DHCP, SLAAC) */
  readonly dynamic: boolean
  readonly deprecated: boolean
  /** IFA_F_SECONDARY (flannel's IFA_F_TEMPORARY, the same bit) */
  readonly secondary: boolean
}

export interface Link {
  readonly index: number
  readonly name: string
  readonly mtu: number
  /** administratively up */
  readonly up: boolean
  /** LOWER_UP: has carrier */
  readonly carrier: boolean
  /** its IPv4 addresses as the kernel lists them */
  readonly inet: readonly LinkAddress[]
}

/** What the choice looks at: the links, and the routes asked about (lazily). */
export interface HostView {
  readonly links: readonly Link[]
  /** the main table's default route's device; throws if there is a default route without one */
  defaultRouteDev: () => string | undefined
  /** `ip route get ip`: the device and the source address the kernel would use */
  routeGet: (ip: string) => { dev: string, prefsrc?: string }
}

interface IpAddrJson {
  ifindex?: number
  ifname?: string
  mtu?: number
  flags?: string[]
  addr_info?: Array<{ family?: string, local?: string, prefixlen?: number, dynamic?: boolean, deprecated?: boolean, secondary?: boolean, temporary?: boolean }>
}

/** The links in `ip -j addr show` output, in the kernel's (ifindex) order. */
export function parseIpAddrJson (text: string): Link[] {
  const list = jsonOf<IpAddrJson[]>(text, 'ip -j addr show')
  return list.filter((l) => typeof l.ifname === 'string').map((l) => ({
    index: l.ifindex ?? 0,
    name: l.ifname as string,
    mtu: l.mtu ?? 0,
    up: (l.flags ?? []).includes('UP'),
    carrier: (l.flags ?? []).includes('LOWER_UP'),
    inet: (l.addr_info ?? []).filter((a) => a.family === 'inet' && typeof a.local === 'string').map((a) => ({
      ip: a.local as string,
      prefixLen: a.prefixlen ?? 32,
      dynamic: a.dynamic === true,
      deprecated: a.deprecated === true,
      secondary: a.secondary === true || a.temporary === true
    }))
  }))
}

function jsonOf<T> (text: string, what: string): T {
  try {
    // older iproute2 prints nothing (not "[]") when there is nothing to show
    return (text.trim() === '' ? [] : JSON.parse(text)) as T
  } catch (err) {
    throw new WeftError('EKERNEL', `cannot parse the JSON of ${what}: ${(err as Error).message}`, { cause: err })
  }
}

/** Go's net.IP IsLinkLocalUnicast for IPv4: 169.254.0.0/16. */
function linkLocal (n: number): boolean {
  return (n >>> 16) === 0xa9fe
}

/** Go's IsGlobalUnicast for IPv4: not 0.0.0.0, loopback, multicast, link-local or 255.255.255.255 (private ranges count). */
function globalUnicast (n: number): boolean {
  return n !== 0 && (n >>> 24) !== 127 && (n >>> 28) !== 0xe && !linkLocal(n) && (n >>> 0) !== 0xffffffff
}

/** flannel's GetInterfaceIP4Addrs: the usable IPv4 addresses, best first. */
export function usableAddresses (link: Link): string[] {
  const rank = (a: LinkAddress): number => (linkLocal(parseIp4(a.ip)) ? 4 : 0) + (a.dynamic ? 2 : 0) + (a.secondary ? 1 : 0)
  return link.inet
    .filter((a) => {
      const n = parseIp4(a.ip)
      return !a.deprecated && (globalUnicast(n) || linkLocal(n))
    })
    .map((a, i) => ({ a, i }))
    .sort((x, y) => rank(x.a) - rank(y.a) || x.i - y.i)
    .map((x) => x.a.ip)
}

interface Found { link: Link, ip: string }
type Attempt = Found | { why: string }

const describe = (links: readonly Link[]): string => links.map((l) => `${l.name}:[${usableAddresses(l).join(' ')}]`).join(', ')

function withAddress (link: Link, ip?: string): Attempt {
  const addr = ip ?? usableAddresses(link)[0]
  if (addr === undefined) return { why: `${link.name} has no usable IPv4 address` }
  return { link, ip: addr }
}

/** --iface: an address names the interface holding it (any IPv4 address); anything else is a name. */
function byIface (links: readonly Link[], want: string): Attempt {
  if (isIPv4(want)) {
    const link = links.find((l) => l.inet.some((a) => a.ip === want))
    return link === undefined ? { why: `no interface has the address ${want}` } : { link, ip: want }
  }
  if (isIPv6(want)) return { why: 'an IPv6 address: weft is IPv4-only' }
  const link = links.find((l) => l.name === want)
  return link === undefined ? { why: 'no such interface' } : withAddress(link)
}

/** A regex as --iface-regex takes it (JavaScript syntax); throws EFLAG naming the pattern. */
export function compileIfaceRegex (pattern: string): RegExp {
  try {
    return new RegExp(pattern)
  } catch (err) {
    throw new WeftError('EFLAG', `--iface-regex ${JSON.stringify(pattern)}: not a regular expression: ${(err as Error).message}`)
  }
}

/** --iface-regex: the first IPv4 address that matches, on any interface; else the first interface name. */
function byRegex (links: readonly Link[], pattern: string): Attempt {
  const re = compileIfaceRegex(pattern)
  for (const l of links) {
    const ip = usableAddresses(l).find((a) => re.test(a))
    if (ip !== undefined) return { link: l, ip }
  }
  const link = links.find((l) => re.test(l.name))
  if (link === undefined) return { why: `matches none of the interfaces here (${describe(links)})` }
  return withAddress(link)
}

/** --iface-can-reach: the route's device, and its source address (else the device's first). */
function byRoute (view: HostView, ip: string): Attempt {
  if (!isIPv4(ip)) return { why: 'not an IPv4 address' }
  let r: { dev: string, prefsrc?: string }
  try {
    r = view.routeGet(ip)
  } catch (err) {
    return { why: `no route: ${(err as Error).message}` }
  }
  const link = view.links.find((l) => l.name === r.dev)
  if (link === undefined) return { why: `its route's device ${r.dev} is not listed` }
  return withAddress(link, r.prefsrc !== undefined && isIPv4(r.prefsrc) ? r.prefsrc : undefined)
}

/** The choice itself, over a view of the host (tests hand it a made-up one). */
export function chooseUnderlay (o: UnderlayOptions, view: HostView): Underlay {
  const ifaces = o.iface ?? []
  const regexes = o.ifaceRegex ?? []
  const canReach = o.ifaceCanReach ?? ''
  const publicIp = o.publicIp ?? ''
  let pub: number | undefined
  if (publicIp !== '') {
    try { pub = parseIp4(publicIp) } catch { throw new WeftError('EFLAG', `--public-ip ${JSON.stringify(publicIp)} is not an IPv4 address`) }
  }
  let found: Found | undefined
  if (ifaces.length > 0 || regexes.length > 0 || canReach !== '') {
    const misses: string[] = []
    const tries: Array<[string, () => Attempt]> = [
      ...ifaces.map((v): [string, () => Attempt] => [`--iface ${v}`, () => byIface(view.links, v)]),
      ...regexes.map((v): [string, () => Attempt] => [`--iface-regex ${v}`, () => byRegex(view.links, v)]),
      ...(canReach !== '' ? [[`--iface-can-reach ${canReach}`, () => byRoute(view, canReach)] as [string, () => Attempt]] : [])
    ]
    for (const [what, attempt] of tries) {
      const a = attempt()
      if ('link' in a) { found = a; break }
      misses.push(`${what}: ${a.why}`)
      o.log?.info({ candidate: what, reason: a.why }, 'could not find a valid interface matching it')
    }
    if (found === undefined) {
      throw new WeftError('EIFACE', `no interface to use matches the interfaces, regexes and address given (${misses.join('; ')})`)
    }
  } else {
    if (pub !== undefined) {
      const a = byIface(view.links, publicIp)
      if ('link' in a) found = a
      else o.log?.info({ publicIP: publicIp }, 'no interface holds the public IP (NAT?): using the default route\'s interface')
    }
    if (found === undefined) {
      const name = view.defaultRouteDev()
      if (name === undefined) throw new WeftError('EIFACE', 'no default route to pick the underlay interface from: give --iface')
      const link = view.links.find((l) => l.name === name)
      const a = link === undefined ? { why: `${name} is not listed` } : withAddress(link)
      if (!('link' in a)) throw new WeftError('EIFACE', `the default route's interface ${name} has no usable IPv4 address (${a.why}): give --iface`)
      found = a
    }
  }
  if (!(found.link.mtu > 0)) throw new WeftError('EIFACE', `cannot determine the MTU of interface ${found.link.name}`)
  const ip = parseIp4(found.ip)
  return { name: found.link.name, ip, publicIP: pub ?? ip, mtu: found.link.mtu }
}

const IP_TIMEOUT_MS = 10_000

/** `ip [-n ns] args`, synchronously: this runs once, before anything else is started. */
function ipSync (args: readonly string[], netns?: string): string {
  const argv = [...(netns !== undefined ? ['-n', netns] : []), ...args]
  try {
    return execFileSync('ip', argv, { encoding: 'utf8', timeout: IP_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    if (e.code === 'ENOENT') throw new WeftError('EKERNEL', 'ip not found: install iproute2', { cause: err })
    const why = typeof e.stderr === 'string' && e.stderr.trim() !== '' ? e.stderr.trim() : e.message
    throw new WeftError('EKERNEL', `ip ${argv.join(' ')}: ${why}`, { cause: err })
  }
}

/** This host (or namespace) as `ip` sees it. */
export function hostView (netns?: string): HostView {
  return {
    links: parseIpAddrJson(ipSync(['-j', 'addr', 'show'], netns)),
    defaultRouteDev: () => {
      const routes = jsonOf<Array<{ dev?: string }>>(ipSync(['-4', '-j', 'route', 'show', 'default'], netns), 'ip -j route show default')
      if (routes.length === 0) return undefined
      if (routes[0]!.dev === undefined) throw new WeftError('EIFACE', 'found a default route but cannot tell its interface (multipath?): give --iface')
      return routes[0]!.dev
    },
    routeGet: (ip) => {
      const r = jsonOf<Array<{ dev?: string, prefsrc?: string }>>(ipSync(['-4', '-j', 'route', 'get', ip], netns), 'ip -j route get')[0]
      if (r?.dev === undefined) throw new Error(`ip route get ${ip} names no device`)
      return { dev: r.dev, ...(r.prefsrc !== undefined ? { prefsrc: r.prefsrc } : {}) }
    }
  }
}

/**
 * The underlay: the interface and address flanneld would pick (see the top
 * of this file). The older form (ifaces, publicIp) is --iface and
 * --public-ip alone.
 */
export function findUnderlay (o: UnderlayOptions): Underlay
export function findUnderlay (ifaces: readonly string[], publicIp: string): Underlay
export function findUnderlay (a: UnderlayOptions | readonly string[], publicIp = ''): Underlay {
  const o: UnderlayOptions = isOptions(a) ? a : { iface: a, publicIp }
  return chooseUnderlay(o, hostView(o.netns))
}

function isOptions (a: UnderlayOptions | readonly string[]): a is UnderlayOptions {
  return !Array.isArray(a)
}
