// The delegate configs saved for DEL, one file per attachment in dataDir:
//
//   <dataDir>/<network>:<containerID>:<ifname>
//
// flannel's plugin keys its file by container ID alone (<dataDir>/<containerID>),
// so two of its networks in one pod (Multus) sharing a dataDir overwrite each
// other's file, and a GC cannot tell whose a file is. An attachment is the
// triple the spec names it by (network, container, interface); ':' is in none
// of the three (libcni's cniReg and the kernel's interface names both refuse
// it), so the name splits back into them without ambiguity. Files of the old
// layout are still read (DEL, CHECK, GC), so pods attached before the change
// can be deleted.
//
// A file counts as weft's (to run, or to delete in GC) only when all of these
// hold: its name is one weft writes; it is a regular file, not a symlink,
// owned by this user and unreadable to others (save() writes it 0600); it
// holds a weft delegate config of this network (loadSaved). Everything else
// in the directory is left alone, wherever dataDir points.
import { writeAtomic } from '../util/write-atomic'
import fs from 'node:fs'
import path from 'node:path'
import { CniCode, CniError } from './errors'
import { MAX_CONFIG_BYTES, readBounded } from './read'
import { ifNameProblem, isContainerId, pluginNameProblem } from './validate'

export interface Attachment {
  network: string
  containerId: string
  ifname: string
}

/** A directory entry weft may have written: an attachment's file, or an old-layout one (container ID only). */
export type Entry = ({ kind: 'attachment' } & Attachment) | { kind: 'legacy', containerId: string }

export function attachmentFile (dataDir: string, a: Attachment): string {
  return path.join(dataDir, `${a.network}:${a.containerId}:${a.ifname}`)
}

export function legacyFile (dataDir: string, containerId: string): string {
  return path.join(dataDir, containerId)
}

/** The attachment a directory entry's name stands for, or undefined if weft never writes that name. */
export function parseEntryName (name: string): Entry | undefined {
  const parts = name.split(':')
  if (parts.length === 1) return isContainerId(name) ? { kind: 'legacy', containerId: name } : undefined
  if (parts.length !== 3) return undefined
  const [network, containerId, ifname] = parts
  if (!isContainerId(network) || !isContainerId(containerId) || ifNameProblem(ifname) !== undefined) return undefined
  return { kind: 'attachment', network, containerId, ifname }
}

/** Write `d` to `file`, 0600 in a 0700 directory, whole or not at all (writeAtomic). */
export function save (file: string, d: Record<string, unknown>): void {
  try {
    writeAtomic(file, JSON.stringify(d), { mode: 0o600, dirMode: 0o700 })
  } catch (err) {
    throw new CniError(CniCode.IO_FAILURE, `cannot save the delegate config ${file}`, (err as Error).message)
  }
}

/**
 * What loadSaved found: nothing; a weft delegate config of this network
 * ("ours"); one of another network ("other"); or a file that cannot be shown
 * to be weft's ("unproven": a symlink, someone else's, damaged, not a
 * delegate config), with the reason.
 */
export type Saved =
  | { state: 'absent' }
  | { state: 'ours', conf: Record<string, unknown> }
  | { state: 'other', network: unknown }
  | { state: 'unproven', why: string }

/** A saved config is at most the network config it came from plus what weft adds to it. */
const MAX_SAVED_BYTES = 2 * MAX_CONFIG_BYTES

export function loadSaved (file: string, network: string): Saved {
  let fd: number
  try {
    // O_NONBLOCK: a FIFO planted under the name must not hang the plugin (it is refused below)
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return { state: 'absent' }
    if (code === 'ELOOP') return { state: 'unproven', why: 'is a symbolic link' }
    throw new CniError(CniCode.IO_FAILURE, `cannot read ${file}`, (err as Error).message)
  }
  let text: string
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) return { state: 'unproven', why: 'is not a regular file' }
    const uid = process.geteuid?.() ?? 0
    if (st.uid !== uid) return { state: 'unproven', why: `is owned by uid ${st.uid}, not ${uid}` }
    if ((st.mode & 0o077) !== 0) return { state: 'unproven', why: `has mode ${(st.mode & 0o777).toString(8)}, not 600` }
    text = readBounded(fd, MAX_SAVED_BYTES, file).toString('utf8')
  } catch (err) {
    if (err instanceof CniError && err.code === CniCode.INVALID_CONFIG) return { state: 'unproven', why: err.message }
    throw err
  } finally {
    fs.closeSync(fd)
  }
  let d: unknown
  try { d = JSON.parse(text) } catch { return { state: 'unproven', why: 'is not JSON' } }
  if (d === null || typeof d !== 'object' || Array.isArray(d)) return { state: 'unproven', why: 'is not a JSON object' }
  const c = d as Record<string, unknown>
  if (c.name !== network) return { state: 'other', network: c.name }
  const why = delegateConfProblem(c)
  return why === undefined ? { state: 'ours', conf: c } : { state: 'unproven', why }
}

/** Why `c` is not a delegate config as delegate.ts renders one, or undefined if it is. */
function delegateConfProblem (c: Record<string, unknown>): string | undefined {
  if (typeof c.cniVersion !== 'string') return 'has no cniVersion'
  const bad = pluginNameProblem(c.type)
  if (bad !== undefined) return `names a delegate weft will not run (${bad})`
  const ipam = c.ipam as Record<string, unknown> | undefined
  if (ipam === null || typeof ipam !== 'object' || !Array.isArray(ipam.ranges)) return 'has no ipam.ranges'
  return undefined
}
