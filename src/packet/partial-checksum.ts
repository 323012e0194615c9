// Finishing checksums that were left to an offload that never happened.
//
// A sender that offloads its TCP/UDP checksum (CHECKSUM_PARTIAL) writes only
// the pseudo-header sum into the field and expects the NIC to finish it.
// Between veths there is no NIC: the kernel's own VXLAN (flannel.1) sending
// over a veth hands the frame on with the inner checksum still partial, and a
// UDP socket receiving it copies it out as it is. Written to a TUN like that,
// the packet fails the receiving kernel's check and TCP stalls (ICMP, which
// is never offloaded, works, which makes this confusing to debug).
//
// Detection is cheap: a partial field equals the folded pseudo-header sum,
// which a finished checksum matches by chance once in 65536; those rare
// packets are told apart by verifying them before anything is rewritten.
import { onesSum, pseudoHeaderSum4At, fold } from './checksum'
import { pseudoHeaderSum6At } from './ipv6'

const TCP = 6
const UDP = 17

/**
 * If the TCP/UDP checksum of the IPv4 packet at buf[ipOff] (total bytes long)
 * was left partial, finish it in place. Returns true if it wrote the field.
 * Never throws; anything it does not understand is left alone.
 */
export function finishPartialChecksum (buf: Buffer, ipOff: number, total: number): boolean {
  const proto = buf[ipOff + 9]
  if (proto !== TCP && proto !== UDP) return false
  if (((buf[ipOff + 6] & 0x3f) | buf[ipOff + 7]) !== 0) return false // MF or a fragment offset
  const ihl = (buf[ipOff] & 15) * 4
  const l4len = total - ihl
  if (l4len < (proto === TCP ? 18 : 8)) return false
  return finishIfPartial(buf, proto, ipOff + ihl, l4len, pseudoHeaderSum4At(buf, ipOff, proto, l4len))
}

/**
 * Finish the TCP/UDP checksum of an IPv4 packet whose field is known to hold
 * the pseudo-header sum (VXLAN remote checksum offload said so), in one
 * pass: no check first. Not TCP/UDP, or too short: left alone.
 */
export function finishChecksum (buf: Buffer, ipOff: number, total: number): void {
  const proto = buf[ipOff + 9]
  if (proto !== TCP && proto !== UDP) return
  const ihl = (buf[ipOff] & 15) * 4
  finishL4(buf, proto, ipOff + ihl, total - ihl)
}

/**
 * finishPartialChecksum for the IPv6 packet at buf[ipOff] (total bytes
 * long): TCP or UDP straight after the fixed header only (behind extension
 * headers the kernel's own check stands). Returns true if it wrote the field.
 */
export function finishPartialChecksum6 (buf: Buffer, ipOff: number, total: number): boolean {
  const proto = buf[ipOff + 6]
  if (proto !== TCP && proto !== UDP) return false
  const l4len = total - 40
  if (l4len < (proto === TCP ? 18 : 8)) return false
  return finishIfPartial(buf, proto, ipOff + 40, l4len, pseudoHeaderSum6At(buf, ipOff, proto, l4len))
}

/** finishChecksum for IPv6 (TCP/UDP straight after the fixed header; else left alone). */
export function finishChecksum6 (buf: Buffer, ipOff: number, total: number): void {
  const proto = buf[ipOff + 6]
  if (proto !== TCP && proto !== UDP) return
  finishL4(buf, proto, ipOff + 40, total - 40)
}

// Both families from the TCP/UDP header on: the pseudo-header sum is the
// only thing an IPv4 and an IPv6 packet differ by here.

/** The field at buf[l4...] (long enough) holds the folded pseudo sum and is not a finished checksum that equals it: finish it. */
function finishIfPartial (buf: Buffer, proto: number, l4: number, l4len: number, pseudoSum: number): boolean {
  const at = l4 + (proto === TCP ? 16 : 6)
  const value = (buf[at] << 8) | buf[at + 1]
  if (proto === UDP && value === 0) return false // no checksum at all (IPv4's; never the pseudo sum in IPv6)
  const pseudo = fold(pseudoSum)
  if (value !== pseudo) return false
  // One in 65536 finished checksums equals the pseudo sum: keep those.
  if (fold(onesSum(buf, l4, l4len, pseudo)) === 0xffff) return false
  writeSum(buf, proto, l4, l4len, at)
  return true
}

/** finishChecksum from the TCP/UDP header on: too short, left alone. */
function finishL4 (buf: Buffer, proto: number, l4: number, l4len: number): void {
  if (l4len < (proto === TCP ? 18 : 8)) return
  writeSum(buf, proto, l4, l4len, l4 + (proto === TCP ? 16 : 6))
}

/**
 * The field (at `at`) holds the pseudo sum, so the sum over the segment as
 * it stands is exactly the sum the checksum must cancel.
 */
function writeSum (buf: Buffer, proto: number, l4: number, l4len: number, at: number): void {
  let c = ~fold(onesSum(buf, l4, l4len)) & 0xffff
  if (proto === UDP && c === 0) c = 0xffff
  buf[at] = c >>> 8
  buf[at + 1] = c & 0xff
}
