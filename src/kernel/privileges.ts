// What `weft run` needs from the kernel's permission checks, checked before
// it leases a subnet, so a daemon started without them stops at once with
// the missing piece named, instead of half-way (a lease taken, then EPERM
// from an ioctl or an `ip` command).
//
// - CAP_NET_ADMIN, every backend: the TUN device (TUNSETIFF), addresses,
//   routes, net sysctls, iptables (nf_tables), SO_RCVBUFFORCE
// - CAP_NET_RAW, the ipip backend only: its raw IP socket (protocol 4)
// - CAP_NET_BIND_SERVICE, only for a backend port below
//   net.ipv4.ip_unprivileged_port_start (flannel's defaults, 8472 and 8285,
//   are above it)
// - /dev/net/tun readable and writable by the daemon's user: a file mode,
//   which no capability overrides
// - net.ipv4.ip_forward: 1 already, or writable
//
// A daemon that is not root must hold CAP_NET_ADMIN as an *ambient*
// capability: weft runs ip and iptables as child processes, and only ambient
// capabilities survive an unprivileged user's execve.
import { closeSync, constants, openSync, readFileSync, statSync } from 'node:fs'
import { WeftError } from '../errors'

export type Capability = 'CAP_NET_BIND_SERVICE' | 'CAP_NET_ADMIN' | 'CAP_NET_RAW'

/** Bit numbers from linux/capability.h. */
const BIT: Record<Capability, bigint> = { CAP_NET_BIND_SERVICE: 10n, CAP_NET_ADMIN: 12n, CAP_NET_RAW: 13n }

const WHY: Record<Capability, string> = {
  CAP_NET_ADMIN: 'to create the TUN device and set addresses, routes, sysctls and iptables rules',
  CAP_NET_RAW: 'for the ipip backend\'s raw IP socket',
  CAP_NET_BIND_SERVICE: 'to bind the backend\'s port'
}

export const TUN_PATH = '/dev/net/tun'

/** What a backend will do that the kernel checks permissions for. */
export interface PrivilegeNeeds {
  /** opens /dev/net/tun (vxlan, udp, ipip) */
  tun: boolean
  /** opens a raw IP socket (ipip) */
  rawSocket: boolean
  /** binds this UDP port (vxlan, udp) */
  udpPort?: number
}

/** The calling process's identity and capability sets (from /proc/self/status). */
export interface Credentials {
  uid: number
  effective: bigint
  ambient: bigint
}

/** How opening a file for reading and writing went: ok, or the errno code with the file's mode and owner. */
export type Access = { ok: true } | { ok: false, code: string, mode?: number, uid?: number }

/** Everything the check looks at, gathered once (so the decision is a pure function of it). */
export interface PrivilegeFacts {
  creds: Credentials
  tun: Access
  /** net.ipv4.ip_unprivileged_port_start in our network namespace */
  unprivilegedPortStart: number
  /** net.ipv4.ip_forward as read, and whether we may write it */
  forwarding: { value: string, writable: Access }
}

/** A missing privilege found by the check; `capability` when one would cure it. */
export interface PrivilegeProblem {
  capability?: Capability
  message: string
}

/** The daemon lacks something it needs from the kernel; `capabilities` lists the missing ones. */
export class PrivilegeError extends WeftError {
  readonly problems: readonly PrivilegeProblem[]
  readonly capabilities: readonly Capability[]

  constructor (message: string, problems: readonly PrivilegeProblem[]) {
    super('EPRIVILEGE', message)
    this.name = 'PrivilegeError'
    this.problems = problems
    this.capabilities = problems.flatMap((p) => p.capability !== undefined ? [p.capability] : [])
  }
}

/** The Uid (real) and CapEff/CapAmb lines of a /proc/<pid>/status text. */
export function parseCredentials (status: string): Credentials {
  const field = (name: string): string => {
    const m = new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)
    if (m === null) throw new WeftError('EKERNEL', `no ${name} line in /proc/self/status`)
    return m[1]!.trim()
  }
  // Older kernels (before 4.3) have no CapAmb: nothing is ambient there.
  const amb = /^CapAmb:\s*([0-9a-f]+)/m.exec(status)
  return {
    uid: Number(field('Uid').split(/\s+/)[1]), // the effective uid decides what execve keeps
    effective: BigInt('0x' + field('CapEff')),
    ambient: amb === null ? 0n : BigInt('0x' + amb[1]!)
  }
}

const has = (set: bigint, c: Capability): boolean => ((set >> BIT[c]) & 1n) === 1n

/** Which capabilities these needs require (the set to grant, in a fixed order). */
export function requiredCapabilities (needs: PrivilegeNeeds, facts: Pick<PrivilegeFacts, 'unprivilegedPortStart'>): Capability[] {
  const caps: Capability[] = ['CAP_NET_ADMIN']
  if (needs.rawSocket) caps.push('CAP_NET_RAW')
  if (needs.udpPort !== undefined && needs.udpPort > 0 && needs.udpPort < facts.unprivilegedPortStart) caps.push('CAP_NET_BIND_SERVICE')
  return caps
}

