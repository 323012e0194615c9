// The `forwarder` path's program (forwarder.c), compiled once per benchmark
// process with the machine's C compiler (the one node-gyp built the addon
// with) into a temporary directory that is removed on exit.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const SOURCE = path.join(__dirname, '..', '..', 'bench', 'forwarder.c')

let built: string | undefined

/** The compiled forwarder's path; throws, saying what is missing, when it cannot be built. */
export function forwarderBinary (): string {
  if (built !== undefined && fs.existsSync(built)) return built
  if (!fs.existsSync(SOURCE)) throw new Error(`${SOURCE} is missing: the forwarder path needs the source tree`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-forwarder-'))
  process.once('exit', () => { fs.rmSync(dir, { recursive: true, force: true }) })
  const out = path.join(dir, 'forwarder')
  const cc = process.env.CC ?? 'cc'
  try {
    execFileSync(cc, ['-O2', '-Wall', '-o', out, SOURCE], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer }
    throw new Error(e.code === 'ENOENT' ? `the forwarder path needs a C compiler (${cc}: not found)` : `${cc} could not build ${SOURCE}: ${e.stderr?.toString().trim() ?? e.message}`)
  }
  built = out
  return out
}
