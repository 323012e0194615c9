// A classic pcap file writer for `weft capture --write` (the format of
// tcpdump.org/manpages/pcap-savefile.5.html, which tcpdump -r and Wireshark
// read): a 24-byte global header, then per packet a 16-byte record header and
// the bytes. Written by hand because it is that simple and cap cannot write
// files. Little-endian, microsecond time stamps (magic 0xa1b2c3d4 as written
// by a little-endian host, which every reader detects).
//
// Records are buffered and written in batches: one syscall per packet would
// cost more than the capture; flush() (called every second by the CLI) keeps
// the file readable while the capture runs.
import fs from 'node:fs'
import { WeftError } from '../errors'

export const PCAP_MAGIC_US = 0xa1b2c3d4
export const PCAP_GLOBAL_HLEN = 24
export const PCAP_RECORD_HLEN = 16
export const PCAP_DEFAULT_SNAPLEN = 65535

const FLUSH_BYTES = 1 << 20

/** The file header: magic, version 2.4, zone 0, sigfigs 0, snaplen, link type. */
export function pcapGlobalHeader (linkType: number, snaplen: number = PCAP_DEFAULT_SNAPLEN): Buffer {
  const b = Buffer.alloc(PCAP_GLOBAL_HLEN)
  b.writeUInt32LE(PCAP_MAGIC_US, 0)
  b.writeUInt16LE(2, 4)
  b.writeUInt16LE(4, 6)
  b.writeInt32LE(0, 8)
  b.writeUInt32LE(0, 12)
  b.writeUInt32LE(snaplen, 16)
  b.writeUInt32LE(linkType, 20)
  return b
}

/** One record header: seconds, microseconds, bytes in the file, bytes on the wire. */
export function pcapRecordHeader (tsUs: number, inclLen: number, origLen: number): Buffer {
  const b = Buffer.alloc(PCAP_RECORD_HLEN)
  const us = Math.max(0, Math.floor(tsUs))
  const sec = Math.floor(us / 1e6)
  b.writeUInt32LE(sec >>> 0, 0)
  b.writeUInt32LE(us - sec * 1e6, 4)
  b.writeUInt32LE(inclLen, 8)
  b.writeUInt32LE(origLen, 12)
  return b
}

export class PcapWriter {
  private fd: number | undefined
  private pending: Buffer[] = []
  private pendingBytes = 0
  private count = 0

  private constructor (readonly path: string, fd: number, readonly linkType: number, readonly snaplen: number) {
    this.fd = fd
  }

  /** Create (or truncate) `path` and write the global header. */
  static create (path: string, linkType: number, snaplen: number = PCAP_DEFAULT_SNAPLEN): PcapWriter {
    let fd: number
    try {
      fd = fs.openSync(path, 'w', 0o644)
    } catch (err) {
      throw new WeftError('EWRITE', `cannot create ${path}: ${(err as Error).message}`, { cause: err })
    }
    const w = new PcapWriter(path, fd, linkType, snaplen)
    w.enqueue(pcapGlobalHeader(linkType, snaplen))
    w.flush() // an empty capture still leaves a valid file
    return w
  }

  /** Packets written so far. */
  get packets (): number {
    return this.count
  }

  /**
   * Append one packet captured at `tsUs` (microseconds since the epoch).
   * `data` is copied, so the caller may reuse its buffer (cap does).
   * `origLen` is the length on the wire when only part was captured.
   */
  write (tsUs: number, data: Uint8Array, origLen: number = data.length): void {
    if (this.fd === undefined) throw new WeftError('EWRITE', `${this.path} is already closed`)
    const incl = Math.min(data.length, this.snaplen)
    this.enqueue(pcapRecordHeader(tsUs, incl, Math.max(origLen, incl)))
    this.enqueue(Buffer.from(data.subarray(0, incl)))
    this.count++
    if (this.pendingBytes >= FLUSH_BYTES) this.flush()
  }

  private enqueue (b: Buffer): void {
    this.pending.push(b)
    this.pendingBytes += b.length
  }

  /** Write out what is buffered. */
  flush (): void {
    if (this.fd === undefined || this.pendingBytes === 0) return
    const chunk = Buffer.concat(this.pending, this.pendingBytes)
    this.pending = []
    this.pendingBytes = 0
    try {
      let off = 0
      while (off < chunk.length) off += fs.writeSync(this.fd, chunk, off, chunk.length - off)
    } catch (err) {
      throw new WeftError('EWRITE', `cannot write ${this.path}: ${(err as Error).message}`, { cause: err })
    }
  }

  /** Flush and close. Idempotent. */
  close (): void {
    if (this.fd === undefined) return
    try {
      this.flush()
    } finally {
      fs.closeSync(this.fd)
      this.fd = undefined
    }
  }
}
