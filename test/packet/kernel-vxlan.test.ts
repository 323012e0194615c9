// Decode frames captured from the Linux kernel's own vxlan driver (see
// vectors/kernel-vxlan.ts for how) with the codecs, then build the same frames
// from scratch with the codecs and require byte-identical output. This pins
// weft's encapsulation to what a flannel.1 peer really sends and accepts.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import {
  ETH_HLEN,
  ETHERTYPE_IPV4,
  ICMP_DEST_UNREACH,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_HLEN,
  ICMP_PORT_UNREACH,
  IPPROTO_ICMP,
  IPPROTO_UDP,
  IPV4_FLAG_DF,
  IPV4_FLAG_MF,
  IPV4_MIN_HLEN,
  Reason,
  REASON_NAMES,
  UDP_HLEN,
  VXLAN_ENCAP_HEADROOM,
  VXLAN_HLEN,
  VXLAN_MTU_OVERHEAD,
  VXLAN_PORT_FLANNEL,
  fold,
  isIpv4Fragment,
  parseIp4,
  parseMacNumber,
  pseudoHeaderSum4,
  readEthDst,
  readEthSrc,
  readEthType,
  readIcmpCode,
  readIcmpEchoId,
  readIcmpEchoSeq,
  readIcmpType,
  readIpv4FragField,
  readIpv4FragmentOffset,
  readIpv4HeaderLength,
  readIpv4Dst,
  readIpv4Id,
  readIpv4Protocol,
  readIpv4Src,
  readIpv4TotalLength,
  readIpv4Tos,
  readIpv4Ttl,
  readUdpChecksum,
  readUdpDstPort,
  readUdpLength,
  readUdpSrcPort,
  readVni,
  readVxlanFlags,
  setIcmpChecksum,
  setUdp4Checksum,
  validateIcmp,
  validateIpv4,
  validateIpv4Unfragmented,
  validateUdp4,
  validateVxlan,
  writeEthernet,
  writeIcmpChecksum,
  writeIcmpCode,
  writeIcmpEcho,
  writeIcmpType,
  writeIpv4Header,
  writeUdpChecksum,
  writeUdpHeader,
  writeVxlan,
} from '../../src/packet'
import {
  KERNEL_VXLAN_FRAMES,
  KERNEL_VXLAN_FRAMES_CSUM_PARTIAL,
  KERNEL_VXLAN_SETUP as SETUP,
  type KernelVxlanFrame,
} from './vectors/kernel-vxlan'

const A = {
  underlayMac: parseMacNumber(SETUP.underlayMacA),
  underlayIp: parseIp4(SETUP.underlayIpA),
  vtepMac: parseMacNumber(SETUP.vtepMacA),
  vtepIp: parseIp4(SETUP.vtepIpA),
}
const B = {
  underlayMac: parseMacNumber(SETUP.underlayMacB),
  underlayIp: parseIp4(SETUP.underlayIpB),
  vtepMac: parseMacNumber(SETUP.vtepMacB),
  vtepIp: parseIp4(SETUP.vtepIpB),
}

// Offsets in an outer frame without IPv4 options (the kernel never adds any).
const OUTER_IP = ETH_HLEN
const OUTER_UDP = OUTER_IP + IPV4_MIN_HLEN
const VXLAN = OUTER_UDP + UDP_HLEN
const INNER_ETH = VXLAN + VXLAN_HLEN
const INNER_IP = INNER_ETH + ETH_HLEN

function reasonName (r: number): string {
  return REASON_NAMES[r] ?? String(r)
}

function label (f: KernelVxlanFrame): string {
  // The last part of tcpdump's text names the inner packet.
  const parts = f.summary.split(' | ')
  return parts.slice(3).join(' / ')
}

/** Sender and receiver of a captured frame, from its outer source address. */
function endpoints (buf: Buffer): { from: typeof A; to: typeof A } {
  return readIpv4Src(buf, OUTER_IP) === A.underlayIp ? { from: A, to: B } : { from: B, to: A }
}

test('the vectors were captured, with both directions and every kind of packet', () => {
  assert.ok(KERNEL_VXLAN_FRAMES.length >= 10, 'expected pings, fragments and a UDP datagram')
  assert.ok(KERNEL_VXLAN_FRAMES_CSUM_PARTIAL.length >= 3)
  assert.equal(VXLAN_ENCAP_HEADROOM, INNER_ETH)
  assert.equal(VXLAN_MTU_OVERHEAD, 50)
})

