// Which interface carries the underlay and which address we advertise,
// chosen as flanneld chooses: --iface (a name or an address; the first that
// matches wins), else the interface of the default route; --public-ip
// overrides the advertised address (e.g. behind NAT).
import fs from 'node:fs'
import os from 'node:os'
import { WeftError } from '../errors'
import { parseIp4 } from '../packet/ip'

export interface Underlay {
  /** interface name */
  readonly name: string
  /** the interface's IPv4 address (uint32) */
  readonly ip: number
  /** the address peers send to (uint32) */
  readonly publicIP: number
  readonly mtu: number
}

function defaultRouteIface (): string | undefined {
  let text: string
  try { text = fs.readFileSync('/proc/net/route', 'utf8') } catch { return undefined }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length > 7 && f[1] === '00000000' && f[7] === '00000000') return f[0]
  }
  return undefined
}

function mtuOf (name: string): number {
  try {
    return Number(fs.readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim())
  } catch {
    throw new WeftError('EIFACE', `cannot read the MTU of interface ${name}`)
  }
}

export function findUnderlay (ifaces: readonly string[], publicIp: string): Underlay {
  const all = os.networkInterfaces()
  const v4 = (name: string): string | undefined => all[name]?.find((a) => a.family === 'IPv4' && !a.internal)?.address
  let name: string | undefined
  let addr: string | undefined
  for (const want of ifaces) {
    if (all[want] !== undefined && v4(want) !== undefined) { name = want; addr = v4(want); break }
    const byIp = Object.entries(all).find(([, as]) => as?.some((a) => a.family === 'IPv4' && a.address === want))
    if (byIp !== undefined) { name = byIp[0]; addr = want; break }
  }
  if (ifaces.length > 0 && name === undefined) {
    throw new WeftError('EIFACE', `none of --iface ${ifaces.join(', ')} is an interface with an IPv4 address here`)
  }
  if (name === undefined) {
    name = defaultRouteIface()
    if (name === undefined) throw new WeftError('EIFACE', 'no default route to pick the underlay interface from: give --iface')
    addr = v4(name)
    if (addr === undefined) throw new WeftError('EIFACE', `the default route's interface ${name} has no IPv4 address: give --iface`)
  }
  const ip = parseIp4(addr as string)
  let pub = ip
  if (publicIp !== '') {
    try { pub = parseIp4(publicIp) } catch { throw new WeftError('EFLAG', `--public-ip ${JSON.stringify(publicIp)} is not an IPv4 address`) }
  }
  return { name, ip, publicIP: pub, mtu: mtuOf(name) }
}
