// What the CNI plugin accepts from the runtime (environment), the network
// config (stdin) and its own saved files, before any of it becomes a path or
// a program to run. The plugin runs as root; a value that names a file is a
// way to write, delete or execute that file, so each is checked here against
// the rules libcni itself applies:
//   - a plugin name is found only inside a CNI_PATH directory: libcni's
//     FindInPath (pkg/invoke/find.go, the CVE-2021-20206 fix) refuses ""
//     ("no plugin name provided") and any name containing the path separator
//     ("invalid plugin name: %s"); weft also refuses "." and ".." (a directory,
//     not a plugin) and NUL (no file can be named with one)
//   - container IDs and network names match libcni's cniReg
//     `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$` (pkg/utils ValidateContainerID and
//     ValidateNetworkName, which skel runs before every plugin command)
//   - interface names follow pkg/utils ValidateInterfaceName, itself the
//     kernel's dev_valid_name: not empty, at most 15 bytes (IFNAMSIZ less the
//     NUL), not "." or "..", no '/', ':' or whitespace
// weft adds what libcni leaves to the runtime: CNI_PATH entries, CNI_NETNS
// and the config's file paths must be absolute, since a relative one resolves
// against whatever directory the runtime happened to start the plugin in.
import path from 'node:path'
import { CniCode, CniError } from './errors'

const CNI_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/
/** IFNAMSIZ (16) less the terminating NUL */
const MAX_IFNAME_BYTES = 15

/** An environment variable the command needs; unset and empty are the same to the spec. */
export function needEnv (env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name]
  if (v === undefined || v === '') throw new CniError(CniCode.INVALID_ENV, `${name} is not set`)
  return v
}

/** Why `name` may not be looked up in CNI_PATH, or undefined if it may. */
export function pluginNameProblem (name: unknown): string | undefined {
  if (typeof name !== 'string') return `a plugin name must be a string, not ${JSON.stringify(name) ?? String(name)}`
  if (name === '') return 'no plugin name provided'
  if (name.includes('/') || name === '.' || name === '..' || name.includes('\0')) return `invalid plugin name: ${JSON.stringify(name)}`
  return undefined
}

/** A plugin name from a config (`where` says which field); throws INVALID_CONFIG. */
export function checkPluginName (name: unknown, where: string): string {
  const why = pluginNameProblem(name)
  if (why !== undefined) throw new CniError(CniCode.INVALID_CONFIG, `${where}: ${why}`, 'a plugin is named by its file in a CNI_PATH directory, without any path')
  return name as string
}

export function isContainerId (id: string): boolean {
  return CNI_NAME.test(id)
}

export function checkContainerId (id: string): string {
  if (!isContainerId(id)) throw new CniError(CniCode.INVALID_ENV, 'invalid characters in containerID', `CNI_CONTAINERID ${JSON.stringify(id)}: must match ${CNI_NAME.source}`)
  return id
}

export function checkNetworkName (name: string): string {
  if (!CNI_NAME.test(name)) throw new CniError(CniCode.INVALID_CONFIG, 'invalid characters found in network name', `name ${JSON.stringify(name)}: must match ${CNI_NAME.source}`)
  return name
}

/** Why `name` is not a Linux interface name, or undefined if it is one. */
export function ifNameProblem (name: string): string | undefined {
  if (name === '') return 'interface name is empty'
  if (Buffer.byteLength(name) > MAX_IFNAME_BYTES) return `interface name is too long (at most ${MAX_IFNAME_BYTES} bytes)`
  if (name === '.' || name === '..') return 'interface name is . or ..'
  if (/[/:\s\u0085\0]/u.test(name)) return 'interface name contains / or : or whitespace characters'
  return undefined
}

export function checkIfName (name: string): string {
  const why = ifNameProblem(name)
  if (why !== undefined) throw new CniError(CniCode.INVALID_ENV, why, `CNI_IFNAME ${JSON.stringify(name)}`)
  return name
}

export function checkNetns (netns: string): string {
  if (!path.isAbsolute(netns) || netns.includes('\0')) throw new CniError(CniCode.INVALID_ENV, `CNI_NETNS ${JSON.stringify(netns)} is not an absolute path`)
  return netns
}

/** CNI_PATH as its directories, each absolute and normalized; "" entries are skipped, as libcni does. */
export function cniPathDirs (value: string): string[] {
  const dirs = value.split(':').filter((d) => d !== '')
  if (dirs.length === 0) throw new CniError(CniCode.INVALID_ENV, 'CNI_PATH names no directory')
  for (const d of dirs) {
    if (!path.isAbsolute(d)) throw new CniError(CniCode.INVALID_ENV, `CNI_PATH entry ${JSON.stringify(d)} is not an absolute path`, 'a relative entry would be resolved against the runtime\'s working directory')
  }
  return dirs.map((d) => path.resolve(d))
}

/** An absolute path from the config (`field` names it), normalized; a missing field gives `dflt`. */
export function configPath (value: unknown, field: string, dflt: string): string {
  if (value === undefined) return dflt
  if (typeof value !== 'string' || !path.isAbsolute(value) || value.includes('\0')) {
    throw new CniError(CniCode.INVALID_CONFIG, `${field} must be an absolute path, not ${JSON.stringify(value) ?? String(value)}`)
  }
  return path.resolve(value)
}
