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
import { WeftError } from '../errors'
import { contains, formatCidr, networkOf, parseCidr, type Ip4Net } from '../packet/net'
import { ip4ToString, parseIp4 } from '../packet/ip'
import { VXLAN_PORT_FLANNEL } from '../packet/vxlan'
import { DEFAULT_DECODE, FLANNEL_UDP_PORT, PLAIN_DECODE, WIREGUARD_PORT, podAddresses, type Decoded, type DecodeOptions } from './decode'

export const BACKENDS = ['vxlan', 'ipip', 'udp', 'wireguard', 'auto'] as const
export type Backend = typeof BACKENDS[number]

/** Where the capture runs: the underlay carries tunnel packets, a VTEP the pods' packets. */
export type DeviceKind = 'underlay' | 'vtep'

export interface FilterOptions {
  backend: Backend
  /** the tunnel UDP port: VXLAN's for vxlan and auto, the UDP backend's for udp, WireGuard's for wireguard */
  port?: number
  nodes: readonly Ip4Net[]
  pods: readonly Ip4Net[]
  kind: DeviceKind
}

/** "10.244.1.2" or "10.244.1.0/24" to a net (a bare address is a /32). */
export function parseAddressOrNet (s: string, flag: string): Ip4Net {
  try {
    return s.includes('/') ? parseCidr(s) : { ip: parseIp4(s), prefixLen: 32 }
  } catch {
    throw new WeftError('EFLAG', `${flag} ${JSON.stringify(s)} is neither an IPv4 address nor a CIDR`)
  }
}

function hostOrNet (n: Ip4Net): string {
  // libpcap rejects `net` with host bits set, so mask them off.
  return n.prefixLen === 32 ? `host ${ip4ToString(n.ip)}` : `net ${formatCidr(networkOf(n))}`
}

function anyOf (nets: readonly Ip4Net[]): string {
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
    return o.pods.length > 0 ? `ip and ${anyOf(o.pods)}` : 'ip'
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
export function matchesPods (d: Decoded, pods: readonly Ip4Net[]): boolean {
  if (pods.length === 0) return true
  const a = podAddresses(d)
  if (a === undefined) return false
  const src = parseIp4(a.src)
  const dst = parseIp4(a.dst)
  return pods.some((n) => contains(n, src) || contains(n, dst))
}
