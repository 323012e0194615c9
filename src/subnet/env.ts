// subnet.env (default /run/flannel/subnet.env): written once at startup for
// the CNI plugin and mk-docker-opts.sh, read back on restart to reuse the
// subnets. Writing follows flanneld's WriteSubnetFile byte for byte: the
// IPv4 lines if the network has IPv4, then the IPv6 ones if it has IPv6,
// then the MTU and masquerading; reading accepts what flannel's CNI plugin
// and godotenv (which flanneld reads it with) accept: comments, quotes,
// `export`, CRLF, either family alone.
import { writeAtomic } from '../util/write-atomic'
import fs from 'node:fs'
import { WeftError } from '../errors'
import { formatCidr, networkOf, parseCidr } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { ip4ToString } from '../packet/ip'
import { formatCidr6, ip6ToString, networkOf6, parseCidr6 } from '../packet/net6'
import type { Ip6Net } from '../packet/net6'

export const FLANNEL_NETWORK = 'FLANNEL_NETWORK'
export const FLANNEL_SUBNET = 'FLANNEL_SUBNET'
export const FLANNEL_IPV6_NETWORK = 'FLANNEL_IPV6_NETWORK'
export const FLANNEL_IPV6_SUBNET = 'FLANNEL_IPV6_SUBNET'
export const FLANNEL_MTU = 'FLANNEL_MTU'
export const FLANNEL_IPMASQ = 'FLANNEL_IPMASQ'
export const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env'

/** At least one family: network and subnet together, network6 and subnet6 together. */
export interface SubnetEnv {
  /** the whole IPv4 overlay network (FLANNEL_NETWORK; its first IPv4 entry); absent on an IPv6-only network */
  readonly network?: Ip4Net
  /** this node's IPv4 lease as a network, e.g. 10.244.1.0/24 (the file says 10.244.1.1/24) */
  readonly subnet?: Ip4Net
  /** the IPv6 overlay network (FLANNEL_IPV6_NETWORK); absent without IPv6 */
  readonly network6?: Ip6Net
  /** this node's IPv6 lease as a network, e.g. fc00:0:0:1::/64 (the file says fc00:0:0:1::1/64) */
  readonly subnet6?: Ip6Net
  readonly mtu: number
  /** --ip-masq as flanneld ran with it (the CNI plugin gives the bridge the opposite) */
  readonly ipMasq: boolean
}

// 68 is the smallest MTU an IPv4 link may have (RFC 791).
const MIN_MTU = 68
const MAX_MTU = 65535

/**
 * The file's exact text. FLANNEL_SUBNET is the lease's first address with its
 * length ("10.244.1.1/24"): flanneld increments the lease IP before printing,
 * and that string goes to docker's --bip and the bridge's gateway.
 */
export function formatSubnetEnv (env: SubnetEnv): string {
  if (!Number.isInteger(env.mtu) || env.mtu < MIN_MTU || env.mtu > MAX_MTU) {
    throw new WeftError('ESUBNETENV', `${FLANNEL_MTU} ${env.mtu}: must be an integer from ${MIN_MTU} to ${MAX_MTU}`)
  }
  const v4 = pair(env.network, env.subnet, FLANNEL_NETWORK, FLANNEL_SUBNET)
  const v6 = pair(env.network6, env.subnet6, FLANNEL_IPV6_NETWORK, FLANNEL_IPV6_SUBNET)
  if (v4 === undefined && v6 === undefined) throw new WeftError('ESUBNETENV', `neither ${FLANNEL_NETWORK} and ${FLANNEL_SUBNET} nor ${FLANNEL_IPV6_NETWORK} and ${FLANNEL_IPV6_SUBNET}: a subnet.env needs at least one family`)
  let text = ''
  if (v4 !== undefined) {
    const lease = networkOf(v4[1])
    text += `${FLANNEL_NETWORK}=${formatCidr(networkOf(v4[0]))}\n${FLANNEL_SUBNET}=${ip4ToString((lease.ip + 1) >>> 0)}/${lease.prefixLen}\n`
  }
  if (v6 !== undefined) {
    // flanneld's ipv6sn.IncrementIP(): the first address after the subnet's, "fc00:0:0:1::1/64"
    const lease = networkOf6(v6[1])
    text += `${FLANNEL_IPV6_NETWORK}=${formatCidr6(networkOf6(v6[0]))}\n${FLANNEL_IPV6_SUBNET}=${ip6ToString(lease.ip + 1n)}/${lease.prefixLen}\n`
  }
  return text + `${FLANNEL_MTU}=${env.mtu}\n` + `${FLANNEL_IPMASQ}=${env.ipMasq ? 'true' : 'false'}\n`
}

