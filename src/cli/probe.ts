// `weft probe`: which kernel offloads this machine gives a userspace tunnel.
import { parseArgs } from 'node:util'
import { probeOffloads } from '../native'
import type { Command } from './command'

function yesNo (v: boolean | string): string {
  if (v === true) return 'yes'
  if (v === false) return 'no'
  return `unknown (${v}: run as root to probe)`
}

export const probe: Command = {
  name: 'probe',
  summary: 'show which kernel offloads (TUN TSO/USO, UDP GSO/GRO) are available',
  usage: 'weft probe [--json]',
  async run (argv, io) {
    const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' } } })
    const o = probeOffloads()
    if (values.json === true) {
      io.out(JSON.stringify(o))
      return 0
    }
    io.out(`/dev/net/tun usable        ${yesNo(o.tun)}`)
    io.out(`TUN virtio-net header      ${yesNo(o.tunVnetHdr)}`)
    io.out(`TUN multi-queue            ${yesNo(o.tunMultiQueue)}`)
    io.out(`TUN TCP segmentation (TSO) ${yesNo(o.tunTso)}`)
    io.out(`TUN UDP segmentation (USO) ${yesNo(o.tunUso)}`)
    io.out(`UDP GSO (UDP_SEGMENT)      ${yesNo(o.udpGso)}`)
    io.out(`UDP GRO (UDP_GRO)          ${yesNo(o.udpGro)}`)
    return 0
  }
}
