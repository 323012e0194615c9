// Decode one captured frame into a plain summary object for `weft capture`:
// the link header, the (outer) IPv4 or IPv6 packet, the flannel encapsulation it
// uses (VXLAN, IP-in-IP, the UDP backend, WireGuard) and the packet it
// carries (WireGuard's is ciphertext: only its message header is read). Pure:
// bytes and a link type in, an object out, no I/O. It never throws: a
// malformed packet yields a summary saying at which layer decoding stopped
// and why, in the validate* reason names of src/packet/reason.ts (and the
// bad_wireguard_* names below), because a capture tool is most needed
// exactly when packets are wrong.
import {
  ARPOP_REQUEST, ETH_HLEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN,
  ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_HLEN, ICMP_TIME_EXCEEDED,
  IPPROTO_ICMP, IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP, IPV4_FLAG_MF, IPV4_MIN_HLEN,
  REASON_NAMES, Reason, UDP_HLEN, VXLAN_HLEN, VXLAN_PORT_FLANNEL,
  ip4ToString, isIpv4Fragment, macToString, readArpOp, readArpSpa, readArpTpa, readEthType,
  hasRco, readIcmpCode, readIcmpEchoId, readIcmpEchoSeq, readIcmpType, readIpv4Dst, readIpv4FragField,
  readIpv4FragmentOffset, readIpv4HeaderLength, readIpv4Id, readIpv4Protocol, readIpv4Src,
  readIpv4TotalLength, readIpv4Ttl, readTcpAck, readTcpDstPort, readTcpFlags, readTcpHeaderLength,
  readTcpSeq, readTcpSrcPort, readTcpWindow, readUdpDstPort, readUdpLength, readUdpSrcPort,
  readVni, readVxlanFlags, validateArp, validateIcmp, validateIpv4, validateTcp4, validateUdp4,
  validateVxlan, validateIpv6, walkIpv6, walkOffset, walkProtocol, ip6FromBytes, ip6ToString, readIpv6FlowLabel,
  readIpv6HopLimit, readIpv6PayloadLength, NEXTHDR_FRAGMENT, NEXTHDR_ICMPV6, validateIcmp6, IPV6_HLEN
} from '../packet'
import { extensionNames, fragmentHeader, icmp6Fields } from './decode6'

// Link types as pcap files number them (LINKTYPE_*, tcpdump.org/linktypes):
// they also go into the header of a `--write` file.
export const LINKTYPE_ETHERNET = 1
export const LINKTYPE_RAW = 101
export const LINKTYPE_LINUX_SLL = 113
export const LINKTYPE_IPV4 = 228
export const LINKTYPE_IPV6 = 229

/** Link types decodePacket understands, by the names tcpdump prints. */
export const LINKTYPE_NAMES: Readonly<Record<number, string>> = {
  [LINKTYPE_ETHERNET]: 'EN10MB',
  [LINKTYPE_RAW]: 'RAW',
  [LINKTYPE_LINUX_SLL]: 'LINUX_SLL',
  [LINKTYPE_IPV4]: 'IPV4',
  [LINKTYPE_IPV6]: 'IPV6'
}

/** flannel's UDP backend port (the payload is a bare IP packet). */
export const FLANNEL_UDP_PORT = 8285

/** flannel's wireguard backend port (ListenPort; 51821 is its IPv6 one, not decoded here). */
export const WIREGUARD_PORT = 51820

const LINUX_SLL_HLEN = 16

/** Which UDP ports and IP protocols count as encapsulation. */
export interface DecodeOptions {
  /** UDP ports carrying VXLAN (flannel's default is 8472). */
  readonly vxlanPorts: readonly number[]
  /** UDP ports carrying flannel's UDP backend (8285). */
  readonly udpPorts: readonly number[]
  /** UDP ports carrying WireGuard (flannel's default is 51820). */
  readonly wireguardPorts: readonly number[]
  /** Decode IPv4 protocol 4 as IP-in-IP. */
  readonly ipip: boolean
}

