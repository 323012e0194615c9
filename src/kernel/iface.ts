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
// IPv6 (the `family` option): 'dual' chooses the interface as above and
// adds its public IPv6 address: --public-ipv6, else the interface's first
// global IPv6 address (never link-local, deprecated, tentative or failed
// duplicate detection), as flannel's LookupExtIface with both stacks; none
// is an error. 'ipv6' (EnableIPv4 false) chooses by IPv6 addresses instead:
// --iface names or IPv6 addresses, regexes over IPv6 addresses then names,
// --iface-can-reach an IPv6 address, else the IPv6 default route's; the
// IPv4 fields are then 0.
//
// Where weft differs from flanneld:
// - --public-ip given without any --iface* and held by no interface (NAT):
//   flanneld stops ("Failed to find any valid interface to use"); weft uses
//   the default route's interface, as it did before flanneld changed.
// - a regex is JavaScript's, not Go's RE2: the same for ordinary patterns;
//   RE2's inline flags such as (?i) are refused when the flags are read.
// - in the IPv4 and dual modes an IPv6 --iface or --iface-can-reach matches
//   nothing (flanneld looks the IPv6 interface up separately in dual stack);
//   --public-ipv6 is taken as given, whichever interface holds it.
import { execFileSync } from 'node:child_process'
import { isIPv4, isIPv6 } from 'node:net'
import { WeftError } from '../errors'
import type { Logger } from '../log'
import { parseIp4 } from '../packet/ip'
import { ip6ToString, parseIp6 } from '../packet/net6'

export interface Underlay {
  /** interface name */
  readonly name: string
  /** the interface's IPv4 address (uint32) */
  readonly ip: number
  /** the address peers send to (uint32); 0 on an IPv6-only underlay */
  readonly publicIP: number
  readonly mtu: number
  /** the interface's IPv6 address, with family 'dual' or 'ipv6' */
  readonly ip6?: bigint
  /** the IPv6 address peers send to (--public-ipv6, else ip6), with family 'dual' or 'ipv6' */
  readonly publicIPv6?: bigint
}

/** Which addresses the underlay needs: IPv4 (default), both, or IPv6 only. */
export type UnderlayFamily = 'ipv4' | 'dual' | 'ipv6'

export interface UnderlayOptions {
  /** --iface: names or addresses, in order */
  iface?: readonly string[]
  /** --iface-regex: patterns, in order, after every --iface */
  ifaceRegex?: readonly string[]
  /** --iface-can-reach: an IPv4 address, after every regex ('' or absent: none) */
  ifaceCanReach?: string
  /** --public-ip ('' or absent: the interface's address) */
  publicIp?: string
  /** --public-ipv6 ('' or absent: the interface's global IPv6 address) */
  publicIpv6?: string
  /** default 'ipv4'; 'dual' when EnableIPv6, 'ipv6' when EnableIPv4 is false too */
  family?: UnderlayFamily
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

/** One IPv6 address of a link, with the flags that say whether it may be used. */
export interface LinkAddress6 {
  readonly ip: string
  readonly prefixLen: number
  /** 'global', 'link', 'host', 'site' as `ip` prints the scope */
  readonly scope: string
  readonly dynamic: boolean
  readonly deprecated: boolean
  /** duplicate address detection not done yet, or failed: not usable */
  readonly tentative: boolean
  /** a temporary (privacy) address */
  readonly temporary: boolean
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
  /** its IPv6 addresses as the kernel lists them (absent: none known) */
  readonly inet6?: readonly LinkAddress6[]
}

/** What the choice looks at: the links, and the routes asked about (lazily). */
export interface HostView {
  readonly links: readonly Link[]
  /** the main table's default route's device (IPv4's, or IPv6's with 6); throws if there is a default route without one */
  defaultRouteDev: (family?: 4 | 6) => string | undefined
  /** `ip route get ip`: the device and the source address the kernel would use */
  routeGet: (ip: string) => { dev: string, prefsrc?: string }
}

interface IpAddrJson {
  ifindex?: number
  ifname?: string
  mtu?: number
  flags?: string[]
  addr_info?: Array<{ family?: string, local?: string, prefixlen?: number, scope?: string, dynamic?: boolean, deprecated?: boolean, secondary?: boolean, temporary?: boolean, tentative?: boolean, dadfailed?: boolean }>
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
    })),
    inet6: (l.addr_info ?? []).filter((a) => a.family === 'inet6' && typeof a.local === 'string').map((a) => ({
      ip: a.local as string,
      prefixLen: a.prefixlen ?? 128,
      scope: a.scope ?? 'global',
      dynamic: a.dynamic === true,
      deprecated: a.deprecated === true,
      tentative: a.tentative === true || a.dadfailed === true,
      temporary: a.temporary === true
    }))
  }))
}

