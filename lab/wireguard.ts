// A node that runs no weft at all: Debian's wireguard-go (the userspace
// WireGuard in Go) set up exactly the way flanneld's wireguard backend sets
// up its device (flannel v0.28, pkg/backend/wireguard, default Mode
// "separate", IPv4). It is the reference weft's userspace WireGuard is
// checked against for interop and compared with in benchmarks, as
// kernel-vxlan.ts is for VXLAN. flanneld does, and so does this:
//
//   link flannel-wg (a TUN here: wireguard-go creates it), mtu <underlay - 80>
//   wg: private key from the key file (base64 text, /run/flannel/wgkey), listen-port 51820
//   ip addr add 10.244.5.0/32 dev flannel-wg   (the lease's subnet IP, i.e. its network address)
//   ip link set flannel-wg up
//   ip route replace 10.244.0.0/16 dev flannel-wg scope link   (the whole Network)
// and per peer (addPeer, then the Network route again):
//   wg set flannel-wg peer <pub> [preshared-key <psk>] endpoint <PublicIP>:<Port>
//      persistent-keepalive <N|off> allowed-ips <its subnet>   (allowed IPs replaced)
//   ip route replace 10.244.0.0/16 dev flannel-wg scope link
// removePeer: wg set flannel-wg peer <pub> remove
//
// The `wg` tool finds a userspace device by its socket
// /var/run/wireguard/<dev>.sock, a path fixed in both wireguard-go and wg.
// Every node's device is called flannel-wg, and /run is one filesystem for
// all namespaces, so two nodes on one machine would fight over one socket:
// each wireguard-go runs with its own tmpfs on /run/wireguard, mounted in the
// private mount namespace `ip netns exec` gives it, and `wg` is run inside
// that mount namespace (nsenter -m -t <wireguard-go's pid>). Nothing of it is
// visible on the machine's own /run.
//
// Keys never touch the disk unless a key file is asked for: `wg` reads them
// from its stdin (/dev/stdin). wireguard-go is killed by PID (the
// topology's process group for it) when the node stops, when setup fails,
// or at topology teardown; the TUN device and its routes go with it.
//
// With IPv6 (flannel's EnableIPv6, default Mode "separate"), flanneld makes a
// second device, flannel-wg-v6, with the same key on ListenPortV6 (51821),
// and sets it up the same way in IPv6 (wireguardGoNode6):
//   ip -6 addr add fc00:0:0:5::/128 dev flannel-wg-v6   (lease.IPv6Subnet.IP)
//   ip -6 route replace fc00::/48 dev flannel-wg-v6 scope link   (IPv6Network)
//   wg set flannel-wg-v6 peer <pub> endpoint [<PublicIPv6>]:<BackendV6Data.Port> allowed-ips <its IPv6 subnet>

import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto'
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import type { ChildHandle, ExecOptions, ExecResult, Host, Topology } from './netns'
import { parseSubnet, subnetAddr } from './pods'
import { formatCidr6, ip6ToString, networkOf6, parseCidr6 } from '../src/packet/net6'

export const WG_DEVICE = 'flannel-wg'
export const WG_PORT = 51820
export const WG_DEVICE_V6 = 'flannel-wg-v6'
export const WG_PORT_V6 = 51821
/** flannel's `overhead`: IPv4/IPv6 header, UDP, WireGuard's 32 bytes, rounded up */
export const WG_OVERHEAD = 80

/** What another node needs to reach this one (flannel's addPeer arguments, from its lease). */
export interface WireguardPeer {
  /** base64, the lease's BackendData.PublicKey */
  publicKey: string
  /** the lease's PublicIP (underlay address) */
  publicIp: string
  /** the lease's BackendData.Port */
  port: number
  /** the peer's lease subnet, e.g. '10.244.6.0/24': its allowed IPs */
  subnet: string
  /** single-device Modes (auto, ipv4, ipv6): its IPv6 subnet, allowed too */
  subnet6?: string
  /** single-device Mode ipv6: '[PublicIPv6]:Port' instead of PublicIP:Port */
  endpoint?: string
}