export const DEFAULT_DECODE: DecodeOptions = { vxlanPorts: [VXLAN_PORT_FLANNEL], udpPorts: [FLANNEL_UDP_PORT], wireguardPorts: [WIREGUARD_PORT], ipip: true }

/** Look for no encapsulation: what a VTEP (weft.1, flannel.1) carries is the inner traffic itself. */
export const PLAIN_DECODE: DecodeOptions = { vxlanPorts: [], udpPorts: [], wireguardPorts: [], ipip: false }

export interface EthInfo {
  src: string
  dst: string
  type: number
}

export interface ArpInfo {
  op: 'request' | 'reply'
  senderMac: string
  senderIp: string
  targetMac: string
  targetIp: string
}

export interface TcpInfo {
  type: 'tcp'
  srcPort: number
  dstPort: number
  /** tcpdump's notation: S, F, R, P, '.' for ACK, U, E, W; 'none' for no flags. */
  flags: string
  seq: number
  ack: number
  win: number
  /** payload bytes after the TCP header */
  len: number
}

export interface UdpInfo {
  type: 'udp'
  srcPort: number
  dstPort: number
  /** payload bytes after the UDP header */
  len: number
}

export interface IcmpInfo {
  type: 'icmp'
  /** ICMPv6 (types and names per RFC 4443 / 4861) */
  v6?: true
  icmpType: number
  code: number
  /** ICMPv6 neighbour solicitation/advertisement, redirect: the address it is about */
  target?: string
  /** echo id and sequence number */
  id?: number
  seq?: number
  /** next-hop MTU of a "fragmentation needed" */
  mtu?: number
  /** what an ICMP error quotes of the datagram it is about */
  quoted?: { src: string, dst: string, proto: number, dstPort?: number }
}

export type L4Info = TcpInfo | UdpInfo | IcmpInfo

/** A WireGuard message's kind; a keepalive is a transport message with no payload. */
export type WireguardMessage = 'initiation' | 'response' | 'cookie' | 'transport' | 'keepalive'

/**
 * The header of a WireGuard message (all there is to read: the rest is
 * encrypted). Indices are unsigned 32-bit numbers. The counter is a number
 * when it is at most 2^53 - 1 (Number.MAX_SAFE_INTEGER), which every real
 * one is (sessions are rekeyed within minutes), else its exact decimal string,
 * so --json never rounds it.
 */
export interface WireguardInfo {
  type: 'wireguard'
  srcPort: number
  dstPort: number
  /** missing when the type is not one of WireGuard's (see the malformed reason) */
  message?: WireguardMessage
  /** initiation, response: the sender's index for this handshake */
  senderIndex?: number
  /** response, cookie, transport, keepalive: the index the receiver picked */
  receiverIndex?: number
  /** transport, keepalive: the 64-bit nonce counter */
  counter?: number | string
  /** the whole WireGuard message (the UDP payload), bytes */
  length: number
}

export type EncapInfo =
  /** flags and vni are missing when the VXLAN header is cut short */
  | { type: 'vxlan', srcPort: number, dstPort: number, flags?: number, vni?: number, rco?: true }
  | { type: 'ipip' }
  | { type: 'udp', srcPort: number, dstPort: number }
  | WireguardInfo

export interface IpInfo {
  /** 6 for IPv6 (absent: IPv4) */
  version?: 6
  src: string
  dst: string
  /** IPv4 protocol; IPv6: the upper layer's next header (a fragment's: the fragmented one) */
  proto: number
  /** TTL, or IPv6's hop limit */
  ttl: number
  /** IPv4 identification; IPv6: the fragment header's identification, else 0 */
  id: number
  /** total length (header + payload; IPv6: 40 + payload length) */
  len: number
  /** IPv6 flow label */
  flow?: number
  /** IPv6 extension headers, in order (hop-by-hop, routing, dstopts, fragment) */
  ext?: string[]
  /** set for any fragment: byte offset, and whether more follow (MF) */
  frag?: { offset: number, more: boolean }
  l4?: L4Info
  encap?: EncapInfo
  /** the packet the encapsulation carries */
  inner?: Layers
  /** checksum problems that did not stop decoding (reason names) */
  warnings?: string[]
}

