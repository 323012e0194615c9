// Pods on a test host, attached the way the CNI bridge plugin would do it
// (flannel's CNI delegates to `bridge` with isGateway, bridge name cni0):
//
//   host ns:  cni0 [10.244.3.1/24] ── vethh3p1 ┐      ip_forward=1
//                                  └─ vethh3p2 ┤
//   wt-<runid>-h3p1:  eth0 10.244.3.2/24, default via 10.244.3.1
//   wt-<runid>-h3p2:  eth0 10.244.3.3/24, default via 10.244.3.1
//
// Backend tests need endpoints behind a node before the real CNI plugin
// exists. Pod namespaces are made through the topology, so destroy() deletes
// them (and the veths with them) like every other namespace of the run.

import type { Host, Topology } from './netns'
import { ip6ToString, networkOf6, parseCidr6 } from '../src/packet/net6'

export interface Pod {
  /** 'h3p1': host name + 'p' + pod number on that host (1-based). */
  name: string
  /** Namespace, `wt-<runid>-h3p1`; a valid `topo.exec()` target. */
  ns: string
  /** e.g. '10.244.3.2' (prefix length of the subnet given to addPods). */
  ip: string
  /** the pod's IPv6 address, when it has one (addPods with subnet6, a dual-stack CNI ADD) */
  ip6?: string
  host: Host
}

export interface AddPodsOptions {
  /** The node's pod subnet, e.g. '10.244.3.0/24'; the bridge gets its first address. */
  subnet: string
  /** and its IPv6 pod subnet, e.g. 'fc00:0:0:3::/64': the bridge gets ::1, pod i ::(i+1), a default route each */
  subnet6?: string
  count: number
  /** MTU of both veth ends and the bridge; default 1450 (flannel VXLAN). */
  mtu?: number
  bridge?: string
  /** the pod interface's gso_max_size, as weft's CNI plugin sets it (src/cni/gso.ts); default: the kernel's */
  gsoMaxSize?: number
}

const IP_MS = 10_000

/** `a.b.c.d/len` -> network address as uint32 and the prefix length. */
export function parseSubnet (subnet: string): { net: number, len: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(subnet)
  const octets = m ? m.slice(1, 5).map(Number) : []
  const len = m ? Number(m[5]) : -1
  if (!m || octets.some((o) => o > 255) || len > 30) throw new Error(`not an IPv4 subnet (up to /30): ${subnet}`)
  const addr = octets.reduce((a, o) => a * 256 + o, 0)
  const size = 2 ** (32 - len)
  return { net: addr - (addr % size), len }
}

export function formatIp (n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.')
}

/** The n-th address of a subnet: n = 0 is the network address, 1 the gateway. */
export function subnetAddr (subnet: string, n: number): string {
  const { net, len } = parseSubnet(subnet)
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** (32 - len) - 1) throw new Error(`address #${n} is outside ${subnet}`)
  return formatIp(net + n)
}

/**
 * Creates `count` pods behind bridge `cni0` on `host` (the bridge too, with
 * the subnet's .1 as gateway, if it is not there yet). Pod numbers, and so
 * addresses (.2, .3, ...), continue from pods added to this host before.
 * Do not run two addPods() for the same host concurrently (numbering races).
 */
export async function addPods (topo: Topology, host: Host, opts: AddPodsOptions): Promise<Pod[]> {
  const { subnet, count } = opts
  const mtu = String(opts.mtu ?? 1450)
  const br = opts.bridge ?? 'cni0'
  const { len } = parseSubnet(subnet)
  if (!Number.isInteger(count) || count < 1 || count > 64) throw new RangeError(`addPods: count must be 1..64, got ${count}`)
  const gw = subnetAddr(subnet, 1)
  const ipx = (argv: string[]) => topo.exec(host, ['ip', ...argv], { timeoutMs: IP_MS })

  const have = await topo.exec(host, ['ip', 'link', 'show', 'dev', br], { allowFail: true, timeoutMs: IP_MS })
  if (have.code !== 0) {
    await ipx(['link', 'add', br, 'mtu', mtu, 'type', 'bridge'])
    await ipx(['addr', 'add', `${gw}/${len}`, 'dev', br])
    await ipx(['link', 'set', br, 'up'])
  }
  await topo.exec(host, ['sysctl', '-qw', 'net.ipv4.ip_forward=1'], { timeoutMs: IP_MS })
  const net6 = opts.subnet6 !== undefined ? networkOf6(parseCidr6(opts.subnet6)) : undefined
  const v6 = (n: number): string => ip6ToString((net6 as { ip: bigint }).ip + BigInt(n))
  if (net6 !== undefined) {
    await topo.exec(host, ['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1'], { timeoutMs: IP_MS })
    await topo.exec(host, ['ip', '-6', 'addr', 'replace', `${v6(1)}/${net6.prefixLen}`, 'dev', br, 'nodad'], { timeoutMs: IP_MS })
  }

  const podPrefix = `${host.ns}p`
  const first = topo.namespaces.filter((n) => n.startsWith(podPrefix) && /^\d+$/.test(n.slice(podPrefix.length))).length + 1
  const pods: Pod[] = []
  for (let i = first; i < first + count; i++) {
    const name = `${host.name}p${i}`
    const ip = subnetAddr(subnet, i + 1)
    const ns = await topo.createNamespace(name)
    const hostIf = `veth${name}`
    if (hostIf.length > 15) throw new Error(`addPods: interface name ${hostIf} too long`)
    // Created on the host side with the peer placed straight into the pod namespace.
    await ipx(['link', 'add', hostIf, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', mtu, 'netns', ns])
    await ipx(['link', 'set', hostIf, 'master', br, 'up'])
    const pip = (argv: string[]) => topo.exec(ns, ['ip', ...argv], { timeoutMs: IP_MS })
    await pip(['addr', 'add', `${ip}/${len}`, 'dev', 'eth0'])
    if (opts.gsoMaxSize !== undefined) await pip(['link', 'set', 'eth0', 'gso_max_size', String(opts.gsoMaxSize)])
    await pip(['link', 'set', 'eth0', 'up'])
    await pip(['route', 'add', 'default', 'via', gw, 'dev', 'eth0'])
    let ip6: string | undefined
    if (net6 !== undefined) {
      ip6 = v6(i + 1)
      await pip(['-6', 'addr', 'add', `${ip6}/${net6.prefixLen}`, 'dev', 'eth0', 'nodad'])
      await pip(['-6', 'route', 'add', 'default', 'via', v6(1), 'dev', 'eth0'])
    }
    pods.push({ name, ns, ip, ...(ip6 !== undefined ? { ip6 } : {}), host })
  }
  return pods
}