export interface WireguardGoOptions {
  /** This node's lease subnet, e.g. '10.244.5.0/24'. */
  subnet: string
  /** flannel's Network, routed into the device; default '10.244.0.0/16' */
  network?: string
  /** base64 private key; default: from `keyFile`, else a new one */
  privateKey?: string
  /**
   * A key file as flanneld keeps it (WIREGUARD_KEY_FILE, /run/flannel/wgkey):
   * read if it exists, else a new key is written there the way flanneld
   * writes it (base64, no newline, mode 0400, directory 0755).
   */
  keyFile?: string
  /** Backend.ListenPort; default 51820 */
  listenPort?: number
  /** default topology MTU - 80 (Backend.MTU defaults to the underlay's) */
  mtu?: number
  /** Backend.PSK, base64; given to every peer */
  psk?: string
  /** Backend.PersistentKeepaliveInterval in seconds; default 0 (off) */
  persistentKeepalive?: number
  /** wireguard-go's LOG_LEVEL; default 'verbose' (handshakes and keepalives are logged, not data) */
  logLevel?: 'verbose' | 'error' | 'silent'
  /**
   * flannel's single-device Modes (auto, ipv4, ipv6) with EnableIPv6: the
   * IPv6 half on flannel-wg too (ConfigureV6: the IPv6 subnet's address
   * /128, IPv6Network routed into it)
   */
  subnet6?: string
  /** IPv6Network; default 'fc00::/48' */
  network6?: string
}

/** One line of `wg show <dev> dump` for a peer. */
export interface WgPeerDump {
  publicKey: string
  /** undefined when none */
  presharedKey: string | undefined
  /** 'ip:port', or undefined */
  endpoint: string | undefined
  allowedIps: string[]
  /** seconds since the epoch, 0 = never */
  latestHandshake: number
  rxBytes: number
  txBytes: number
  /** seconds, 0 = off */
  persistentKeepalive: number
}

export interface WgDump {
  privateKey: string
  publicKey: string
  listenPort: number
  /** 0 = off */
  fwmark: number
  peers: WgPeerDump[]
}

export interface WireguardGoNode {
  host: Host
  /** 'flannel-wg' */
  device: string
  /** wireguard-go's pid (its CPU time is this process's) */
  pid: number
  child: ChildHandle
  subnet: string
  network: string
  /** the address on the device: the subnet's network address (flannel's lease.Subnet.IP) */
  deviceIp: string
  publicIp: string
  port: number
  mtu: number
  privateKey: string
  publicKey: string
  /** What another node's setPeer takes to reach this one. */
  peer: WireguardPeer
  /** flannel's addPeer: add or update a peer (allowed IPs replaced), then the Network route again. */
  setPeer(p: WireguardPeer): Promise<void>
  /** flannel's removePeer. */
  removePeer(p: Pick<WireguardPeer, 'publicKey'>): Promise<void>
  /** `wg <args>` against this node's device (inside its namespace and mount namespace). */
  wg(args: readonly string[], opts?: ExecOptions): Promise<ExecResult>
  /** `wg show flannel-wg dump`, parsed. */
  dump(): Promise<WgDump>
  /** Stops wireguard-go (SIGTERM, then SIGKILL by PID); the device goes with it. Idempotent. */
  stop(): Promise<void>
}

const IP_MS = 10_000
const READY_MS = 10_000
const KEY_RE = /^[A-Za-z0-9+/]{43}=$/

/** A base64 WireGuard key (32 bytes), as flannel's wgtypes.ParseKey takes it (Go's decoder skips CR and LF). */
export function parseKey (text: string, what = 'key'): Buffer {
  const s = text.replace(/[\r\n]/g, '')
  if (!KEY_RE.test(s)) throw new Error(`${what}: not a base64 WireGuard key (32 bytes)`)
  return Buffer.from(s, 'base64')
}

/** A new private key, clamped as `wg genkey` and wgtypes.GeneratePrivateKey clamp it. */
export function generatePrivateKey (): string {
  const k = randomBytes(32)
  k[0] = k[0]! & 248
  k[31] = (k[31]! & 127) | 64
  return k.toString('base64')
}

