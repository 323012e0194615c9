// Loads the compiled addon (built by node-gyp on `npm install`) and describes
// its raw surface. Everything else imports the typed wrappers next to this
// file, never the binding directly.
//
// The boundary's shape: constructors and registrations take one options
// object, which the addon reads once, when it is called; the per-batch calls
// (read(), send(count)) take a count at most, so a batch crosses with no
// property lookups. Every number C and JS must agree on comes from the
// addon's `constants` (checked when it loads), never from a copy.
import path from 'node:path'
import { WeftError } from '../errors'

/**
 * Where a handle's reads land (weft_rx_t in native/src/weft.h). The views
 * are held by the addon until the next setReceive; JS rewrites their
 * contents between batches, never the views themselves.
 */
export interface NativeReceive {
  slab: Buffer
  /** [batch] start of slot i in the slab */
  offsets: Uint32Array
  /** [batch] out: length of packet i, 0 = dropped */
  lengths: Uint32Array
  /** bytes each slot can hold */
  capacity: number
  /** sockets: [batch] out: source IPv4, host order (0 on udp6) */
  addrs?: Uint32Array | null
  /** udp6: [4 * batch] out: source IPv6, four big-endian words per entry (all zero for a dropped slot) */
  addrs6?: Uint32Array | null
  /** UDP: [batch] out: source port */
  ports?: Uint32Array | null
  /** UDP: [batch] out: UDP_GRO segment size, 0 = not coalesced */
  segs?: Uint32Array | null
  /** TUN with IFF_VNET_HDR: finish partial checksums of plain packets */
  vnet?: boolean
  /** sockets: [2 * batch] out: bitmask of each message's segments whose inner checksum is bad; absent: no checks */
  bad?: Uint32Array | null
  /** with bad: bytes before the inner IPv4 or IPv6 packet (UDP; raw sockets read the outer header) */
  inner?: number
  /** with bad, UDP: a datagram with the VXLAN RCO flag is not checked */
  rco?: boolean
}

/** What a handle's send(count) sends (weft_tx_t in native/src/weft.h); held like NativeReceive. */
export interface NativeSend {
  slab: Buffer
  offsets: Uint32Array
  lengths: Uint32Array
  /** sockets: [batch] index into table */
  dests?: Uint32Array | null
  /** sockets: (addr host order, port) pairs; udp6: (w0, w1, w2, w3, port) */
  table?: Uint32Array | null
  /** sockets: words per peer in table, 2 or (udp6) 5; checked against the socket's family (absent: 2) */
  tableStride?: number
  /** sockets: what each entry is (plain, a UDP_SEGMENT run, a super-packet); TUN: pieces per write */
  segs?: Uint32Array | null
  /** sockets: bytes of encapsulation before a super-packet's IPv4 or IPv6 header */
  inner?: number
  /** sockets: gather same-size plain datagrams into UDP_SEGMENT sends */
  coalesce?: boolean
}

export interface NativeIo {
  readonly fd: number
  setReceive (views: NativeReceive): void
  setSend (views: NativeSend): void
  read (): number
  /** TUN with pieces: `count` writes from write `first`, whose pieces start at `firstPiece` */
  send (count: number, first?: number, firstPiece?: number): number
  start (onRead: (n: number) => void, onWritable?: () => void, onTimer?: () => void): void
  setReading (on: boolean): void
  wantWritable (): void
  /** onTimer once, `us` µs from now (1..1e6); a later call moves it */
  wakeAfter (us: number): void
  setBusyPoll (poller: NativeBusyPoll | null): void
  close (): void
}

export interface NativeBusyPoll {
  close (): void
}

export interface SockOptions {
  reusePort?: boolean
  /** bytes; SO_RCVBUFFORCE when permitted, else SO_RCVBUF (kernel-clamped) */
  rcvbuf?: number
  sndbuf?: number
  /** enable UDP_GRO on the socket */
  gro?: boolean
  /** IP_MTU_DISCOVER value (constants.IP_PMTUDISC_*; IPV6_MTU_DISCOVER on udp6, same numbers); default: leave the kernel's */
  pmtudisc?: number
}

export interface Offloads {
  udpGso: boolean
  udpGro: boolean
  tun: boolean
  tunVnetHdr: boolean
  tunMultiQueue: boolean
  /** true/false, or the errno name that stopped the probe (e.g. 'EPERM') */
  tunTso: boolean | string
  tunUso: boolean | string
}

export interface IoInit {
  /** taken over: the handle closes it */
  fd: number
  /** constants.KIND_* */
  kind: number
  /** COUNTER_NAMES.length slots the addon writes */
  counters: Float64Array
  /** packets per batch, 1..constants.MAX_BATCH */
  maxBatch: number
}

export interface BusyPollInit {
  /** constants.BUSY_COUNTERS slots: at BUSY_NS, BUSY_CAUGHT and BUSY_SUSPENDED */
  counters: Float64Array
  windowUs: number
  /** tests only: clock[0] is the time in ns, instead of the real clock */
  clock?: Float64Array
}

