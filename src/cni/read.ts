// Bounded reads for the CNI plugin. Its stdin and the files a config names
// are input it must not trust: an unbounded read of a runaway pipe (or of a
// config pointing at /dev/zero) would grow until the node runs out of memory.
// So every read goes into one buffer of the limit plus a byte, allocated up
// front, and stops at the first byte past the limit.
import fs from 'node:fs'
import { CniCode, CniError } from './errors'

/** The largest network config read from stdin. Real ones are a few KiB; prevResult and runtimeConfig stay far below this too. */
export const MAX_CONFIG_BYTES = 1 << 20
/** How long a non-blocking input may stay open without ending (runtimes give a plugin about as long). */
const READ_WAIT_MS = 60_000

/** What `fd` holds up to EOF, at most `limit` bytes; `what` names it in errors. Throws CniError. */
export function readBounded (fd: number, limit: number, what: string): Buffer {
  const buf = Buffer.allocUnsafe(limit + 1)
  const deadline = Date.now() + READ_WAIT_MS
  let n = 0
  for (;;) {
    let got: number
    try {
      got = fs.readSync(fd, buf, n, buf.length - n, null)
    } catch (err) {
      // A runtime may hand over a non-blocking pipe: wait for it as a blocking read would.
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
        if (Date.now() > deadline) throw new CniError(CniCode.IO_FAILURE, `cannot read ${what}`, `it did not end within ${READ_WAIT_MS / 1000} s`)
        pause(5)
        continue
      }
      throw new CniError(CniCode.IO_FAILURE, `cannot read ${what}`, (err as Error).message)
    }
    if (got === 0) return buf.subarray(0, n)
    n += got
    if (n > limit) throw new CniError(CniCode.INVALID_CONFIG, `${what} is larger than ${limit} bytes`, 'weft reads no further')
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4))

function pause (ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms)
}

/** The network config from the process's stdin, bounded by MAX_CONFIG_BYTES. */
export function readStdinConfig (): string {
  return readBounded(0, MAX_CONFIG_BYTES, 'the network configuration on stdin').toString('utf8')
}