export interface Problem {
  /** where decoding stopped: ethernet, sll, ip, ipv4, ipv6, udp, tcp, icmp, vxlan, wireguard, arp */
  layer: string
  /** a REASON_NAMES entry, e.g. 'truncated', or a WG_REASONS one */
  reason: string
  /** bytes there were from this layer on */
  bytes: number
}

/** One level of a packet: at most one of arp / ip / other, and where it went wrong. */
export interface Layers {
  eth?: EthInfo
  arp?: ArpInfo
  ip?: IpInfo
  /** a protocol named but not decoded, e.g. 'IPv6' */
  other?: string
  malformed?: Problem
}

export interface Decoded extends Layers {
  linkType: number
  /** bytes captured */
  caplen: number
  /** Linux cooked capture: which way the packet went */
  direction?: string
}

function problem (layer: string, reason: number, bytes: number): Problem {
  return { layer, reason: REASON_NAMES[reason] ?? String(reason), bytes: Math.max(0, bytes) }
}

/**
 * Decode the frame `buf` (exactly the captured bytes) of link type
 * `linkType` (a LINKTYPE_* number).
 */
export function decodePacket (buf: Buffer, linkType: number, opts: DecodeOptions = DEFAULT_DECODE): Decoded {
  const d: Decoded = { linkType, caplen: buf.length }
  try {
    switch (linkType) {
      case LINKTYPE_ETHERNET:
        decodeEthernet(buf, 0, buf.length, d, opts, 0)
        break
      case LINKTYPE_LINUX_SLL:
        decodeSll(buf, d, opts)
        break
      case LINKTYPE_RAW:
        decodeRawIp(buf, 0, buf.length, d, opts, 0)
        break
      case LINKTYPE_IPV4:
        decodeIpv4(buf, 0, buf.length, d, opts, 0)
        break
      case LINKTYPE_IPV6:
        decodeIpv6(buf, 0, buf.length, d, opts, 0)
        break
      default:
        d.other = `link type ${linkType}`
    }
  } catch (err) {
    // Unreachable by design (every read is bounds-checked first); kept so one
    // bad packet can never end a capture. The fuzz test asserts it never shows.
    d.malformed = { layer: 'decoder', reason: `decoder_error: ${(err as Error).message}`, bytes: buf.length }
  }
  return d
}

function decodeEthernet (buf: Buffer, off: number, end: number, out: Layers, opts: DecodeOptions, depth: number): void {
  if (end - off < ETH_HLEN) { out.malformed = problem('ethernet', Reason.TRUNCATED, end - off); return }
  const type = readEthType(buf, off)
  out.eth = { src: macToString(buf, off + 6), dst: macToString(buf, off), type }
  decodeEthertype(buf, type, off + ETH_HLEN, end, out, opts, depth)
}

// Linux cooked capture (the 'any' device): packet type, ARPHRD type, address
// length, 8 address bytes, then the EtherType of the payload.
const SLL_DIRECTIONS = ['to us', 'broadcast', 'multicast', 'to another host', 'outgoing']

function decodeSll (buf: Buffer, d: Decoded, opts: DecodeOptions): void {
  if (buf.length < LINUX_SLL_HLEN) { d.malformed = problem('sll', Reason.TRUNCATED, buf.length); return }
  const pkttype = (buf[0] << 8) | buf[1]
  d.direction = SLL_DIRECTIONS[pkttype] ?? `type ${pkttype}`
  decodeEthertype(buf, (buf[14] << 8) | buf[15], LINUX_SLL_HLEN, buf.length, d, opts, 0)
}

