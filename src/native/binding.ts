// Loads the compiled addon (built by node-gyp on `npm install`) and describes
// its raw surface. Everything else imports the typed wrappers next to this
// file, never the binding directly.
import path from 'node:path'
import { WeftError } from '../errors'

export interface NativeIo {
  readonly fd: number
  setReceive (slab: Buffer, offsets: Uint32Array, lengths: Uint32Array, capacity: number,
    addrs?: Uint32Array | null, ports?: Uint32Array | null, segs?: Uint32Array | null,
    vnet?: boolean, bad?: Uint32Array | null, inner?: number, rco?: boolean): void
  setSend (slab: Buffer, offsets: Uint32Array, lengths: Uint32Array,
    dests?: Uint32Array | null, table?: Uint32Array | null, segs?: Uint32Array | null,
    inner?: number, coalesce?: boolean): void
  read (): number
  send (count: number): number
  start (onRead: (n: number) => void, onWritable?: () => void): void
  setReading (on: boolean): void
  wantWritable (): void
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
  /** IP_MTU_DISCOVER value (constants.IP_PMTUDISC_*); default: leave the kernel's */
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

export interface Binding {
  Io: new (fd: number, kind: number, counters: Float64Array, maxBatch: number) => NativeIo
  /** counters: constants.BUSY_COUNTERS slots (ns polling, caught, suspended) */
  BusyPoll: new (counters: Float64Array, windowUs: number) => NativeBusyPoll
  tunOpen (name: string, flags: number): { fd: number, name: string }
  tunSetOffload (fd: number, offloads: number): void
  tunFeatures (): number
  linkSetMtu (name: string, mtu: number): void
  linkSetUp (name: string, up: boolean): void
  linkIndex (name: string): number
  udp4Open (addr: number, port: number, opts?: SockOptions): number
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
  constants: {
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
    IPPROTO_IPIP: number
    IP_PMTUDISC_DONT: number
    IP_PMTUDISC_DO: number
    MAX_BATCH: number
    /** slots a BusyPoll writes: ns polling, caught, suspended */
    BUSY_COUNTERS: number
  }
}

function load (): Binding {
  // dist/src/native/binding.js -> <root>/build/Release/weft_native.node
  const file = path.join(__dirname, '..', '..', '..', 'build', 'Release', 'weft_native.node')
  try {
    return require(file) as Binding
  } catch (err) {
    throw new WeftError('ENATIVE', `cannot load the native addon ${file}: run \`npm install\` (it builds with node-gyp): ${(err as Error).message}`, { cause: err })
  }
}

export const native: Binding = load()
export const constants = native.constants
