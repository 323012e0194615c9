// A node that runs no weft at all: just the Linux kernel's vxlan driver,
// programmed exactly the way flanneld's vxlan backend programs flannel.1
// (flannel.md section 5). It is the reference weft's userspace VXLAN is
// checked against for interop (a weft node peering with a kernel node) and
// compared with in benchmarks.
//
//   ip link add flannel.1 address MAC type vxlan id VNI local <underlay ip> dev eth0 dstport 8472 nolearning
//     [udpcsum remcsumtx remcsumrx]   (remcsum: remote checksum offload, weft's RemCsum; not flannel's)
//   ip link set flannel.1 mtu <underlay - 50>;  ip addr add 10.244.5.0/32 dev flannel.1;  up
// and per peer (addPeer), in flannel's order:
//   ip neigh replace 10.244.6.0 lladdr PEERMAC dev flannel.1 nud permanent
//   bridge fdb replace PEERMAC dev flannel.1 dst PEERIP self permanent
//   ip route replace 10.244.6.0/24 via 10.244.6.0 dev flannel.1 onlink

import { randomBytes } from 'node:crypto'
import type { Host, Topology } from './netns'
import { parseSubnet, subnetAddr } from './pods'

export interface VxlanPeer {
  /** Peer's pod subnet, e.g. '10.244.6.0/24'. */
  subnet: string
  vtepMac: string
  /** Peer's underlay address (the lease's PublicIP). */
  publicIp: string
}

export interface KernelVxlanOptions {
  /** This node's pod subnet (its lease), e.g. '10.244.5.0/24'. */
  subnet: string
  /** default 1 */
  vni?: number
  /** default 8472 (the Linux default flannel relies on) */
  port?: number
  /** VTEP MAC; default random locally administered unicast, as flannel picks it. */
  mac?: string
  /** default topology MTU - 50 */
  mtu?: number
  /**
   * VXLAN remote checksum offload both ways (`udpcsum remcsumtx remcsumrx`:
   * RCO needs the outer UDP checksum), and the lease says so (RemCsumRx), as
   * a weft node with "RemCsum" does. flanneld never sets these; default off.
   */
  remcsum?: boolean
}

export interface KernelVxlan {
  host: Host
  /** 'flannel.<vni>' */
  device: string
  /** VTEP MAC, lowercase, as the kernel reports it. */
  mac: string
  subnet: string
  /** Underlay address of the host. */
  publicIp: string
  vni: number
  port: number
  mtu: number
  /** the device speaks remote checksum offload (and its lease value asks for it) */
  remcsum: boolean
  /** What another node needs to reach this one (its addPeer argument). */
  peer: VxlanPeer
  addPeer(peer: VxlanPeer): Promise<void>
  /** Deletes the neighbour, FDB entry and route; all three attempted, first error thrown after. */
  removePeer(peer: VxlanPeer): Promise<void>
}

const IP_MS = 10_000

/** flannel's VtepMAC: random, first byte (b & 0xfe) | 0x02 (unicast, locally administered). */
export function randomVtepMac (): string {
  const b = randomBytes(6)
  b[0] = (b[0]! & 0xfe) | 0x02
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':')
}

/**
 * The etcd lease value flanneld writes for a vxlan node (flannel.md 2.3), byte
 * for byte. With `remcsum`, BackendData also carries "RemCsumRx": true, as a
 * weft node's lease does when it takes VXLAN remote checksum offload.
 */
export function vxlanLeaseValue (node: { publicIp: string, vni: number, mac: string, remcsum?: boolean }): string {
  const data = { VNI: node.vni, VtepMAC: node.mac.toLowerCase() }
  return JSON.stringify({
    PublicIP: node.publicIp,
    PublicIPv6: null,
    BackendType: 'vxlan',
    BackendData: node.remcsum === true ? { ...data, RemCsumRx: true } : data,
  })
}

function canonicalSubnet (subnet: string): string {
  return `${subnetAddr(subnet, 0)}/${parseSubnet(subnet).len}`
}

