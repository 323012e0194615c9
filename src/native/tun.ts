// TUN/TAP devices from our own addon (the `tuntap2` package the design named
// is not in the npm registry).
import { fromNative } from '../errors'
import { native } from './binding'
import { PacketIo } from './io'

export interface TunOptions {
  /** device name; "%d" lets the kernel pick a number */
  name: string
  tap?: boolean
  /** prefix every packet with a virtio_net_hdr (needed for TSO/GRO) */
  vnetHdr?: boolean
  /** TUN_F_* flags for TUNSETOFFLOAD; needs vnetHdr */
  offloads?: number
  multiQueue?: boolean
  /**
   * Refuse (EBUSY) a device of that name that exists already. A single-queue
   * device is refused to a second opener anyway; a multi-queue one would
   * take it in as one more queue.
   */
  exclusive?: boolean
  mtu?: number
  /** bring the link up (default true) */
  up?: boolean
  /** packets per batch for the returned PacketIo (default 64) */
  batch?: number
}

export interface Tun {
  readonly name: string
  readonly vnetHdr: boolean
  readonly io: PacketIo
}

const TUN_HINTS = {
  ENOENT: '/dev/net/tun is missing: load the tun module (modprobe tun) or give the container the device',
  EPERM: 'creating a TUN device needs CAP_NET_ADMIN',
  EACCES: 'cannot open /dev/net/tun: needs root or CAP_NET_ADMIN',
  EBUSY: 'the device is already open by another process',
  EINVAL: 'a device of that name exists with another type or flags'
}

export function openTun (opts: TunOptions): Tun {
  const c = native.constants
  const flags = (opts.tap === true ? c.TUN_TAP : 0) |
    (opts.vnetHdr === true ? c.TUN_VNET_HDR : 0) |
    (opts.multiQueue === true ? c.TUN_MULTIQUEUE : 0) |
    (opts.exclusive === true ? c.TUN_EXCL : 0)
  let dev: { fd: number, name: string }
  try {
    dev = native.tunOpen(opts.name, flags)
  } catch (err) { throw fromNative(err, TUN_HINTS) }
  try {
    if (opts.offloads !== undefined && opts.offloads !== 0) native.tunSetOffload(dev.fd, opts.offloads)
    if (opts.mtu !== undefined) native.linkSetMtu(dev.name, opts.mtu)
    if (opts.up !== false) native.linkSetUp(dev.name, true)
  } catch (err) {
    native.closeFd(dev.fd)
    throw fromNative(err)
  }
  return { name: dev.name, vnetHdr: opts.vnetHdr === true, io: new PacketIo(dev.fd, 'fd', opts.batch ?? 64) }
}

/**
 * One more queue of a multi-queue device openTun made (multiQueue, same
 * vnetHdr), as a bare fd for another thread to wrap: nothing here owns it.
 */
export function openTunQueue (name: string, vnetHdr: boolean): number {
  const c = native.constants
  try {
    return native.tunOpen(name, c.TUN_MULTIQUEUE | (vnetHdr ? c.TUN_VNET_HDR : 0)).fd
  } catch (err) { throw fromNative(err, TUN_HINTS) }
}

/** Close a bare fd (one openTunQueue or openUdp4Fd gave and nobody took). */
export function closeFd (fd: number): void {
  try { native.closeFd(fd) } catch {}
}

/** TUNSETOFFLOAD: which offloads the kernel may hand us (TUN_F_* flags). Throws a WeftError if refused. */
export function setTunOffload (tun: Tun, flags: number): void {
  try { native.tunSetOffload(tun.io.fd, flags) } catch (err) { throw fromNative(err) }
}

export function setLinkMtu (name: string, mtu: number): void {
  try { native.linkSetMtu(name, mtu) } catch (err) { throw fromNative(err) }
}

export function setLinkUp (name: string, up: boolean): void {
  try { native.linkSetUp(name, up) } catch (err) { throw fromNative(err) }
}