for (const frame of KERNEL_VXLAN_FRAMES) {
  test(`decodes the kernel's frame: ${label(frame)}`, () => {
    const buf = Buffer.from(frame.hex, 'hex')
    const { from, to } = endpoints(buf)

    // Outer Ethernet: underlay MACs, IPv4.
    assert.equal(readEthDst(buf, 0), to.underlayMac)
    assert.equal(readEthSrc(buf, 0), from.underlayMac)
    assert.equal(readEthType(buf, 0), ETHERTYPE_IPV4)

    // Outer IPv4: whole (never fragmented), checksum verifies, no DF (the
    // vxlan device's default "df unset"), TTL 64 (device ttl 0 = route default).
    const outerLen = buf.length - OUTER_IP
    assert.equal(reasonName(validateIpv4Unfragmented(buf, OUTER_IP, outerLen)), 'ok')
    assert.equal(readIpv4HeaderLength(buf, OUTER_IP), IPV4_MIN_HLEN)
    assert.equal(readIpv4TotalLength(buf, OUTER_IP), outerLen)
    assert.equal(readIpv4Protocol(buf, OUTER_IP), IPPROTO_UDP)
    assert.equal(readIpv4FragField(buf, OUTER_IP), 0)
    assert.equal(readIpv4Ttl(buf, OUTER_IP), 64)
    assert.equal(readIpv4Tos(buf, OUTER_IP), 0)
    assert.equal(readIpv4Src(buf, OUTER_IP), from.underlayIp)
    assert.equal(readIpv4Dst(buf, OUTER_IP), to.underlayIp)

    // Outer UDP to 8472. With TX checksum offload off the kernel fills in a
    // real checksum (the vxlan device's udpcsum is on: iproute2 did not ask
    // for zero), and it verifies.
    const udpLen = outerLen - IPV4_MIN_HLEN
    assert.equal(readUdpDstPort(buf, OUTER_UDP), VXLAN_PORT_FLANNEL)
    assert.equal(readUdpLength(buf, OUTER_UDP), udpLen)
    assert.notEqual(readUdpChecksum(buf, OUTER_UDP), 0, 'kernel sent a UDP checksum')
    assert.equal(reasonName(validateUdp4(buf, OUTER_UDP, udpLen, OUTER_IP)), 'ok')
    // The source port is a hash of the inner flow, in the ephemeral range.
    const sport = readUdpSrcPort(buf, OUTER_UDP)
    assert.ok(sport >= 32768 && sport <= 60999, `source port ${sport}`)

    // VXLAN: only the I flag, VNI 1.
    assert.equal(readVxlanFlags(buf, VXLAN), 0x08)
    assert.equal(reasonName(validateVxlan(buf, VXLAN, udpLen - UDP_HLEN, SETUP.vni)), 'ok')
    assert.equal(readVni(buf, VXLAN), 1)

    // Inner Ethernet: between the two VTEP MACs.
    assert.equal(readEthDst(buf, INNER_ETH), to.vtepMac)
    assert.equal(readEthSrc(buf, INNER_ETH), from.vtepMac)
    assert.equal(readEthType(buf, INNER_ETH), ETHERTYPE_IPV4)

    // Inner IPv4: valid (fragments allowed here), between the VTEP addresses.
    const innerLen = buf.length - INNER_IP
    assert.equal(reasonName(validateIpv4(buf, INNER_IP, innerLen)), 'ok')
    assert.equal(readIpv4TotalLength(buf, INNER_IP), innerLen)
    assert.equal(readIpv4Src(buf, INNER_IP), from.vtepIp)
    assert.equal(readIpv4Dst(buf, INNER_IP), to.vtepIp)

    const l4 = INNER_IP + readIpv4HeaderLength(buf, INNER_IP)
    const l4Len = innerLen - readIpv4HeaderLength(buf, INNER_IP)
    if (isIpv4Fragment(buf, INNER_IP)) {
      // An ICMP checksum covers the whole message, so a fragment cannot be
      // checked alone; the reassembly test below does it.
      assert.equal(readIpv4Protocol(buf, INNER_IP), IPPROTO_ICMP)
      assert.equal(reasonName(validateIpv4Unfragmented(buf, INNER_IP, innerLen)), 'fragment')
      return
    }
    if (readIpv4Protocol(buf, INNER_IP) === IPPROTO_UDP) {
      assert.equal(reasonName(validateUdp4(buf, l4, l4Len, INNER_IP)), 'ok')
      assert.notEqual(readUdpChecksum(buf, l4), 0)
      assert.equal(readUdpDstPort(buf, l4), 5000)
      assert.equal(buf.subarray(l4 + UDP_HLEN).toString('latin1'), SETUP.udpPayload)
      return
    }
    assert.equal(readIpv4Protocol(buf, INNER_IP), IPPROTO_ICMP)
    assert.equal(reasonName(validateIcmp(buf, l4, l4Len)), 'ok')
    const type = readIcmpType(buf, l4)
    if (type === ICMP_DEST_UNREACH) {
      // Port unreachable for the UDP datagram: quotes its IPv4 header + 8 bytes.
      assert.equal(readIcmpCode(buf, l4), ICMP_PORT_UNREACH)
      const quoted = l4 + ICMP_HLEN
      assert.equal(readIpv4Protocol(buf, quoted), IPPROTO_UDP)
      assert.equal(readIpv4Src(buf, quoted), to.vtepIp)
      assert.equal(readUdpDstPort(buf, quoted + IPV4_MIN_HLEN), 5000)
      return
    }
    assert.ok(type === ICMP_ECHO_REQUEST || type === ICMP_ECHO_REPLY, `ICMP type ${type}`)
    assert.equal(readIcmpCode(buf, l4), 0)
    assert.ok(readIcmpEchoSeq(buf, l4) >= 1)
  })
}

