// The CNI plugin's process entry. A container runtime starts the plugin for
// every pod, so it loads only what CNI needs (not the daemon, the stores or
// etcd's gRPC client), which keeps an ADD to roughly Node's start-up plus the
// delegates' own time.
import { runCni } from './plugin'
import { readStdinConfig } from './read'

export function runCniProcess (): void {
  // VERSION takes no config: stdin is not read (the runtime may leave it open)
  const stdin = process.env.CNI_COMMAND === 'VERSION' ? '' : readStdinConfig
  process.exitCode = runCni({ env: process.env, stdin, out: (t) => process.stdout.write(t + '\n'), warn: (t) => process.stderr.write(t + '\n') })
}

if (require.main === module) runCniProcess()