function decodeEthertype (buf: Buffer, type: number, off: number, end: number, out: Layers, opts: DecodeOptions, depth: number): void {
  if (type === ETHERTYPE_IPV4) decodeIpv4(buf, off, end, out, opts, depth)
  else if (type === ETHERTYPE_ARP) decodeArp(buf, off, end, out)
  else if (type === ETHERTYPE_IPV6) decodeIpv6(buf, off, end, out, opts, depth)
  else if (type === ETHERTYPE_VLAN) out.other = `802.1Q VLAN, not decoded (${end - off} bytes)`
  else out.other = `ethertype 0x${type.toString(16).padStart(4, '0')}, not decoded (${end - off} bytes)`
}

/** A bare IP packet (RAW link type, the UDP backend's payload): the version nibble says which IP. */
function decodeRawIp (buf: Buffer, off: number, end: number, out: Layers, opts: DecodeOptions, depth: number): void {
  if (end - off < 1) { out.malformed = problem('ip', Reason.TRUNCATED, end - off); return }
  const version = buf[off] >>> 4
  if (version === 4) decodeIpv4(buf, off, end, out, opts, depth)
  else if (version === 6) decodeIpv6(buf, off, end, out, opts, depth)
  else out.malformed = problem('ip', Reason.BAD_VERSION, end - off)
}

function decodeArp (buf: Buffer, off: number, end: number, out: Layers): void {
  const r = validateArp(buf, off, end - off)
  if (r !== Reason.OK) { out.malformed = problem('arp', r, end - off); return }
  out.arp = {
    op: readArpOp(buf, off) === ARPOP_REQUEST ? 'request' : 'reply',
    senderMac: macToString(buf, off + 8),
    senderIp: ip4ToString(readArpSpa(buf, off)),
    targetMac: macToString(buf, off + 18),
    targetIp: ip4ToString(readArpTpa(buf, off))
  }
}

function ipHeader (buf: Buffer, off: number): IpInfo {
  const ip: IpInfo = {
    src: ip4ToString(readIpv4Src(buf, off)),
    dst: ip4ToString(readIpv4Dst(buf, off)),
    proto: readIpv4Protocol(buf, off),
    ttl: readIpv4Ttl(buf, off),
    id: readIpv4Id(buf, off),
    len: readIpv4TotalLength(buf, off)
  }
  if (isIpv4Fragment(buf, off)) {
    ip.frag = { offset: readIpv4FragmentOffset(buf, off), more: (readIpv4FragField(buf, off) & IPV4_FLAG_MF) !== 0 }
  }
  return ip
}

function warn (ip: IpInfo, reason: number): void {
  (ip.warnings ??= []).push(REASON_NAMES[reason] ?? String(reason))
}

/**
 * The IPv4 packet at buf[off, end) and what it carries. depth 0 is the
 * outermost packet; encapsulation is only looked for there, which bounds the
 * work per packet (a tunnel in a tunnel is shown as its outer layer).
 */
function decodeIpv4 (buf: Buffer, off: number, end: number, out: Layers, opts: DecodeOptions, depth: number): void {
  const avail = end - off
  const r = validateIpv4(buf, off, avail)
  if (r !== Reason.OK && r !== Reason.BAD_IPV4_CHECKSUM) {
    // Show the addresses when there is a whole IPv4 header to read them from.
    if (avail >= IPV4_MIN_HLEN && buf[off] >>> 4 === 4) out.ip = ipHeader(buf, off)
    out.malformed = problem('ipv4', r, avail)
    return
  }
  const ip = ipHeader(buf, off)
  out.ip = ip
  // The IPv4 header checksum is always computed in software, so a bad one is
  // real; still decode on, since what the packet says helps find who sent it.
  if (r === Reason.BAD_IPV4_CHECKSUM) warn(ip, r)
  const hlen = readIpv4HeaderLength(buf, off)
  const l4 = off + hlen
  const l4Len = ip.len - hlen
  if (ip.frag !== undefined) {
    // No L4 header past the first fragment; in the first, only the header
    // fields: lengths and checksums cover the whole datagram.
    if (ip.frag.offset === 0) decodeFirstFragment(buf, l4, l4Len, ip)
    return
  }
  switch (ip.proto) {
    case IPPROTO_UDP: decodeUdp(buf, l4, l4Len, validateUdp4(buf, l4, l4Len, off), ip, out, opts, depth); break
    case IPPROTO_TCP: decodeTcp(buf, l4, l4Len, validateTcp4(buf, l4, l4Len, off), ip, out); break
    case IPPROTO_ICMP: decodeIcmp(buf, l4, l4Len, ip, out); break
    case IPPROTO_IPIP:
      if (depth === 0 && opts.ipip) {
        ip.encap = { type: 'ipip' }
        ip.inner = {}
        decodeIpv4(buf, l4, l4 + l4Len, ip.inner, opts, depth + 1)
      }
      break
  }
}

