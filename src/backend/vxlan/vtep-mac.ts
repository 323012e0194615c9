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