test('the kernel fragments a ping larger than flannel.1 MTU; fragments reassemble to a valid echo', () => {
  const frags = KERNEL_VXLAN_FRAMES.map((f) => Buffer.from(f.hex, 'hex')).filter((b) => isIpv4Fragment(b, INNER_IP))
  assert.equal(frags.length, 4, 'two fragments each way')
  for (const dir of [A, B]) {
    const mine = frags.filter((b) => readIpv4Src(b, INNER_IP) === dir.vtepIp)
    assert.equal(mine.length, 2)
    const [first, second] = mine as [Buffer, Buffer]
    assert.equal(readIpv4Id(first, INNER_IP), readIpv4Id(second, INNER_IP))
    assert.ok((readIpv4FragField(first, INNER_IP) & IPV4_FLAG_MF) !== 0, 'first has MF')
    assert.equal(readIpv4FragmentOffset(first, INNER_IP), 0)
    assert.equal(readIpv4FragField(second, INNER_IP) & IPV4_FLAG_MF, 0, 'last has no MF')
    // Each fragment's IP payload is a multiple of 8 and fills the 1450 MTU.
    const firstPayload = first.subarray(INNER_IP + IPV4_MIN_HLEN)
    assert.equal(readIpv4TotalLength(first, INNER_IP), 1444)
    assert.equal(readIpv4FragmentOffset(second, INNER_IP), firstPayload.length)
    const message = Buffer.concat([firstPayload, second.subarray(INNER_IP + IPV4_MIN_HLEN)])
    assert.equal(message.length, ICMP_HLEN + 2000)
    assert.equal(reasonName(validateIcmp(message, 0, message.length)), 'ok')
  }
})

// ---- re-encoding ----

/** ICMP message of an inner packet; for fragments, reassembled from its siblings in the capture. */
function innerIcmpMessage (buf: Buffer, all: readonly Buffer[]): Buffer {
  if (!isIpv4Fragment(buf, INNER_IP)) return buf.subarray(INNER_IP + IPV4_MIN_HLEN)
  const id = readIpv4Id(buf, INNER_IP)
  const src = readIpv4Src(buf, INNER_IP)
  const parts = all
    .filter((b) => isIpv4Fragment(b, INNER_IP) && readIpv4Id(b, INNER_IP) === id && readIpv4Src(b, INNER_IP) === src)
    .sort((x, y) => readIpv4FragmentOffset(x, INNER_IP) - readIpv4FragmentOffset(y, INNER_IP))
  return Buffer.concat(parts.map((b) => b.subarray(INNER_IP + IPV4_MIN_HLEN)))
}

/**
 * Build `captured` from scratch with the codecs. Fields the kernel (or ping)
 * chooses freely are copied from the capture, nothing else: outer IP ID,
 * outer UDP source port (flow hash), inner IP ID / TOS / DF+MF+offset, ICMP
 * echo id and seq, and L4 payload bytes (ping's timestamp + pattern, the
 * quoted datagram of an ICMP error, our UDP text). Every length and checksum
 * is computed. `partial` leaves the innermost UDP checksum as the
 * CHECKSUM_PARTIAL seed, as the kernel does with TX checksum offload (below).
 */
