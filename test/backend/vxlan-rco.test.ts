// VXLAN remote checksum offload (RCO: draft-herbert-vxlan-rco, Linux's
// remcsumtx/remcsumrx) across real kernels. A node whose lease says
// "RemCsumRx": true gets the segments of TSO super-packets with their inner
// TCP checksums left partial (the field holds the pseudo-header sum only; the
// VXLAN header's R flag and start/offset byte say where it is; the outer UDP
// checksum covers the data), and finishes them itself.
//
// To see that what is left partial is right, the host side of each receiving
// pod's veth gets tx checksum offload turned off: the kernel must then finish
// the checksum in software when it forwards the packet from weft's TUN (or
// flannel.1) into the pod, and the pod's TCP verifies it (TcpInCsumErrors).
// The underlay is captured too, and the VXLAN headers and inner checksum
// fields read byte by byte: that is where the sender's half shows (a
// receiver that coalesces segments into a super-packet, weft or the kernel's
// GRO, writes the pseudo-header sum anew, so a wrong one from the sender
// could go unseen in the pods).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { withTopology, waitFor } from '../../lab/netns'
import type { Host, Topology } from '../../lab/netns'
import type { ChildHandle } from '../../lab/proc'
import { settlesWithin } from '../../lab/proc'
import { addPods } from '../../lab/pods'
import type { Pod } from '../../lab/pods'
import { iperf, ping } from '../../lab/traffic'
import { kernelVxlanNode, vxlanLeaseValue } from '../../lab/kernel-vxlan'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { cluster } from '../../lab/daemons'
import type { Cluster, Daemon } from '../../lab/daemons'
import { logs, pair, podsFor, rawLeases, tablesComplete } from './mesh'

// this tests remote checksum offload, which weft's own pipeline sends:
// its daemons carry every packet themselves, without the peer offload
// (src/backend/tun/peer-offload.ts)
process.env.WEFT_OFFLOAD = 'off'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const NO_RCO_CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","RemCsum":false}}'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3', 'tcpdump', 'ethtool', 'nstat', 'ss')

/** VXLAN header byte 1 with the R flag (Linux's VXLAN_HF_RCO) */
const RCO_FLAG = 0x20
/** VXLAN header byte 7 for an inner TCP checksum behind a 20-byte IPv4 header: (14 + 20) >> 1 */
const RCO_TCP_BYTE7 = (14 + 20) >> 1

interface Counters { drops: Record<string, number>, counters: Record<string, number>, sock: Record<string, number> }
async function countersOf (d: Daemon): Promise<Counters> {
  return (await d.status()).counters as unknown as Counters
}
const drop = (c: Counters, reason: string): number => c.drops[reason] ?? 0

interface LeaseJson { subnet: string, publicIP: string, backendData: Record<string, unknown> }
function leaseOf (c: Cluster, publicIP: string): LeaseJson {
  const l = (JSON.parse(c.weft('leases', '--json')) as LeaseJson[]).find((x) => x.publicIP === publicIP)
  assert.ok(l !== undefined, `a lease for ${publicIP}`)
  return l
}

function peerOn (s: Awaited<ReturnType<Daemon['status']>>, publicIP: string): Record<string, unknown> {
  const p = s.peers.find((x) => x.publicIP === publicIP)
  assert.ok(p !== undefined, `a peer ${publicIP} in ${JSON.stringify(s.peers)}`)
  return p
}

/** Turn off tx checksum offload on the host side of a pod's veth (addPods names it veth<pod>): the kernel then finishes partial checksums in software on the way into the pod. */
async function txChecksumOff (topo: Topology, pod: Pod): Promise<void> {
  const dev = `veth${pod.name}`
  await topo.exec(pod.host, ['ethtool', '-K', dev, 'tx', 'off'], { timeoutMs: 10_000 })
  const k = (await topo.exec(pod.host, ['ethtool', '-k', dev], { timeoutMs: 10_000 })).stdout
  assert.match(k, /^tx-checksumming: off/m, `${dev}: ${k.slice(0, 300)}`)
}

