// flannel's network config (net-conf.json, or etcd <prefix>/config), read the
// way flanneld reads it: Go's encoding/json into subnet.Config (keys matched
// case-insensitively at every level, unknown keys ignored), then
// CheckNetworkConfig (defaults and bounds, IPv4 and IPv6 halves), then the
// backend's own option struct. A config flannel rejects, weft rejects too, with a WeftError ECONFIG
// that names the field and says why. Where weft is stricter or picks another
// default, the comment at that spot says so.
import { WeftError } from '../errors'
import { field } from '../go-json'
import { contains, formatCidr, networkOf, size } from '../packet/net'
import type { Ip4Net } from '../packet/net'
import { ip4ToString, parseIp4 } from '../packet/ip'
import { formatCidr6, ip6ToString, mask6, networkOf6, parseIp6 } from '../packet/net6'
import type { Ip6Net } from '../packet/net6'
import { VXLAN_MTU_OVERHEAD } from '../packet/vxlan'

/**
 * The backend weft uses when the config has no Backend at all. flannel's code
 * (subnet.parseBackendType) picks 'udp' there, while its documentation says
 * vxlan (flannel issue #1221: arm64 nodes fail because udp is amd64-only).
 * weft follows the documentation; the result carries backendDefaulted so the
 * daemon can log that once. `weft config set` writes Backend.Type explicitly,
 * so flannel nodes sharing the store agree with weft.
 */
export const DEFAULT_BACKEND_TYPE = 'vxlan'
/** What flanneld itself picks when Backend is absent (kept for the log line). */
export const FLANNEL_CODE_DEFAULT_BACKEND_TYPE = 'udp'

export const VXLAN_DEFAULT_VNI = 1
export const VXLAN_MAX_VNI = 0xffffff
/** The Linux kernel's VXLAN port, which flannel gets by passing Port 0. */
export const VXLAN_DEFAULT_PORT = 8472
export const UDP_DEFAULT_PORT = 8285

/**
 * The most subnets a Network may be cut into for the backends with a
 * userspace peer table (vxlan, udp, ipip): src/dataplane/fdb.ts keeps a slot
 * per subnet, so that a packet's route is one array read. host-gw keeps no
 * table. flannel has no such limit; weft refuses such a config when it is
 * read, not after a node has leased a subnet and then failed to start.
 */
export const MAX_TABLE_SUBNETS = 1 << 22

export const BACKEND_TYPES = ['vxlan', 'udp', 'ipip', 'host-gw', 'wireguard'] as const
export type BackendType = typeof BACKEND_TYPES[number]

// Registered in flanneld but not implemented by weft: these get a clearer
// message than "unknown backend type".
const FLANNEL_ONLY_TYPES = ['ipsec', 'alloc', 'extension', 'tencent-vpc']

export const WIREGUARD_DEFAULT_PORT = 51820
export const WIREGUARD_DEFAULT_PORT_V6 = 51821
/** flannel's wireguard Modes (pkg/backend/wireguard); the name is compared as written, as flannel does */
export const WIREGUARD_MODES = ['separate', 'auto', 'ipv4', 'ipv6'] as const
export type WireguardMode = typeof WIREGUARD_MODES[number]

export interface VxlanBackendConfig {
  readonly type: 'vxlan'
  readonly vni: number
  /** UDP port; the config's 0 (flannel's "kernel default") is resolved to 8472 */
  readonly port: number
  /** underlay MTU to derive the device MTU from; 0 = the external interface's */
  readonly mtu: number
  readonly gbp: boolean
  readonly learning: boolean
  readonly directRouting: boolean
  /**
   * weft's own option "RemCsum" (default true): VXLAN remote checksum offload
   * with peers whose lease asks for it (RemCsumRx), as Linux's
   * remcsumtx/remcsumrx; flannel ignores the option and the lease key
   */
  readonly remCsum: boolean
}
export interface UdpBackendConfig { readonly type: 'udp', readonly port: number }
export interface IpipBackendConfig { readonly type: 'ipip', readonly directRouting: boolean }
export interface HostGwBackendConfig { readonly type: 'host-gw' }
/** flannel's wireguard options, with its defaults */
export interface WireguardBackendConfig {
  readonly type: 'wireguard'
  /** UDP port we listen on and publish in BackendData */
  readonly listenPort: number
  /** the IPv6 device's port (weft-wg-v6, Mode separate), published in BackendV6Data */
  readonly listenPortV6: number
  /** underlay MTU to derive the device MTU from (less 80); 0 = the external interface's */
  readonly mtu: number
  /** base64 pre-shared key, '' = none */
  readonly psk: string
  /** seconds between keepalives sent whatever the traffic; 0 = off */
  readonly persistentKeepalive: number
  readonly mode: WireguardMode
}
export type BackendConfig = VxlanBackendConfig | UdpBackendConfig | IpipBackendConfig | HostGwBackendConfig | WireguardBackendConfig

