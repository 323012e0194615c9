// flanneld's iptables rules, exactly: same chains, comments, matches and
// order as pkg/trafficmngr/iptables/iptables.go (forwardRules, masqRules), so
// a node moving between flanneld and weft sees the very same rule set and
// either daemon recognises (and replaces) the other's rules. The IPv6 set
// (masqIP6Rules there, for ip6tables) is the same chains and rules with the
// IPv6 Network and lease subnet and ff00::/8 for multicast; which family a
// set is for follows from its CIDRs. Pure: building the rules needs no root,
// so they are unit-testable anywhere.
import { WeftError } from '../errors'
import { formatCidr, networkOf, parseCidr, type Ip4Net } from '../packet/net'
import { formatCidr6, networkOf6, parseCidr6, type Ip6Net } from '../packet/net6'

export type Table = 'filter' | 'nat'

/** One of our chains, the built-in chain that jumps to it, and its rules in order. */
export interface ChainSet {
  readonly table: Table
  /** our chain: FLANNEL-FWD or FLANNEL-POSTRTG */
  readonly chain: string
  /** built-in chain holding the jump: FORWARD or POSTROUTING */
  readonly from: string
  /** rule spec (after `-A <from>`) of the jump */
  readonly jump: readonly string[]
  /** rule specs (after `-A <chain>`) appended to our chain, in order */
  readonly rules: ReadonlyArray<readonly string[]>
}

export const FORWARD_CHAIN = 'FLANNEL-FWD'
export const MASQ_CHAIN = 'FLANNEL-POSTRTG'
export const FORWARD_COMMENT = 'flanneld forward'
export const MASQ_COMMENT = 'flanneld masq'
/** kube-proxy's masquerade mark (flannel's trafficmngr.KubeProxyMark): never NAT twice. */
export const KUBE_PROXY_MARK = '0x4000/0x4000'
const MULTICAST = '224.0.0.0/4'
const MULTICAST6 = 'ff00::/8'

/** An IP family: iptables or ip6tables, `ip` or `ip6` in nftables. */
export type Family = 4 | 6

/** A CIDR string (IPv4 or IPv6) or a parsed net. */
export type Cidr = string | Ip4Net | Ip6Net

/** The family of a CIDR: IPv6 text has a colon, a parsed IPv6 net a bigint. */
export function cidrFamily (cidr: Cidr): Family {
  return (typeof cidr === 'string' ? cidr.includes(':') : typeof cidr.ip === 'bigint') ? 6 : 4
}

/**
 * "10.244.1.7/16" → "10.244.0.0/16", "FC00:0::1/48" → "fc00::/48": the
 * network in the form iptables, ip6tables and nft print back (for IPv6 also
 * Go's, flannel's, since both write RFC 5952).
 */
export function canonicalCidr (cidr: Cidr): string {
  if (cidrFamily(cidr) === 6) return formatCidr6(networkOf6(typeof cidr === 'string' ? parseCidr6(cidr) : cidr as Ip6Net))
  return formatCidr(networkOf(typeof cidr === 'string' ? parseCidr(cidr) : cidr as Ip4Net))
}

/** The family both CIDRs are in; a Network of one family with a subnet of the other is a caller's bug. */
export function sameFamily (network: Cidr, podSubnet: Cidr): Family {
  const f = cidrFamily(network)
  if (cidrFamily(podSubnet) !== f) {
    throw new WeftError('EBADCIDR', `network ${canonicalCidr(network)} and pod subnet ${canonicalCidr(podSubnet)} are not of the same IP family`)
  }
  return f
}

/** Multicast, which --ip-masq never masquerades: 224.0.0.0/4 or ff00::/8. */
export function multicastOf (family: Family): string {
  return family === 6 ? MULTICAST6 : MULTICAST
}

/**
 * `--iptables-forward-rules`: accept forwarded traffic to and from the
 * overlay even when the FORWARD policy is DROP (as Docker >= 1.13 sets it).
 */
export function forwardChain (network: Cidr): ChainSet {
  const net = canonicalCidr(network)
  const c = ['-m', 'comment', '--comment', FORWARD_COMMENT]
  return {
    table: 'filter',
    chain: FORWARD_CHAIN,
    from: 'FORWARD',
    jump: [...c, '-j', FORWARD_CHAIN],
    rules: [
      ['-s', net, ...c, '-j', 'ACCEPT'],
      ['-d', net, ...c, '-j', 'ACCEPT']
    ]
  }
}

/**
 * `--ip-masq`: masquerade what leaves the overlay for the outside world, and
 * what the host itself sends into the overlay, but nothing pod-to-pod.
 * `randomFully` adds --random-fully to the two MASQUERADE rules (flannel does
 * when iptables supports it and --ip-masq-fully-random-disable is unset).
 */
export function masqChain (network: Cidr, podSubnet: Cidr, randomFully: boolean): ChainSet {
  const multicast = multicastOf(sameFamily(network, podSubnet))
  const net = canonicalCidr(network)
  const pod = canonicalCidr(podSubnet)
  const c = ['-m', 'comment', '--comment', MASQ_COMMENT]
  const masq = randomFully ? ['-j', 'MASQUERADE', '--random-fully'] : ['-j', 'MASQUERADE']
  return {
    table: 'nat',
    chain: MASQ_CHAIN,
    from: 'POSTROUTING',
    jump: [...c, '-j', MASQ_CHAIN],
    rules: [
      ['-m', 'mark', '--mark', KUBE_PROXY_MARK, ...c, '-j', 'RETURN'],
      ['-s', pod, '-d', net, ...c, '-j', 'RETURN'],
      ['-s', net, '-d', pod, ...c, '-j', 'RETURN'],
      ['!', '-s', net, '-d', pod, ...c, '-j', 'RETURN'],
      ['-s', net, '!', '-d', multicast, ...c, ...masq],
      ['!', '-s', net, '-d', net, ...c, ...masq]
    ]
  }
}

/** A token as iptables-save / `iptables -S` print it (and iptables-restore reads it). */
export function quoteToken (t: string): string {
  return /^[^\s"'\\]+$/.test(t) ? t : `"${t.replace(/[\\"]/g, (ch) => '\\' + ch)}"`
}

/** `-A <chain> <spec>` as `iptables -S` prints it. */
export function ruleLine (chain: string, spec: readonly string[], action = '-A'): string {
  return [action, chain, ...spec].map(quoteToken).join(' ')
}

/** Does this `iptables -S <from>` line jump (or goto) to chain? Format-agnostic on purpose. */
export function isJumpTo (line: string, from: string, chain: string): boolean {
  return line.startsWith(`-A ${from} `) && (line.endsWith(` -j ${chain}`) || line.endsWith(` -g ${chain}`))
}
