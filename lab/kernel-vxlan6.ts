// The IPv6 half of a node that runs no weft: the kernel's vxlan driver over
// the IPv6 underlay, programmed the way flanneld's vxlan backend programs
// flannel-v6.<VNI> (pkg/backend/vxlan: createVXLANDevice, AddV6ARP,
// AddV6FDB, the onlink route):
//   ip link add flannel-v6.1 address MAC mtu <underlay - 50> type vxlan id 1 local <underlay v6> dev eth0 dstport 8472 nolearning
//   ip addr add fc00:0:0:5::/128 dev flannel-v6.1;  up
// The MTU goes in the creating message, as flanneld's netlink.LinkAdd puts
// it: the kernel then clamps it to what fits VXLAN over IPv6 (the underlay
// less 70), where setting 1450 afterwards is refused (EINVAL). So
// flanneld's flannel-v6.1 has 1430 on a 1500-byte underlay, while its pods
// get FLANNEL_MTU 1450 (flanneld's network MTU is the IPv4 device's).
// and per peer:
//   ip -6 neigh replace fc00:0:0:6:: lladdr PEERMAC dev flannel-v6.1 nud permanent
//   bridge fdb replace PEERMAC dev flannel-v6.1 dst PEERIPV6 self permanent
//   ip -6 route replace fc00:0:0:6::/64 via fc00:0:0:6:: dev flannel-v6.1 onlink
// A dual-stack kernel node is kernelVxlanNode (flannel.<VNI>) and this side
// by side, with one lease (vxlanLeaseValue6).
import { formatCidr6, ip6ToString, networkOf6, parseCidr6 } from '../src/packet/net6'
import { randomVtepMac } from './kernel-vxlan'
import type { Host, Topology } from './netns'

export interface Vxlan6Peer {
  /** the peer's IPv6 pod subnet, e.g. 'fc00:0:0:6::/64' */
  subnet6: string
  vtepMac: string
  /** the lease's PublicIPv6 */
  publicIp6: string
}

export interface KernelVxlan6Options {
  /** this node's IPv6 lease subnet */
  subnet6: string
  vni?: number
  port?: number
  mac?: string
  /** asked for at creation; default the topology's MTU less 50, as flanneld asks (the kernel clamps it to the underlay less 70) */
  mtu?: number
}

export interface KernelVxlan6 {
  host: Host
  /** 'flannel-v6.<vni>' */
  device: string
  mac: string
  subnet6: string
  publicIp6: string
  /** the device's MTU as the kernel set it (asked for, clamped to the underlay less 70) */
  mtu: number
  peer: Vxlan6Peer
  addPeer: (peer: Vxlan6Peer) => Promise<void>
  removePeer: (peer: Vxlan6Peer) => Promise<void>
}

const IP_MS = 10_000

/**
 * The lease value flanneld writes for a dual-stack vxlan node (BackendData
 * for flannel.<VNI>, BackendV6Data for flannel-v6.<VNI>); with `publicIp`
 * undefined, an IPv6-only node's (PublicIP "0.0.0.0", no BackendData).
 */
export function vxlanLeaseValue6 (node: { publicIp?: string, publicIp6: string, vni: number, mac?: string, mac6: string }): string {
  return JSON.stringify({
    PublicIP: node.publicIp ?? '0.0.0.0',
    PublicIPv6: node.publicIp6,
    BackendType: 'vxlan',
    ...(node.mac !== undefined ? { BackendData: { VNI: node.vni, VtepMAC: node.mac.toLowerCase() } } : {}),
    BackendV6Data: { VNI: node.vni, VtepMAC: node.mac6.toLowerCase() }
  })
}

function canonical (subnet6: string): { net: string, addr: string } {
  const n = networkOf6(parseCidr6(subnet6))
  return { net: formatCidr6(n), addr: ip6ToString(n.ip) }
}

export async function kernelVxlan6Node (topo: Topology, host: Host, opts: KernelVxlan6Options): Promise<KernelVxlan6> {
  if (host.underlayIp6 === undefined) throw new Error('kernelVxlan6Node: the topology has no IPv6 underlay (createTopology({ ipv6: true }))')
  const vni = opts.vni ?? 1
  const port = opts.port ?? 8472
  const mtu = opts.mtu ?? topo.mtu - 50
  const { net: subnet6, addr } = canonical(opts.subnet6)
  const device = `flannel-v6.${vni}`
  const wantMac = (opts.mac ?? randomVtepMac()).toLowerCase()
  const run = async (argv: string[]): Promise<unknown> => await topo.exec(host, argv, { timeoutMs: IP_MS })

  await run(['ip', 'link', 'add', device, 'address', wantMac, 'mtu', String(mtu), 'type', 'vxlan', 'id', String(vni), 'local', host.underlayIp6, 'dev', host.ifname, 'dstport', String(port), 'nolearning'])
  await run(['ip', '-6', 'addr', 'add', `${addr}/128`, 'dev', device, 'nodad'])
  await run(['ip', 'link', 'set', device, 'up'])
  await run(['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1'])
  const link = JSON.parse((await topo.exec(host, ['ip', '-j', 'link', 'show', 'dev', device], { timeoutMs: IP_MS })).stdout) as Array<{ address?: string, mtu?: number }>
  const mac = link[0]?.address?.toLowerCase() ?? ''
  if (mac !== wantMac) throw new Error(`kernelVxlan6Node: ${device} has MAC ${mac}, wanted ${wantMac}`)
  const publicIp6 = host.underlayIp6
  return {
    host,
    device,
    mac,
    subnet6,
    publicIp6,
    mtu: link[0]?.mtu ?? NaN,
    peer: { subnet6, vtepMac: mac, publicIp6 },
    async addPeer (p: Vxlan6Peer): Promise<void> {
      const { net, addr: vtepIp } = canonical(p.subnet6)
      const vtepMac = p.vtepMac.toLowerCase()
      await run(['ip', '-6', 'neigh', 'replace', vtepIp, 'lladdr', vtepMac, 'dev', device, 'nud', 'permanent'])
      await run(['bridge', 'fdb', 'replace', vtepMac, 'dev', device, 'dst', p.publicIp6, 'self', 'permanent'])
      await run(['ip', '-6', 'route', 'replace', net, 'via', vtepIp, 'dev', device, 'onlink'])
    },
    async removePeer (p: Vxlan6Peer): Promise<void> {
      const { net, addr: vtepIp } = canonical(p.subnet6)
      const vtepMac = p.vtepMac.toLowerCase()
      const steps = [
        ['ip', '-6', 'neigh', 'del', vtepIp, 'dev', device],
        ['bridge', 'fdb', 'del', vtepMac, 'dev', device, 'dst', p.publicIp6, 'self'],
        ['ip', '-6', 'route', 'del', net, 'via', vtepIp, 'dev', device]
      ]
      // all three attempted, the first error thrown after
      const errors: Error[] = []
      for (const argv of steps) await run(argv).catch((e: unknown) => errors.push(e instanceof Error ? e : new Error(String(e))))
      if (errors.length > 0) throw errors[0]
    }
  }
}