// PKCS#8 and SPKI wrappings of a raw X25519 key (RFC 8410), so node:crypto does the curve
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex')

/** The public key of a base64 private key, base64 (what `wg pubkey` prints). */
export function publicKeyOf (privateKey: string): string {
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, parseKey(privateKey, 'private key')]), format: 'der', type: 'pkcs8' })
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' })
  return spki.subarray(spki.length - 32).toString('base64')
}

/** flannel's writePrivateKey: directory 0755, the file created, chmod 0400, the base64 text without a newline. */
export function writeKeyFile (path: string, privateKey: string): void {
  parseKey(privateKey, 'private key')
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 })
  const fd = openSync(path, 'w', 0o600)
  try {
    chmodSync(path, 0o400) // before the key is in it
    writeSync(fd, privateKey)
  } finally {
    closeSync(fd)
  }
}

/** flannel's setupKeys: the key in `path` if the file exists, else a new one written there. */
export function keyFromFile (path: string): string {
  if (existsSync(path)) return parseKey(readFileSync(path, 'utf8'), `key file ${path}`).toString('base64')
  const key = generatePrivateKey()
  writeKeyFile(path, key)
  return key
}

/**
 * The etcd lease value flanneld writes for a wireguard node (IPv4 only),
 * byte for byte: BackendData is Go's json.Marshal of {PublicKey, Port};
 * BackendV6Data is left out (omitempty) without IPv6.
 */
export function wireguardLeaseValue (node: { publicIp: string, publicKey: string, port: number }): string {
  return JSON.stringify({
    PublicIP: node.publicIp,
    PublicIPv6: null,
    BackendType: 'wireguard',
    BackendData: { PublicKey: node.publicKey, Port: node.port },
  })
}

/**
 * The lease value flanneld writes for a dual-stack (or, without publicIp,
 * IPv6-only) wireguard node in Mode "separate": BackendData with the IPv4
 * device's port, BackendV6Data with ListenPortV6, one key for both.
 */
export function wireguardLeaseValue6 (node: { publicIp?: string, publicIp6: string, publicKey: string, port?: number, port6: number }): string {
  return JSON.stringify({
    PublicIP: node.publicIp ?? '0.0.0.0',
    PublicIPv6: node.publicIp6,
    BackendType: 'wireguard',
    ...(node.port !== undefined ? { BackendData: { PublicKey: node.publicKey, Port: node.port } } : {}),
    BackendV6Data: { PublicKey: node.publicKey, Port: node.port6 },
  })
}

function canonicalSubnet (subnet: string): string {
  return `${subnetAddr(subnet, 0)}/${parseSubnet(subnet).len}`
}

/** A CIDR of any length up to /32 (pods.ts's parseSubnet stops at /30), canonical. */
function canonicalNetwork (cidr: string): string {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(cidr)
  const len = m ? Number(m[2]) : -1
  const octets = m ? m[1]!.split('.').map(Number) : []
  if (!m || len > 32 || octets.some((o) => o > 255)) throw new Error(`not an IPv4 CIDR: ${cidr}`)
  const addr = octets.reduce((a, o) => a * 256 + o, 0)
  const size = 2 ** (32 - len)
  const net = addr - (addr % size)
  return `${[24, 16, 8, 0].map((s) => Math.floor(net / 2 ** s) % 256).join('.')}/${len}`
}

/** `wg show <dev> dump`: a line for the device, then one per peer, tab-separated. */
export function parseWgDump (text: string): WgDump {
  const lines = text.split('\n').filter((l) => l !== '')
  const dev = lines[0]?.split('\t') ?? []
  if (dev.length !== 4) throw new Error(`wg show dump: unexpected device line ${JSON.stringify(lines[0])}`)
  const num = (s: string | undefined): number => (s === 'off' || s === undefined ? 0 : Number(s))
  const none = (s: string | undefined): string | undefined => (s === '(none)' || s === undefined ? undefined : s)
  return {
    privateKey: dev[0]!,
    publicKey: dev[1]!,
    listenPort: num(dev[2]),
    fwmark: num(dev[3]),
    peers: lines.slice(1).map((l) => {
      const f = l.split('\t')
      if (f.length !== 8) throw new Error(`wg show dump: unexpected peer line ${JSON.stringify(l)}`)
      return {
        publicKey: f[0]!,
        presharedKey: none(f[1]),
        endpoint: none(f[2]),
        allowedIps: f[3] === '(none)' ? [] : f[3]!.split(','),
        latestHandshake: num(f[4]),
        rxBytes: num(f[5]),
        txBytes: num(f[6]),
        persistentKeepalive: num(f[7]),
      }
    }),
  }
}

