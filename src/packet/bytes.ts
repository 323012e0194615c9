// Big-endian (network order) integer access by byte indexing. Used instead of
// Buffer#readUInt32BE & co. because those throw RangeError out of bounds
// (nothing on the per-packet path may throw) and validate their arguments on
// every call; plain indexing is inlined by V8, and out of bounds it reads
// undefined (0 once shifted) and drops writes.

export function readU16 (buf: Buffer, off: number): number {
  return (buf[off] << 8) | buf[off + 1]
}

/** As an unsigned number (>>> 0), never negative. */
export function readU32 (buf: Buffer, off: number): number {
  return ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0
}

// Uint8Array stores keep the low 8 bits, so no "& 0xff" is needed.
export function writeU16 (buf: Buffer, off: number, v: number): void {
  buf[off] = v >>> 8
  buf[off + 1] = v
}

export function writeU32 (buf: Buffer, off: number, v: number): void {
  buf[off] = v >>> 24
  buf[off + 1] = v >>> 16
  buf[off + 2] = v >>> 8
  buf[off + 3] = v
}