/** The pod's TCP checksum errors so far (its namespace's Tcp InCsumErrors). */
async function tcpCsumErrors (topo: Topology, pod: Pod): Promise<number> {
  // -a absolute, -s leave nstat's history file alone, -z print it even when 0
  const out = (await topo.exec(pod.ns, ['nstat', '-asz', 'TcpInCsumErrors'], { timeoutMs: 10_000 })).stdout
  const m = /^TcpInCsumErrors\s+(\d+)/m.exec(out)
  assert.ok(m !== null, `nstat printed no TcpInCsumErrors: ${out}`)
  return Number(m[1])
}

/** What the underlay carried in one VXLAN datagram with an inner IPv4 TCP segment. */
interface VxlanTcp {
  outerSrc: string
  /** VXLAN header bytes 1 and 7 (0 and 0 without RCO) */
  byte1: number
  byte7: number
  /** inner TCP header's offset from the inner Ethernet header */
  innerL4: number
  payload: number
  /** the inner TCP checksum field, and the folded (not inverted) pseudo-header sum it holds when left partial */
  csumField: number
  pseudoSum: number
}

const ip4 = (b: Buffer, o: number): string => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`
const fold = (s: number): number => { while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); return s }

/** VXLAN-in-UDP/8472 datagrams carrying IPv4 TCP, from a classic pcap file of an Ethernet link (snaplen covering the inner TCP header). */
function vxlanTcpFrames (pcap: Buffer): VxlanTcp[] {
  const magic = pcap.readUInt32LE(0)
  assert.ok(magic === 0xa1b2c3d4 || magic === 0xa1b23c4d, `a little-endian pcap file (magic ${magic.toString(16)})`)
  assert.equal(pcap.readUInt32LE(20), 1, 'Ethernet link type')
  const out: VxlanTcp[] = []
  for (let r = 24; r + 16 <= pcap.length;) {
    const caplen = pcap.readUInt32LE(r + 8)
    const f = pcap.subarray(r + 16, r + 16 + caplen)
    r += 16 + caplen
    if (f.length < 14 + 20 || f.readUInt16BE(12) !== 0x0800) continue
    const oip = 14
    const oihl = (f[oip]! & 15) * 4
    if (f[oip + 9] !== 17) continue
    const udp = oip + oihl
    if (f.length < udp + 8 || f.readUInt16BE(udp + 2) !== 8472) continue
    const vx = udp + 8
    const eth = vx + 8
    const ip = eth + 14
    if (f.length < ip + 20 || f.readUInt16BE(eth + 12) !== 0x0800 || f[ip + 9] !== 6) continue
    const ihl = (f[ip]! & 15) * 4
    const tcp = ip + ihl
    if (f.length < tcp + 20) continue
    const l4len = f.readUInt16BE(ip + 2) - ihl
    const pseudo = f.readUInt16BE(ip + 12) + f.readUInt16BE(ip + 14) + f.readUInt16BE(ip + 16) + f.readUInt16BE(ip + 18) + 6 + l4len
    out.push({
      outerSrc: ip4(f, oip + 12),
      byte1: f[vx + 1]!,
      byte7: f[vx + 7]!,
      innerL4: tcp - eth,
      payload: l4len - (f[tcp + 12]! >> 4) * 4,
      csumField: f.readUInt16BE(tcp + 16),
      pseudoSum: fold(pseudo)
    })
  }
  return out
}

/** Same value in ones' complement arithmetic (0 and 0xffff are both zero). */
const sameSum = (a: number, b: number): boolean => a === b || (a % 0xffff) === (b % 0xffff)

/**
 * Captures, on the underlay bridge, the first `count` large VXLAN datagrams
 * (TCP data segments, not ACKs) sent by `from`; `frames()` stops the capture
 * if it has not got them all and returns what it got.
 */
function captureData (topo: Topology, dir: string, from: Host, count = 400): { ready: Promise<string>, frames: () => Promise<VxlanTcp[]> } {
  const file = `${dir}/underlay-${from.name}-${Date.now()}.pcap`
  const cap: ChildHandle = topo.spawn(topo.underlayNs, ['tcpdump', '-i', 'br0', '-n', '-U', '-s', '160', '-c', String(count), '-w', file,
    `src host ${from.underlayIp} and udp dst port 8472 and greater 1000`])
  return {
    ready: cap.waitForLine(/listening on/, 5000, 'stderr'),
    frames: async () => {
      if (!(await settlesWithin(cap.exited, 2000))) await cap.stop(1000)
      return vxlanTcpFrames(fs.readFileSync(file))
    }
  }
}

/**
 * The captured data segments of a stream to a peer that takes RCO: those cut
 * from super-packets carry RCO for their inner TCP checksum (R flag, start / 2,
 * TCP's offset) and that checksum field holds exactly the pseudo-header sum;
 * the odd single packet (nothing to segment: slow start, a PSH) goes as
 * plain VXLAN. Returns how many of each, for the test's diagnostics.
 */
function assertRco (frames: VxlanTcp[], who: string): string {
  assert.ok(frames.length > 0, `${who}: captured TCP data segments`)
  const rco = frames.filter((f) => f.byte1 === RCO_FLAG)
  for (const f of frames) {
    assert.ok(f.payload > 0, `${who}: a data segment`)
    assert.equal(f.innerL4, 34, `${who}: inner TCP right behind a 20-byte IPv4 header`)
    if (f.byte1 !== RCO_FLAG) {
      assert.equal(f.byte1 | f.byte7, 0, `${who}: without RCO, VXLAN header bytes 1 and 7 are zero (${JSON.stringify(f)})`)
      continue
    }
    assert.equal(f.byte7, RCO_TCP_BYTE7, `${who}: RCO start ${f.innerL4} / 2, TCP's offset (${JSON.stringify(f)})`)
    assert.ok(sameSum(f.csumField, f.pseudoSum), `${who}: inner TCP checksum left as the pseudo-header sum 0x${f.pseudoSum.toString(16)}, got 0x${f.csumField.toString(16)}`)
  }
  // a bulk TCP stream is nearly all TSO super-packets
  assert.ok(rco.length * 2 > frames.length, `${who}: most data segments with RCO (${rco.length} of ${frames.length})`)
  return `${who}: ${rco.length} of ${frames.length} captured data segments with RCO`
}