/**
 * The IPv6 packet at buf[off, end) and what it carries (as decodeIpv4: the
 * encapsulation only at depth 0, VXLAN and the UDP backend's port over an
 * IPv6 underlay too). Extension headers are walked (ipv6.ts) and named.
 */
function decodeIpv6 (buf: Buffer, off: number, end: number, out: Layers, opts: DecodeOptions, depth: number): void {
  const avail = end - off
  const r = validateIpv6(buf, off, avail)
  const whole = avail >= IPV6_HLEN && buf[off] >>> 4 === 6
  const ip: IpInfo | undefined = whole
    ? { version: 6, src: ip6ToString(ip6FromBytes(buf, off + 8)), dst: ip6ToString(ip6FromBytes(buf, off + 24)), proto: buf[off + 6], ttl: readIpv6HopLimit(buf, off), id: 0, len: IPV6_HLEN + readIpv6PayloadLength(buf, off) }
    : undefined
  if (ip !== undefined) {
    const flow = readIpv6FlowLabel(buf, off)
    if (flow !== 0) ip.flow = flow
    out.ip = ip
  }
  if (r !== Reason.OK || ip === undefined) {
    out.malformed = problem(avail >= 1 && buf[off] >>> 4 !== 6 ? 'ip' : 'ipv6', r === Reason.OK ? Reason.TRUNCATED : r, avail)
    return
  }
  const w = walkIpv6(buf, off, ip.len)
  let at = off + walkOffset(w)
  let proto = walkProtocol(w)
  if (at > off + IPV6_HLEN || proto === NEXTHDR_FRAGMENT) ip.ext = extensionNames(buf, off, at - off + (proto === NEXTHDR_FRAGMENT ? 8 : 0))
  const pktEnd = off + ip.len
  if (proto === NEXTHDR_FRAGMENT) {
    const f = fragmentHeader(buf, at)
    ip.proto = f.proto
    ip.id = f.id
    ip.frag = { offset: f.offset, more: f.more }
    if (f.offset !== 0) return
    at += 8
    proto = f.proto
    if (f.more) {
      // the first fragment: header fields only, as decodeFirstFragment does for IPv4
      if (proto === NEXTHDR_ICMPV6 && pktEnd - at >= 4) ip.l4 = { type: 'icmp', v6: true, ...icmp6Fields(buf, at, pktEnd - at) }
      else decodeFirstFragment(buf, at, pktEnd - at, ip)
      return
    }
  }
  ip.proto = proto
  const l4Len = pktEnd - at
  switch (proto) {
    case IPPROTO_UDP: decodeUdp(buf, at, l4Len, udp6Length(buf, at, l4Len), ip, out, opts, depth); break
    case IPPROTO_TCP: decodeTcp(buf, at, l4Len, tcp6Offset(buf, at, l4Len), ip, out); break
    case NEXTHDR_ICMPV6: {
      const v = validateIcmp6(buf, at, l4Len, off)
      if (v === Reason.TRUNCATED) { out.malformed = problem('icmp6', v, l4Len); return }
      if (v === Reason.BAD_ICMP_CHECKSUM && at === off + IPV6_HLEN) warn(ip, v)
      ip.l4 = { type: 'icmp', v6: true, ...icmp6Fields(buf, at, l4Len) }
      break
    }
  }
}

