// Underlay sockets with batched I/O: UDP over IPv4 or IPv6 and raw IPv4
// (protocol 4 for IP-in-IP). IPv4 addresses cross the boundary as host-order
// uint32, IPv6 ones as 16 bytes (binding) or four big-endian words (batches,
// PeerTable6).
import { fromNative, WeftError } from '../errors'
import { native } from './binding'
import type { SockOptions } from './binding'
import { PacketIo } from './io'

/** A UDP socket's options; `A` is how its family gives the local address. */
interface UdpOptionsOf<A> extends SockOptions {
  addr: A
  /** 0 = let the kernel choose */
  port: number
  batch?: number
}

export interface UdpOptions extends UdpOptionsOf<number> {
  /** local IPv4 as uint32 (0 = any) */
  addr: number
}

export interface Udp4 {
  readonly port: number
  readonly io: PacketIo
}

export function openUdp4 (opts: UdpOptions): Udp4 {
  return wrapUdp(openUdp4Fd(opts), 'udp4', opts.batch)
}

function wrapUdp (fd: number, kind: 'udp4' | 'udp6', batch: number | undefined): Udp4 {
  return { port: native.sockLocalPort(fd), io: new PacketIo(fd, kind, batch ?? 64) }
}

/** The same socket as a bare fd, for another thread to wrap: nothing here owns it. */
export function openUdp4Fd (opts: UdpOptions): number {
  try {
    return native.udp4Open(opts.addr >>> 0, opts.port, opts)
  } catch (err) {
    throw fromNative(err, { EADDRINUSE: `UDP port ${opts.port} is taken by another process` })
  }
}

export interface Udp6Options extends UdpOptionsOf<Buffer> {
  /** local IPv6, 16 bytes (all zero = any) */
  addr: Buffer
}

export interface Udp6 extends Udp4 {
  /** kind 'udp6': receives fill batch.addrs6; sends take a PeerTable6 */
  readonly io: PacketIo
}

/**
 * A UDP socket over IPv6 only (IPV6_V6ONLY: an IPv4 socket binds the same
 * port beside it), with everything an IPv4 one has: batches, GRO, GSO,
 * super-packet segmentation, inner checks. pmtudisc takes the
 * IP_PMTUDISC_* values (IPv6's are the same numbers).
 */
export function openUdp6 (opts: Udp6Options): Udp6 {
  return wrapUdp(openUdp6Fd(opts), 'udp6', opts.batch)
}

/** The same socket as a bare fd, for another thread to wrap (as 'udp6'): nothing here owns it. */
export function openUdp6Fd (opts: Udp6Options): number {
  if (!Buffer.isBuffer(opts.addr) || opts.addr.length !== 16) throw new WeftError('EINVAL', 'an IPv6 socket address is 16 bytes')
  try {
    return native.udp6Open(opts.addr, opts.port, opts)
  } catch (err) {
    throw fromNative(err, {
      EADDRINUSE: `UDP port ${opts.port} (IPv6) is taken by another process`,
      EADDRNOTAVAIL: 'the IPv6 address is not on this host (or still tentative: duplicate address detection)',
      EAFNOSUPPORT: 'IPv6 is disabled on this host'
    })
  }
}

export interface RawOptions extends SockOptions {
  protocol: number
  /** local IPv4 as uint32 (0 = any) */
  addr?: number
  batch?: number
}

/** Receives whole IPv4 packets (outer header included); sends payloads the kernel wraps. */
export function openRaw4 (opts: RawOptions): PacketIo {
  let fd: number
  try {
    fd = native.raw4Open(opts.protocol, (opts.addr ?? 0) >>> 0, opts)
  } catch (err) {
    throw fromNative(err, { EPERM: 'raw sockets need CAP_NET_RAW' })
  }
  return new PacketIo(fd, 'raw4', opts.batch ?? 64)
}

export function socketBuffers (io: PacketIo): { rcvbuf: number, sndbuf: number } {
  return native.sockBuffers(io.fd)
}

/** Turn UDP_GRO on; false (and nothing changed) if the kernel refuses it. */
export function trySetUdpGro (io: PacketIo): boolean {
  try {
    native.sockSetGro(io.fd, true)
    return true
  } catch {
    return false
  }
}

/**
 * VXLAN over SO_REUSEPORT sockets (fd: any one of the group): steer each
 * datagram to one of `sockets` sockets by its inner flow (a cBPF program on the group; see
 * native/src/sock.c). Throws a WeftError if the kernel refuses.
 */
export function steerInnerFlow (fd: number, sockets: number): void {
  try { native.sockSteerInnerFlow(fd, sockets) } catch (err) { throw fromNative(err) }
}