/** Both halves of a family or neither (then undefined). */
function pair<T> (network: T | undefined, subnet: T | undefined, nk: string, sk: string): [T, T] | undefined {
  if (network === undefined && subnet === undefined) return undefined
  if (network === undefined || subnet === undefined) throw new WeftError('ESUBNETENV', `${network === undefined ? sk : nk} without ${network === undefined ? nk : sk}: give both or neither`)
  return [network, subnet]
}

/**
 * Write the file atomically, as flanneld does with renameio: a temporary file
 * in the same directory, fsync, rename over the old one. A reader (the CNI
 * plugin runs at any moment) sees the old file or the new one, never half of
 * one. The directory is created (0755) if missing; the file is 0644 whatever
 * the umask. Throws WeftError ESUBNETENV; no temporary file is left behind.
 */
export function writeSubnetEnv (file: string, env: SubnetEnv): void {
  try {
    writeAtomic(file, formatSubnetEnv(env), { mode: 0o644, dirMode: 0o755 })
  } catch (err) {
    throw new WeftError('ESUBNETENV', `${file}: cannot write: ${(err as Error).message}`, { cause: err })
  }
}

/** The file's values, or undefined if it does not exist. Throws WeftError ESUBNETENV naming the key at fault. */
export function readSubnetEnv (file: string): SubnetEnv | undefined {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new WeftError('ESUBNETENV', `${file}: cannot read: ${(err as Error).message}`, { cause: err })
  }
  return parseSubnetEnv(text, file)
}

/** Parse subnet.env text; `file` only names the source in errors. */
export function parseSubnetEnv (text: string, file = 'subnet.env'): SubnetEnv {
  const vars = parseDotenv(text, file)
  const fail = (key: string, why: string): never => {
    throw new WeftError('ESUBNETENV', `${file}: ${key} ${JSON.stringify(vars.get(key))}: ${why}`)
  }

  // Which families the file has: IPv6 if either of its keys is there, IPv4
  // if FLANNEL_SUBNET is, or if there is no IPv6 (then its keys are missing).
  const want6 = vars.get(FLANNEL_IPV6_NETWORK) !== undefined || vars.get(FLANNEL_IPV6_SUBNET) !== undefined
  const want4 = vars.get(FLANNEL_SUBNET) !== undefined || !want6
  // flanneld writes the IPv6 network in FLANNEL_IPV6_NETWORK; some writers put it in FLANNEL_NETWORK's list
  const v6InList = (vars.get(FLANNEL_NETWORK) ?? '').split(',').some((s) => s.includes(':'))
  const missing = [
    ...(want4 ? [FLANNEL_NETWORK, FLANNEL_SUBNET] : []),
    ...(want6 ? [FLANNEL_IPV6_NETWORK, FLANNEL_IPV6_SUBNET] : []),
    FLANNEL_MTU,
    FLANNEL_IPMASQ
  ].filter((k) => vars.get(k) === undefined && !(k === FLANNEL_IPV6_NETWORK && v6InList))
  if (missing.length > 0) throw new WeftError('ESUBNETENV', `${file}: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing`)

  // The CNI plugin takes comma-separated lists (several cluster CIDRs);
  // weft serves the first of each family, but every entry must parse.
  let network: Ip4Net | undefined
  let listed6: Ip6Net | undefined
  for (const part of list(vars.get(FLANNEL_NETWORK))) {
    if (part.includes(':')) {
      listed6 ??= cidr6(part, () => fail(FLANNEL_NETWORK, `${JSON.stringify(part)} is not an IPv6 CIDR`))
      continue
    }
    const n = cidr(part, () => fail(FLANNEL_NETWORK, `${JSON.stringify(part)} is not an IPv4 CIDR`))
    network ??= n
  }
  if (want4 && network === undefined) fail(FLANNEL_NETWORK, 'no IPv4 network (FLANNEL_SUBNET is IPv4: an IPv6 network goes in FLANNEL_IPV6_NETWORK)')

  // "10.244.1.1/24" names the bridge address; the lease is the network it is in.
  const subnet = want4 ? cidr(vars.get(FLANNEL_SUBNET) as string, () => fail(FLANNEL_SUBNET, 'not an IPv4 CIDR such as 10.244.1.1/24')) : undefined

  let network6: Ip6Net | undefined
  for (const part of list(vars.get(FLANNEL_IPV6_NETWORK))) {
    const n = cidr6(part, () => fail(FLANNEL_IPV6_NETWORK, `${JSON.stringify(part)} is not an IPv6 CIDR`))
    network6 ??= n
  }
  network6 ??= want6 ? listed6 : undefined
  if (want6 && network6 === undefined) fail(FLANNEL_IPV6_NETWORK, 'no IPv6 network')
  const subnet6 = want6 ? cidr6(vars.get(FLANNEL_IPV6_SUBNET) as string, () => fail(FLANNEL_IPV6_SUBNET, 'not an IPv6 CIDR such as fc00:0:0:1::1/64')) : undefined

  const mtuText = vars.get(FLANNEL_MTU) as string
  const mtu = Number(mtuText)
  if (!/^[0-9]+$/.test(mtuText) || mtu < MIN_MTU || mtu > MAX_MTU) fail(FLANNEL_MTU, `must be an integer from ${MIN_MTU} to ${MAX_MTU}`)

  // The CNI plugin reads anything but "true" as false; a typo there would
  // silently flip masquerading, so weft insists on one of the two.
  const masq = vars.get(FLANNEL_IPMASQ)
  if (masq !== 'true' && masq !== 'false') fail(FLANNEL_IPMASQ, 'must be true or false')

  return {
    ...(network !== undefined && subnet !== undefined ? { network, subnet } : {}),
    ...(network6 !== undefined && subnet6 !== undefined ? { network6, subnet6 } : {}),
    mtu,
    ipMasq: masq === 'true'
  }
}