function reencode (captured: Buffer, all: readonly Buffer[], partial: boolean): Buffer {
  const out = Buffer.alloc(captured.length, 0xa5) // garbage: everything must be written
  const { from, to } = endpoints(captured)
  const innerTotal = readIpv4TotalLength(captured, INNER_IP)
  const proto = readIpv4Protocol(captured, INNER_IP)
  const l4 = INNER_IP + IPV4_MIN_HLEN
  const l4Len = innerTotal - IPV4_MIN_HLEN

  // Inside out, since each UDP checksum covers what it carries; each IPv4
  // header goes first, as the L4 checksums read their pseudo-header from it.
  writeIpv4Header(
    out, INNER_IP, readIpv4Tos(captured, INNER_IP), innerTotal, readIpv4Id(captured, INNER_IP),
    readIpv4FragField(captured, INNER_IP), 64, proto, from.vtepIp, to.vtepIp
  )
  if (proto === IPPROTO_UDP) {
    captured.copy(out, l4 + UDP_HLEN, l4 + UDP_HLEN, l4 + l4Len)
    writeUdpHeader(out, l4, readUdpSrcPort(captured, l4), 5000, l4Len)
    setUdp4Checksum(out, l4, l4Len, INNER_IP)
  } else if (isIpv4Fragment(captured, INNER_IP)) {
    // Build the whole echo message, checksum it, and cut this fragment out.
    const whole = Buffer.from(innerIcmpMessage(captured, all))
    writeIcmpEcho(whole, 0, readIcmpType(whole, 0), readIcmpEchoId(whole, 0), readIcmpEchoSeq(whole, 0), whole.length)
    const at = readIpv4FragmentOffset(captured, INNER_IP)
    whole.copy(out, l4, at, at + l4Len)
  } else if (readIcmpType(captured, l4) === ICMP_DEST_UNREACH) {
    captured.copy(out, l4 + ICMP_HLEN, l4 + ICMP_HLEN, l4 + l4Len) // the quoted datagram
    writeIcmpType(out, l4, ICMP_DEST_UNREACH)
    writeIcmpCode(out, l4, ICMP_PORT_UNREACH)
    out.fill(0, l4 + 4, l4 + 8) // unused
    writeIcmpChecksum(out, l4, 0)
    setIcmpChecksum(out, l4, l4Len)
  } else {
    captured.copy(out, l4 + ICMP_HLEN, l4 + ICMP_HLEN, l4 + l4Len)
    writeIcmpEcho(out, l4, readIcmpType(captured, l4), readIcmpEchoId(captured, l4), readIcmpEchoSeq(captured, l4), l4Len)
  }
  writeEthernet(out, INNER_ETH, to.vtepMac, from.vtepMac, ETHERTYPE_IPV4)
  writeVxlan(out, VXLAN, SETUP.vni)

  const udpLen = UDP_HLEN + VXLAN_HLEN + ETH_HLEN + innerTotal
  writeIpv4Header(
    out, OUTER_IP, 0, IPV4_MIN_HLEN + udpLen, readIpv4Id(captured, OUTER_IP), 0, 64, IPPROTO_UDP,
    from.underlayIp, to.underlayIp
  )
  writeUdpHeader(out, OUTER_UDP, readUdpSrcPort(captured, OUTER_UDP), VXLAN_PORT_FLANNEL, udpLen)
  setUdp4Checksum(out, OUTER_UDP, udpLen, OUTER_IP)
  if (partial) {
    // Like the kernel: only the innermost UDP checksum is left as a seed; an
    // outer one stays final (computed above with the inner one finished).
    const [at, src, dst, len] = proto === IPPROTO_UDP
      ? [l4, from.vtepIp, to.vtepIp, l4Len]
      : [OUTER_UDP, from.underlayIp, to.underlayIp, udpLen]
    writeUdpChecksum(out, at, fold(pseudoHeaderSum4(src, dst, IPPROTO_UDP, len)))
  }
  writeEthernet(out, 0, to.underlayMac, from.underlayMac, ETHERTYPE_IPV4)
  return out
}

const wire = KERNEL_VXLAN_FRAMES.map((f) => Buffer.from(f.hex, 'hex'))
KERNEL_VXLAN_FRAMES.forEach((frame, i) => {
  test(`re-encodes byte-identically: ${label(frame)}`, () => {
    const captured = wire[i]!
    assert.equal(reencode(captured, wire, false).toString('hex'), frame.hex)
  })
})

