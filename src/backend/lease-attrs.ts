// What each backend publishes in its lease and which MTU its pods get, as
// flannel's backends do (flannel.md sections 2.3, 5-8).
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { LeaseAttrs } from '../lease/lease'
import type { BackendConfig } from '../subnet/config'
import { WeftError } from '../errors'

/** Bytes each encapsulation adds in front of the inner IP packet. */
export const OVERHEAD: Record<BackendConfig['type'], number> = {
  vxlan: 50, // outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
  udp: 28, // outer IPv4 20 + UDP 8
  ipip: 20, // outer IPv4 20
  'host-gw': 0
}

/** The MTU pods get (FLANNEL_MTU): the underlay's (or Backend.MTU) less the overhead. */
export function podMtu (backend: BackendConfig, underlayMtu: number): number {
  const base = backend.type === 'vxlan' && backend.mtu > 0 ? backend.mtu : underlayMtu
  return base - OVERHEAD[backend.type]
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/

/** A random locally administered unicast MAC, lower case, as flannel writes it. */
export function randomVtepMac (): string {
  const b = crypto.randomBytes(6)
  b[0] = (b[0] & 0xfe) | 0x02
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':')
}

/**
 * The VTEP MAC survives restarts (kept in the state dir), so peers' FDB
 * entries stay right across a daemon restart: flannel's stale-MAC trouble
 * (its issues #1036, #1788) came from MACs that changed under peers.
 */
export function loadOrCreateVtepMac (stateDir: string, vni: number): string {
  const file = path.join(stateDir, `vxlan-${vni}.mac`)
  try {
    const text = fs.readFileSync(file, 'utf8').trim()
    if (MAC_RE.test(text)) return text
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw new WeftError('ESTATE', `cannot read ${file}: ${(err as Error).message}`)
  }
  const mac = randomVtepMac()
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o755 })
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, mac + '\n', { mode: 0o644 })
  fs.renameSync(tmp, file)
  return mac
}

export function leaseAttrsFor (backend: BackendConfig, publicIP: number, stateDir: string): LeaseAttrs {
  switch (backend.type) {
    case 'vxlan':
      return { publicIP, publicIPv6: null, backendType: 'vxlan', backendData: { VNI: backend.vni, VtepMAC: loadOrCreateVtepMac(stateDir, backend.vni) } }
    case 'udp':
      return { publicIP, publicIPv6: null, backendType: '' } // flannel's udp leaves BackendType empty
    case 'ipip':
      return { publicIP, publicIPv6: null, backendType: 'ipip' }
    case 'host-gw':
      return { publicIP, publicIPv6: null, backendType: 'host-gw' }
  }
}