function list (v: string | undefined): string[] {
  return (v ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')
}

function cidr (s: string, onError: () => never): Ip4Net {
  try {
    return networkOf(parseCidr(s))
  } catch {
    return onError()
  }
}

function cidr6 (s: string, onError: () => never): Ip6Net {
  // parseCidr6 would take "::ffff:10.0.0.1/120"; an IPv4 CIDR has no colon
  if (!s.includes(':')) return onError()
  try {
    return networkOf6(parseCidr6(s))
  } catch {
    return onError()
  }
}

const LINE_RE = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*[=:]\s*(.*)$/

/**
 * KEY=VALUE lines the way godotenv reads them: blank lines and `#` comments
 * skipped, `export ` allowed, spaces around `=` (or `:`) ignored, values in
 * single quotes taken literally, in double quotes with \n \t \" \\ escapes,
 * unquoted values cut at ` #`. The last assignment of a key wins. Lines that
 * are not assignments are skipped, as the CNI plugin skips them.
 */
function parseDotenv (text: string, file: string): Map<string, string> {
  const vars = new Map<string, string>()
  for (const rawLine of text.replace(/^\uFEFF/, '').split(/\r?\n|\r/)) {
    const line = rawLine.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = LINE_RE.exec(line)
    if (m === null) continue
    vars.set(m[1], dotenvValue(m[1], m[2], file))
  }
  return vars
}

function dotenvValue (key: string, rest: string, file: string): string {
  const q = rest[0]
  if (q !== '"' && q !== "'") return rest.replace(/\s#.*$/, '').trim()
  let out = ''
  for (let i = 1; i < rest.length; i++) {
    const c = rest[i]
    if (c === q) return out
    if (q === '"' && c === '\\' && i + 1 < rest.length) {
      const e = rest[++i]
      out += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e
    } else {
      out += c
    }
  }
  throw new WeftError('ESUBNETENV', `${file}: ${key}: unterminated ${q === '"' ? 'double' : 'single'} quote`)
}

/**
 * The subnets of a previous subnet.env a node may ask for again: each
 * family's subnet, if the file's network for that family is the config's
 * (flannel PR #752: a changed network makes the old subnet meaningless).
 */
export function previousSubnets (env: SubnetEnv, cfg: { readonly network: Ip4Net, readonly enableIPv4: boolean, readonly ipv6Network?: Ip6Net }): { previousSubnet?: Ip4Net, previousSubnet6?: Ip6Net } {
  const same4 = cfg.enableIPv4 && env.network !== undefined && env.subnet !== undefined && env.network.ip === cfg.network.ip && env.network.prefixLen === cfg.network.prefixLen
  const n6 = cfg.ipv6Network
  const same6 = n6 !== undefined && env.network6 !== undefined && env.subnet6 !== undefined && env.network6.ip === n6.ip && env.network6.prefixLen === n6.prefixLen
  return {
    ...(same4 ? { previousSubnet: env.subnet } : {}),
    ...(same6 ? { previousSubnet6: env.subnet6 } : {})
  }
}