export interface NetworkConfig {
  /** network address with host bits cleared, as net.ParseCIDR gives it; {0, 0} when enableIPv4 is false (not to be used then) */
  readonly network: Ip4Net
  /** 0 when enableIPv4 is false */
  readonly subnetLen: number
  /** first and last subnet addresses that may be leased (uint32, host order); 0 when enableIPv4 is false */
  readonly subnetMin: number
  readonly subnetMax: number
  /** flannel's EnableIPv4 (default true); false: an IPv6-only network */
  readonly enableIPv4: boolean
  /** flannel's EnableIPv6 (default false): pods get an IPv6 subnet too */
  readonly enableIPv6: boolean
  /** the IPv6 network, host bits cleared; present iff enableIPv6 */
  readonly ipv6Network?: Ip6Net
  /** flannel's IPv6SubnetLen, computed as flannel does when absent (64 for a /62 or larger) */
  readonly ipv6SubnetLen: number
  /** first and last IPv6 subnet addresses that may be leased; present iff enableIPv6 */
  readonly ipv6SubnetMin?: bigint
  readonly ipv6SubnetMax?: bigint
  /**
   * flannel's EnableNFTables: the node's forward and --ip-masq rules go in
   * the nftables table `ip flannel-ipv4` (src/kernel/nftables.ts) instead of
   * iptables chains; nothing on that path runs iptables
   */
  readonly enableNFTables: boolean
  readonly backend: BackendConfig
  /** true when the config had no Backend and weft chose DEFAULT_BACKEND_TYPE (flannel would run udp) */
  readonly backendDefaulted: boolean
  /** the parsed JSON document, as given */
  readonly raw: unknown
}

type Obj = Record<string, unknown>

function fail (message: string): never {
  throw new WeftError('ECONFIG', `net-conf: ${message}`)
}

/** A value for an error message: JSON, cut short so a huge input cannot flood the log. */
function show (v: unknown): string {
  let s: string | undefined
  try {
    s = JSON.stringify(v)
  } catch {}
  if (s === undefined) s = typeof v
  return s.length > 64 ? `${s.slice(0, 61)}...` : s
}

function isObj (v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

// Go's decoder leaves a bool or integer field alone for JSON null, so null
// means "default" there; any other type is an UnmarshalTypeError.
function boolField (obj: Obj, name: string, label: string, dflt: boolean): boolean {
  const v = field(obj, name)
  if (v === undefined || v === null) return dflt
  if (typeof v !== 'boolean') fail(`${label} ${show(v)}: must be true or false`)
  return v
}

// JSON.parse cannot tell 24 from 24.0 or 2.4e1, which Go's integer decoding
// rejects; weft accepts any integer-valued number.
function intField (obj: Obj, name: string, label: string, dflt: number): number {
  const v = field(obj, name)
  if (v === undefined || v === null) return dflt
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(`${label} ${show(v)}: must be an integer`)
  return v
}

// Go's uint: negative numbers are a decode error; 0 (absent) means "compute it".
function subnetLenField (obj: Obj, name: string): number {
  const len = intField(obj, name, name, 0)
  if (len < 0) fail(`${name} ${len}: must not be negative`)
  return len
}

function inRange (v: number, lo: number, hi: number, label: string, why: string): number {
  if (v < lo || v > hi) fail(`${label} ${show(v)}: ${why}`)
  return v
}

// net.ParseCIDR: dotted quad (no leading zeros), "/", decimal prefix (Go's
// dtoi allows leading zeros there), host bits dropped.
function parseNetwork (v: unknown): Ip4Net {
  if (typeof v !== 'string') fail(`Network ${show(v)}: must be a string such as "10.244.0.0/16"`)
  const slash = v.indexOf('/')
  if (v.includes(':')) fail(`Network ${show(v)}: invalid IPv4 CIDR format (an IPv6 network goes in IPv6Network, with EnableIPv6 true)`)
  const len = v.slice(slash + 1)
  if (slash < 0 || !/^[0-9]+$/.test(len) || Number(len) > 32) fail(`Network ${show(v)}: invalid CIDR (want a.b.c.d/len with len 0..32)`)
  let ip: number
  try {
    ip = parseIp4(v.slice(0, slash))
  } catch {
    fail(`Network ${show(v)}: invalid CIDR (${show(v.slice(0, slash))} is not an IPv4 address)`)
  }
  return networkOf({ ip, prefixLen: Number(len) })
}

// flannel's ip.IP4 unmarshals with net.ParseIP; "0.0.0.0" (zero) means unset.
function parseAddr (v: unknown, label: string): number {
  if (typeof v !== 'string') fail(`${label} ${show(v)}: must be a string such as "10.244.1.0"`)
  try {
    return parseIp4(v)
  } catch {
    return fail(`${label} ${show(v)}: invalid IPv4 address`)
  }
}

/** Parse net-conf JSON text. Throws WeftError ECONFIG naming the field at fault. */
export function parseNetworkConfig (text: string): NetworkConfig {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new WeftError('ECONFIG', `net-conf: not valid JSON: ${jsonErrorWhere(String(text), err)}`)
  }
  return networkConfigFromJson(raw)
}

