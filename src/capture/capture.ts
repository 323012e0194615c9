// The libpcap side of `weft capture`, through the `cap` package: open a
// device with a BPF filter, hand each packet to a callback, close. Also which
// kind of device it is (underlay or VTEP), read from sysfs, since that
// decides the filter (see filter.ts) before libpcap can tell the link type.
//
// cap is loaded lazily: it is a native addon, and `weft --help` or any other
// command must not fail where it is not built.
import fs from 'node:fs'
import { performance } from 'node:perf_hooks'
import { WeftError } from '../errors'
import { LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL, LINKTYPE_NAMES, LINKTYPE_RAW } from './decode'
import type { DeviceKind } from './filter'

/** The part of cap's API used here (the package ships no types). */
interface CapHandle {
  open: (device: string, filter: string, bufSize: number, buffer: Buffer) => string
  close: () => boolean
  on: (event: 'packet', fn: (nbytes: number, truncated: boolean) => void) => unknown
  removeAllListeners: (event?: string) => unknown
}
interface CapModule {
  Cap: new () => CapHandle
}

// cap sets snaplen 65535, so a buffer that size never truncates; libpcap's
// own ring gets room for bursts while the event loop is busy printing.
const PACKET_BUFFER = 65536
const LIBPCAP_BUFFER = 8 << 20

// Linux ARPHRD_* values in /sys/class/net/<dev>/type.
const ARPHRD_TUNNEL = 768 // ipip: tunl0, flannel's ipip backend
const ARPHRD_NONE = 65534 // TUN: weft.1

/** A VTEP carries the pods' packets unencapsulated: TUN (weft.1), an IP-in-IP tunnel, a kernel vxlan device (flannel.1). */
export function classifyDevice (arphrd: number | undefined, devtype: string | undefined): DeviceKind {
  if (devtype === 'vxlan') return 'vtep'
  if (arphrd === ARPHRD_NONE || arphrd === ARPHRD_TUNNEL) return 'vtep'
  return 'underlay'
}

/** Does the device exist here? ('any' is libpcap's pseudo-device for all of them.) */
export function deviceExists (name: string): boolean {
  return name === 'any' || fs.existsSync(`/sys/class/net/${name}`)
}

/** classifyDevice for a device of this network namespace. */
export function deviceKind (name: string): DeviceKind {
  const read = (f: string): string | undefined => {
    try { return fs.readFileSync(`/sys/class/net/${name}/${f}`, 'utf8') } catch { return undefined }
  }
  const type = read('type')
  const devtype = /^DEVTYPE=(.*)$/m.exec(read('uevent') ?? '')?.[1]
  return classifyDevice(type === undefined ? undefined : Number(type.trim()), devtype)
}

/** cap's name for a link type (its return value of open) to the LINKTYPE_* number, if weft decodes it. */
export function linkTypeFromCap (name: string): number | undefined {
  switch (name) {
    case 'ETHERNET': return LINKTYPE_ETHERNET
    case 'RAW': return LINKTYPE_RAW
    case 'LINKTYPE_LINUX_SLL': return LINKTYPE_LINUX_SLL
  }
  // cap names only a few; for the rest it returns "Unknown linktype <DLT>".
  // DLT_IPV4 is 228 in both numberings.
  return /^Unknown linktype (\d+)$/.exec(name)?.[1] === String(LINKTYPE_IPV4) ? LINKTYPE_IPV4 : undefined
}

/** Wall-clock time in microseconds since the epoch, with the monotonic clock's resolution. */
export function nowUs (): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000)
}

export interface CaptureSession {
  readonly device: string
  readonly filter: string
  /** LINKTYPE_* of the frames */
  readonly linkType: number
  /** Stop capturing and release the handle. Idempotent; safe inside onPacket. */
  close: () => void
}

/**
 * Called for each packet. `frame` is a view of a buffer cap reuses for the
 * next packet: copy what must outlive the call. cap does not pass libpcap's
 * time stamp, so `tsUs` is taken on delivery; libpcap runs in immediate
 * mode, so that is when the packet arrived, give or take one event-loop turn.
 */
export type PacketHandler = (frame: Buffer, tsUs: number, truncated: boolean) => void

/** Cap objects whose open failed: held forever, see openCapture. */
const failedHandles: CapHandle[] = []

function loadCap (): CapModule {
  try {
    return require('cap') as CapModule
  } catch (err) {
    throw new WeftError('ECAPTURE', `the cap (libpcap) module is not available: ${(err as Error).message} (reinstall with libpcap-dev present)`, { cause: err })
  }
}

function openError (device: string, filter: string, err: unknown): WeftError {
  const msg = err instanceof Error ? err.message : String(err)
  if (/permission|not permitted/i.test(msg)) {
    return new WeftError('EPERM', `cannot capture on ${device}: ${msg} (needs root or CAP_NET_RAW)`, { cause: err })
  }
  if (/syntax|filter|expression|unknown host|illegal/i.test(msg)) {
    return new WeftError('EFILTER', `libpcap rejected the filter "${filter}": ${msg}`, { cause: err })
  }
  return new WeftError('ECAPTURE', `cannot capture on ${device}: ${msg}`, { cause: err })
}

/** Open `device` with BPF `filter`; packets go to `onPacket` until close(). */
export function openCapture (device: string, filter: string, onPacket: PacketHandler): CaptureSession {
  const { Cap } = loadCap()
  const cap = new Cap()
  const buffer = Buffer.alloc(PACKET_BUFFER)
  let name: string
  try {
    name = cap.open(device, filter, LIBPCAP_BUFFER, buffer)
  } catch (err) {
    // cap 0.2.1 keeps the half-opened pcap handle after a failed open, and
    // its close() (or the destructor, when the object is collected) then
    // stops a libuv poll handle it never initialised: a segfault. So never
    // close it, and keep it reachable so it is never collected.
    failedHandles.push(cap)
    throw openError(device, filter, err)
  }
  const linkType = linkTypeFromCap(name)
  if (linkType === undefined) {
    cap.close()
    const known = Object.values(LINKTYPE_NAMES).join(', ')
    throw new WeftError('ELINKTYPE', `${device} has link type ${name}; weft capture decodes ${known}`)
  }
  let open = true
  cap.on('packet', (nbytes, truncated) => {
    if (open) onPacket(buffer.subarray(0, nbytes), nowUs(), truncated)
  })
  return {
    device,
    filter,
    linkType,
    close () {
      if (!open) return
      open = false
      cap.close()
      cap.removeAllListeners('packet')
    }
  }
}
