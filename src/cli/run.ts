// `weft run`: the node daemon. SIGTERM or SIGINT stop it cleanly.
import { runDaemon } from '../daemon/daemon'
import { parseRunFlags, runFlagsHelp } from '../daemon/flags'
import { createLogger } from '../log'
import type { Command } from './command'

export const run: Command = {
  name: 'run',
  summary: 'run the node daemon: lease a subnet, write subnet.env, follow the other nodes',
  usage: `weft run [flags]   (flanneld's flag names; each also read from FLANNELD_<NAME>)\n\n${runFlagsHelp()}`,
  async run (argv) {
    const flags = parseRunFlags(argv)
    const log = createLogger()
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
