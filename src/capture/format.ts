// Turn a decoded packet (decode.ts) into the one line `weft capture` prints,
// tcpdump-like so it reads at a glance:
//   12:01:02.123456 198.18.0.1 > 198.18.0.2 VXLAN vni 1 | 10.244.1.2 > 10.244.2.3 ICMP echo request id 5 seq 1 len 84
//   12:01:02.123456 198.18.0.1:51820 > 198.18.0.2:51820 WireGuard transport receiver 0x1a2b3c4d counter 17 len 1452
// or into one JSON object for --json. Pure; no I/O.
import { IPPROTO_ICMP, IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP, ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_TIME_EXCEEDED } from '../packet'
import type { Decoded, IcmpInfo, IpInfo, Layers, WireguardInfo } from './decode'
import { describeIcmp6 } from './decode6'

const PROTO_NAMES: Readonly<Record<number, string>> = {
  [IPPROTO_ICMP]: 'ICMP', [IPPROTO_TCP]: 'TCP', [IPPROTO_UDP]: 'UDP', [IPPROTO_IPIP]: 'IPIP', 50: 'ESP', 51: 'AH', 58: 'ICMP6', 59: 'no-next-header'
}

/** address:port, an IPv6 address in brackets ([fc00::1]:5201) so that its colons stay readable */
function hp (addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`
}

function two (n: number): string {
  return String(n).padStart(2, '0')
}

/** Local wall-clock time of day with microseconds, as tcpdump prints it: 12:01:02.123456. */
export function formatTime (tsUs: number): string {
  const ms = Math.floor(tsUs / 1000)
  const d = new Date(ms)
  const us = String(Math.floor(tsUs) - Math.floor(tsUs / 1e6) * 1e6).padStart(6, '0')
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${us}`
}

/** UTC ISO 8601 with microseconds, for --json: 2026-11-23T12:01:02.123456Z. */
export function isoTime (tsUs: number): string {
  const iso = new Date(Math.floor(tsUs / 1000)).toISOString() // ...T12:01:02.123Z
  const us = String(Math.floor(tsUs) - Math.floor(tsUs / 1e6) * 1e6).padStart(6, '0')
  return `${iso.slice(0, 19)}.${us}Z`
}

const UNREACH_CODES: Readonly<Record<number, string>> = { 0: 'net', 1: 'host', 2: 'protocol', 3: 'port' }

function describeIcmp (ip: IpInfo, icmp: IcmpInfo): string {
  if (icmp.v6 === true) return describeIcmp6(icmp)
  const t = icmp.icmpType
  if (t === ICMP_ECHO_REQUEST || t === ICMP_ECHO_REPLY) {
    return `ICMP echo ${t === ICMP_ECHO_REQUEST ? 'request' : 'reply'} id ${icmp.id ?? 0} seq ${icmp.seq ?? 0}`
  }
  if (t === ICMP_DEST_UNREACH) {
    if (icmp.code === 4) return `ICMP ${icmp.quoted?.dst ?? ip.src} unreachable - need to frag (mtu ${icmp.mtu ?? 0})`
    const q = icmp.quoted
    if (icmp.code === 3 && q?.dstPort !== undefined) {
      return `ICMP ${q.dst} ${(PROTO_NAMES[q.proto] ?? `proto ${q.proto}`).toLowerCase()} port ${q.dstPort} unreachable`
    }
    const what = UNREACH_CODES[icmp.code]
    return `ICMP ${q?.dst ?? ''}${q !== undefined ? ' ' : ''}${what ?? `code ${icmp.code}`} unreachable`
  }
  if (t === ICMP_TIME_EXCEEDED) return `ICMP time exceeded ${icmp.code === 1 ? 'in fragment reassembly' : 'in-transit'}`
  return `ICMP type ${t} code ${icmp.code}`
}

