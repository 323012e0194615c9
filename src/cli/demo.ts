// `weft demo`: a few nodes with pods on this host, to see weft work.
import path from 'node:path'
import { parseArgs } from 'node:util'
import { WeftError } from '../errors'
import { cleanDemos, DEMO_BACKENDS, runDemo } from '../demo/demo'
import type { Command } from './command'

export const demo: Command = {
  name: 'demo',
  summary: 'run a small cluster on this host (nodes and pods in namespaces): pod table, ping matrix, iperf3',
  usage: `weft demo [--backend vxlan] [--ipv6] [--nodes 3] [--pods 2] [--seconds 5] [--keep] [--cni-path /usr/lib/cni]\n       --backend: ${Object.keys(DEMO_BACKENDS).join(', ')}\n       --ipv6: dual stack (IPv6Network fc00::/48, an IPv6 underlay; vxlan)\n       weft demo clean   (remove what a --keep run left)`,
  async run (argv, io) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        backend: { type: 'string', default: 'vxlan' },
        nodes: { type: 'string', default: '3' },
        pods: { type: 'string', default: '2' },
        seconds: { type: 'string', default: '5' },
        keep: { type: 'boolean', default: false },
        ipv6: { type: 'boolean', default: false },
        'cni-path': { type: 'string', default: '/usr/lib/cni' }
      }
    })
    if (positionals[0] === 'clean') { await cleanDemos(io.out); return 0 }
    const backend = values.backend as string
    if (DEMO_BACKENDS[backend] === undefined) throw new WeftError('EFLAG', `--backend ${JSON.stringify(backend)}: the demo runs ${Object.keys(DEMO_BACKENDS).join(', ')}`)
    const ac = new AbortController()
    const stop = (): void => ac.abort()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    try {
      return await runDemo({
        backend,
        ipv6: values.ipv6 === true,
        nodes: Math.min(20, Math.max(2, Number(values.nodes))),
        podsPerNode: Math.min(8, Math.max(1, Number(values.pods))),
        iperfSeconds: Math.min(60, Math.max(0, Number(values.seconds))),
        keep: values.keep === true,
        cniPath: path.resolve(values['cni-path'] as string),
        out: io.out,
        signal: ac.signal
      })
    } finally {
      process.removeListener('SIGINT', stop)
      process.removeListener('SIGTERM', stop)
    }
  }
}