/** No captured data segment carries RCO, and each has a finished inner checksum (not the bare pseudo-header sum). */
function assertNoRco (frames: VxlanTcp[], who: string): void {
  assert.ok(frames.length > 0, `${who}: captured TCP data segments`)
  for (const f of frames) {
    assert.equal(f.byte1 | f.byte7, 0, `${who}: VXLAN header bytes 1 and 7 reserved, zero (${JSON.stringify(f)})`)
  }
  // one segment's full checksum may equal its pseudo-header sum by chance, not all of them
  assert.ok(frames.some((f) => !sameSum(f.csumField, f.pseudoSum)), `${who}: inner checksums finished`)
}

test('the lease value of a kernel node with remote checksum offload is flannel\'s plus "RemCsumRx": true, byte for byte', () => {
  assert.equal(
    vxlanLeaseValue({ publicIp: '198.18.0.2', vni: 1, mac: 'C6:D2:32:6F:8F:44', remcsum: true }),
    '{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44","RemCsumRx":true}}'
  )
  assert.equal(
    vxlanLeaseValue({ publicIp: '198.18.0.2', vni: 1, mac: 'C6:D2:32:6F:8F:44', remcsum: false }),
    '{"PublicIP":"198.18.0.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}'
  )
})

test('two weft nodes both ask for remote checksum offload and get it: TCP both ways with inner checksums left partial on the wire, finished right where the receiving kernel has to do it in software', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'vxlan-rco', timeoutMs: 80_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const { c, a, b, pa, pb } = await pair(t, topo, CONFIG)
    await tablesComplete([a, b], 1)

    // each lease asks for RCO, and each node takes the other at its word
    for (const h of [h1, h2]) assert.equal(leaseOf(c, h.underlayIp).backendData.RemCsumRx, true, `${h.name}'s lease says RemCsumRx`)
    for (const [d, other] of [[a, h2], [b, h1]] as const) {
      assert.equal(peerOn(await d.status(), other.underlayIp).remoteChecksumOffload, true, `${d.host.name} sends RCO to ${other.name}`)
      assert.ok(logs(d).some((l) => l.msg === 'peer added to the FDB' && l.publicIP === other.underlayIp && l.remoteChecksumOffload === true), `${d.host.name} logs it`)
    }

    await txChecksumOff(topo, pa)
    await txChecksumOff(topo, pb)
    const errors0 = [await tcpCsumErrors(topo, pa), await tcpCsumErrors(topo, pb)]
    assert.equal((await ping(topo, pa, pb.ip, { count: 3 })).received, 3, 'pa -> pb')
    assert.equal((await ping(topo, pb, pa.ip, { count: 3 })).received, 3, 'pb -> pa')

    // pa -> pb: node a leaves the checksums partial (seen on the wire), node b's kernel finishes them on the way into pb
    const capA = captureData(topo, c.dir, h1)
    await capA.ready
    const there = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2 })
    t.diagnostic(assertRco(await capA.frames(), 'a -> b'))
    const [a1, b1] = [await countersOf(a), await countersOf(b)]
    // pb -> pa: the other way round
    const capB = captureData(topo, c.dir, h2)
    await capB.ready
    const back = await iperf(topo, pa, pb, { serverIp: pa.ip, seconds: 2 })
    t.diagnostic(assertRco(await capB.frames(), 'b -> a'))
    const [a2, b2] = [await countersOf(a), await countersOf(b)]
    t.diagnostic(`TCP with RCO: ${there.gbps.toFixed(2)} Gbit/s a -> b (${there.retransmits} retransmits), ${back.gbps.toFixed(2)} Gbit/s b -> a (${back.retransmits})`)
    t.diagnostic(`a: ${JSON.stringify({ ...pick(a2.counters, 'inside_super_packets', 'inside_partial_checksums', 'outside_partial_checksums'), ...pick(a2.sock, 'txSegmented', 'txCsumPartial', 'rxCsumRemote', 'rxCsumFinished') })}`)
    t.diagnostic(`b: ${JSON.stringify({ ...pick(b2.counters, 'inside_super_packets', 'inside_partial_checksums', 'outside_partial_checksums'), ...pick(b2.sock, 'txSegmented', 'txCsumPartial', 'rxCsumRemote', 'rxCsumFinished') })}`)

    assert.ok(there.gbps > 0 && back.gbps > 0, `TCP both ways (${there.gbps} / ${back.gbps} Gbit/s)`)
    // the pods' kernels verified every checksum weft left partial and the kernel finished
    assert.equal(await tcpCsumErrors(topo, pa), errors0[0], 'no TCP checksum errors in pa')
    assert.equal(await tcpCsumErrors(topo, pb), errors0[1], 'no TCP checksum errors in pb')

    // a -> b: a sent super-packets cut with partial checksums, b took them as RCO
    assert.ok(a1.counters.inside_partial_checksums > 0, 'a: super-packets sent with RCO')
    assert.ok(a1.sock.txCsumPartial > a1.counters.inside_partial_checksums, 'a: each cut into several segments left partial')
    assert.ok(b1.counters.outside_partial_checksums > 0, 'b: datagrams received with RCO')
    assert.ok(b1.sock.rxCsumRemote > 0, 'b: inner checks skipped for RCO datagrams')
    assert.ok(b1.counters.outside_partial_checksums <= a1.sock.txCsumPartial, 'b received no more RCO datagrams than a sent')
    // b -> a
    assert.ok(b2.counters.inside_partial_checksums > b1.counters.inside_partial_checksums, 'b: super-packets sent with RCO')
    assert.ok(b2.sock.txCsumPartial > b1.sock.txCsumPartial, 'b: segments sent partial')
    assert.ok(a2.counters.outside_partial_checksums > a1.counters.outside_partial_checksums, 'a: datagrams received with RCO')
    assert.ok(a2.sock.rxCsumRemote > a1.sock.rxCsumRemote, 'a: inner checks skipped for RCO datagrams')
    for (const [name, s] of [['a', a2], ['b', b2]] as const) {
      assert.equal(drop(s, 'bad_vxlan_rco'), 0, `${name}: no bad_vxlan_rco drops`)
      assert.equal(drop(s, 'bad_inner_checksum'), 0, `${name}: no bad_inner_checksum drops`)
      assert.equal(s.sock.txDropBadGso, 0, `${name}: no super-packet refused`)
    }
  })
})