/**
 * The IPv6 addresses a peer may reach the link at, best first: global scope
 * and global unicast only (a link-local address is no use across a routed
 * underlay), not deprecated, not tentative; permanent before dynamic,
 * stable before temporary.
 */
export function usableAddresses6 (link: Link): string[] {
  const rank = (a: LinkAddress6): number => (a.dynamic ? 2 : 0) + (a.temporary ? 1 : 0)
  return (link.inet6 ?? [])
    .filter((a) => a.scope === 'global' && !a.deprecated && !a.tentative && globalUnicast6(a.ip))
    .map((a, i) => ({ a, i }))
    .sort((x, y) => rank(x.a) - rank(y.a) || x.i - y.i)
    .map((x) => x.a.ip)
}

/** Go's IsGlobalUnicast for IPv6: not ::, loopback, multicast (ff00::/8) or link-local (fe80::/10). */
function globalUnicast6 (text: string): boolean {
  let v: bigint
  try { v = parseIp6(text) } catch { return false }
  const top16 = Number(v >> 112n)
  return v !== 0n && v !== 1n && (top16 >> 8) !== 0xff && (top16 & 0xffc0) !== 0xfe80
}

/**
 * The node's public IPv6 address: --public-ipv6 if given, else the link's
 * first usable IPv6 address (usableAddresses6), else undefined. Throws
 * EFLAG for a --public-ipv6 that is not an IPv6 address.
 */
export function publicIPv6Of (link: Link, publicIpv6 = ''): bigint | undefined {
  if (publicIpv6 !== '') return parsePublicIpv6(publicIpv6)
  const first = usableAddresses6(link)[0]
  return first === undefined ? undefined : parseIp6(first)
}