/** validateUdp4's length checks, for a datagram over IPv6 (its checksum is not judged, as decodeUdp would not report it). */
function udp6Length (buf: Buffer, l4: number, len: number): number {
  if (len < UDP_HLEN) return Reason.TRUNCATED
  const length = readUdpLength(buf, l4)
  return length < UDP_HLEN || length > len ? Reason.BAD_UDP_LENGTH : Reason.OK
}

/** validateTcp4's header checks, for a segment over IPv6. */
function tcp6Offset (buf: Buffer, l4: number, len: number): number {
  if (len < 20) return Reason.TRUNCATED
  const hlen = readTcpHeaderLength(buf, l4)
  return hlen < 20 || hlen > len ? Reason.BAD_TCP_DATA_OFFSET : Reason.OK
}

/** `r`: the datagram's validation (validateUdp4, or udp6Length over IPv6). */
function decodeUdp (buf: Buffer, l4: number, l4Len: number, r: number, ip: IpInfo, out: Layers, opts: DecodeOptions, depth: number): void {
  // A bad UDP checksum is not reported: at a tap on the sending host, with
  // TX checksum offload, the field holds only the pseudo-header seed
  // (CHECKSUM_PARTIAL, see test/packet/kernel-vxlan.test.ts). validateUdp4
  // checks the length first, so the length is sound here.
  if (r !== Reason.OK && r !== Reason.BAD_UDP_CHECKSUM) { out.malformed = problem('udp', r, l4Len); return }
  const srcPort = readUdpSrcPort(buf, l4)
  const dstPort = readUdpDstPort(buf, l4)
  const udpLen = readUdpLength(buf, l4)
  const payload = l4 + UDP_HLEN
  const payloadEnd = l4 + udpLen
  if (depth === 0) {
    // The tunnel port is the destination; the source is a flow hash (VXLAN)
    // or the same port (UDP backend), so either one names the tunnel.
    if (isPort(opts.vxlanPorts, srcPort, dstPort)) {
      // remote checksum offload is what weft nodes speak to each other: not malformed
      const vxr = validateVxlan(buf, payload, payloadEnd - payload, -1, true)
      if (vxr === Reason.TRUNCATED) {
        ip.encap = { type: 'vxlan', srcPort, dstPort }
        out.malformed = problem('vxlan', vxr, payloadEnd - payload)
        return
      }
      ip.encap = { type: 'vxlan', srcPort, dstPort, flags: readVxlanFlags(buf, payload), vni: readVni(buf, payload), ...(vxr === Reason.OK && hasRco(buf, payload) ? { rco: true as const } : {}) }
      // Linux drops VXLAN with bad flags or reserved bits; so does weft (RCO
      // aside, which a node with RemCsum false drops too): say so, decode no further.
      if (vxr !== Reason.OK) { out.malformed = problem('vxlan', vxr, payloadEnd - payload); return }
      ip.inner = {}
      decodeEthernet(buf, payload + VXLAN_HLEN, payloadEnd, ip.inner, opts, depth + 1)
      return
    }
    if (isPort(opts.udpPorts, srcPort, dstPort)) {
      ip.encap = { type: 'udp', srcPort, dstPort }
      ip.inner = {}
      decodeRawIp(buf, payload, payloadEnd, ip.inner, opts, depth + 1)
      return
    }
    if (isPort(opts.wireguardPorts, srcPort, dstPort)) {
      const wg = decodeWireguard(buf, payload, payloadEnd, srcPort, dstPort)
      ip.encap = wg.info
      if (wg.reason !== undefined) out.malformed = { layer: 'wireguard', reason: wg.reason, bytes: payloadEnd - payload }
      return
    }
  }
  ip.l4 = { type: 'udp', srcPort, dstPort, len: udpLen - UDP_HLEN }
}

function isPort (ports: readonly number[], src: number, dst: number): boolean {
  return ports.includes(dst) || ports.includes(src)
}

// WireGuard messages (whitepaper section 5.4; wireguard-go device/noise-protocol.go):
// a type byte, three zero bytes, then little-endian fields.
const WG_MESSAGES: Readonly<Record<number, { message: WireguardMessage, size: number }>> = {
  1: { message: 'initiation', size: 148 },
  2: { message: 'response', size: 92 },
  3: { message: 'cookie', size: 64 }
}
const WG_TRANSPORT = 4
/** type, receiver index, counter (16) and the Poly1305 tag (16): a keepalive, no payload */
const WG_TRANSPORT_MIN = 32

