// `weft bench`: the benchmark suite (bench/run.ts) from the source tree:
// micro-benchmarks of the dataplane's stages, then plain veth, kernel VXLAN
// and every weft backend between two namespaced nodes, in one run. It is a
// separate program (it builds namespaces and runs daemons, iperf3 and
// floods), so this only starts it with our arguments and waits.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import { constants } from 'node:os'
import path from 'node:path'
import type { Command } from './command'

// dist/src/cli/bench.js -> dist/bench/run.js
const SCRIPT = path.join(__dirname, '..', '..', 'bench', 'run.js')

export const bench: Command = {
  name: 'bench',
  summary: 'benchmark veth, kernel VXLAN and every weft backend in namespaces (throughput, packet rate, latency, CPU); needs root and iperf3',
  usage: 'weft bench [--seconds 3] [--paths veth,kernel-vxlan,vxlan,vxlan-2w,ipip,udp,host-gw,forwarder] [--no-offloads] [--out FILE.json] [--udp-rate 1G] [--pings 200] [--rounds 3] [--congestion cubic] [--no-micro] [--only head-to-head] [--conditions pod,pod-4,node,other-cni] [--h2h-congestion default,cubic]',
  async run (argv, io) {
    if (!fs.existsSync(SCRIPT)) {
      io.err(`weft bench: ${SCRIPT} is missing: the benchmarks come with the source tree (build it with \`npx tsc -p .\`), not with an installed package`)
      return 1
    }
    return await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, [SCRIPT, ...argv], { stdio: 'inherit' })
      // Ctrl-C reaches the child as well (same process group): it tears its
      // namespaces down and exits, and we report how; a TERM sent to us alone is passed on.
      const onInt = (): void => {}
      const onTerm = (): void => { child.kill('SIGTERM') }
      process.on('SIGINT', onInt)
      process.on('SIGTERM', onTerm)
      const done = (code: number): void => {
        process.removeListener('SIGINT', onInt)
        process.removeListener('SIGTERM', onTerm)
        resolve(code)
      }
      child.on('error', (err) => { io.err(`weft bench: cannot start ${SCRIPT}: ${err.message}`); done(1) })
      child.on('exit', (code, signal) => { done(code ?? (signal !== null ? 128 + constants.signals[signal] : 1)) })
    })
  }
}
