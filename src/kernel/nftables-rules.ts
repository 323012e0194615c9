// flanneld's nftables rules (pkg/trafficmngr/nftables, "EnableNFTables":
// true): table `ip flannel-ipv4`, a `forward` chain (filter hook forward,
// priority filter) accepting the flannel Network both ways, and a `postrtg`
// chain (nat hook postrouting, priority srcnat) with the --ip-masq rules, in
// flannel's order, with flannel's comments. Pure: the text `nft -f` reads,
// and the listing `nft list table` prints back, built without root.
//
// One difference, on purpose: flannel's first masquerade rule is `meta mark
// 0x4000 return`, an exact match, so a packet kube-proxy marked for
// masquerading is NATed again by flannel as soon as any other mark bit is set
// too (flannel's own code marks the value "TODO"). weft matches the bit, as
// flannel's iptables rule does (`-m mark --mark 0x4000/0x4000`):
// `meta mark & 0x00004000 == 0x00004000 return`.
//
// For an IPv6 Network and subnet the table is flannel's `ip6 flannel-ipv6`:
// the same chains, comments and rules with `ip6` matches and ff00::/8 for
// multicast; the family follows from the CIDRs.
import { canonicalCidr, cidrFamily, multicastOf, sameFamily, type Cidr, type Family } from './iptables-rules'

export const NFT_FAMILY = 'ip'
export const NFT_TABLE = 'flannel-ipv4'
export const NFT_FAMILY_V6 = 'ip6'
export const NFT_TABLE_V6 = 'flannel-ipv6'
export const NFT_FORWARD_CHAIN = 'forward'
export const NFT_MASQ_CHAIN = 'postrtg'
/** kube-proxy's masquerade bit (flannel's trafficmngr.KubeProxyMark, 0x4000/0x4000) */
export const KUBE_PROXY_MARK_BIT = 0x4000

/** Every table flannel's nftables mode makes: what a clean-up removes. */
export const NFT_TABLES_ALL: ReadonlyArray<{ family: string, name: string }> = [
  { family: 'ip', name: NFT_TABLE },
  { family: 'ip6', name: NFT_TABLE_V6 }
]

export interface NftChain {
  readonly name: string
  readonly comment: string
  readonly type: 'filter' | 'nat'
  readonly hook: 'forward' | 'postrouting'
  /** the named priority, as nft prints it: filter (0), srcnat (100) */
  readonly priority: 'filter' | 'srcnat'
  /** rule statements in order, as `nft list` prints them */
  readonly rules: readonly string[]
}

export interface NftTable {
  readonly family: string
  readonly name: string
  readonly comment: string
  readonly chains: readonly NftChain[]
}

export interface NftTableOptions {
  network: Cidr
  podSubnet: Cidr
  ipMasq: boolean
  forwardRules: boolean
  /** `masquerade fully-random` (flannel: when nft takes it and --ip-masq-fully-random-disable is unset) */
  randomFully: boolean
}

const hex8 = (n: number): string => '0x' + n.toString(16).padStart(8, '0')

/** flannel's table for a family: `ip flannel-ipv4` or `ip6 flannel-ipv6` (nft's family name is also the match prefix). */
export function nftTableOf (family: Family): { family: string, name: string } {
  return family === 6 ? { family: NFT_FAMILY_V6, name: NFT_TABLE_V6 } : { family: NFT_FAMILY, name: NFT_TABLE }
}

/** --iptables-forward-rules: accept forwarded traffic from and to the Network. */
export function nftForwardChain (network: Cidr): NftChain {
  const net = canonicalCidr(network)
  const ip = nftTableOf(cidrFamily(network)).family
  return {
    name: NFT_FORWARD_CHAIN,
    comment: 'chain to accept flannel traffic',
    type: 'filter',
    hook: 'forward',
    priority: 'filter',
    rules: [`${ip} saddr ${net} accept`, `${ip} daddr ${net} accept`]
  }
}

