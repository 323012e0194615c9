// `weft cni install`: install the CNI plugin and its conflist.
import path from 'node:path'
import { parseArgs } from 'node:util'
import { WeftError } from '../errors'
import { install } from '../cni/install'
import type { Command } from './command'

export const cni: Command = {
  name: 'cni',
  summary: 'install the CNI plugin and a conflist (weft is the plugin when run with CNI_COMMAND set)',
  usage: 'weft cni install [--bin-dir /opt/cni/bin] [--conf-dir /etc/cni/net.d] [--name weft|flannel] [--network cbr0] [--cni-version 1.0.0] [--subnet-file /run/flannel/subnet.env]',
  async run (argv, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'bin-dir': { type: 'string', default: '/opt/cni/bin' },
        'conf-dir': { type: 'string', default: '/etc/cni/net.d' },
        name: { type: 'string', default: 'weft' },
        network: { type: 'string', default: 'cbr0' },
        'cni-version': { type: 'string', default: '1.0.0' },
        'subnet-file': { type: 'string', default: '/run/flannel/subnet.env' }
      }
    })
    if (positionals[0] !== 'install') throw new WeftError('EUSAGE', 'weft cni: say `install`')
    const r = install({
      binDir: values['bin-dir'] as string,
      confDir: values['conf-dir'] as string,
      name: values.name as string,
      network: values.network as string,
      cniVersion: values['cni-version'] as string,
      subnetFile: values['subnet-file'] as string
    }, path.join(__dirname, '..', 'cni', 'main.js'))
    io.out(`installed the plugin ${r.plugin}`)
    io.out(`wrote ${r.conf}`)
    return 0
  }
}
