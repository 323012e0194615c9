// Running a command in a test namespace as an unprivileged user holding
// chosen capabilities, for the least-privilege tests. setpriv (util-linux)
// switches uid and gid, drops the supplementary groups and leaves exactly
// `caps` in every capability set, ambient included, so the ip and iptables
// commands the daemon runs keep them, as systemd's AmbientCapabilities= does.
//
// The extra set-up happens in the command's own mount namespace, which
// `ip netns exec` (topo.spawn/topo.exec) gives every command: nothing here
// is visible outside it.
// - tun: a tmpfs over /dev/net holding a fresh TUN clone device with the
//   given owner and mode (many distributions ship /dev/net/tun 0666, some
//   0600; the test decides instead of depending on the machine)
// - readOnlySysctls: /proc/sys remounted read-only, as in a container
import { readFileSync } from 'node:fs'

export const NOBODY = 65534

export interface AsUserOptions {
  uid: number
  /** capability names without CAP_, lower case: 'net_admin', 'net_raw' */
  caps: readonly string[]
  /** make /dev/net/tun a device node owned by this uid with this mode */
  tun?: { uid: number, mode: number }
  readOnlySysctls?: boolean
}

/** argv that runs `argv` as described; give it to topo.spawn or topo.exec. */
export function asUser (argv: readonly string[], o: AsUserOptions): string[] {
  const set = ['-all', ...o.caps.map((c) => `+${c}`)].join(',')
  const setpriv = ['setpriv', `--reuid=${o.uid}`, `--regid=${o.uid}`, '--clear-groups',
    `--inh-caps=${set}`, `--ambient-caps=${set}`, `--bounding-set=${set}`, ...argv]
  const steps: string[] = []
  if (o.tun !== undefined) {
    const mode = o.tun.mode.toString(8).padStart(4, '0')
    steps.push(`mount -t tmpfs -o size=4k,mode=0755 weft-test-tun /dev/net && mknod -m ${mode} /dev/net/tun c 10 200 && chown ${o.tun.uid} /dev/net/tun`)
  }
  if (o.readOnlySysctls === true) steps.push('mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys')
  if (steps.length === 0) return setpriv
  return ['sh', '-ec', `${steps.join(' && ')}\nexec "$@"`, 'as-user', ...setpriv]
}

export interface ProcCreds {
  uid: number
  /** CapEff, CapAmb and CapBnd as hex strings */
  eff: string
  amb: string
  bnd: string
}

/** A running process's uid and capability sets, from /proc. */
export function procCreds (pid: number): ProcCreds {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8')
  const f = (n: string): string => new RegExp(`^${n}:\\s*(.*)$`, 'm').exec(s)?.[1]?.trim() ?? ''
  return { uid: Number(f('Uid').split(/\s+/)[1]), eff: f('CapEff'), amb: f('CapAmb'), bnd: f('CapBnd') }
}

/** CAP_NET_ADMIN (12) and CAP_NET_RAW (13), as /proc prints the set. */
export const NET_ADMIN_AND_RAW = '0000000000003000'
