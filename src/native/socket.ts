// Underlay sockets with batched I/O: UDP over IPv4 and raw IPv4 (protocol 4
// for IP-in-IP). Addresses cross the boundary as host-order uint32.
import { fromNative } from '../errors'
import { native } from './binding'
import type { SockOptions } from './binding'
import { PacketIo } from './io'

export interface UdpOptions extends SockOptions {
  /** local IPv4 as uint32 (0 = any) */
  addr: number
  /** 0 = let the kernel choose */
  port: number
  batch?: number
}

export interface Udp4 {
  readonly port: number
  readonly io: PacketIo
}

export function openUdp4 (opts: UdpOptions): Udp4 {
  const fd = openUdp4Fd(opts)
  return { port: native.sockLocalPort(fd), io: new PacketIo(fd, 'udp4', opts.batch ?? 64) }
}

/** The same socket as a bare fd, for another thread to wrap: nothing here owns it. */
export function openUdp4Fd (opts: UdpOptions): number {
  try {
    return native.udp4Open(opts.addr >>> 0, opts.port, opts)
  } catch (err) {
    throw fromNative(err, { EADDRINUSE: `UDP port ${opts.port} is taken by another process` })
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
