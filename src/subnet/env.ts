// subnet.env (default /run/flannel/subnet.env): written once at startup for
// the CNI plugin and mk-docker-opts.sh, read back on restart to reuse the
// subnet. Writing follows flanneld's WriteSubnetFile byte for byte (IPv4
// lines only); reading accepts what flannel's CNI plugin and godotenv (which
// flanneld reads it with) accept: comments, quotes, `export`, CRLF.
import { writeAtomic } from '../util/write-atomic'
import fs from 'node:fs'
import { WeftError } from '../errors'
import { formatCidr, networkOf, parseCidr } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { ip4ToString } from '../packet/ip'

export const FLANNEL_NETWORK = 'FLANNEL_NETWORK'
export const FLANNEL_SUBNET = 'FLANNEL_SUBNET'
export const FLANNEL_MTU = 'FLANNEL_MTU'
export const FLANNEL_IPMASQ = 'FLANNEL_IPMASQ'
export const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env'

export interface SubnetEnv {
  /** the whole overlay network (FLANNEL_NETWORK; its first IPv4 entry) */
  readonly network: Ip4Net
  /** this node's lease as a network, e.g. 10.244.1.0/24 (the file says 10.244.1.1/24) */
  readonly subnet: Ip4Net
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
  const lease = networkOf(env.subnet)
  return `${FLANNEL_NETWORK}=${formatCidr(networkOf(env.network))}\n` +
    `${FLANNEL_SUBNET}=${ip4ToString((lease.ip + 1) >>> 0)}/${lease.prefixLen}\n` +
    `${FLANNEL_MTU}=${env.mtu}\n` +
    `${FLANNEL_IPMASQ}=${env.ipMasq ? 'true' : 'false'}\n`
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

  const missing = [FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ].filter((k) => vars.get(k) === undefined)
  if (missing.length > 0) throw new WeftError('ESUBNETENV', `${file}: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing`)

  // The CNI plugin takes a comma-separated list (several cluster CIDRs); weft
  // is IPv4-only and serves the first IPv4 one, but every entry must parse.
  let network: Ip4Net | undefined
  for (const part of (vars.get(FLANNEL_NETWORK) as string).split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (part.includes(':')) continue
    const n = cidr(part, () => fail(FLANNEL_NETWORK, `${JSON.stringify(part)} is not an IPv4 CIDR`))
    network ??= n
  }
  if (network === undefined) fail(FLANNEL_NETWORK, 'no IPv4 network (weft is IPv4-only)')

  // "10.244.1.1/24" names the bridge address; the lease is the network it is in.
  const subnet = cidr(vars.get(FLANNEL_SUBNET) as string, () => fail(FLANNEL_SUBNET, 'not an IPv4 CIDR such as 10.244.1.1/24'))

  const mtuText = vars.get(FLANNEL_MTU) as string
  const mtu = Number(mtuText)
  if (!/^[0-9]+$/.test(mtuText) || mtu < MIN_MTU || mtu > MAX_MTU) fail(FLANNEL_MTU, `must be an integer from ${MIN_MTU} to ${MAX_MTU}`)

  // The CNI plugin reads anything but "true" as false; a typo there would
  // silently flip masquerading, so weft insists on one of the two.
  const masq = vars.get(FLANNEL_IPMASQ)
  if (masq !== 'true' && masq !== 'false') fail(FLANNEL_IPMASQ, 'must be true or false')

  return { network: network as Ip4Net, subnet, mtu, ipMasq: masq === 'true' }
}

function cidr (s: string, onError: () => never): Ip4Net {
  try {
    return networkOf(parseCidr(s))
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
