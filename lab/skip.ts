// Why a privileged test cannot run here, as a human-readable string.
//
// Tests pass the result straight to node:test:
//   test('...', { skip: netnsSkipReason() }, async (t) => ...)
// so an unprivileged run reports the test as *skipped, with the reason*,
// instead of silently passing or failing on EPERM halfway through.
// `undefined` means "go ahead".

import { execFileSync } from 'node:child_process'
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { newRunId, NS_PREFIX } from './names'

const CAP_NET_ADMIN = 12n
const CAP_SYS_ADMIN = 21n
const TUN = '/dev/net/tun'

/** Directory on $PATH holding an executable `bin`, or undefined. */
function which (bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    try {
      accessSync(join(dir, bin), constants.X_OK)
      return dir
    } catch {
      // not in this directory
    }
  }
  return undefined
}

/** Effective capability set of this process (root in a container may lack some). */
function hasCaps (...caps: bigint[]): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))
  if (!m) return false
  const eff = BigInt('0x' + m[1])
  return caps.every((c) => (eff >> c) & 1n)
}

function privilegeReason (caps: bigint[], capNames: string): string | undefined {
  const uid = process.getuid?.() ?? -1
  if (uid !== 0) return `not root (uid ${uid}): network namespaces need ${capNames}`
  if (!hasCaps(...caps)) return `running as root but without ${capNames} in the effective capability set`
  return undefined
}

function stderrOf (e: unknown): string {
  const err = e as { stderr?: Buffer | string; message?: string }
  const s = err.stderr?.toString().trim()
  return s || err.message || String(e)
}

function probeNamespaces (): string | undefined {
  const priv = privilegeReason([CAP_SYS_ADMIN, CAP_NET_ADMIN], 'CAP_SYS_ADMIN/CAP_NET_ADMIN')
  if (priv) return priv
  if (!existsSync(TUN)) return `${TUN} is missing`
  if (!which('ip')) return '`ip` (iproute2) not found'

  // Actually try it once: containers can be root yet forbid setns/mounts, and
  // the veth/bridge modules may be unavailable. The name follows the harness
  // scheme so cleanupStale() reaps it if we die between add and delete.
  const ns = `${NS_PREFIX}${newRunId()}-probe`
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 5000 })
  try {
    ip('netns', 'add', ns)
  } catch (e) {
    return `cannot create a network namespace: ${stderrOf(e)}`
  }
  let step = 'cannot create veth/bridge links inside a network namespace'
  try {
    ip('-n', ns, 'link', 'add', 'wtp0', 'type', 'veth', 'peer', 'name', 'wtp1')
    ip('-n', ns, 'link', 'add', 'wtpbr', 'type', 'bridge')
    step = 'cannot run a command inside a network namespace (`ip netns exec`)'
    ip('netns', 'exec', ns, 'true')
  } catch (e) {
    return `${step}: ${stderrOf(e)}`
  } finally {
    try {
      ip('netns', 'delete', ns)
    } catch {
      // cleanupStale() will get it next run
    }
  }
  return undefined
}

let netnsCache: { reason: string | undefined } | undefined

/** Reason namespace tests cannot run (cached; probes a real namespace once), or undefined. */
export function netnsSkipReason (): string | undefined {
  netnsCache ??= { reason: probeNamespaces() }
  return netnsCache.reason
}

let tunCache: { reason: string | undefined } | undefined

/** Reason a test needing only /dev/net/tun + CAP_NET_ADMIN cannot run, or undefined. */
export function tunSkipReason (): string | undefined {
  tunCache ??= {
    reason: (() => {
      const priv = privilegeReason([CAP_NET_ADMIN], 'CAP_NET_ADMIN')
      if (priv) return priv.replace('network namespaces need', 'TUN devices need')
      if (!existsSync(TUN)) return `${TUN} is missing`
      try {
        closeSync(openSync(TUN, 'r+'))
      } catch (e) {
        return `cannot open ${TUN}: ${(e as Error).message}`
      }
      return undefined
    })(),
  }
  return tunCache.reason
}

/** Reason if any of these executables is missing from $PATH (e.g. 'iperf3', 'tcpdump'), or undefined. */
export function toolSkipReason (...bins: string[]): string | undefined {
  const missing = bins.filter((b) => !which(b))
  if (missing.length === 0) return undefined
  return `${missing.map((b) => `\`${b}\``).join(', ')} not found in PATH`
}