// V8 gives an offset for some syntax errors only ("Unexpected token '}', ...
// is not valid JSON" has none), so find it again with a plain JSON scanner
// and report line and column, which a person editing a ConfigMap needs.
function jsonErrorWhere (text: string, err: unknown): string {
  // V8 quotes the input, which may hold newlines and control characters: escape them for the log.
  // control characters in a config's error text are escaped, not printed
  // eslint-disable-next-line no-control-regex
  const msg = (err instanceof Error ? err.message : String(err)).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  const pos = badJsonOffset(text)
  if (pos < 0) return msg
  const line = text.slice(0, pos).split('\n').length
  const column = pos - text.lastIndexOf('\n', pos - 1)
  return `${msg} (line ${line}, column ${column}, offset ${pos})`
}

class JsonSyntaxAt {
  constructor (readonly offset: number) {}
}

const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y

/** Offset of the first character that makes `s` invalid JSON (RFC 8259), or -1. */
function badJsonOffset (s: string): number {
  let i = 0
  const bad = (): never => { throw new JsonSyntaxAt(i) }
  const ws = (): void => { while (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r') i++ }
  const expect = (c: string): void => { ws(); if (s[i] !== c) bad(); i++ }
  const str = (): void => {
    expect('"')
    for (;;) {
      if (i >= s.length || s.charCodeAt(i) < 0x20) bad()
      const c = s[i++]
      if (c === '"') return
      if (c !== '\\') continue
      if (s[i] === 'u') {
        for (let k = 0; k < 4; k++) if (!/[0-9a-fA-F]/.test(s[++i] ?? '')) bad()
      } else if (s[i] === undefined || !'"\\/bfnrt'.includes(s[i])) {
        bad()
      }
      i++
    }
  }
  const value = (): void => {
    ws()
    const c = s[i]
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']'
      i++
      ws()
      if (s[i] === close) { i++; return }
      for (;;) {
        if (c === '{') { str(); expect(':') }
        value()
        ws()
        if (s[i] === ',') { i++; continue }
        expect(close)
        return
      }
    }
    if (c === '"') return str()
    for (const word of ['true', 'false', 'null']) {
      if (c === word[0]) {
        for (const w of word) { if (s[i] !== w) bad(); i++ }
        return
      }
    }
    NUMBER_RE.lastIndex = i
    if (NUMBER_RE.exec(s) === null) bad()
    i = NUMBER_RE.lastIndex
  }
  try {
    value()
    ws()
    return i < s.length ? i : -1
  } catch (err) {
    // anything else (a stack overflow on absurd nesting) means "unknown"
    return err instanceof JsonSyntaxAt ? err.offset : -1
  }
}

/** The same checks for a document already parsed from JSON (a kube ConfigMap value, a CLI flag). */
export function networkConfigFromJson (raw: unknown): NetworkConfig {
  // Go: null decodes to nothing (then "Network" is missing); anything but an object is a type error.
  if (raw !== null && !isObj(raw)) fail(`the config must be a JSON object, got ${show(raw)}`)
  const obj: Obj = raw ?? {}

  const enableIPv4 = boolField(obj, 'EnableIPv4', 'EnableIPv4', true)
  const enableIPv6 = boolField(obj, 'EnableIPv6', 'EnableIPv6', false)
  const enableNFTables = boolField(obj, 'EnableNFTables', 'EnableNFTables', false)
  // flannel would accept neither and then lease nothing; weft says so at once
  if (!enableIPv4 && !enableIPv6) fail('EnableIPv4 false and EnableIPv6 false: enable at least one family (EnableIPv4 is true when absent)')

  const { backend, backendDefaulted } = parseBackend(field(obj, 'Backend'))
  checkBackendFamilies(backend, enableIPv4, enableIPv6)
  if (enableIPv6 && backend.type === 'vxlan' && backend.mtu !== 0 && backend.mtu < IPV6_MIN_MTU + VXLAN6_MTU_OVERHEAD) {
    // the IPv6 device (flannel's flannel-v6.<VNI>, VXLAN over IPv6: 70 bytes) would be below IPv6's 1280, where the kernel turns IPv6 off on it
    fail(`Backend.MTU ${backend.mtu}: with EnableIPv6 it must be 0 or at least ${IPV6_MIN_MTU + VXLAN6_MTU_OVERHEAD} (an IPv6 link needs ${IPV6_MIN_MTU}, VXLAN over IPv6 takes ${VXLAN6_MTU_OVERHEAD})`)
  }
  // Go's decoder reads every field whatever the Enable flags say, so a
  // malformed one is refused even in the family that is off
  const v4 = enableIPv4 ? checkIp4(obj) : (decodeIp4Fields(obj), { network: { ip: 0, prefixLen: 0 }, subnetLen: 0, subnetMin: 0, subnetMax: 0 })
  const v6 = enableIPv6 ? checkIp6(obj) : decodeIp6Fields(obj)
  if (enableIPv4) checkTable(backend, formatCidr(v4.network), v4.network.prefixLen, v4.subnetLen, 32, 'SubnetLen')
  if (v6.ipv6Network !== undefined) checkTable(backend, formatCidr6(v6.ipv6Network), v6.ipv6Network.prefixLen, v6.ipv6SubnetLen, 128, 'IPv6SubnetLen')
  return { ...v4, enableIPv4, enableIPv6, ...v6, enableNFTables, backend, backendDefaulted, raw }
}

// flannel's udp and ipip backends are IPv4-only (their devices and
// encapsulations carry IPv4 alone). flannel's wireguard Mode "ipv6" takes
// the peers' IPv6 addresses as endpoints, so it needs IPv6, and "ipv4" has
// no endpoints on an IPv6-only network.
function checkBackendFamilies (backend: BackendConfig, enableIPv4: boolean, enableIPv6: boolean): void {
  if (backend.type === 'wireguard' && backend.mode === 'ipv6' && !enableIPv6) fail('Backend.Mode "ipv6": the peers\' IPv6 addresses as endpoints need EnableIPv6 true (use separate, auto or ipv4)')
  if (!enableIPv6) return
  if (backend.type === 'udp' || backend.type === 'ipip') {
    fail(`EnableIPv6 true: the ${backend.type} backend is IPv4-only, as flannel's is (use vxlan, host-gw, or EnableIPv6 false)`)
  }
  if (backend.type === 'wireguard' && backend.mode === 'ipv4' && !enableIPv4) fail('EnableIPv4 false: the wireguard Mode "ipv4" needs IPv4 endpoints (use separate, auto or ipv6)')
  if (backend.type === 'wireguard' && backend.mtu !== 0 && backend.mtu < IPV6_MIN_MTU + WIREGUARD_MTU_OVERHEAD) {
    // the device that carries IPv6 gets the MTU less 80: below IPv6's 1280 the kernel turns IPv6 off on it
    fail(`Backend.MTU ${backend.mtu}: with EnableIPv6 it must be 0 or at least ${IPV6_MIN_MTU + WIREGUARD_MTU_OVERHEAD} (an IPv6 link needs ${IPV6_MIN_MTU}, WireGuard takes ${WIREGUARD_MTU_OVERHEAD})`)
  }
}

// With EnableIPv4 false flannel still decodes these: a malformed one is a
// decode error there, so it is here; their values are not used.
function decodeIp4Fields (obj: Obj): void {
  const n = field(obj, 'Network')
  if (n !== undefined) parseNetwork(n)
  subnetLenField(obj, 'SubnetLen')
  addrField(obj, 'SubnetMin')
  addrField(obj, 'SubnetMax')
}

type Ip6Fields = Pick<NetworkConfig, 'ipv6Network' | 'ipv6SubnetLen' | 'ipv6SubnetMin' | 'ipv6SubnetMax'>

function decodeIp6Fields (obj: Obj): Ip6Fields {
  const n = field(obj, 'IPv6Network')
  if (n !== undefined) parseNetwork6(n)
  subnetLenField(obj, 'IPv6SubnetLen')
  addr6Field(obj, 'IPv6SubnetMin')
  addr6Field(obj, 'IPv6SubnetMax')
  return { ipv6SubnetLen: DEFAULT_IPV6_SUBNET_LEN }
}

/** RFC 8200: the smallest MTU an IPv6 link may have. */
const IPV6_MIN_MTU = 1280
/** VXLAN over an IPv6 underlay: IPv6 40, UDP 8, VXLAN 8, Ethernet 14. */
const VXLAN6_MTU_OVERHEAD = 70

/** flannel's IPv6SubnetLen when the config gives none and the network is a /62 or larger. */
export const DEFAULT_IPV6_SUBNET_LEN = 64

// CheckNetworkConfig, IPv4 half, in flannel's order.
function checkIp4 (obj: Obj): { network: Ip4Net, subnetLen: number, subnetMin: number, subnetMax: number } {
  const netValue = field(obj, 'Network')
  if (netValue === undefined) fail('Network is missing: please define a correct Network, e.g. "10.244.0.0/16"')
  const network = parseNetwork(netValue)
  const cidr = formatCidr(network)
  if (network.ip === 0 && network.prefixLen === 0) {
    fail(`Network ${show(netValue)}: please define a correct Network (0.0.0.0/0 counts as empty)`)
  }

  let subnetLen = subnetLenField(obj, 'SubnetLen')
  if (subnetLen > 0) {
    // Each subnet needs room for a tunnel and a bridge address.
    if (subnetLen > 30) fail(`SubnetLen ${subnetLen}: must be less than /31`)
    // The first subnet is never leased, so fewer than four would leave one node at most.
    if (subnetLen < network.prefixLen + 2) {
      fail(`SubnetLen ${subnetLen}: network must be able to accommodate at least four subnets (Network ${cidr} needs SubnetLen ${network.prefixLen + 2} or more)`)
    }
  } else if (network.prefixLen > 28) {
    fail(`Network "${cidr}": network is too small. Minimum useful network prefix is /28`)
  } else {
    subnetLen = network.prefixLen <= 22 ? 24 : network.prefixLen + 2
  }
  const step = size(subnetLen)

  // Min and max: absent (or "0.0.0.0", which flannel cannot tell from absent)
  // means the first subnet after the network address, and the last one.
  let subnetMin = addrField(obj, 'SubnetMin')
  if (subnetMin === 0) subnetMin = network.ip + step
  else if (!contains(network, subnetMin)) fail(`SubnetMin ${ip4ToString(subnetMin)}: is not in the range of the Network ${cidr}`)
  let subnetMax = addrField(obj, 'SubnetMax')
  if (subnetMax === 0) subnetMax = network.ip + size(network.prefixLen) - step
  else if (!contains(network, subnetMax)) fail(`SubnetMax ${ip4ToString(subnetMax)}: is not in the range of the Network ${cidr}`)

  if (subnetMin % step !== 0) fail(`SubnetMin ${ip4ToString(subnetMin)}: is not on a SubnetLen boundary (/${subnetLen})`)
  if (subnetMax % step !== 0) fail(`SubnetMax ${ip4ToString(subnetMax)}: is not on a SubnetLen boundary (/${subnetLen})`)
  // flannel does not check this; it then fails at lease time with "out of subnets".
  if (subnetMin > subnetMax) fail(`SubnetMin ${ip4ToString(subnetMin)} is above SubnetMax ${ip4ToString(subnetMax)}: no subnet could ever be leased`)
  return { network, subnetLen, subnetMin, subnetMax }
}

// CheckNetworkConfig, IPv6 half, in flannel's order, with its bounds: a
// subnet at most /126, the network cut in four at least, /64 by default.
function checkIp6 (obj: Obj): Ip6Fields {
  const netValue = field(obj, 'IPv6Network')
  if (netValue === undefined) fail('IPv6Network is missing: EnableIPv6 is true, so please define a correct IPv6Network, e.g. "fc00::/48"')
  const network = parseNetwork6(netValue)
  const cidr = formatCidr6(network)
  if (network.ip === 0n && network.prefixLen === 0) {
    fail(`IPv6Network ${show(netValue)}: please define a correct IPv6Network (::/0 counts as empty)`)
  }

  let subnetLen = subnetLenField(obj, 'IPv6SubnetLen')
  if (subnetLen > 0) {
    if (subnetLen > 126) fail(`IPv6SubnetLen ${subnetLen}: must be less than /127`)
    if (subnetLen < network.prefixLen + 2) {
      fail(`IPv6SubnetLen ${subnetLen}: network must be able to accommodate at least four subnets (IPv6Network ${cidr} needs IPv6SubnetLen ${network.prefixLen + 2} or more)`)
    }
  } else if (network.prefixLen > 124) {
    fail(`IPv6Network "${cidr}": IPv6Network is too small. Minimum useful network prefix is /124`)
  } else {
    subnetLen = network.prefixLen <= 62 ? DEFAULT_IPV6_SUBNET_LEN : network.prefixLen + 2
  }
  const step = 1n << BigInt(128 - subnetLen)
  const inNet = (a: bigint): boolean => (a & mask6(network.prefixLen)) === network.ip

  // absent, null or "::" (flannel's ip.IsEmpty) means the first subnet after the network address, and the last one
  let min = addr6Field(obj, 'IPv6SubnetMin')
  if (min === 0n) min = network.ip + step
  else if (!inNet(min)) fail(`IPv6SubnetMin ${ip6ToString(min)}: is not in the range of the IPv6Network ${cidr}`)
  let max = addr6Field(obj, 'IPv6SubnetMax')
  if (max === 0n) max = network.ip + (1n << BigInt(128 - network.prefixLen)) - step
  else if (!inNet(max)) fail(`IPv6SubnetMax ${ip6ToString(max)}: is not in the range of the IPv6Network ${cidr}`)

  if ((min & (step - 1n)) !== 0n) fail(`IPv6SubnetMin ${ip6ToString(min)}: is not on an IPv6SubnetLen boundary (/${subnetLen})`)
  if ((max & (step - 1n)) !== 0n) fail(`IPv6SubnetMax ${ip6ToString(max)}: is not on an IPv6SubnetLen boundary (/${subnetLen})`)
  // flannel does not check this; it then fails at lease time with "out of subnets"
  if (min > max) fail(`IPv6SubnetMin ${ip6ToString(min)} is above IPv6SubnetMax ${ip6ToString(max)}: no subnet could ever be leased`)
  return { ipv6Network: network, ipv6SubnetLen: subnetLen, ipv6SubnetMin: min, ipv6SubnetMax: max }
}

// flannel's ip.IP6Net decoding: net.ParseCIDR, host bits dropped. Go would
// take an IPv4 CIDR here too (as ::ffff:a.b.c.d/len); weft refuses it.
function parseNetwork6 (v: unknown): Ip6Net {
  if (typeof v !== 'string') fail(`IPv6Network ${show(v)}: must be a string such as "fc00::/48"`)
  const slash = v.indexOf('/')
  const len = v.slice(slash + 1)
  if (slash < 0 || !/^[0-9]+$/.test(len) || Number(len) > 128) fail(`IPv6Network ${show(v)}: invalid CIDR (want an IPv6 address/len with len 0..128, e.g. "fc00::/48")`)
  if (!v.includes(':')) fail(`IPv6Network ${show(v)}: not an IPv6 CIDR (the IPv4 network goes in Network)`)
  let ip: bigint
  try {
    ip = parseIp6(v.slice(0, slash))
  } catch {
    fail(`IPv6Network ${show(v)}: invalid CIDR (${show(v.slice(0, slash))} is not an IPv6 address)`)
  }
  return networkOf6({ ip, prefixLen: Number(len) })
}

// flannel's *ip.IP6: null leaves the pointer nil (unset), "::" is empty too;
// anything else goes through net.ParseIP. 0n means unset.
function addr6Field (obj: Obj, name: string): bigint {
  const v = field(obj, name)
  if (v === undefined || v === null) return 0n
  if (typeof v !== 'string') fail(`${name} ${show(v)}: must be a string such as "fc00:0:0:1::"`)
  if (!v.includes(':')) fail(`${name} ${show(v)}: not an IPv6 address`)
  try {
    return parseIp6(v)
  } catch {
    return fail(`${name} ${show(v)}: invalid IPv6 address`)
  }
}

// weft's own limit (MAX_TABLE_SUBNETS), checked here so that `weft config
// set` and a starting node refuse what the dataplane would.
function checkTable (backend: BackendConfig, cidr: string, prefixLen: number, subnetLen: number, bits: number, lenName: string): void {
  if (backend.type === 'host-gw') return
  const subnets = 2 ** (subnetLen - prefixLen)
  if (subnets <= MAX_TABLE_SUBNETS) return
  const netName = bits === 32 ? 'Network' : 'IPv6Network'
  fail(`${netName} "${cidr}" with ${lenName} ${subnetLen} has ${subnets} subnets; the ${backend.type} backend's peer table holds at most ${MAX_TABLE_SUBNETS} ` +
    `(use ${lenName} ${prefixLen + Math.log2(MAX_TABLE_SUBNETS)} or less, or a smaller ${netName})`)
}

// ip.IP4 has its own UnmarshalJSON, which Go calls even for null, so null is
// an error there (unlike the plain bool/int fields).
function addrField (obj: Obj, name: string): number {
  const v = field(obj, name)
  return v === undefined ? 0 : parseAddr(v, name)
}

function parseBackend (v: unknown): { backend: BackendConfig, backendDefaulted: boolean } {
  if (v === undefined) return { backend: backendOptions(DEFAULT_BACKEND_TYPE, {}), backendDefaulted: true }
  // Go keeps Backend as json.RawMessage and decodes {Type string} from it: so
  // null gives Type "" and any non-object is a decode error.
  if (!isObj(v)) fail(`Backend ${show(v)}: must be an object such as {"Type": "vxlan"}`)
  const t = field(v, 'Type')
  if (t === undefined || t === null) {
    fail(`Backend.Type is missing: unknown backend type "" (name one of ${BACKEND_TYPES.join(', ')})`)
  }
  if (typeof t !== 'string') fail(`Backend.Type ${show(t)}: must be a string such as "vxlan"`)
  // flanneld looks backends up by the lowercased name.
  const type = t.toLowerCase()
  if (!(BACKEND_TYPES as readonly string[]).includes(type)) {
    if (FLANNEL_ONLY_TYPES.includes(type)) fail(`Backend.Type ${show(t)}: backend not supported by weft (weft has ${BACKEND_TYPES.join(', ')})`)
    fail(`Backend.Type ${show(t)}: unknown backend type (weft has ${BACKEND_TYPES.join(', ')})`)
  }
  return { backend: backendOptions(type as BackendType, v), backendDefaulted: false }
}

// Each backend decodes only its own option struct from the Backend object,
// so a stray option of another backend is ignored, as in flannel.
function backendOptions (type: BackendType, o: Obj): BackendConfig {
  switch (type) {
    case 'vxlan': {
      // weft range-checks what flannel leaves to the kernel, to fail at config time.
      const vni = inRange(intField(o, 'VNI', 'Backend.VNI', VXLAN_DEFAULT_VNI), 1, VXLAN_MAX_VNI, 'Backend.VNI', `must be from 1 to ${VXLAN_MAX_VNI}`)
      const port = intField(o, 'Port', 'Backend.Port', 0)
      if (port !== 0) inRange(port, 1, 65535, 'Backend.Port', `must be from 1 to 65535 (or 0 for ${VXLAN_DEFAULT_PORT})`)
      const mtu = intField(o, 'MTU', 'Backend.MTU', 0)
      // The device gets MTU - 50, and an IPv4 link needs at least 68.
      if (mtu !== 0) inRange(mtu, 68 + VXLAN_MTU_OVERHEAD, 65535, 'Backend.MTU', `must be 0 (use the external interface's) or from ${68 + VXLAN_MTU_OVERHEAD} to 65535`)
      return {
        type,
        vni,
        port: port === 0 ? VXLAN_DEFAULT_PORT : port,
        mtu,
        gbp: boolField(o, 'GBP', 'Backend.GBP', false),
        learning: boolField(o, 'Learning', 'Backend.Learning', false),
        directRouting: boolField(o, 'DirectRouting', 'Backend.DirectRouting', false),
        remCsum: boolField(o, 'RemCsum', 'Backend.RemCsum', true)
      }
    }
    case 'udp':
      // flannel would bind port 0 (a random port no peer knows): weft refuses it.
      return { type, port: inRange(intField(o, 'Port', 'Backend.Port', UDP_DEFAULT_PORT), 1, 65535, 'Backend.Port', 'must be from 1 to 65535') }
    case 'ipip':
      return { type, directRouting: boolField(o, 'DirectRouting', 'Backend.DirectRouting', false) }
    case 'host-gw':
      return { type }
    case 'wireguard': {
      const port = (name: string, dflt: number): number => inRange(intField(o, name, `Backend.${name}`, dflt), 1, 65535, `Backend.${name}`, 'must be from 1 to 65535')
      const mtu = intField(o, 'MTU', 'Backend.MTU', 0)
      // the device gets MTU - 80, and an IPv4 link needs at least 68
      if (mtu !== 0) inRange(mtu, 68 + WIREGUARD_MTU_OVERHEAD, 65535, 'Backend.MTU', `must be 0 (use the external interface's) or from ${68 + WIREGUARD_MTU_OVERHEAD} to 65535`)
      const psk = field(o, 'PSK') ?? ''
      if (typeof psk !== 'string') fail(`Backend.PSK ${show(psk)}: must be a string (a base64 key, as wg genpsk prints)`)
      if (psk !== '' && !isWireguardKey(psk)) fail('Backend.PSK: must be a base64 key of 32 bytes, as wg genpsk prints (the value is not shown)')
      // a Go time.Duration that flannel multiplies by time.Second: a count of seconds
      const keepalive = inRange(intField(o, 'PersistentKeepaliveInterval', 'Backend.PersistentKeepaliveInterval', 0), 0, 65535, 'Backend.PersistentKeepaliveInterval', 'must be seconds from 0 (off) to 65535')
      const mode = field(o, 'Mode') ?? 'separate'
      if (typeof mode !== 'string' || !(WIREGUARD_MODES as readonly string[]).includes(mode)) fail(`Backend.Mode ${show(mode)}: no valid Mode configured (one of ${WIREGUARD_MODES.join(', ')})`)
      return { type, listenPort: port('ListenPort', WIREGUARD_DEFAULT_PORT), listenPortV6: port('ListenPortV6', WIREGUARD_DEFAULT_PORT_V6), mtu, psk, persistentKeepalive: keepalive, mode: mode as WireguardMode }
    }
  }
}

/** The MTU a wireguard device is given less than its base (flannel's overhead: IPv6 and padding to spare). */
export const WIREGUARD_MTU_OVERHEAD = 80

/** A WireGuard key as wg prints it: base64 of 32 bytes. */
export function isWireguardKey (s: string): boolean {
  return /^[A-Za-z0-9+/]{43}=$/.test(s) && Buffer.from(s, 'base64').length === 32
}

/** How many subnets lie from SubnetMin to SubnetMax, both included. */
export function subnetCount (cfg: Pick<NetworkConfig, 'subnetLen' | 'subnetMin' | 'subnetMax'>): number {
  if (cfg.subnetMax < cfg.subnetMin) return 0
  return Math.floor((cfg.subnetMax - cfg.subnetMin) / size(cfg.subnetLen)) + 1
}

/** Every leasable subnet, SubnetMin first, SubnetMax last. Lazy: a /8 of /30s is 4 million. */
export function * candidateSubnets (cfg: Pick<NetworkConfig, 'subnetLen' | 'subnetMin' | 'subnetMax'>): Generator<Ip4Net> {
  const step = size(cfg.subnetLen)
  for (let ip = cfg.subnetMin; ip <= cfg.subnetMax; ip += step) yield { ip, prefixLen: cfg.subnetLen }
}

/** How many IPv6 subnets lie from IPv6SubnetMin to IPv6SubnetMax, both included (0n without IPv6). */
export function ipv6SubnetCount (cfg: Pick<NetworkConfig, 'ipv6SubnetLen' | 'ipv6SubnetMin' | 'ipv6SubnetMax'>): bigint {
  const { ipv6SubnetMin: min, ipv6SubnetMax: max } = cfg
  if (min === undefined || max === undefined || max < min) return 0n
  return ((max - min) >> BigInt(128 - cfg.ipv6SubnetLen)) + 1n
}

// Canonical option names per backend, as flannel's docs spell them.
const OPTION_NAMES: Record<BackendType, readonly string[]> = {
  vxlan: ['VNI', 'Port', 'MTU', 'GBP', 'Learning', 'DirectRouting', 'RemCsum'],
  udp: ['Port'],
  ipip: ['DirectRouting'],
  'host-gw': [],
  wireguard: ['ListenPort', 'ListenPortV6', 'MTU', 'PSK', 'PersistentKeepaliveInterval', 'Mode']
}

/**
 * Compact canonical JSON for `weft config set`: validates `obj` (a parsed
 * config document, keys in any case) and writes back only what it set, under
 * flannel's field names, with values normalised (host bits dropped from
 * Network) and unknown keys dropped. Backend.Type is always written, so a
 * flannel node reading the same store runs the backend weft runs instead of
 * falling back to udp. Throws ECONFIG like parseNetworkConfig.
 */
export function formatNetworkConfig (obj: unknown): string {
  const cfg = networkConfigFromJson(obj)
  const src: Obj = isObj(obj) ? obj : {}
  const out: Obj = {}
  if (cfg.enableIPv4) {
    out.Network = formatCidr(cfg.network)
    const len = field(src, 'SubnetLen')
    if (typeof len === 'number' && len !== 0) out.SubnetLen = cfg.subnetLen
    for (const name of ['SubnetMin', 'SubnetMax'] as const) {
      const v = field(src, name)
      if (v !== undefined && parseAddr(v, name) !== 0) out[name] = ip4ToString(name === 'SubnetMin' ? cfg.subnetMin : cfg.subnetMax)
    }
  }
  if (cfg.ipv6Network !== undefined) {
    out.IPv6Network = formatCidr6(cfg.ipv6Network)
    const len = field(src, 'IPv6SubnetLen')
    if (typeof len === 'number' && len !== 0) out.IPv6SubnetLen = cfg.ipv6SubnetLen
    for (const name of ['IPv6SubnetMin', 'IPv6SubnetMax'] as const) {
      const v = field(src, name)
      const given = name === 'IPv6SubnetMin' ? cfg.ipv6SubnetMin : cfg.ipv6SubnetMax
      if (typeof v === 'string' && given !== undefined && addr6Field(src, name) !== 0n) out[name] = ip6ToString(given)
    }
  }
  for (const name of ['EnableIPv4', 'EnableIPv6', 'EnableNFTables']) {
    const v = field(src, name)
    if (typeof v === 'boolean') out[name] = v
  }
  const backend: Obj = { Type: cfg.backend.type }
  const given = field(src, 'Backend')
  for (const name of OPTION_NAMES[cfg.backend.type]) {
    const v = isObj(given) ? field(given, name) : undefined
    if (v !== undefined && v !== null) backend[name] = v
  }
  out.Backend = backend
  return JSON.stringify(out)
}