/** --ip-masq: flannel's six rules, same order and meaning as its iptables FLANNEL-POSTRTG. */
export function nftMasqChain (network: Cidr, podSubnet: Cidr, randomFully: boolean): NftChain {
  const family = sameFamily(network, podSubnet)
  const ip = nftTableOf(family).family
  const multicast = multicastOf(family)
  const net = canonicalCidr(network)
  const pod = canonicalCidr(podSubnet)
  const masq = randomFully ? 'masquerade fully-random' : 'masquerade'
  const mark = hex8(KUBE_PROXY_MARK_BIT)
  return {
    name: NFT_MASQ_CHAIN,
    comment: 'chain to manage traffic masquerading by flannel',
    type: 'nat',
    hook: 'postrouting',
    priority: 'srcnat',
    rules: [
      // not what kube-proxy marked for its own masquerading (no double NAT)
      `meta mark & ${mark} == ${mark} return`,
      // nothing within the overlay
      `${ip} saddr ${pod} ${ip} daddr ${net} return`,
      `${ip} saddr ${net} ${ip} daddr ${pod} return`,
      // nor outside traffic to our pods that a node forwarded to us
      `${ip} saddr != ${net} ${ip} daddr ${pod} return`,
      // pods to the outside world, but not multicast
      `${ip} saddr ${net} ${ip} daddr != ${multicast} ${masq}`,
      // the host to the overlay
      `${ip} saddr != ${net} ${ip} daddr ${net} ${masq}`
    ]
  }
}

/** The whole table for these options: always the table (flannel creates it at start), then the chains asked for. */
export function nftTable (o: NftTableOptions): NftTable {
  const { family, name } = nftTableOf(sameFamily(o.network, o.podSubnet))
  const chains: NftChain[] = []
  if (o.forwardRules) chains.push(nftForwardChain(o.network))
  if (o.ipMasq) chains.push(nftMasqChain(o.network, o.podSubnet, o.randomFully))
  return { family, name, comment: `rules for ${name}`, chains }
}

const quote = (s: string): string => `"${s.replace(/["\\]/g, '')}"`

/**
 * The table as `nft list table ip flannel-ipv4` prints it (nftables 1.0),
 * and as `nft -f` reads it. `comments` false leaves the table's and chains'
 * comments out, for kernels and nft versions without them (before 5.10 and
 * 0.9.7), as flannel's knftables does.
 */
export function renderNftTable (t: NftTable, comments = true): string {
  const lines = [`table ${t.family} ${t.name} {`]
  if (comments) lines.push(`\tcomment ${quote(t.comment)}`)
  t.chains.forEach((c, i) => {
    if (i > 0) lines.push('')
    lines.push(`\tchain ${c.name} {`)
    if (comments) lines.push(`\t\tcomment ${quote(c.comment)}`)
    lines.push(`\t\ttype ${c.type} hook ${c.hook} priority ${c.priority}; policy accept;`)
    for (const r of c.rules) lines.push(`\t\t${r}`)
    lines.push('\t}')
  })
  lines.push('}')
  return lines.join('\n') + '\n'
}

/**
 * One `nft -f -` transaction that replaces the table whole: declared (so the
 * delete cannot fail), deleted, and declared again with its chains and
 * rules. The kernel commits it at once, so no packet ever meets the table
 * half-built or missing, and nothing left in it (a foreign rule, a chain
 * this configuration no longer wants) survives.
 */
export function nftApplyScript (t: NftTable, comments = true): string {
  return `table ${t.family} ${t.name}\ndelete table ${t.family} ${t.name}\n` + renderNftTable(t, comments)
}

/** One transaction deleting these tables if they exist (declared first, so a missing one is no error). */
export function nftRemoveScript (tables: ReadonlyArray<{ family: string, name: string }> = [{ family: NFT_FAMILY, name: NFT_TABLE }]): string {
  return tables.map((t) => `table ${t.family} ${t.name}\ndelete table ${t.family} ${t.name}\n`).join('')
}

/** A check-only transaction (`nft -c -f -`) asking whether this kernel and nft take `masquerade fully-random` (flannel's checkRandomfully). */
export function nftRandomFullyProbe (): string {
  return 'table ip weft-probe {\n\tchain masqueradeTest {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tip saddr != 127.0.0.1 masquerade fully-random\n\t}\n}\n'
}

/** Do these `nft list` outputs say the same (indentation and blank lines aside)? */
export function sameListing (a: string, b: string): boolean {
  const norm = (s: string): string => s.split('\n').map((l) => l.trim()).filter((l) => l !== '').join('\n')
  return norm(a) === norm(b)
}
