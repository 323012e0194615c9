// Replacing a file so that a reader sees the old one or the new one, never
// part of either: written to a fresh temporary file beside it (O_EXCL and
// O_NOFOLLOW: nothing already there, a link or a symlink, is written
// through), given its mode whatever the umask, synced, renamed over the
// target, and the rename made durable. Callers wrap the error in their own.
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

export interface WriteAtomicOptions {
  /** the file's mode */
  mode: number
  /** the mode of any directory created on the way */
  dirMode: number
}

/** Throws the file system's error; no temporary file is left behind. */
export function writeAtomic (file: string, data: string, o: WriteAtomicOptions): void {
  const dir = path.dirname(file)
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  let fd = -1
  try {
    fs.mkdirSync(dir, { recursive: true, mode: o.dirMode })
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, o.mode)
    fs.fchmodSync(fd, o.mode)
    fs.writeFileSync(fd, data)
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    fd = -1
    fs.renameSync(tmp, file)
  } catch (err) {
    if (fd >= 0) fs.closeSync(fd)
    fs.rmSync(tmp, { force: true })
    throw err
  }
  // Best effort: some file systems refuse to fsync a directory.
  try {
    const d = fs.openSync(dir, 'r')
    try { fs.fsyncSync(d) } finally { fs.closeSync(d) }
  } catch {}
}
