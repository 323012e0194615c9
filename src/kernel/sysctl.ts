// Kernel sysctls, chiefly net.ipv4.ip_forward (and for IPv6
// net.ipv6.conf.all.forwarding), which every flannel backend needs (a node
// forwards between pods and the overlay). Without a namespace we write
// /proc/sys directly: no dependency on procps and no process spawn. With one
// (tests), `ip netns exec <ns> sysctl` does it, because /proc/sys/net
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

/**
 * Sets a sysctl, but only writes when the value differs: the value is often
 * right already (ip_forward on any router), and then a process that may not
 * write /proc/sys (no CAP_NET_ADMIN, or /proc/sys mounted read-only in a
 * container) still gets on. When it must write and cannot, the error says
 * exactly what to set.
 */
export async function setSysctl (name: string, value: string | number, opts: KernelOptions = {}): Promise<void> {
  const path = sysctlPath(name)
  const v = String(value)
  if (/[\n\r]/.test(v)) throw new WeftError('EKERNEL', `invalid value for sysctl ${name}: ${JSON.stringify(v)}`)
  if (opts.netns !== undefined) {
    await run(['sysctl', '-q', '-w', `${name}=${v}`], opts)
    return
  }
  let current: string | undefined
  try { current = await readFile(path, 'utf8') } catch { /* the write below reports the problem */ }
  if (current !== undefined && sameValue(current, v)) return
  try {
    await writeFile(path, v)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const now = current !== undefined ? ` it is ${current.trim()};` : ''
    const hint = code === 'EROFS'
      ? `:${now} /proc/sys is read-only here, so set it before starting weft: sysctl -w ${name}=${v} on the host, or in the container's sysctls`
      : code === 'EACCES' || code === 'EPERM'
        ? `:${now} set it before starting weft, as root: sysctl -w ${name}=${v} (or in /etc/sysctl.d/), or give weft CAP_NET_ADMIN`
        : ''
    throw new WeftError('EKERNEL', `cannot set sysctl ${name}=${v} (write ${path}): ${(err as Error).message}${hint}`, { cause: err })
  }
}

/** "1\n" and "1" are the same; so are "4096\t131072" and "4096 131072". */
function sameValue (current: string, wanted: string): boolean {
  const norm = (s: string): string => s.trim().split(/\s+/).join(' ')
  return norm(current) === norm(wanted)
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

export interface ForwardingOptions extends KernelOptions {
  /** net.ipv4.ip_forward=1 (default true; false for an IPv6-only network) */
  ipv4?: boolean
  /** net.ipv6.conf.all.forwarding=1 (default false: only when the network has IPv6) */
  ipv6?: boolean
}

/**
 * The node routes between its pods and the overlay: net.ipv4.ip_forward=1,
 * and with `ipv6` net.ipv6.conf.all.forwarding=1. IPv6 is opt-in because it
 * is not free: with forwarding on, an interface whose accept_ra is 1 (the
 * default) stops taking router advertisements, so a host that gets its IPv6
 * default route by SLAAC needs accept_ra=2 there; only a network with IPv6
 * asks for it.
 */
export async function enableForwarding (opts: ForwardingOptions = {}): Promise<void> {
  const { ipv4, ipv6, ...kernel } = opts
  if (ipv4 !== false) await setSysctl('net.ipv4.ip_forward', 1, kernel)
  if (ipv6 === true) await setSysctl('net.ipv6.conf.all.forwarding', 1, kernel)
}