export interface Binding {
  Io: new (init: IoInit) => NativeIo
  BusyPoll: new (init: BusyPollInit) => NativeBusyPoll
  tunOpen (name: string, flags: number): { fd: number, name: string }
  tunSetOffload (fd: number, offloads: number): void
  tunFeatures (): number
  linkSetMtu (name: string, mtu: number): void
  linkSetUp (name: string, up: boolean): void
  linkIndex (name: string): number
  udp4Open (addr: number, port: number, opts?: SockOptions): number
  /** addr: 16 bytes, all zero = any; IPV6_V6ONLY */
  udp6Open (addr: Buffer, port: number, opts?: SockOptions): number
  raw4Open (protocol: number, bindAddr: number, opts?: SockOptions): number
  sockLocalPort (fd: number): number
  sockSetGro (fd: number, on: boolean): void
  sockSteerInnerFlow (fd: number, sockets: number): void
  sockBuffers (fd: number): { rcvbuf: number, sndbuf: number }
  closeFd (fd: number): void
  socketPair (): [number, number]
  probeOffloads (): Offloads
  /** start argv without fork() (posix_spawn); fds of the child's stdin (ours to write), stdout and stderr (ours to read) */
  spawn (argv: readonly string[]): { pid: number, stdin: number, stdout: number, stderr: number }
  /** reap pid if it has ended: null while it runs; code -1 when a signal ended it */
  spawnWait (pid: number): { code: number, signal: number } | null
  counterNames: readonly string[]
  constants: NativeConstants
}

/** The addon's `constants` (addon.cc, Init), most of them from native/src/weft.h. */
export interface NativeConstants {
  TUN_TAP: number
  TUN_VNET_HDR: number
  TUN_MULTIQUEUE: number
  TUN_EXCL: number
  TUN_F_CSUM: number
  TUN_F_TSO4: number
  TUN_F_TSO6: number
  TUN_F_TSO_ECN: number
  TUN_F_USO4: number
  TUN_F_USO6: number
  KIND_FD: number
  KIND_UDP4: number
  KIND_RAW4: number
  KIND_UDP6: number
  IPPROTO_IPIP: number
  IP_PMTUDISC_DONT: number
  IP_PMTUDISC_DO: number
  MAX_BATCH: number
  /** slots a BusyPoll writes: ns polling, caught, suspended */
  BUSY_COUNTERS: number
  /** a BusyPoll's counter slots (enum weft_busy_counter) */
  BUSY_NS: number
  BUSY_CAUGHT: number
  BUSY_SUSPENDED: number
  /** a batch of at most this many packets and bytes is light; polling holds off this long after a heavy one */
  BUSY_LIGHT_PACKETS: number
  BUSY_LIGHT_BYTES: number
  BUSY_SUSPEND_NS: number
  /** the virtio_net_hdr: see ./vnet */
  VNET_HDR_LEN: number
  VNET_F_NEEDS_CSUM: number
  VNET_F_DATA_VALID: number
  GSO_NONE: number
  GSO_TCPV4: number
  GSO_TCPV6: number
  GSO_UDP_L4: number
  /** or'ed into a super-packet's send segs: see ./batch */
  SEGS_PARTIAL: number
  /** the VXLAN header's byte 1 with the RCO flag: a checked receive skips such datagrams */
  VXLAN_RCO_BYTE1: number
  /** datagrams of a UDP_GRO message whose inner checksums are checked (bits in bad[2i], bad[2i + 1]) */
  RX_CHECK_SEGMENTS: number
}

// Every name of NativeConstants (the compiler checks none is missing), so
// that a build older than this code is refused at load, not read as undefined.
const CONSTANT_NAMES: Record<keyof NativeConstants, true> = {
  TUN_TAP: true,
  TUN_VNET_HDR: true,
  TUN_MULTIQUEUE: true,
  TUN_EXCL: true,
  TUN_F_CSUM: true,
  TUN_F_TSO4: true,
  TUN_F_TSO6: true,
  TUN_F_TSO_ECN: true,
  TUN_F_USO4: true,
  TUN_F_USO6: true,
  KIND_FD: true,
  KIND_UDP4: true,
  KIND_RAW4: true,
  KIND_UDP6: true,
  IPPROTO_IPIP: true,
  IP_PMTUDISC_DONT: true,
  IP_PMTUDISC_DO: true,
  MAX_BATCH: true,
  BUSY_COUNTERS: true,
  BUSY_NS: true,
  BUSY_CAUGHT: true,
  BUSY_SUSPENDED: true,
  BUSY_LIGHT_PACKETS: true,
  BUSY_LIGHT_BYTES: true,
  BUSY_SUSPEND_NS: true,
  VNET_HDR_LEN: true,
  VNET_F_NEEDS_CSUM: true,
  VNET_F_DATA_VALID: true,
  GSO_NONE: true,
  GSO_TCPV4: true,
  GSO_TCPV6: true,
  GSO_UDP_L4: true,
  SEGS_PARTIAL: true,
  VXLAN_RCO_BYTE1: true,
  RX_CHECK_SEGMENTS: true
}

/** The names every addon build must export in `constants`. */
export const constantNames = Object.keys(CONSTANT_NAMES) as Array<keyof NativeConstants>

function load (): Binding {
  // dist/src/native/binding.js -> <root>/build/Release/weft_native.node
  const file = path.join(__dirname, '..', '..', '..', 'build', 'Release', 'weft_native.node')
  let b: Binding
  try {
    b = require(file) as Binding
  } catch (err) {
    throw new WeftError('ENATIVE', `cannot load the native addon ${file}: run \`npm install\` (it builds with node-gyp): ${(err as Error).message}`, { cause: err })
  }
  const missing = constantNames.filter((k) => typeof b.constants[k] !== 'number')
  if (missing.length > 0) throw new WeftError('ENATIVE', `the native addon ${file} is older than this code (no constants.${missing.join(', ')}): rebuild it with \`npm run build\``)
  return b
}

export const native: Binding = load()
export const constants = native.constants
