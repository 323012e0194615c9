// flanneld's iptables rules, exactly: same chains, comments, matches and
// order as pkg/trafficmngr/iptables/iptables.go (forwardRules, masqRules), so
// a node moving between flanneld and weft sees the very same rule set and
// either daemon recognises (and replaces) the other's rules. Pure: building
// the rules needs no root, so they are unit-testable anywhere.
import { formatCidr, networkOf, parseCidr, type Ip4Net } from '../packet/net'

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

/** A CIDR string or a parsed net. */
export type Cidr = string | Ip4Net

/** "10.244.1.7/16" → "10.244.0.0/16", the form iptables prints back. */
export function canonicalCidr (cidr: Cidr): string {
  return formatCidr(networkOf(typeof cidr === 'string' ? parseCidr(cidr) : cidr))
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
      ['-s', net, '!', '-d', MULTICAST, ...c, ...masq],
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
