// What flannel's nftables rules look like in `nft list table ip
// flannel-ipv4` (nftables 1.0) for one network and pod subnet, shared by the
// nftables tests.
export const NET = '10.244.0.0/16'
export const POD = '10.244.1.0/24'

/** flannel's masquerade rules for NET and POD, in order, as nft prints them (the kube-proxy mark matched as a bit: src/kernel/nftables-rules.ts says why). */
export function masqRules (randomFully: boolean): string[] {
  const m = randomFully ? 'masquerade fully-random' : 'masquerade'
  return [
    'meta mark & 0x00004000 == 0x00004000 return',
    'ip saddr 10.244.1.0/24 ip daddr 10.244.0.0/16 return',
    'ip saddr 10.244.0.0/16 ip daddr 10.244.1.0/24 return',
    'ip saddr != 10.244.0.0/16 ip daddr 10.244.1.0/24 return',
    `ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 ${m}`,
    `ip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 ${m}`
  ]
}

/** The whole listing for NET and POD with both chains. */
export function fullListing (randomFully: boolean): string {
  return [
    'table ip flannel-ipv4 {',
    '\tcomment "rules for flannel-ipv4"',
    '\tchain forward {',
    '\t\tcomment "chain to accept flannel traffic"',
    '\t\ttype filter hook forward priority filter; policy accept;',
    '\t\tip saddr 10.244.0.0/16 accept',
    '\t\tip daddr 10.244.0.0/16 accept',
    '\t}',
    '',
    '\tchain postrtg {',
    '\t\tcomment "chain to manage traffic masquerading by flannel"',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    ...masqRules(randomFully).map((r) => `\t\t${r}`),
    '\t}',
    '}',
    ''
  ].join('\n')
}
