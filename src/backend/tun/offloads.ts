// Which kernel offloads a TUN backend runs with, negotiated once at start:
// 1. the TUN opens with IFF_VNET_HDR (else: no offloads at all)
// 2. TUNSETOFFLOAD CSUM|TSO4|TSO6|USO4|USO6, else CSUM|TSO4|TSO6 (kernels before 6.2
//    have no USO), else nothing: reads are then plain packets with a header
// 3. the UDP socket gets UDP_GRO if the kernel has it
// UDP_SEGMENT on sends needs no negotiation: the addon turns it off by
// itself (txGsoRefused) if a send fails with EIO.
// WEFT_OFFLOADS=off turns all of it off, to compare or to rule it out.
import type { Logger } from '../../log'
import { constants, openTun, setTunOffload, trySetUdpGro } from '../../native'
import type { PacketIo, Tun, TunOptions } from '../../native'

export interface Offloads {
  /** the TUN carries a virtio_net_hdr */
  vnet: boolean
  /** TUN TSO: reads may be TCP super-packets */
  tso: boolean
  /** TUN USO: reads may be UDP super-packets */
  uso: boolean
  /** UDP_GRO on the underlay socket */
  gro: boolean
  /** UDP_SEGMENT on the underlay socket (UDP backends; the addon turns it off if the kernel refuses) */
  gso: boolean
}

export const NO_OFFLOADS: Offloads = { vnet: false, tso: false, uso: false, gro: false, gso: false }

export function offloadsWanted (): boolean {
  return process.env.WEFT_OFFLOADS !== 'off'
}

/** Open the TUN with the most offloads the kernel gives. */
export function openTunWithOffloads (o: TunOptions, log: Logger): { tun: Tun, offloads: Offloads } {
  if (!offloadsWanted()) return { tun: openTun(o), offloads: { ...NO_OFFLOADS } }
  let tun: Tun
  try {
    tun = openTun({ ...o, vnetHdr: true })
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'the TUN refused a vnet header: running without offloads, one packet per read')
    return { tun: openTun(o), offloads: { ...NO_OFFLOADS } }
  }
  const c = constants
  const tries: Array<[number, boolean]> = [
    [c.TUN_F_CSUM | c.TUN_F_TSO4 | c.TUN_F_TSO6 | c.TUN_F_USO4 | c.TUN_F_USO6, true],
    [c.TUN_F_CSUM | c.TUN_F_TSO4 | c.TUN_F_TSO6, false]
  ]
  for (const [flags, uso] of tries) {
    try {
      setTunOffload(tun, flags)
      return { tun, offloads: { vnet: true, tso: true, uso, gro: false, gso: false } }
    } catch {}
  }
  log.warn('the TUN refused TSO: reading plain packets (one per read), which caps throughput')
  return { tun, offloads: { vnet: true, tso: false, uso: false, gro: false, gso: false } }
}

/** UDP_GRO (if the kernel has it) and UDP_SEGMENT on a UDP backend's socket, if wanted. */
export function enableGro (io: PacketIo, offloads: Offloads, log: Logger): void {
  if (!offloadsWanted()) return
  offloads.gso = true
  offloads.gro = trySetUdpGro(io)
  if (!offloads.gro) log.warn('the kernel refused UDP_GRO: every datagram is read on its own')
}