/** Starts wireguard-go in `host` and sets it up as flanneld sets up flannel-wg. */
export async function wireguardGoNode (topo: Topology, host: Host, opts: WireguardGoOptions): Promise<WireguardGoNode> {
  const subnet = canonicalSubnet(opts.subnet)
  const network = canonicalNetwork(opts.network ?? '10.244.0.0/16')
  const port = opts.listenPort ?? WG_PORT
  const mtu = opts.mtu ?? topo.mtu - WG_OVERHEAD
  const keepalive = opts.persistentKeepalive ?? 0
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`wireguardGoNode: listenPort must be 1..65535, got ${port}`)
  if (!Number.isInteger(keepalive) || keepalive < 0 || keepalive > 65535) throw new RangeError(`wireguardGoNode: persistentKeepalive must be 0..65535 s, got ${keepalive}`)
  if (opts.psk !== undefined) parseKey(opts.psk, 'PSK')
  const privateKey = opts.privateKey !== undefined
    ? parseKey(opts.privateKey, 'private key').toString('base64')
    : opts.keyFile !== undefined ? keyFromFile(opts.keyFile) : generatePrivateKey()
  const publicKey = publicKeyOf(privateKey)
  const deviceIp = subnetAddr(subnet, 0)
  const route = ['ip', 'route', 'replace', network, 'dev', WG_DEVICE, 'scope', 'link']

  // A tmpfs of its own on /run/wireguard (see the top of the file), then
  // wireguard-go in the foreground: `exec` keeps the pid, so the handle's pid
  // is wireguard-go's. WG_PROCESS_FOREGROUND=1 also silences its banner.
  const script = 'mkdir -p /run/wireguard && mount -t tmpfs -o mode=0755,size=64k weft-lab-wg /run/wireguard && exec wireguard-go -f "$0"'
  const child = topo.spawn(host, ['sh', '-c', script, WG_DEVICE], {
    env: {
      ...process.env,
      WG_PROCESS_FOREGROUND: '1',
      WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1',
      LOG_LEVEL: opts.logLevel ?? 'verbose',
    },
  })
  const run = (argv: string[], o: ExecOptions = {}) => topo.exec(host, argv, { timeoutMs: IP_MS, ...o })
  // With `input`, wg reads a key from /dev/stdin; the harness's stdin is a
  // socket, which /dev/stdin cannot be opened on (ENXIO), so a pipe is put between.
  const wg = (args: readonly string[], o: ExecOptions = {}) => run(['nsenter', '-t', String(child.pid), '-m',
    ...(o.input !== undefined ? ['sh', '-c', 'cat | wg "$@"', 'wg'] : ['wg']), ...args], o)
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= child.stop().then(() => {})
    return stopped
  }

  try {
    if (opts.logLevel === undefined || opts.logLevel === 'verbose') {
      await child.waitForLine(/UAPI listener started/, READY_MS)
    } else {
      // no log line to wait for: the socket answering is readiness
      const t0 = Date.now()
      while ((await wg(['show', WG_DEVICE], { allowFail: true })).code !== 0) {
        if (!child.running) throw new Error(`wireguard-go exited: ${child.stderr.trim()}`)
        if (Date.now() - t0 > READY_MS) throw new Error(`wireguard-go in ${host.ns} not ready within ${READY_MS} ms`)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
    await run(['ip', 'link', 'set', WG_DEVICE, 'mtu', String(mtu)])
    await wg(['set', WG_DEVICE, 'private-key', '/dev/stdin', 'listen-port', String(port)], { input: privateKey })
    await run(['ip', 'addr', 'add', `${deviceIp}/32`, 'dev', WG_DEVICE])
    await run(['ip', 'link', 'set', WG_DEVICE, 'up'])
    await run(route)
    await run(['sysctl', '-qw', 'net.ipv4.ip_forward=1'])
    if (opts.subnet6 !== undefined) {
      const sn6 = networkOf6(parseCidr6(opts.subnet6))
      await run(['ip', '-6', 'addr', 'add', `${ip6ToString(sn6.ip)}/128`, 'dev', WG_DEVICE, 'nodad'])
      await run(['ip', '-6', 'route', 'replace', formatCidr6(networkOf6(parseCidr6(opts.network6 ?? 'fc00::/48'))), 'dev', WG_DEVICE, 'scope', 'link'])
      await run(['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1'])
    }
    // the device must say what the lease will advertise
    const d = parseWgDump((await wg(['show', WG_DEVICE, 'dump'])).stdout)
    if (d.publicKey !== publicKey || d.listenPort !== port) throw new Error(`wireguardGoNode: ${WG_DEVICE} has key ${d.publicKey} port ${d.listenPort}, wanted ${publicKey} ${port}`)
  } catch (e) {
    await stop().catch(() => {}) // the setup error is the interesting one
    throw e
  }

  const publicIp = host.underlayIp
  return {
    host,
    device: WG_DEVICE,
    pid: child.pid,
    child,
    subnet,
    network,
    deviceIp,
    publicIp,
    port,
    mtu,
    privateKey,
    publicKey,
    peer: { publicKey, publicIp, port, subnet },
    wg,
    stop,

    async setPeer (p: WireguardPeer): Promise<void> {
      parseKey(p.publicKey, 'peer public key')
      const psk = opts.psk !== undefined ? ['preshared-key', '/dev/stdin'] : []
      await wg(['set', WG_DEVICE, 'peer', p.publicKey, ...psk,
        'endpoint', p.endpoint ?? `${p.publicIp}:${p.port}`,
        'persistent-keepalive', keepalive > 0 ? String(keepalive) : 'off',
        'allowed-ips', [canonicalSubnet(p.subnet), ...(p.subnet6 !== undefined ? [formatCidr6(networkOf6(parseCidr6(p.subnet6)))] : [])].join(',')], opts.psk !== undefined ? { input: opts.psk } : {})
      await run(route)
    },

    async removePeer (p: Pick<WireguardPeer, 'publicKey'>): Promise<void> {
      parseKey(p.publicKey, 'peer public key')
      await wg(['set', WG_DEVICE, 'peer', p.publicKey, 'remove'])
    },

    async dump (): Promise<WgDump> {
      return parseWgDump((await wg(['show', WG_DEVICE, 'dump'])).stdout)
    },
  }
}

/** What another node needs to reach flannel-wg-v6 (flannel's addPeer for the IPv6 half of its lease). */
export interface WireguardPeer6 {
  publicKey: string
  /** the lease's PublicIPv6 */
  publicIp6: string
  /** the lease's BackendV6Data.Port */
  port: number
  /** the peer's IPv6 subnet: its allowed IPs */
  subnet6: string
}

export interface WireguardGoOptions6 {
  /** this node's IPv6 lease subnet, e.g. 'fc00:0:0:5::/64' */
  subnet6: string
  /** flannel's IPv6Network; default 'fc00::/48' */
  network6?: string
  /** base64; flanneld gives both devices the node's one key (default a new one) */
  privateKey?: string
  /** Backend.ListenPortV6; default 51821 */
  listenPort?: number
  /** default topology MTU - 80, as flannel gives both devices */
  mtu?: number
}

export interface WireguardGoNode6 {
  host: Host
  device: string
  child: ChildHandle
  subnet6: string
  publicIp6: string
  port: number
  mtu: number
  publicKey: string
  peer: WireguardPeer6
  setPeer(p: WireguardPeer6): Promise<void>
  removePeer(p: Pick<WireguardPeer6, 'publicKey'>): Promise<void>
  wg(args: readonly string[], opts?: ExecOptions): Promise<ExecResult>
  dump(): Promise<WgDump>
  stop(): Promise<void>
}

/** Starts a second wireguard-go in `host` and sets it up as flanneld sets up flannel-wg-v6 (Mode "separate"). */
export async function wireguardGoNode6 (topo: Topology, host: Host, opts: WireguardGoOptions6): Promise<WireguardGoNode6> {
  if (host.underlayIp6 === undefined) throw new Error('wireguardGoNode6: the topology has no IPv6 underlay (createTopology({ ipv6: true }))')
  const sn = networkOf6(parseCidr6(opts.subnet6))
  const subnet6 = formatCidr6(sn)
  const network6 = formatCidr6(networkOf6(parseCidr6(opts.network6 ?? 'fc00::/48')))
  const port = opts.listenPort ?? WG_PORT_V6
  const mtu = opts.mtu ?? topo.mtu - WG_OVERHEAD
  const privateKey = opts.privateKey !== undefined ? parseKey(opts.privateKey, 'private key').toString('base64') : generatePrivateKey()
  const publicKey = publicKeyOf(privateKey)
  const dev = WG_DEVICE_V6
  const route = ['ip', '-6', 'route', 'replace', network6, 'dev', dev, 'scope', 'link']
  const script = 'mkdir -p /run/wireguard && mount -t tmpfs -o mode=0755,size=64k weft-lab-wg6 /run/wireguard && exec wireguard-go -f "$0"'
  const child = topo.spawn(host, ['sh', '-c', script, dev], {
    env: { ...process.env, WG_PROCESS_FOREGROUND: '1', WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1', LOG_LEVEL: 'verbose' },
  })
  const run = (argv: string[], o: ExecOptions = {}) => topo.exec(host, argv, { timeoutMs: IP_MS, ...o })
  const wg = (args: readonly string[], o: ExecOptions = {}) => run(['nsenter', '-t', String(child.pid), '-m',
    ...(o.input !== undefined ? ['sh', '-c', 'cat | wg "$@"', 'wg'] : ['wg']), ...args], o)
  let stopped: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopped ??= child.stop().then(() => {})
    return stopped
  }
  try {
    await child.waitForLine(/UAPI listener started/, READY_MS)
    await run(['ip', 'link', 'set', dev, 'mtu', String(mtu)])
    await wg(['set', dev, 'private-key', '/dev/stdin', 'listen-port', String(port)], { input: privateKey })
    await run(['ip', '-6', 'addr', 'add', `${ip6ToString(sn.ip)}/128`, 'dev', dev, 'nodad'])
    await run(['ip', 'link', 'set', dev, 'up'])
    await run(route)
    await run(['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1'])
    const d = parseWgDump((await wg(['show', dev, 'dump'])).stdout)
    if (d.publicKey !== publicKey || d.listenPort !== port) throw new Error(`wireguardGoNode6: ${dev} has key ${d.publicKey} port ${d.listenPort}, wanted ${publicKey} ${port}`)
  } catch (e) {
    await stop().catch(() => {})
    throw e
  }
  const publicIp6 = host.underlayIp6
  return {
    host,
    device: dev,
    child,
    subnet6,
    publicIp6,
    port,
    mtu,
    publicKey,
    peer: { publicKey, publicIp6, port, subnet6 },
    wg,
    stop,
    async setPeer (p: WireguardPeer6): Promise<void> {
      parseKey(p.publicKey, 'peer public key')
      await wg(['set', dev, 'peer', p.publicKey, 'endpoint', `[${p.publicIp6}]:${p.port}`, 'persistent-keepalive', 'off', 'allowed-ips', formatCidr6(networkOf6(parseCidr6(p.subnet6)))])
      await run(route)
    },
    async removePeer (p: Pick<WireguardPeer6, 'publicKey'>): Promise<void> {
      parseKey(p.publicKey, 'peer public key')
      await wg(['set', dev, 'peer', p.publicKey, 'remove'])
    },
    async dump (): Promise<WgDump> {
      return parseWgDump((await wg(['show', dev, 'dump'])).stdout)
    },
  }
}
