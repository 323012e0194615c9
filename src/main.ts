// weft's command-line entry, and the only module that decides to exit.
//
// Commands are listed in one explicit table; each lives in src/cli/.
import { bench } from './cli/bench'
import { capture } from './cli/capture'
import { cni } from './cli/cni'
import { config } from './cli/config'
import { demo } from './cli/demo'
import { leases } from './cli/leases'
import { probe } from './cli/probe'
import { run } from './cli/run'
import { status } from './cli/status'
import type { Command, Io } from './cli/command'
import { WeftError } from './errors'
import { runCniProcess } from './cni/main'
import { wantsVersion } from './daemon/flags'

const VERSION: string = (require('../../package.json') as { version: string }).version

const COMMANDS: readonly Command[] = [demo, run, status, config, leases, cni, capture, probe, bench]

function help (io: Io): void {
  io.out(`weft ${VERSION}: a userspace overlay network for Kubernetes-style clusters,`)
  io.out('speaking flannel (etcd layout, net-conf.json, subnet.env, VXLAN on UDP 8472).')
  io.out('')
  io.out('usage: weft <command> [options]')
  io.out('')
  io.out('commands:')
  const width = Math.max(...COMMANDS.map((c) => c.name.length), 'version'.length)
  for (const c of COMMANDS) io.out(`  ${c.name.padEnd(width)}  ${c.summary}`)
  io.out(`  ${'version'.padEnd(width)}  print the version`)
  io.out(`  ${'help'.padEnd(width)}  this text; \`weft help <command>\` for one command`)
  io.out('')
  io.out('Logs are JSON (pino) on stderr; set WEFT_LOG_LEVEL=debug (or weft run -v 1) for more.')
}

export async function main (argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const c = COMMANDS.find((x) => x.name === rest[0])
    if (c !== undefined) io.out(`usage: ${c.usage}\n\n${c.summary}`)
    else help(io)
    return 0
  }
  if (name === 'version' || name === '--version' || name === '-v') {
    io.out(VERSION)
    return 0
  }
  const cmd = COMMANDS.find((c) => c.name === name)
  if (cmd === undefined) {
    io.err(`weft: unknown command '${name}'. Run \`weft --help\` for the list.`)
    return 2
  }
  if (rest.includes('--help') || rest.includes('-h') || (cmd === run && rest.includes('-help'))) {
    io.out(`usage: ${cmd.usage}\n\n${cmd.summary}`)
    return 0
  }
  // flanneld --version: the version, exit 0 (weft run's -v is klog's verbosity, as flanneld's)
  if (cmd === run && wantsVersion(rest)) {
    io.out(VERSION)
    return 0
  }
  return await cmd.run(rest, io)
}

/** Run as a program: parse process.argv, print, set the exit code. */
export function runCli (): void {
  // A container runtime runs us as a CNI plugin: CNI_COMMAND in the environment.
  // (bin/weft and the installed plugin go straight to cni/main, which starts faster.)
  if (process.env.CNI_COMMAND !== undefined && process.env.CNI_COMMAND !== '') {
    runCniProcess()
    return
  }
  const io: Io = { out: (l) => process.stdout.write(l + '\n'), err: (l) => process.stderr.write(l + '\n') }
  main(process.argv.slice(2), io).then((code) => {
    process.exitCode = code
  }, (err: unknown) => {
    if (err instanceof WeftError) io.err(`weft: ${err.message} [${err.code}]`)
    else if (err instanceof Error && (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') io.err(`weft: ${err.message}`)
    else io.err(`weft: unexpected error: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
    process.exitCode = 1
  })
}

if (require.main === module) runCli()