const octal = (mode: number): string => '0' + (mode & 0o7777).toString(8).padStart(3, '0')

/** What is missing, if anything: a pure function of the facts. */
export function privilegeProblems (needs: PrivilegeNeeds, facts: PrivilegeFacts): PrivilegeProblem[] {
  const out: PrivilegeProblem[] = []
  const { creds } = facts
  for (const c of requiredCapabilities(needs, facts)) {
    const why = c === 'CAP_NET_BIND_SERVICE'
      ? `to bind UDP port ${String(needs.udpPort)} (below net.ipv4.ip_unprivileged_port_start, ${facts.unprivilegedPortStart})`
      : WHY[c]
    if (!has(creds.effective, c)) {
      out.push({ capability: c, message: `${c} is missing (${why})` })
    } else if (c === 'CAP_NET_ADMIN' && creds.uid !== 0 && !has(creds.ambient, c)) {
      // (the raw socket and the port are weft's own: for those, effective is enough)
      out.push({ capability: c, message: `${c} is effective but not ambient, so the ip and iptables commands weft runs would not have it` })
    }
  }
  if (needs.tun && !facts.tun.ok) {
    const t = facts.tun
    if (t.code === 'ENOENT') {
      out.push({ message: `${TUN_PATH} is missing: load the tun module (modprobe tun), or give the container the device` })
    } else {
      const what = t.mode !== undefined ? `; it is mode ${octal(t.mode)}, owner uid ${String(t.uid)}` : ''
      out.push({ message: `cannot open ${TUN_PATH} for reading and writing (${t.code}${what}): let weft's user open it (most distributions make it 0666: chmod 0666 /dev/net/tun)` })
    }
  }
  const fwd = facts.forwarding
  if (fwd.value !== '1' && !fwd.writable.ok && !out.some((p) => p.capability === 'CAP_NET_ADMIN')) {
    out.push({ message: `net.ipv4.ip_forward is ${fwd.value} and this process cannot change it (${fwd.writable.code}): set it before starting weft, as root: sysctl -w net.ipv4.ip_forward=1` })
  }
  return out
}

/** The one error for all the problems, with how to grant what is missing. */
export function privilegeError (needs: PrivilegeNeeds, facts: PrivilegeFacts, problems: readonly PrivilegeProblem[]): PrivilegeError {
  let text = `weft run (uid ${facts.creds.uid}) cannot work here: ${problems.map((p) => p.message).join('; ')}`
  if (problems.some((p) => p.capability !== undefined)) {
    const caps = requiredCapabilities(needs, facts)
    const short = caps.map((c) => c.slice(4).toLowerCase())
    text += `. Run it as root, or grant ${caps.join(' and ')} as ambient capabilities: systemd AmbientCapabilities=${caps.join(' ')}` +
      ` (with CapabilityBoundingSet= the same), or setpriv --inh-caps=+${short.join(',+')} --ambient-caps=+${short.join(',+')}` +
      ` (in a container: --cap-add ${caps.map((c) => c.slice(4)).join(' --cap-add ')})`
  }
  return new PrivilegeError(text, problems)
}

/**
 * Open (for reading and writing, or writing only), then close: the check the
 * real open will face. Not access(2): for a user other than root it ignores
 * capabilities, and CAP_NET_ADMIN is what lets us write net sysctls. Opening
 * a sysctl file without writing to it changes nothing.
 */
export function probeAccess (file: string, flags: number = constants.O_RDWR): Access {
  try {
    closeSync(openSync(file, flags))
    return { ok: true }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO'
    try {
      const st = statSync(file)
      return { ok: false, code, mode: st.mode, uid: st.uid }
    } catch {
      return { ok: false, code }
    }
  }
}

function readTrimmed (file: string, fallback: string): string {
  try { return readFileSync(file, 'utf8').trim() } catch { return fallback }
}

/** Gathers the facts about this process, in its own network namespace. */
export function gatherFacts (needs: PrivilegeNeeds): PrivilegeFacts {
  return {
    creds: parseCredentials(readFileSync('/proc/self/status', 'utf8')),
    tun: needs.tun ? probeAccess(TUN_PATH) : { ok: true },
    unprivilegedPortStart: Number(readTrimmed('/proc/sys/net/ipv4/ip_unprivileged_port_start', '1024')),
    forwarding: { value: readTrimmed('/proc/sys/net/ipv4/ip_forward', '?'), writable: probeAccess('/proc/sys/net/ipv4/ip_forward', constants.O_WRONLY) }
  }
}

/** Throws a PrivilegeError (EPRIVILEGE) naming everything missing, or returns. */
export function checkPrivileges (needs: PrivilegeNeeds, facts: PrivilegeFacts = gatherFacts(needs)): void {
  const problems = privilegeProblems(needs, facts)
  if (problems.length > 0) throw privilegeError(needs, facts, problems)
}
