// What flannel's IPv6 rules look like, as `ip6tables -S` and `nft list
// table ip6 flannel-ipv6` (nftables 1.0) print them, for one IPv6 Network
// and pod subnet; shared by the IPv6 rule tests.
export const NET6 = 'fc00::/48'
export const POD6 = 'fc00:0:0:1::/64'

/** FLANNEL-FWD in ip6tables' filter table (flannel's forwardRules with its IPv6Network). */
export function v6ForwardLines (): string[] {
  return [
    '-N FLANNEL-FWD',
    '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD',
    '-A FLANNEL-FWD -s fc00::/48 -m comment --comment "flanneld forward" -j ACCEPT',
    '-A FLANNEL-FWD -d fc00::/48 -m comment --comment "flanneld forward" -j ACCEPT'
  ]
}

/** FLANNEL-POSTRTG in ip6tables' nat table (flannel's masqIP6Rules). */
export function v6MasqLines (randomFully: boolean): string[] {
  const rf = randomFully ? ' --random-fully' : ''
  return [
    '-N FLANNEL-POSTRTG',
    '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG',
    '-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s fc00:0:0:1::/64 -d fc00::/48 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG -s fc00::/48 -d fc00:0:0:1::/64 -m comment --comment "flanneld masq" -j RETURN',
    '-A FLANNEL-POSTRTG ! -s fc00::/48 -d fc00:0:0:1::/64 -m comment --comment "flanneld masq" -j RETURN',
    `-A FLANNEL-POSTRTG -s fc00::/48 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE${rf}`,
    `-A FLANNEL-POSTRTG ! -s fc00::/48 -d fc00::/48 -m comment --comment "flanneld masq" -j MASQUERADE${rf}`
  ]
}

/** The whole `ip6 flannel-ipv6` table with both chains. */
export function nftListing6 (randomFully: boolean): string {
  const m = randomFully ? 'masquerade fully-random' : 'masquerade'
  return [
    'table ip6 flannel-ipv6 {',
    '\tcomment "rules for flannel-ipv6"',
    '\tchain forward {',
    '\t\tcomment "chain to accept flannel traffic"',
    '\t\ttype filter hook forward priority filter; policy accept;',
    '\t\tip6 saddr fc00::/48 accept',
    '\t\tip6 daddr fc00::/48 accept',
    '\t}',
    '',
    '\tchain postrtg {',
    '\t\tcomment "chain to manage traffic masquerading by flannel"',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    '\t\tmeta mark & 0x00004000 == 0x00004000 return',
    '\t\tip6 saddr fc00:0:0:1::/64 ip6 daddr fc00::/48 return',
    '\t\tip6 saddr fc00::/48 ip6 daddr fc00:0:0:1::/64 return',
    '\t\tip6 saddr != fc00::/48 ip6 daddr fc00:0:0:1::/64 return',
    `\t\tip6 saddr fc00::/48 ip6 daddr != ff00::/8 ${m}`,
    `\t\tip6 saddr != fc00::/48 ip6 daddr fc00::/48 ${m}`,
    '\t}',
    '}',
    ''
  ].join('\n')
}