function parsePublicIpv6 (s: string): bigint {
  if (!isIPv6(s)) throw new WeftError('EFLAG', `--public-ipv6 ${JSON.stringify(s)} is not an IPv6 address`)
  return parseIp6(s)
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

/**
 * What choosing an interface needs to know of one address family: the
 * choice itself (by --iface, --iface-regex, --iface-can-reach, the public
 * address, the default route) is the same for both.
 */
interface Family {
  /** 'IPv4' or 'IPv6', in messages */
  readonly name: string
  readonly usable: (l: Link) => string[]
  /** is s an address of this family */
  readonly isOwn: (s: string) => boolean
  /** does the link hold the address want (one of this family) */
  readonly holds: (l: Link, want: string) => boolean
  /** why an --iface of the other family matches nothing */
  readonly otherIface: (want: string) => string | undefined
  /** why an --iface-can-reach not of this family matches nothing */
  readonly notOwnRoute: string
  readonly defaultRouteDev: (view: HostView) => string | undefined
  /** '' or 'IPv6 ', before "default route" in messages */
  readonly routeWord: string
  /** the log field and message when no interface holds the public address */
  readonly publicField: string
  readonly publicNotHeld: string
}

const FAMILY4: Family = {
  name: 'IPv4',
  usable: (l) => usableAddresses(l),
  isOwn: isIPv4,
  // any IPv4 address names its interface, usable or not
  holds: (l, want) => l.inet.some((a) => a.ip === want),
  otherIface: (want) => isIPv6(want) ? 'an IPv6 address: weft is IPv4-only' : undefined,
  notOwnRoute: 'not an IPv4 address',
  defaultRouteDev: (view) => view.defaultRouteDev(),
  routeWord: '',
  publicField: 'publicIP',
  publicNotHeld: 'no interface holds the public IP (NAT?): using the default route\'s interface'
}

const FAMILY6: Family = {
  name: 'IPv6',
  usable: (l) => usableAddresses6(l),
  isOwn: isIPv6,
  // compared parsed: one IPv6 address has many spellings
  holds: (l, want) => {
    const n = parseIp6(want)
    return (l.inet6 ?? []).some((a) => isIPv6(a.ip) && parseIp6(a.ip) === n)
  },
  otherIface: (want) => isIPv4(want) ? 'an IPv4 address: the underlay is IPv6-only (EnableIPv4 false)' : undefined,
  notOwnRoute: 'not an IPv6 address (the underlay is IPv6-only)',
  defaultRouteDev: (view) => view.defaultRouteDev(6),
  routeWord: 'IPv6 ',
  publicField: 'publicIPv6',
  publicNotHeld: 'no interface holds the public IPv6 address (NAT?): using the IPv6 default route\'s interface'
}

const describe = (links: readonly Link[], f: Family): string => links.map((l) => `${l.name}:[${f.usable(l).join(' ')}]`).join(', ')

function withAddress (link: Link, f: Family, ip?: string): Attempt {
  const addr = ip ?? f.usable(link)[0]
  if (addr === undefined) return { why: `${link.name} has no usable ${f.name} address` }
  return { link, ip: addr }
}

/** --iface: an address names the interface holding it (any address of the family); anything else not an address is a name. */
function byIface (links: readonly Link[], want: string, f: Family): Attempt {
  if (f.isOwn(want)) {
    const link = links.find((l) => f.holds(l, want))
    return link === undefined ? { why: `no interface has the address ${want}` } : { link, ip: want }
  }
  const other = f.otherIface(want)
  if (other !== undefined) return { why: other }
  const link = links.find((l) => l.name === want)
  return link === undefined ? { why: 'no such interface' } : withAddress(link, f)
}

/** A regex as --iface-regex takes it (JavaScript syntax); throws EFLAG naming the pattern. */
export function compileIfaceRegex (pattern: string): RegExp {
  try {
    return new RegExp(pattern)
  } catch (err) {
    throw new WeftError('EFLAG', `--iface-regex ${JSON.stringify(pattern)}: not a regular expression: ${(err as Error).message}`)
  }
}

/** --iface-regex: the first usable address of the family that matches, on any interface; else the first interface name. */
function byRegex (links: readonly Link[], pattern: string, f: Family): Attempt {
  const re = compileIfaceRegex(pattern)
  for (const l of links) {
    const ip = f.usable(l).find((a) => re.test(a))
    if (ip !== undefined) return { link: l, ip }
  }
  const link = links.find((l) => re.test(l.name))
  if (link === undefined) return { why: `matches none of the interfaces here (${describe(links, f)})` }
  return withAddress(link, f)
}

/** --iface-can-reach: the route's device, and its source address (else the device's first). */
function byRoute (view: HostView, ip: string, f: Family): Attempt {
  if (!f.isOwn(ip)) return { why: f.notOwnRoute }
  let r: { dev: string, prefsrc?: string }
  try {
    r = view.routeGet(ip)
  } catch (err) {
    return { why: `no route: ${(err as Error).message}` }
  }
  const link = view.links.find((l) => l.name === r.dev)
  if (link === undefined) return { why: `its route's device ${r.dev} is not listed` }
  return withAddress(link, f, r.prefsrc !== undefined && f.isOwn(r.prefsrc) ? r.prefsrc : undefined)
}

/** The choice itself, over a view of the host (tests hand it a made-up one). */
export function chooseUnderlay (o: UnderlayOptions, view: HostView): Underlay {
  const family = o.family ?? 'ipv4'
  if (family === 'ipv6') return chooseUnderlay6(o, view)
  const u = chooseUnderlay4(o, view)
  if (family === 'ipv4') return u
  const link = view.links.find((l) => l.name === u.name) as Link
  const pub6 = publicIPv6Of(link, o.publicIpv6 ?? '')
  if (pub6 === undefined) {
    throw new WeftError('EIFACE', `EnableIPv6 is on but interface ${u.name} has no global IPv6 address (${describe6(link)}): give it one, or give --public-ipv6`)
  }
  const own = usableAddresses6(link)[0]
  return { ...u, ip6: own !== undefined ? parseIp6(own) : pub6, publicIPv6: pub6 }
}

const describe6 = (l: Link): string => (l.inet6 ?? []).length === 0
  ? 'it has no IPv6 address at all'
  : `it has ${(l.inet6 ?? []).map((a) => `${a.ip} (${[a.scope, ...(a.deprecated ? ['deprecated'] : []), ...(a.tentative ? ['tentative'] : [])].join(', ')})`).join(', ')}`

/** The IPv4 (and dual-stack) choice: see the top of this file. */
function chooseUnderlay4 (o: UnderlayOptions, view: HostView): Underlay {
  const publicIp = o.publicIp ?? ''
  let pub: number | undefined
  if (publicIp !== '') {
    try { pub = parseIp4(publicIp) } catch { throw new WeftError('EFLAG', `--public-ip ${JSON.stringify(publicIp)} is not an IPv4 address`) }
  }
  const found = findInterface(o, view, FAMILY4, pub !== undefined ? publicIp : undefined, publicIp)
  const ip = parseIp4(found.ip)
  return { name: found.link.name, ip, publicIP: pub ?? ip, mtu: found.link.mtu }
}

/** The IPv6-only choice (EnableIPv4 false): as chooseUnderlay4, by IPv6 addresses and the IPv6 default route. */
function chooseUnderlay6 (o: UnderlayOptions, view: HostView): Underlay {
  const publicIpv6 = o.publicIpv6 ?? ''
  const pub = publicIpv6 !== '' ? parsePublicIpv6(publicIpv6) : undefined
  const found = findInterface(o, view, FAMILY6, pub !== undefined ? ip6ToString(pub) : undefined, publicIpv6)
  const ip6 = parseIp6(found.ip)
  return { name: found.link.name, ip: 0, publicIP: 0, mtu: found.link.mtu, ip6, publicIPv6: pub ?? ip6 }
}

/**
 * The interface and address of one family, chosen as the top of this file
 * says; `pub` is the public address to look for (given and valid), `pubFlag`
 * the flag's text as given, for the log. Its MTU is known.
 */
function findInterface (o: UnderlayOptions, view: HostView, f: Family, pub: string | undefined, pubFlag: string): Found {
  const ifaces = o.iface ?? []
  const regexes = o.ifaceRegex ?? []
  const canReach = o.ifaceCanReach ?? ''
  let found: Found | undefined
  if (ifaces.length > 0 || regexes.length > 0 || canReach !== '') {
    const misses: string[] = []
    const tries: Array<[string, () => Attempt]> = [
      ...ifaces.map((v): [string, () => Attempt] => [`--iface ${v}`, () => byIface(view.links, v, f)]),
      ...regexes.map((v): [string, () => Attempt] => [`--iface-regex ${v}`, () => byRegex(view.links, v, f)]),
      ...(canReach !== '' ? [[`--iface-can-reach ${canReach}`, () => byRoute(view, canReach, f)] as [string, () => Attempt]] : [])
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
      const a = byIface(view.links, pub, f)
      if ('link' in a) found = a
      else o.log?.info({ [f.publicField]: pubFlag }, f.publicNotHeld)
    }
    if (found === undefined) {
      const name = f.defaultRouteDev(view)
      if (name === undefined) throw new WeftError('EIFACE', `no ${f.routeWord}default route to pick the underlay interface from: give --iface`)
      const link = view.links.find((l) => l.name === name)
      const a = link === undefined ? { why: `${name} is not listed` } : withAddress(link, f)
      if (!('link' in a)) throw new WeftError('EIFACE', `the ${f.routeWord}default route's interface ${name} has no usable ${f.name} address (${a.why}): give --iface`)
      found = a
    }
  }
  if (!(found.link.mtu > 0)) throw new WeftError('EIFACE', `cannot determine the MTU of interface ${found.link.name}`)
  return found
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
    defaultRouteDev: (family = 4) => {
      const routes = jsonOf<Array<{ dev?: string }>>(ipSync([`-${family}`, '-j', 'route', 'show', 'default'], netns), 'ip -j route show default')
      if (routes.length === 0) return undefined
      if (routes[0]!.dev === undefined) throw new WeftError('EIFACE', 'found a default route but cannot tell its interface (multipath?): give --iface')
      return routes[0]!.dev
    },
    routeGet: (ip) => {
      const r = jsonOf<Array<{ dev?: string, prefsrc?: string }>>(ipSync([isIPv6(ip) ? '-6' : '-4', '-j', 'route', 'get', ip], netns), 'ip -j route get')[0]
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