/**
 * Why a datagram on a WireGuard port is not a WireGuard message (the
 * Problem reason; src/packet/reason.ts has no WireGuard codes yet):
 * - truncated: fewer than 4 bytes, no whole type field
 * - bad_wireguard_reserved: a known type byte followed by non-zero bytes
 *   (receivers read the type as a 32-bit word, so they drop it as unknown)
 * - bad_wireguard_type: a type other than 1 to 4
 * - bad_wireguard_length: a handshake message not of its fixed size, or a
 *   transport message shorter than 32 bytes
 * A transport message whose payload is not a multiple of 16 is not
 * malformed: senders pad to 16 but never past the device MTU, so a
 * full-size packet on a 1420-byte MTU travels unpadded.
 */
export const WG_REASONS = ['truncated', 'bad_wireguard_reserved', 'bad_wireguard_type', 'bad_wireguard_length'] as const

function decodeWireguard (buf: Buffer, off: number, end: number, srcPort: number, dstPort: number): { info: WireguardInfo, reason?: typeof WG_REASONS[number] } {
  const length = end - off
  const head = { type: 'wireguard' as const, srcPort, dstPort }
  if (length < 4) return { info: { ...head, length }, reason: 'truncated' }
  const type = buf[off] as number
  const known = type === WG_TRANSPORT ? { message: 'transport' as const, size: WG_TRANSPORT_MIN } : WG_MESSAGES[type]
  if (known === undefined) return { info: { ...head, length }, reason: 'bad_wireguard_type' }
  const named = { ...head, message: known.message }
  if (buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0) return { info: { ...named, length }, reason: 'bad_wireguard_reserved' }
  if (type === WG_TRANSPORT ? length < WG_TRANSPORT_MIN : length !== known.size) return { info: { ...named, length }, reason: 'bad_wireguard_length' }
  switch (type) {
    case 1: return { info: { ...named, senderIndex: buf.readUInt32LE(off + 4), length } }
    case 2: return { info: { ...named, senderIndex: buf.readUInt32LE(off + 4), receiverIndex: buf.readUInt32LE(off + 8), length } }
    case 3: return { info: { ...named, receiverIndex: buf.readUInt32LE(off + 4), length } }
  }
  const counter = buf.readBigUInt64LE(off + 8)
  return {
    info: {
      ...head,
      message: length === WG_TRANSPORT_MIN ? 'keepalive' : 'transport',
      receiverIndex: buf.readUInt32LE(off + 4),
      counter: counter <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(counter) : counter.toString(),
      length
    }
  }
}

const TCP_FLAG_CHARS: ReadonlyArray<[number, string]> = [
  [0x01, 'F'], [0x02, 'S'], [0x04, 'R'], [0x08, 'P'], [0x10, '.'], [0x20, 'U'], [0x40, 'E'], [0x80, 'W']
]

/** tcpdump's flag notation: [S], [S.], [P.], [F.], [R]; 'none' when no flag is set. */
export function tcpFlagString (flags: number): string {
  let s = ''
  for (const [bit, c] of TCP_FLAG_CHARS) if ((flags & bit) !== 0) s += c
  return s === '' ? 'none' : s
}

function tcpInfo (buf: Buffer, l4: number, len: number): TcpInfo {
  return {
    type: 'tcp',
    srcPort: readTcpSrcPort(buf, l4),
    dstPort: readTcpDstPort(buf, l4),
    flags: tcpFlagString(readTcpFlags(buf, l4)),
    seq: readTcpSeq(buf, l4),
    ack: readTcpAck(buf, l4),
    win: readTcpWindow(buf, l4),
    len
  }
}