test('with "RemCsum": false nobody asks for remote checksum offload and nobody sends it: leases as flannel writes them, full inner checksums on the wire', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'vxlan-norco', timeoutMs: 80_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const { c, a, b, pa, pb } = await pair(t, topo, NO_RCO_CONFIG)
    await tablesComplete([a, b], 1)

    for (const h of [h1, h2]) assert.equal('RemCsumRx' in leaseOf(c, h.underlayIp).backendData, false, `${h.name}'s lease has no RemCsumRx`)
    for (const v of Object.values(rawLeases(c)).filter((x) => x.includes('"BackendType"'))) {
      assert.deepEqual(Object.keys((JSON.parse(v) as { BackendData: object }).BackendData), ['VNI', 'VtepMAC'], `flannel's BackendData: ${v}`)
    }
    for (const [d, other] of [[a, h2], [b, h1]] as const) {
      assert.equal(peerOn(await d.status(), other.underlayIp).remoteChecksumOffload, undefined, `${d.host.name} sends no RCO to ${other.name}`)
    }

    await txChecksumOff(topo, pa)
    await txChecksumOff(topo, pb)
    const capA = captureData(topo, c.dir, h1)
    await capA.ready
    const there = await iperf(topo, pb, pa, { serverIp: pb.ip, seconds: 2 })
    assertNoRco(await capA.frames(), 'a -> b')
    const back = await iperf(topo, pa, pb, { serverIp: pa.ip, seconds: 2 })
    assert.ok(there.gbps > 0 && back.gbps > 0, `TCP both ways (${there.gbps} / ${back.gbps} Gbit/s)`)
    assert.equal(await tcpCsumErrors(topo, pa), 0, 'no TCP checksum errors in pa')
    assert.equal(await tcpCsumErrors(topo, pb), 0, 'no TCP checksum errors in pb')

    for (const [name, d] of [['a', a], ['b', b]] as const) {
      const s = await countersOf(d)
      assert.ok(s.counters.inside_super_packets > 0, `${name}: super-packets were sent (segmented by weft, checksums finished)`)
      assert.equal(s.counters.inside_partial_checksums, 0, `${name}: none with RCO`)
      assert.equal(s.counters.outside_partial_checksums, 0, `${name}: none received with RCO`)
      assert.equal(s.sock.txCsumPartial, 0, `${name}: no segment sent partial`)
      assert.equal(s.sock.rxCsumRemote, 0, `${name}: every inner checksum checked`)
      assert.equal(drop(s, 'bad_vxlan_rco'), 0, `${name}: no bad_vxlan_rco drops`)
      assert.equal(drop(s, 'bad_inner_checksum'), 0, `${name}: no bad_inner_checksum drops`)
    }
  })
})

