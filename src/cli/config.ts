// `weft config set|get`: the network config in the store (flannel's
// <prefix>/config), validated before it is written.
import fs from 'node:fs'
import { WeftError } from '../errors'
import { formatCidr } from '../packet/net'
import { ip4ToString } from '../packet/ip'
import { formatCidr6, ip6ToString } from '../packet/net6'
import { ipv6SubnetCount, parseNetworkConfig, subnetCount } from '../subnet/config'
import { describeStore, openStore } from '../store/open'
import type { Command } from './command'
import { parseStoreArgs, STORE_USAGE } from './store-flags'

export const config: Command = {
  name: 'config',
  summary: 'set or show the network config (flannel\'s net-conf JSON) in the store',
  usage: `weft config set FILE|-|JSON ${STORE_USAGE}\n       weft config get ${STORE_USAGE}`,
  async run (argv, io) {
    const { flags, positionals } = parseStoreArgs(argv)
    const [verb, source] = positionals
    if (verb !== 'set' && verb !== 'get') throw new WeftError('EUSAGE', 'weft config: say `set FILE` or `get`')
    const store = openStore(flags)
    try {
      if (verb === 'get') {
        const text = await store.getConfig()
        if (text === undefined) {
          io.err(`no network config in ${describeStore(flags)}`)
          return 1
        }
        io.out(text)
        return 0
      }
      if (source === undefined) throw new WeftError('EUSAGE', 'weft config set: give a file, - for standard input, or the JSON itself')
      const text = source === '-' ? fs.readFileSync(0, 'utf8') : source.trimStart().startsWith('{') ? source : fs.readFileSync(source, 'utf8')
      const cfg = parseNetworkConfig(text) // refuses a bad config before it reaches the store
      await store.putConfig(text.trim())
      const parts: string[] = []
      if (cfg.enableIPv4) parts.push(`network ${formatCidr(cfg.network)}: ${subnetCount(cfg)} subnets of /${cfg.subnetLen} (${ip4ToString(cfg.subnetMin)} to ${ip4ToString(cfg.subnetMax)})`)
      if (cfg.ipv6Network !== undefined && cfg.ipv6SubnetMin !== undefined && cfg.ipv6SubnetMax !== undefined) {
        parts.push(`IPv6 network ${formatCidr6(cfg.ipv6Network)}: ${ipv6SubnetCount(cfg)} subnets of /${cfg.ipv6SubnetLen} (${ip6ToString(cfg.ipv6SubnetMin)} to ${ip6ToString(cfg.ipv6SubnetMax)})`)
      }
      io.out(`${parts.join('; ')}, backend ${cfg.backend.type}`)
      if (cfg.backendDefaulted) io.out('note: no Backend given, so weft uses vxlan (flanneld would use udp)')
      return 0
    } finally {
      await store.close()
    }
  }
}
