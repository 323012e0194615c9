// Kernel sysctls, chiefly net.ipv4.ip_forward, which every flannel backend
// needs (a node forwards between pods and the overlay). Without a namespace
// we write /proc/sys directly: no dependency on procps and no process spawn.
// With one (tests), `ip netns exec <ns> sysctl` does it, because /proc/sys/net
// shows the network namespace of whoever opens it.
import { readFile, writeFile } from 'node:fs/promises'
import { WeftError } from '../errors'
import { run, type KernelOptions } from './exec'

/**
 * Path under /proc/sys for a sysctl name. Dotted names (net.ipv4.ip_forward)
 * map dots to slashes; names with slashes (net/ipv4/conf/flannel.1/forwarding)
 * are taken as paths, which is how sysctl(8) spells interfaces with dots.
 */
export function sysctlPath (name: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$/.test(name) || name.split(/[./]/).some((p) => p === '' || p === '..')) {
    throw new WeftError('EKERNEL', `invalid sysctl name ${JSON.stringify(name)}`)
  }
  return '/proc/sys/' + (name.includes('/') ? name : name.replace(/\./g, '/'))
}

export async function setSysctl (name: string, value: string | number, opts: KernelOptions = {}): Promise<void> {
  const path = sysctlPath(name)
  const v = String(value)
  if (/[\n\r]/.test(v)) throw new WeftError('EKERNEL', `invalid value for sysctl ${name}: ${JSON.stringify(v)}`)
  if (opts.netns !== undefined) {
    await run(['sysctl', '-q', '-w', `${name}=${v}`], opts)
    return
  }
  try {
    await writeFile(path, v)
  } catch (err) {
    throw new WeftError('EKERNEL', `cannot set sysctl ${name}=${v} (write ${path}): ${(err as Error).message}`, { cause: err })
  }
}

/** The value as the kernel prints it, trimmed (multi-value sysctls keep their tabs). */
export async function getSysctl (name: string, opts: KernelOptions = {}): Promise<string> {
  const path = sysctlPath(name)
  if (opts.netns !== undefined) return (await run(['sysctl', '-n', name], opts)).trim()
  try {
    return (await readFile(path, 'utf8')).trim()
  } catch (err) {
    throw new WeftError('EKERNEL', `cannot read sysctl ${name} (${path}): ${(err as Error).message}`, { cause: err })
  }
}

/** net.ipv4.ip_forward=1: the node routes between its pods and the overlay. */
export async function enableForwarding (opts: KernelOptions = {}): Promise<void> {
  await setSysctl('net.ipv4.ip_forward', 1, opts)
}