test('interop: weft and the kernel\'s own VXLAN with remcsumtx/remcsumrx speak remote checksum offload both ways, with the same wire format', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'vxlan-rco-kernel', timeoutMs: 80_000 }, async (topo) => {
    const [hw, hk] = topo.hosts
    const c = cluster(t, topo, CONFIG)
    // the kernel node's lease asks for RCO, as a weft node's does
    const k = await kernelVxlanNode(topo, hk, { subnet: '10.244.77.0/24', remcsum: true })
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    store.putRaw('10.244.77.0-24', vxlanLeaseValue(k), 86400)
    await store.close()
    const w = await c.start(hw)
    const wl = leaseOf(c, hw.underlayIp)
    assert.equal(wl.backendData.RemCsumRx, true)
    await k.addPeer({ subnet: wl.subnet, vtepMac: String(wl.backendData.VtepMAC), publicIp: hw.underlayIp })
    const [wp] = await podsFor(topo, w, 1)
    const [kp] = await addPods(topo, hk, { subnet: '10.244.77.0/24', count: 1, mtu: 1450 })
    await waitFor(async () => (await w.status()).peers.length === 1, { what: 'weft learns the kernel node', timeoutMs: 5000 })
    assert.equal(peerOn(await w.status(), hk.underlayIp).remoteChecksumOffload, true, 'weft sends RCO to the kernel node')

    await txChecksumOff(topo, wp)
    await txChecksumOff(topo, kp)
    assert.equal((await ping(topo, wp, kp.ip, { count: 3 })).received, 3, 'weft pod -> kernel pod')
    assert.equal((await ping(topo, kp, wp.ip, { count: 3 })).received, 3, 'kernel pod -> weft pod')

    // weft -> kernel: weft leaves the checksums partial, flannel.1 takes them as RCO
    const capW = captureData(topo, c.dir, hw)
    await capW.ready
    const there = await iperf(topo, kp, wp, { serverIp: kp.ip, seconds: 2 })
    const fromWeft = await capW.frames()
    t.diagnostic(assertRco(fromWeft, 'weft -> kernel'))
    const w1 = await countersOf(w)
    // kernel -> weft: flannel.1 leaves them partial (for CHECKSUM_PARTIAL packets, i.e. TCP from a pod over a veth)
    const capK = captureData(topo, c.dir, hk)
    await capK.ready
    const back = await iperf(topo, wp, kp, { serverIp: wp.ip, seconds: 2 })
    const fromKernel = await capK.frames()
    t.diagnostic(assertRco(fromKernel, 'kernel -> weft'))
    const w2 = await countersOf(w)
    t.diagnostic(`TCP with RCO: ${there.gbps.toFixed(2)} Gbit/s weft -> kernel (${there.retransmits} retransmits), ${back.gbps.toFixed(2)} Gbit/s kernel -> weft (${back.retransmits})`)
    t.diagnostic(`weft: ${JSON.stringify({ ...pick(w2.counters, 'inside_super_packets', 'inside_partial_checksums', 'outside_partial_checksums', 'checksums_finished'), ...pick(w2.sock, 'txSegmented', 'txCsumPartial', 'rxCsumRemote', 'rxCsumFinished') })}`)

    // both speak it the same way: R flag in byte 1, start / 2 in byte 7
    const rcoBytes = (frames: VxlanTcp[]): string[] => [...new Set(frames.filter((f) => f.byte1 !== 0).map((f) => `${f.byte1}/${f.byte7}`))]
    assert.deepEqual(rcoBytes(fromWeft), rcoBytes(fromKernel))
    assert.ok(there.gbps > 0 && back.gbps > 0, `TCP both ways (${there.gbps} / ${back.gbps} Gbit/s)`)
    assert.equal(await tcpCsumErrors(topo, kp), 0, 'the kernel pod verified every checksum weft left partial')
    assert.equal(await tcpCsumErrors(topo, wp), 0, 'the weft pod verified every checksum the kernel left partial')
    assert.ok(w1.counters.inside_partial_checksums > 0, 'weft sent super-packets with RCO')
    assert.ok(w1.sock.txCsumPartial > 0, 'weft sent segments partial')
    assert.ok(w2.counters.outside_partial_checksums > w1.counters.outside_partial_checksums, 'weft received RCO from the kernel')
    assert.ok(w2.sock.rxCsumRemote > w1.sock.rxCsumRemote, 'weft skipped its inner check for them')
    assert.equal(drop(w2, 'bad_vxlan_rco'), 0, 'no bad_vxlan_rco drops')
    assert.equal(drop(w2, 'bad_inner_checksum'), 0, 'no bad_inner_checksum drops')
    // and flannel.1 refused nothing weft sent it (a bad RCO header is an rx drop there)
    const dev = JSON.parse((await topo.exec(hk, ['ip', '-s', '-j', 'link', 'show', 'dev', k.device])).stdout) as Array<{ stats64: { rx: { packets: number, errors: number, dropped: number } } }>
    const rx = dev[0]!.stats64.rx
    assert.ok(rx.packets > 0 && rx.errors === 0 && rx.dropped === 0, `${k.device} rx: ${JSON.stringify(rx)}`)
  })
})