test('the echo request carries DF (ping asks for PMTU discovery); the kernel reply does not', () => {
  const echoes = wire.filter((b) => readIpv4Protocol(b, INNER_IP) === IPPROTO_ICMP && !isIpv4Fragment(b, INNER_IP))
  for (const b of echoes) {
    const l4 = INNER_IP + IPV4_MIN_HLEN
    if (readIcmpType(b, l4) === ICMP_ECHO_REQUEST) assert.equal(readIpv4FragField(b, INNER_IP), IPV4_FLAG_DF)
    if (readIcmpType(b, l4) === ICMP_ECHO_REPLY) assert.equal(readIpv4FragField(b, INNER_IP), 0)
  }
})

test('outer UDP source port: one per inner flow, the same in both directions', () => {
  const icmpPorts = new Set(
    wire.filter((b) => readIpv4Protocol(b, INNER_IP) === IPPROTO_ICMP).map((b) => readUdpSrcPort(b, OUTER_UDP))
  )
  // Linux hashes the inner flow symmetrically, and ICMP (echo id, too) is
  // hashed on addresses alone, so every ping and the port-unreachable share one.
  assert.equal(icmpPorts.size, 1)
  const udp = wire.find((b) => readIpv4Protocol(b, INNER_IP) === IPPROTO_UDP)!
  assert.ok(!icmpPorts.has(readUdpSrcPort(udp, OUTER_UDP)), 'the UDP flow hashes elsewhere')
})

// ---- default offloads: CHECKSUM_PARTIAL ----

// With the veth's TX checksum offload on (the default), the kernel leaves UDP
// checksums to "hardware": the field holds only the folded pseudo-header sum
// (not complemented), and a tap before the device - tcpdump here, AF_PACKET
// in a userspace dataplane - sees that seed. veth never finishes it (the
// receiver trusts CHECKSUM_PARTIAL). A reader must therefore not drop such
// frames for a bad checksum when the skb said "checksum partial".
const partialWire = KERNEL_VXLAN_FRAMES_CSUM_PARTIAL.map((f) => Buffer.from(f.hex, 'hex'))
KERNEL_VXLAN_FRAMES_CSUM_PARTIAL.forEach((frame, i) => {
  test(`with TX checksum offload, UDP checksums are left partial: ${label(frame)}`, () => {
    const buf = partialWire[i]!
    const { from, to } = endpoints(buf)
    assert.equal(reasonName(validateIpv4Unfragmented(buf, OUTER_IP, buf.length - OUTER_IP)), 'ok')
    const udpLen = readUdpLength(buf, OUTER_UDP)
    const l4 = INNER_IP + readIpv4HeaderLength(buf, INNER_IP)
    const finished = Buffer.from(buf)

    if (readIpv4Protocol(buf, INNER_IP) === IPPROTO_ICMP) {
      // ICMP checksums are always computed in software, offload or not; the
      // outer UDP checksum is the one left partial: it holds the seed.
      assert.equal(reasonName(validateIcmp(buf, l4, buf.length - l4)), 'ok')
      const seed = fold(pseudoHeaderSum4(from.underlayIp, to.underlayIp, IPPROTO_UDP, udpLen))
      assert.equal(readUdpChecksum(buf, OUTER_UDP), seed)
      assert.equal(validateUdp4(buf, OUTER_UDP, udpLen, OUTER_IP), Reason.BAD_UDP_CHECKSUM)
      // Finishing it the way a NIC would gives a checksum that verifies.
      setUdp4Checksum(finished, OUTER_UDP, udpLen, OUTER_IP)
    } else {
      // The inner UDP checksum is the one left partial (there can be only one
      // csum_start). The outer one is final already: "local checksum offload"
      // (LCO) computes it as if the inner checksum had been finished.
      const innerLen = readUdpLength(buf, l4)
      assert.equal(readUdpChecksum(buf, l4), fold(pseudoHeaderSum4(from.vtepIp, to.vtepIp, IPPROTO_UDP, innerLen)))
      assert.equal(validateUdp4(buf, l4, innerLen, INNER_IP), Reason.BAD_UDP_CHECKSUM)
      assert.equal(validateUdp4(buf, OUTER_UDP, udpLen, OUTER_IP), Reason.BAD_UDP_CHECKSUM)
      setUdp4Checksum(finished, l4, innerLen, INNER_IP)
      assert.equal(reasonName(validateUdp4(finished, l4, innerLen, INNER_IP)), 'ok')
    }
    assert.equal(reasonName(validateUdp4(finished, OUTER_UDP, udpLen, OUTER_IP)), 'ok')
    assert.equal(reencode(buf, partialWire, true).toString('hex'), frame.hex)
  })
})
