// Running delegate plugins (bridge, host-local, ...) the way libcni's
// pkg/invoke does: find the named plugin in a CNI_PATH directory, run it with
// the config on stdin and CNI_COMMAND set, read its result or error. Every
// delegate weft runs (ADD, DEL from a saved config, GC, the VERSION probe)
// comes through findInPath, which checks the name again whatever its source.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { CniCode, CniError } from './errors'
import { cniPathDirs, needEnv, pluginNameProblem } from './validate'

/**
 * The plugin's file: a regular, executable file named `name` directly inside
 * one of CNI_PATH's directories (the first that has one), as libcni's
 * FindInPath finds it. A symlink there is followed, as libcni follows it: the
 * directory is the administrator's.
 */
export function findInPath (name: unknown, env: NodeJS.ProcessEnv): string {
  const why = pluginNameProblem(name)
  if (why !== undefined) throw new CniError(CniCode.INVALID_CONFIG, why, 'a plugin is named by its file in a CNI_PATH directory, without any path')
  const dirs = cniPathDirs(needEnv(env, 'CNI_PATH'))
  for (const d of dirs) {
    const p = path.join(d, name as string)
    // The name has no '/' and is not "." or "..", so this holds; it is the
    // property that matters, so it is checked rather than assumed.
    if (path.dirname(p) !== d) throw new CniError(CniCode.INVALID_CONFIG, `invalid plugin name: ${JSON.stringify(name)}`)
    try {
      if (!fs.statSync(p).isFile()) continue
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch { /* next */ }
  }
  throw new CniError(CniCode.NOT_AVAILABLE, `failed to find plugin ${JSON.stringify(name)} in CNI_PATH (${dirs.join(':')})`)
}

export interface ExecResult { code: number, stdout: string }

export function execPlugin (type: string, command: string, conf: Record<string, unknown>, env: NodeJS.ProcessEnv, extraEnv: Record<string, string> = {}): ExecResult {
  const bin = findInPath(type, env)
  const r = spawnSync(bin, [], { input: JSON.stringify(conf), env: { ...env, ...extraEnv, CNI_COMMAND: command }, encoding: 'utf8', timeout: 60_000 })
  // EPIPE: the plugin exited without reading all of its config (it failed
  // early, or needed none); its exit status and output still tell the story.
  if (r.error !== undefined && !((r.error as NodeJS.ErrnoException).code === 'EPIPE' && r.status !== null)) {
    throw new CniError(CniCode.IO_FAILURE, `running ${bin} failed`, r.error.message)
  }
  return { code: r.status ?? 1, stdout: r.stdout }
}

/** A delegate's own error object, passed on as it came (or wrapped if it printed none). */
export function delegateError (type: string, command: string, r: ExecResult): CniError {
  try {
    const e = JSON.parse(r.stdout) as { code?: unknown, msg?: unknown, details?: unknown }
    if (typeof e.code === 'number') return new CniError(e.code, `${type} ${command}: ${typeof e.msg === 'string' ? e.msg : ''}`, typeof e.details === 'string' ? e.details : '')
  } catch { /* not JSON */ }
  return new CniError(CniCode.IO_FAILURE, `${type} ${command} failed (exit ${r.code})`, r.stdout.trim())
}

const delegateVersions = new Map<string, string[]>()

/** The cniVersion to give a delegate: ours if it speaks it, else the newest it does (1.1 -> 1.0). */
export function versionFor (type: string, want: string, env: NodeJS.ProcessEnv): string {
  // Only 1.1.0 may need lowering (Debian's plugins stop at 1.0.0); anything
  // older every delegate speaks, so skip the extra process start.
  if (want !== '1.1.0') return want
  let v = delegateVersions.get(type)
  if (v === undefined) {
    const r = execPlugin(type, 'VERSION', { cniVersion: want }, env)
    try {
      const list = (JSON.parse(r.stdout) as { supportedVersions?: unknown }).supportedVersions
      v = Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [want]
    } catch { v = [want] }
    delegateVersions.set(type, v)
  }
  if (v.includes(want)) return want
  if (want === '1.1.0' && v.includes('1.0.0')) return '1.0.0'
  throw new CniError(CniCode.INCOMPATIBLE_VERSION, `delegate ${type} does not support cniVersion ${want}`)
}