/**
 * Sends `count` VXLAN datagrams from `from` to `to`:8472 with the RCO flag
 * set, each carrying one small inner TCP (or ICMP) packet to `dst`. `kind`
 * says what the RCO field claims against what is there: 'good' (start 34,
 * TCP), 'start' (32), 'protocol' (UDP's offset for a TCP packet), 'icmp' (no
 * TCP/UDP checksum at all), 'fragment' (a TCP packet's first fragment).
 */
async function sendRco (topo: Topology, from: Host, to: string, dstMac: string, src: string, dst: string, kind: string, count: number): Promise<void> {
  const script = `
    const dgram = require('node:dgram')
    const [to, mac, src, dst, kind, count] = process.argv.slice(1)
    const icmp = kind === 'icmp'
    const f = Buffer.alloc(8 + 14 + 20 + 20 + 32)
    f[0] = 0x08; f[1] = 0x20; f[6] = 1
    f[7] = kind === 'start' ? 32 >> 1 : kind === 'protocol' ? 0x80 | 17 : 17
    Buffer.from(mac.split(':').map((x) => parseInt(x, 16))).copy(f, 8)
    Buffer.from([2, 0xba, 0xdd, 0, 0, 2]).copy(f, 14)
    f.writeUInt16BE(0x0800, 20)
    const ip = 22
    f[ip] = 0x45; f.writeUInt16BE(f.length - ip, ip + 2); f.writeUInt16BE(kind === 'fragment' ? 0x2000 : 0x4000, ip + 6)
    f[ip + 8] = 64; f[ip + 9] = icmp ? 1 : 6
    src.split('.').forEach((o, i) => { f[ip + 12 + i] = Number(o) }); dst.split('.').forEach((o, i) => { f[ip + 16 + i] = Number(o) })
    let sum = 0
    for (let i = 0; i < 20; i += 2) sum += f.readUInt16BE(ip + i)
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
    f.writeUInt16BE(~sum & 0xffff, ip + 10)
    const l4 = ip + 20
    if (icmp) f[l4] = 8; else { f.writeUInt16BE(40000, l4); f.writeUInt16BE(9, l4 + 2); f[l4 + 12] = 0x50; f[l4 + 13] = 0x10; f.writeUInt16BE(1000, l4 + 14) }
    const sock = dgram.createSocket('udp4')
    let left = Number(count)
    const next = () => left-- > 0 ? sock.send(f, 8472, to, next) : sock.close()
    next()
  `
  await topo.exec(from, [process.execPath, '-e', script, to, dstMac, src, dst, kind, String(count)], { timeoutMs: 10_000 })
}