/** `r`: the segment's validation (validateTcp4, or tcp6Offset over IPv6). */
function decodeTcp (buf: Buffer, l4: number, l4Len: number, r: number, ip: IpInfo, out: Layers): void {
  // As for UDP, a TCP checksum seen at a tap may be a CHECKSUM_PARTIAL seed.
  if (r !== Reason.OK && r !== Reason.BAD_TCP_CHECKSUM) { out.malformed = problem('tcp', r, l4Len); return }
  ip.l4 = tcpInfo(buf, l4, l4Len - readTcpHeaderLength(buf, l4))
}

function icmpInfo (buf: Buffer, l4: number, l4Len: number): IcmpInfo {
  const icmpType = readIcmpType(buf, l4)
  const info: IcmpInfo = { type: 'icmp', icmpType, code: readIcmpCode(buf, l4) }
  if (icmpType === ICMP_ECHO_REQUEST || icmpType === ICMP_ECHO_REPLY) {
    info.id = readIcmpEchoId(buf, l4)
    info.seq = readIcmpEchoSeq(buf, l4)
  } else if (icmpType === ICMP_DEST_UNREACH || icmpType === ICMP_TIME_EXCEEDED) {
    if (icmpType === ICMP_DEST_UNREACH && info.code === 4) info.mtu = (buf[l4 + 6] << 8) | buf[l4 + 7]
    // The quoted datagram: its IPv4 header and at least 8 bytes after it.
    const q = l4 + ICMP_HLEN
    const qLen = l4Len - ICMP_HLEN
    if (qLen >= IPV4_MIN_HLEN && buf[q] >>> 4 === 4) {
      const qh = readIpv4HeaderLength(buf, q)
      const quoted: IcmpInfo['quoted'] = { src: ip4ToString(readIpv4Src(buf, q)), dst: ip4ToString(readIpv4Dst(buf, q)), proto: readIpv4Protocol(buf, q) }
      if (qh >= IPV4_MIN_HLEN && qLen >= qh + 4 && (quoted.proto === IPPROTO_UDP || quoted.proto === IPPROTO_TCP)) {
        quoted.dstPort = (buf[q + qh + 2] << 8) | buf[q + qh + 3]
      }
      info.quoted = quoted
    }
  }
  return info
}

function decodeIcmp (buf: Buffer, l4: number, l4Len: number, ip: IpInfo, out: Layers): void {
  const r = validateIcmp(buf, l4, l4Len)
  if (r === Reason.TRUNCATED) { out.malformed = problem('icmp', r, l4Len); return }
  // ICMP checksums are computed in software even with offloads: a bad one is real.
  if (r === Reason.BAD_ICMP_CHECKSUM) warn(ip, r)
  ip.l4 = icmpInfo(buf, l4, l4Len)
}

function decodeFirstFragment (buf: Buffer, l4: number, l4Len: number, ip: IpInfo): void {
  if (ip.proto === IPPROTO_ICMP && l4Len >= ICMP_HLEN) ip.l4 = icmpInfo(buf, l4, l4Len)
  else if (ip.proto === IPPROTO_UDP && l4Len >= UDP_HLEN) {
    ip.l4 = { type: 'udp', srcPort: readUdpSrcPort(buf, l4), dstPort: readUdpDstPort(buf, l4), len: readUdpLength(buf, l4) - UDP_HLEN }
  } else if (ip.proto === IPPROTO_TCP && l4Len >= 20) {
    ip.l4 = tcpInfo(buf, l4, Math.max(0, l4Len - readTcpHeaderLength(buf, l4)))
  }
}

/**
 * The addresses of the packet a pod sent: the inner packet of an
 * encapsulated one, else the packet itself (as on a VTEP). None for a tunnel
 * packet whose inner packet is not there to read: encrypted (WireGuard) or
 * malformed (the outer addresses are nodes', not pods').
 */
export function podAddresses (d: Decoded): { src: string, dst: string } | undefined {
  if (d.ip?.encap !== undefined && d.ip.inner === undefined) return undefined
  const ip = d.ip?.inner?.ip ?? d.ip
  return ip === undefined ? undefined : { src: ip.src, dst: ip.dst }
}
