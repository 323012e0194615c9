// What `weft capture` asks libpcap for (a BPF filter expression) and how it
// then reads what comes back (decode options, the --pod match). Pure, so the
// choices can be tested without a capture handle.
//
// On the underlay the kernel filters down to tunnel traffic: VXLAN (UDP
// 8472), IP-in-IP (IPv4 protocol 4), flannel's UDP backend (UDP 8285),
// WireGuard (UDP 51820), and --node adds `host`/`net` on the outer
// addresses. --pod is matched after decoding: the pod addresses sit inside
// the tunnel headers, at offsets BPF would have to compute per backend; in
// WireGuard they are encrypted, so --pod cannot match there at all. On a
// VTEP (weft.1, flannel.1, tunl0, the WireGuard device) packets are the
// pods' own, so there --pod goes straight into BPF.
// Addresses of either family: `host fc00::1`, `net fc00::/48` as libpcap
// takes them; `udp port N` matches UDP over IPv4 and IPv6 alike (VXLAN over
// an IPv6 underlay too), `ip proto 4` is IPv4's; a VTEP's filter is `ip`,
// `ip6`, or both, after the families of --pod (none: both, for flannel-v6.1
// and weft-v6.1 carry IPv6).
import { WeftError } from '../errors'
import { contains, formatCidr, networkOf, parseCidr, type Ip4Net } from '../packet/net'
import { ip4ToString, parseIp4 } from '../packet/ip'
import { contains6, formatCidr6, ip6ToString, networkOf6, parseCidr6, parseIp6, type Ip6Net } from '../packet/net6'
import { VXLAN_PORT_FLANNEL } from '../packet/vxlan'
import { DEFAULT_DECODE, FLANNEL_UDP_PORT, PLAIN_DECODE, WIREGUARD_PORT, podAddresses, type Decoded, type DecodeOptions } from './decode'

export const BACKENDS = ['vxlan', 'ipip', 'udp', 'wireguard', 'auto'] as const
export type Backend = typeof BACKENDS[number]

/** Where the capture runs: the underlay carries tunnel packets, a VTEP the pods' packets. */
export type DeviceKind = 'underlay' | 'vtep'

/** An address or network of either family (an IPv6 one's ip is a bigint). */
export type AnyNet = Ip4Net | Ip6Net

function isV6 (n: AnyNet): n is Ip6Net {
  return typeof n.ip === 'bigint'
}

export interface FilterOptions {
  backend: Backend
  /** the tunnel UDP port: VXLAN's for vxlan and auto, the UDP backend's for udp, WireGuard's for wireguard */
  port?: number
  nodes: readonly AnyNet[]
  pods: readonly AnyNet[]
  kind: DeviceKind
}

/** "10.244.1.2", "10.244.1.0/24", "fc00::1" or "fc00::/48" to a net (a bare address is a /32 or /128). */
export function parseAddressOrNet (s: string, flag: string): AnyNet {
  try {
    if (s.includes(':')) return s.includes('/') ? parseCidr6(s) : { ip: parseIp6(s), prefixLen: 128 }
    return s.includes('/') ? parseCidr(s) : { ip: parseIp4(s), prefixLen: 32 }
  } catch {
    throw new WeftError('EFLAG', `${flag} ${JSON.stringify(s)} is neither an IP address nor a CIDR`)
  }
}

function hostOrNet (n: AnyNet): string {
  // libpcap rejects `net` with host bits set, so mask them off.
  if (isV6(n)) return n.prefixLen === 128 ? `host ${ip6ToString(n.ip)}` : `net ${formatCidr6(networkOf6(n))}`
  return n.prefixLen === 32 ? `host ${ip4ToString(n.ip)}` : `net ${formatCidr(networkOf(n))}`
}

/** A VTEP's protocol part for these pods: `ip`, `ip6`, or both. */
function families (pods: readonly AnyNet[]): string {
  const v6 = pods.some(isV6)
  const v4 = pods.some((n) => !isV6(n))
  if (v4 && !v6) return 'ip'
  if (v6 && !v4) return 'ip6'
  return pods.length === 0 ? 'ip or ip6' : '(ip or ip6)'
}

function anyOf (nets: readonly AnyNet[]): string {
  const terms = nets.map(hostOrNet)
  return terms.length === 1 ? terms[0] as string : `(${terms.join(' or ')})`
}

/** The tunnel part of the filter for a backend. */
export function encapFilter (backend: Backend, port?: number): string {
  switch (backend) {
    case 'vxlan': return `udp port ${port ?? VXLAN_PORT_FLANNEL}`
    case 'ipip': return 'ip proto 4'
    case 'udp': return `udp port ${port ?? FLANNEL_UDP_PORT}`
    case 'wireguard': return `udp port ${port ?? WIREGUARD_PORT}`
    case 'auto': return `udp port ${port ?? VXLAN_PORT_FLANNEL} or ip proto 4 or udp port ${FLANNEL_UDP_PORT} or udp port ${WIREGUARD_PORT}`
  }
}

/** The whole BPF expression for libpcap. */
export function buildFilter (o: FilterOptions): string {
  if (o.kind === 'vtep') {
    if (o.nodes.length > 0) {
      throw new WeftError('EFLAG', '--node matches outer (underlay) addresses, and a VTEP carries only pod traffic: use --pod, or capture on the underlay')
    }
    return o.pods.length > 0 ? `${families(o.pods)} and ${anyOf(o.pods)}` : families(o.pods)
  }
  if (o.backend === 'wireguard' && o.pods.length > 0) {
    throw new WeftError('EFLAG', '--pod matches inner (pod) addresses, and WireGuard encrypts them: use --node, or capture on the WireGuard device')
  }
  const encap = encapFilter(o.backend, o.port)
  const tunnel = o.backend === 'auto' ? `(${encap})` : encap
  return o.nodes.length > 0 ? `${tunnel} and ${anyOf(o.nodes)}` : tunnel
}

/** Which ports and protocols decodePacket should treat as tunnels. */
export function decodeOptionsFor (backend: Backend, port: number | undefined, kind: DeviceKind): DecodeOptions {
  if (kind === 'vtep') return PLAIN_DECODE
  switch (backend) {
    case 'vxlan': return { vxlanPorts: [port ?? VXLAN_PORT_FLANNEL], udpPorts: [], wireguardPorts: [], ipip: false }
    case 'ipip': return { vxlanPorts: [], udpPorts: [], wireguardPorts: [], ipip: true }
    case 'udp': return { vxlanPorts: [], udpPorts: [port ?? FLANNEL_UDP_PORT], wireguardPorts: [], ipip: false }
    case 'wireguard': return { vxlanPorts: [], udpPorts: [], wireguardPorts: [port ?? WIREGUARD_PORT], ipip: false }
    case 'auto': return port === undefined ? DEFAULT_DECODE : { ...DEFAULT_DECODE, vxlanPorts: [port] }
  }
}

/** --pod: does the pod-level packet (inner, or the packet itself on a VTEP) come from or go to one of `pods`? */
export function matchesPods (d: Decoded, pods: readonly AnyNet[]): boolean {
  if (pods.length === 0) return true
  const a = podAddresses(d)
  if (a === undefined) return false
  // the decoder writes addresses in their canonical text: a colon means IPv6
  if (a.src.includes(':')) {
    const src = parseIp6(a.src)
    const dst = parseIp6(a.dst)
    return pods.some((n) => isV6(n) && (contains6(n, src) || contains6(n, dst)))
  }
  const src = parseIp4(a.src)
  const dst = parseIp4(a.dst)
  return pods.some((n) => !isV6(n) && (contains(n, src) || contains(n, dst)))
}
