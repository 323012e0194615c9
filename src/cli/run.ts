// `weft run`: the node daemon. SIGTERM or SIGINT stop it cleanly.
import { runDaemon } from '../daemon/daemon'
import { logLevelFor, parseRunFlags, runFlagsHelp } from '../daemon/flags'
import { createLogger } from '../log'
import type { Command } from './command'
import { setFlagsFromString } from 'node:v8'

/**
 * V8 gives a function to its optimising compiler after it has run a budget
 * of bytecode, scaled by the function's size. The dataplane's per-batch
 * functions are large and, on a quiet node, run a few hundred times a second
 * with one packet each: with the default budget they stay in baseline code
 * (and its inline-cache stubs) for tens of seconds, which is what a ping
 * measures. A sixteenth of the budget has them optimised after a few hundred
 * batches. Measured over two weft nodes (ping between pods, 3 A/B runs of 300):
 * median RTT 0.60 -> 0.54 ms at 10 ms intervals, 0.275 -> 0.222 ms at 2 ms.
 * Set before the daemon's first packet; it touches nothing but tiering.
 */
const INTERRUPT_BUDGET = 4096

export const run: Command = {
  name: 'run',
  summary: 'run the node daemon: lease a subnet, write subnet.env, follow the other nodes',
  usage: `weft run [flags]   (flanneld's flag names; each also read from FLANNELD_<NAME>; --version prints the version)\n\n${runFlagsHelp()}`,
  async run (argv) {
    const flags = parseRunFlags(argv)
    setFlagsFromString(`--interrupt-budget=${INTERRUPT_BUDGET}`)
    // -v N as flanneld's klog verbosity; WEFT_LOG_LEVEL names a level and wins
    const log = createLogger(process.env.WEFT_LOG_LEVEL === undefined || process.env.WEFT_LOG_LEVEL === '' ? { level: logLevelFor(flags.verbosity) } : {})
    const ac = new AbortController()
    const stop = (sig: string): void => {
      log.info({ signal: sig }, 'shutting down')
      ac.abort()
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
    try {
      return await runDaemon(flags, log, ac.signal)
    } catch (err) {
      log.error({ code: (err as { code?: string }).code, err: (err as Error).message }, 'weft stopped on an error')
      throw err
    }
  }
}