export async function kernelVxlanNode (topo: Topology, host: Host, opts: KernelVxlanOptions): Promise<KernelVxlan> {
  const vni = opts.vni ?? 1
  const port = opts.port ?? 8472
  const mtu = opts.mtu ?? topo.mtu - 50
  const subnet = canonicalSubnet(opts.subnet)
  const device = `flannel.${vni}`
  const wantMac = (opts.mac ?? randomVtepMac()).toLowerCase()
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(wantMac)) throw new Error(`kernelVxlanNode: bad MAC ${wantMac}`)
  const remcsum = opts.remcsum === true
  const run = (argv: string[]) => topo.exec(host, argv, { timeoutMs: IP_MS })

  await run(['ip', 'link', 'add', device, 'address', wantMac, 'type', 'vxlan', 'id', String(vni), 'local', host.underlayIp,
    'dev', host.ifname, 'dstport', String(port), 'nolearning', ...(remcsum ? ['udpcsum', 'remcsumtx', 'remcsumrx'] : [])])
  await run(['ip', 'link', 'set', device, 'mtu', String(mtu)])
  await run(['ip', 'addr', 'add', `${subnetAddr(subnet, 0)}/32`, 'dev', device])
  await run(['ip', 'link', 'set', device, 'up'])
  await run(['sysctl', '-qw', 'net.ipv4.ip_forward=1'])

  // Like flanneld (#1795), insist the device really carries the MAC we advertise.
  const link = JSON.parse((await run(['ip', '-j', 'link', 'show', 'dev', device])).stdout) as Array<{ address?: string }>
  const mac = link[0]?.address?.toLowerCase() ?? ''
  if (mac !== wantMac) throw new Error(`kernelVxlanNode: ${device} has MAC ${mac}, wanted ${wantMac}`)
  if (remcsum) {
    // an iproute2 or kernel that ignored the flags would make an RCO test pass on plain VXLAN
    const d = JSON.parse((await run(['ip', '-d', '-j', 'link', 'show', 'dev', device])).stdout) as Array<{ linkinfo?: { info_data?: Record<string, unknown> } }>
    const info = d[0]?.linkinfo?.info_data ?? {}
    if (info.udp_csum !== true || info.remcsum_tx !== true || info.remcsum_rx !== true) {
      throw new Error(`kernelVxlanNode: ${device} does not do remote checksum offload: ${JSON.stringify(info)}`)
    }
  }

  const publicIp = host.underlayIp
  return {
    host,
    device,
    mac,
    subnet,
    publicIp,
    vni,
    port,
    mtu,
    remcsum,
    peer: { subnet, vtepMac: mac, publicIp },

    async addPeer (p: VxlanPeer): Promise<void> {
      const dst = canonicalSubnet(p.subnet)
      const vtepIp = subnetAddr(dst, 0)
      const vtepMac = p.vtepMac.toLowerCase()
      await run(['ip', 'neigh', 'replace', vtepIp, 'lladdr', vtepMac, 'dev', device, 'nud', 'permanent'])
      try {
        await run(['bridge', 'fdb', 'replace', vtepMac, 'dev', device, 'dst', p.publicIp, 'self', 'permanent'])
        try {
          // Last, so the kernel never has to resolve the gateway.
          await run(['ip', 'route', 'replace', dst, 'via', vtepIp, 'dev', device, 'onlink'])
        } catch (e) {
          await topo.exec(host, ['bridge', 'fdb', 'del', vtepMac, 'dev', device, 'dst', p.publicIp, 'self'], { allowFail: true, timeoutMs: IP_MS })
          throw e
        }
      } catch (e) {
        await topo.exec(host, ['ip', 'neigh', 'del', vtepIp, 'dev', device], { allowFail: true, timeoutMs: IP_MS })
        throw e
      }
    },

    async removePeer (p: VxlanPeer): Promise<void> {
      const dst = canonicalSubnet(p.subnet)
      const vtepIp = subnetAddr(dst, 0)
      const vtepMac = p.vtepMac.toLowerCase()
      const steps = [
        ['ip', 'neigh', 'del', vtepIp, 'dev', device],
        ['bridge', 'fdb', 'del', vtepMac, 'dev', device, 'dst', p.publicIp, 'self'],
        ['ip', 'route', 'del', dst, 'via', vtepIp, 'dev', device],
      ]
      const errors: unknown[] = []
      for (const argv of steps) await run(argv).catch((e: unknown) => errors.push(e))
      if (errors.length) throw errors[0]
    },
  }
}