/** A 32-bit WireGuard index (a random value, not a quantity) as 8 hex digits: 0x1a2b3c4d. */
function index (n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`
}

const WG_NAMES: Readonly<Record<string, string>> = { cookie: 'cookie reply' }

/** A WireGuard message: its kind and the header fields there are in the clear. */
function describeWireguard (ip: IpInfo, wg: WireguardInfo, malformed: boolean): string {
  let s = `${hp(ip.src, wg.srcPort)} > ${hp(ip.dst, wg.dstPort)} WireGuard`
  if (wg.message !== undefined) s += ` ${WG_NAMES[wg.message] ?? wg.message}`
  if (wg.senderIndex !== undefined) s += ` sender ${index(wg.senderIndex)}`
  if (wg.receiverIndex !== undefined) s += ` receiver ${index(wg.receiverIndex)}`
  if (wg.counter !== undefined) s += ` counter ${wg.counter}`
  // A malformed one's length is in the problem that follows.
  return malformed ? s : `${s} len ${wg.length}`
}

/** The IP part: addresses, encapsulation or transport header, fragment, warnings. */
function describeIp (ip: IpInfo, malformed: boolean): string {
  const l4 = ip.l4
  let s: string
  if (ip.encap?.type === 'wireguard') {
    s = describeWireguard(ip, ip.encap, malformed)
  } else if (ip.encap !== undefined) {
    const e = ip.encap
    const tag = e.type === 'vxlan' ? (e.vni !== undefined ? `VXLAN vni ${e.vni}${e.rco === true ? ' rco' : ''}` : 'VXLAN') : e.type === 'ipip' ? 'IPIP' : 'FLANNEL-UDP'
    s = `${ip.src} > ${ip.dst} ${tag}`
  } else if (l4?.type === 'tcp') {
    s = `${hp(ip.src, l4.srcPort)} > ${hp(ip.dst, l4.dstPort)} TCP [${l4.flags}] seq ${l4.seq}${l4.flags.includes('.') ? ` ack ${l4.ack}` : ''} len ${l4.len}`
  } else if (l4?.type === 'udp') {
    s = `${hp(ip.src, l4.srcPort)} > ${hp(ip.dst, l4.dstPort)} UDP len ${l4.len}`
  } else if (l4?.type === 'icmp') {
    // ICMP's len is the IP datagram's, as ping's "56(84) bytes".
    s = `${ip.src} > ${ip.dst} ${describeIcmp(ip, l4)} len ${ip.len}`
  } else if (malformed) {
    s = `${ip.src} > ${ip.dst}`
  } else {
    const name = PROTO_NAMES[ip.proto] ?? `proto ${ip.proto}`
    // A later fragment: no transport header to show, only where it fits.
    if (ip.frag !== undefined && ip.frag.offset > 0) {
      return `${ip.src} > ${ip.dst} ${name} frag id ${ip.id} off ${ip.frag.offset}${ip.frag.more ? '+' : ''} len ${ip.len}${warnings(ip)}`
    }
    s = `${ip.src} > ${ip.dst} ${name} len ${ip.len}`
  }
  if (ip.frag !== undefined) s += ` frag id ${ip.id} off ${ip.frag.offset}${ip.frag.more ? '+' : ''}`
  return s + warnings(ip)
}

function warnings (ip: IpInfo): string {
  const ext = ip.ext !== undefined && ip.ext.length > 0 ? ` ext ${ip.ext.join(',')}` : ''
  return ext + (ip.warnings !== undefined && ip.warnings.length > 0 ? ` [${ip.warnings.join(', ')}]` : '')
}

function describeLayers (l: Layers): string {
  const parts: string[] = []
  if (l.arp !== undefined) {
    const a = l.arp
    parts.push(a.op === 'request' ? `ARP request who-has ${a.targetIp} tell ${a.senderIp}` : `ARP reply ${a.senderIp} is-at ${a.senderMac}`)
  } else if (l.ip !== undefined) {
    let s = describeIp(l.ip, l.malformed !== undefined)
    if (l.ip.inner !== undefined) s += ` | ${describeLayers(l.ip.inner)}`
    parts.push(s)
  } else if (l.other !== undefined) {
    parts.push(l.other)
  }
  if (l.malformed !== undefined) {
    const m = l.malformed
    parts.push(`malformed ${m.layer}: ${m.reason} (${m.bytes} bytes)`)
  }
  return parts.join(' ')
}

/** The line for a packet, without the time stamp. */
export function describePacket (d: Decoded): string {
  const s = describeLayers(d)
  return s === '' ? `empty frame (${d.caplen} bytes)` : s
}

/** The line `weft capture` prints for a packet captured at `tsUs` (microseconds since the epoch). */
export function formatLine (d: Decoded, tsUs: number): string {
  return `${formatTime(tsUs)} ${describePacket(d)}`
}

/** One JSON object per packet for --json: the decoded fields, the time, and the line. */
export function formatJson (d: Decoded, tsUs: number): string {
  return JSON.stringify({ time: isoTime(tsUs), ...d, summary: describePacket(d) })
}
