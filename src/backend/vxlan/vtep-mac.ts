// The VTEP MAC: random, locally administered, unicast, and kept across
// restarts in the state dir, so that peers' FDB entries stay right when the
// daemon restarts. flannel's stale-MAC trouble (its issues #1036, #1788) came
// from MACs that changed under peers.
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { WeftError } from '../../errors'

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/

/** A random locally administered unicast MAC, lower case, as flannel writes it. */
export function randomVtepMac (): string {
  const b = crypto.randomBytes(6)
  b[0] = (b[0] & 0xfe) | 0x02
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':')
}

/** IP family of the VXLAN device: flannel's flannel.<VNI> (4) and flannel-v6.<VNI> (6) have a MAC each. */
export type Family = 4 | 6

function macFile (stateDir: string, vni: number, family: Family = 4): string {
  return path.join(stateDir, family === 4 ? `vxlan-${vni}.mac` : `vxlan-v6-${vni}.mac`)
}

/**
 * Kube mode, first start on a node (a swap from flanneld, or a wiped state
 * dir): take the MAC the node's backend-data annotation already gives its
 * peers, as flanneld does, so their FDB entries stay right. Nothing if a MAC
 * is kept already or the annotation's is not one. True if adopted.
 */
export function adoptVtepMac (stateDir: string, vni: number, mac: string, family: Family = 4): boolean {
  const file = macFile(stateDir, vni, family)
  if (!MAC_RE.test(mac) || fs.existsSync(file)) return false
  writeMac(stateDir, file, mac)
  return true
}

export function loadOrCreateVtepMac (stateDir: string, vni: number, family: Family = 4): string {
  const file = macFile(stateDir, vni, family)
  try {
    const text = fs.readFileSync(file, 'utf8').trim()
    if (MAC_RE.test(text)) return text
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw new WeftError('ESTATE', `cannot read ${file}: ${(err as Error).message}`)
  }
  const mac = randomVtepMac()
  writeMac(stateDir, file, mac)
  return mac
}

function writeMac (stateDir: string, file: string, mac: string): void {
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o755 })
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, mac + '\n', { mode: 0o644 })
  fs.renameSync(tmp, file)
}