test('an RCO mark that does not describe its packet is dropped as bad_vxlan_rco, one that does is taken, and the node keeps forwarding', { skip, timeout: 60_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'vxlan-rco-bad', timeoutMs: 50_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const { c, a, b, pa, pb } = await pair(t, topo, CONFIG)
    await tablesComplete([a, b], 1)
    const aMac = String(leaseOf(c, h1.underlayIp).backendData.VtepMAC)

    const N = 50
    const other = (s: Counters): number => Object.entries(s.drops).reduce((n, [k, v]) => k === 'bad_vxlan_rco' ? n : n + v, 0)
    for (const kind of ['start', 'protocol', 'icmp', 'fragment', 'good']) {
      const before = await countersOf(a)
      // from h2, which holds a lease: only the RCO mark can make these wrong
      await sendRco(topo, h2, h1.underlayIp, aMac, pb.ip, pa.ip, kind, N)
      await waitFor(async () => (await countersOf(a)).sock.rxCsumRemote - before.sock.rxCsumRemote >= N, { what: `${kind}: ${N} RCO datagrams at a`, timeoutMs: 3000 })
      const after = await countersOf(a)
      const dropped = drop(after, 'bad_vxlan_rco') - drop(before, 'bad_vxlan_rco')
      const taken = after.counters.outside_partial_checksums - before.counters.outside_partial_checksums
      assert.deepEqual({ kind, dropped, taken, otherDrops: other(after) - other(before) }, { kind, dropped: kind === 'good' ? 0 : N, taken: kind === 'good' ? N : 0, otherDrops: 0 })
    }
    assert.equal((await ping(topo, pb, pa.ip, { count: 3 })).received, 3, 'pb -> pa still')
    assert.equal(a.child.running, true)
  })
})

function pick (o: Record<string, number>, ...keys: string[]): Record<string, number | undefined> {
  return Object.fromEntries(keys.map((k) => [k, o[k]]))
}
