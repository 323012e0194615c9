// The CNI plugin's process entry. A container runtime starts the plugin for
// every pod, so it loads only what CNI needs (not the daemon, the stores or
// etcd's gRPC client), which keeps an ADD to roughly Node's start-up plus the
// delegates' own time.
import fs from 'node:fs'
import { runCni } from './plugin'

export function runCniProcess (): void {
  let stdin = ''
  if (process.env.CNI_COMMAND !== 'VERSION') {
    try { stdin = fs.readFileSync(0, 'utf8') } catch { stdin = '' }
  }
  process.exitCode = runCni({ env: process.env, stdin, out: (t) => process.stdout.write(t + '\n'), warn: (t) => process.stderr.write(t + '\n') })
}

if (require.main === module) runCniProcess()
