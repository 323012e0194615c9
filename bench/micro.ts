// Micro-benchmarks of the dataplane's stages, in packets (or segments) per
// second on one core, using the dataplane's own classes on in-memory buffers:
// 1. parse: the IPv4 checks inside.ts makes per packet, and validateIpv4
//    (which also sums the header checksum), over 1450-byte packets
// 2. lookup: Fdb.lookup (inner destination -> peer) and Fdb.source (outer
//    source -> peer) over a table of 256 peers, random destinations
// 3. encapsulate: VxlanEncap.encap (writes the VXLAN and inner Ethernet
//    headers in place) and VxlanEncap.decap (checks them)
// 4. segment: TCP super-packets (IPv4 + TCP with timestamps + 46 x 1398 bytes
//    of payload, behind a VXLAN prefix) sent through PacketIo.send on a UDP
//    socket, which cuts them into segments in the addon (headers and
//    checksums per segment) and sends them with UDP_SEGMENT, to 127.0.0.1 in
//    a network namespace of our own, drained by a socket with UDP_GRO; time
//    inside send() only
// 5. coalesce: TunWrites.tcp over consecutive segments of one flow (what the
//    outside loop does with a UDP_GRO read), and with the writes into a
//    socketpair standing in for the TUN, drained after each batch
// 6. checksum: onesSum over 1400 bytes in JS; the addon's own checksum as the
//    receiving socket's inner check (checkInner) costs it: time inside
//    read() with and without the check, per segment
// Each figure is the median of several short rounds after a warm-up round
// (best round in the JSON); the machine is shared, so the best round is the
// closer estimate of what the code can do, the median of what it did.
//
// usage: node dist/bench/micro.js [--round-ms 60] [--rounds 5] [--json]
//   (root for the segment stage: it needs a network namespace)
import path from 'node:path'
import { PacketBatch, PeerTable, openUdp4, packetPair, trySetUdpGro } from '../src/native'
import type { PacketIo } from '../src/native'
import { Fdb } from '../src/dataplane/fdb'
import { VxlanEncap, VXLAN_HEADROOM } from '../src/backend/vxlan/encap'
import { TunWrites } from '../src/dataplane/tun-writes'
import { newStats, snapshotStats } from '../src/dataplane/stats'
import { VNET_F_DATA_VALID } from '../src/native/vnet'
import { onesSum } from '../src/packet/checksum'
import { setIpv4Checksum, validateIpv4 } from '../src/packet/ipv4'
import { parseCidr } from '../src/packet/net'
import { withTopology } from '../lab/netns'
import { netnsSkipReason } from '../lab/skip'
import { benchArgs } from './args'
import { median } from './stats'

export interface MicroRow {
  stage: 'parse' | 'lookup' | 'encapsulate' | 'segment' | 'coalesce' | 'checksum'
  what: string
  unit: 'packets/s' | 'segments/s'
  /** median of the rounds */
  rate: number
  /** best round */
  best: number
  note?: string
}

export interface MicroOptions {
  roundMs?: number
  rounds?: number
  progress?: (msg: string) => void
}

export interface MicroResult {
  rows: MicroRow[]
  /** why the segment stage (and the native checksum) did not run */
  skipped?: string
}

const MTU = 1450
const MSS = 1398
/** IPv4 20 + TCP 20 + timestamps 12: MSS + this = MTU */
const HDRS = 52
const SUPER_SEGMENTS = 46

// Results of every timed call land here, so the work cannot be optimised away.
let sink = 0

/** Rounds of `fn` (which does some work and returns how many items it did), in items per second. */
function rate (fn: () => number, o: Required<Omit<MicroOptions, 'progress'>>): { rate: number, best: number } {
  const rates: number[] = []
  for (let r = 0; r <= o.rounds; r++) {
    let items = 0
    const t0 = process.hrtime.bigint()
    const end = t0 + BigInt(o.roundMs * 1e6)
    let now = t0
    // bounded by time; every call is a small batch of work
    while (now < end) {
      items += fn()
      now = process.hrtime.bigint()
    }
    if (r > 0) rates.push(items / (Number(now - t0) / 1e9)) // round 0 warms up (and lets V8 optimise)
  }
  return { rate: median(rates), best: Math.max(...rates) }
}

const ip4 = (a: number, b: number, c: number, d: number): number => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0

/**
 * An IPv4 + TCP (with timestamps) header at buf[off], `payload` bytes after
 * it (left as they are), header checksum set, TCP checksum zero.
 */
function writeTcpPacket (buf: Buffer, off: number, payload: number, seq: number): void {
  const total = HDRS + payload
  buf.fill(0, off, off + HDRS)
  buf[off] = 0x45
  buf.writeUInt16BE(total, off + 2)
  buf.writeUInt16BE(0x1234, off + 4)
  buf[off + 6] = 0x40 // DF
  buf[off + 8] = 64
  buf[off + 9] = 6
  buf.writeUInt32BE(ip4(10, 244, 1, 2), off + 12)
  buf.writeUInt32BE(ip4(10, 244, 2, 2), off + 16)
  setIpv4Checksum(buf, off)
  const t = off + 20
  buf.writeUInt16BE(40000, t)
  buf.writeUInt16BE(5201, t + 2)
  buf.writeUInt32BE(seq >>> 0, t + 4)
  buf.writeUInt32BE(0x01020304, t + 8)
  buf[t + 12] = 8 << 4 // 32-byte header
  buf[t + 13] = 0x10 // ACK
  buf.writeUInt16BE(502, t + 14)
  buf[t + 20] = 1 // NOP NOP TS
  buf[t + 21] = 1
  buf[t + 22] = 8
  buf[t + 23] = 10
  buf.writeUInt32BE(1000, t + 24)
  buf.writeUInt32BE(2000, t + 28)
}

/** 256 peers: 10.244.<i>.0/24 -> 198.18.1.<i>, the FDB of a 257-node cluster. */
function peerTable (): Fdb {
  const fdb = new Fdb({ network: parseCidr('10.244.0.0/16'), subnetLen: 24, port: 8472, capacity: 512 })
  for (let i = 0; i < 256; i++) fdb.set(parseCidr(`10.244.${i}.0/24`), ip4(198, 18, 1, i), Buffer.from([0x02, 0, 0, 0, 1, i]))
  return fdb
}

// --- in-memory stages --------------------------------------------------------

function parseRows (o: Required<Omit<MicroOptions, 'progress'>>): MicroRow[] {
  const n = 64
  const slot = 2048
  const slab = Buffer.alloc(n * slot)
  const offsets = new Uint32Array(n)
  const lengths = new Uint32Array(n)
  for (let i = 0; i < n; i++) {
    offsets[i] = i * slot + 64
    lengths[i] = MTU
    writeTcpPacket(slab, offsets[i], MTU - HDRS, i * MSS)
  }
  // what inside.ts checks before its lookup: length, version, MTU, then the destination
  const inside = rate(() => {
    let acc = 0
    for (let i = 0; i < n; i++) {
      const off = offsets[i]
      const len = lengths[i]
      if (len < 20 || (slab[off] >> 4) !== 4 || len > MTU) continue
      acc ^= (slab[off + 16] << 24) | (slab[off + 17] << 16) | (slab[off + 18] << 8) | slab[off + 19]
    }
    sink ^= acc
    return n
  }, o)
  const full = rate(() => {
    let acc = 0
    for (let i = 0; i < n; i++) acc += validateIpv4(slab, offsets[i], lengths[i])
    sink ^= acc
    return n
  }, o)
  return [
    { stage: 'parse', what: 'inside.ts header checks (length, version, MTU, destination)', unit: 'packets/s', ...inside },
    { stage: 'parse', what: 'validateIpv4 (all fields and the header checksum)', unit: 'packets/s', ...full }
  ]
}

function lookupRows (o: Required<Omit<MicroOptions, 'progress'>>): MicroRow[] {
  const fdb = peerTable()
  const n = 1024
  const dsts = new Int32Array(n)
  const srcs = new Int32Array(n)
  let seed = 12345
  const rnd = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) | 0; return (seed >>> 8) & 0xffff }
  for (let i = 0; i < n; i++) {
    dsts[i] = ip4(10, 244, rnd() & 255, rnd() & 255) | 0
    srcs[i] = ip4(198, 18, 1, rnd() & 255) | 0
  }
  const dst = rate(() => {
    let acc = 0
    for (let i = 0; i < n; i++) acc += fdb.lookup(dsts[i])
    sink ^= acc
    return n
  }, o)
  const src = rate(() => {
    let acc = 0
    for (let i = 0; i < n; i++) acc += fdb.source(srcs[i])
    sink ^= acc
    return n
  }, o)
  return [
    { stage: 'lookup', what: 'Fdb.lookup, inner destination -> peer (256 peers)', unit: 'packets/s', ...dst },
    { stage: 'lookup', what: 'Fdb.source, outer source -> peer (256 peers)', unit: 'packets/s', ...src }
  ]
}

function encapRows (o: Required<Omit<MicroOptions, 'progress'>>): MicroRow[] {
  const fdb = peerTable()
  const n = 64
  const slot = 2048
  const slab = Buffer.alloc(n * slot)
  const offsets = new Uint32Array(n)
  for (let i = 0; i < n; i++) {
    offsets[i] = i * slot + 64
    writeTcpPacket(slab, offsets[i], MTU - HDRS, 0)
  }
  const ourMac = Buffer.from([0x02, 0, 0, 0, 0, 0xfe])
  const vx = new VxlanEncap(1, ourMac, fdb)
  const enc = rate(() => {
    let acc = 0
    for (let i = 0; i < n; i++) acc += vx.encap(slab, offsets[i], MTU, i & 255)
    sink ^= acc
    return n
  }, o)
  // what peer 7 receives from us: decap checks the inner MAC is its own
  for (let i = 0; i < n; i++) vx.encap(slab, offsets[i], MTU, 7)
  const peer7 = new VxlanEncap(1, fdb.macs.subarray(7 * 6, 7 * 6 + 6), fdb)
  const starts = offsets.map((x) => x - VXLAN_HEADROOM)
  const dec = rate(() => {
    let acc = 0
    for (let i = 0; i < n; i++) acc += peer7.decap(slab, starts[i], MTU + VXLAN_HEADROOM, 0)
    sink ^= acc
    return n
  }, o)
  if (peer7.decap(slab, starts[0], MTU + VXLAN_HEADROOM, 0) !== VXLAN_HEADROOM) throw new Error('micro: decap refused what encap wrote')
  return [
    { stage: 'encapsulate', what: 'VxlanEncap.encap (VXLAN + inner Ethernet, in place)', unit: 'packets/s', ...enc },
    { stage: 'encapsulate', what: 'VxlanEncap.decap (flags, VNI, our MAC, IPv4)', unit: 'packets/s', ...dec }
  ]
}

function coalesceRows (o: Required<Omit<MicroOptions, 'progress'>>): MicroRow[] {
  // one UDP_GRO read's worth: 64 VXLAN datagrams of one TCP flow, back to back
  const n = 64
  const stride = VXLAN_HEADROOM + MTU
  const maxWrites = n
  const hdrBase = n * stride
  const slab = Buffer.alloc(hdrBase + TunWrites.headerArea(maxWrites))
  const ips = new Uint32Array(n)
  for (let i = 0; i < n; i++) {
    ips[i] = i * stride + VXLAN_HEADROOM
    writeTcpPacket(slab, ips[i], MSS, 1_000_000 + i * MSS)
    slab.fill(i, ips[i] + HDRS, ips[i] + MTU)
  }
  // closing a run rewrites its first segment's headers: put them back each time
  const pristine = Buffer.from(slab.subarray(0, hdrBase))
  const [tun, peer] = packetPair(64)
  try {
    const pieces = new PacketBatch({ size: 2 * maxWrites + n, slotSize: 1, slab })
    const stats = newStats()
    const writes = new TunWrites(tun, pieces, true, hdrBase, maxWrites, stats, VNET_F_DATA_VALID)
    const rx = new PacketBatch({ size: 64, slotSize: 65536 + 64 })
    peer.receiveInto(rx)
    let jsNs = 0n
    const round = (): void => {
      for (let i = 0; i < n; i++) if (slab[ips[i] + 2] !== pristine[ips[i] + 2] || slab[ips[i] + 3] !== pristine[ips[i] + 3]) pristine.copy(slab, ips[i], ips[i], ips[i] + HDRS)
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < n; i++) writes.tcp(ips[i], MTU)
      jsNs += process.hrtime.bigint() - t0
      writes.send()
      drain(peer, 100)
    }
    // per round: segments per second of wall time (all of it), and of time inside TunWrites.tcp
    const all: number[] = []
    const js: number[] = []
    for (let r = 0; r <= o.rounds; r++) {
      jsNs = 0n
      let segs = 0
      const t0 = process.hrtime.bigint()
      const end = t0 + BigInt(o.roundMs * 1e6)
      let now = t0
      while (now < end) {
        round()
        segs += n
        now = process.hrtime.bigint()
      }
      if (r === 0) continue // warm-up
      all.push(segs / (Number(now - t0) / 1e9))
      js.push(segs / (Number(jsNs) / 1e9))
    }
    const s = snapshotStats(stats)
    const per = s.counters.outside_super_packets > 0 ? s.counters.outside_coalesced / s.counters.outside_super_packets : 0
    const lost = s.drops.tun_write ?? 0
    return [
      { stage: 'coalesce', what: 'TunWrites.tcp alone (JS, per segment)', unit: 'segments/s', rate: median(js), best: Math.max(...js), note: `${per.toFixed(1)} segments per super-packet` },
      { stage: 'coalesce', what: 'TunWrites.tcp + writev of the super-packets (socketpair as TUN)', unit: 'segments/s', rate: median(all), best: Math.max(...all), ...(lost > 0 ? { note: `${lost} writes refused` } : {}) }
    ]
  } finally {
    tun.close()
    peer.close()
  }
}

function checksumRows (o: Required<Omit<MicroOptions, 'progress'>>): MicroRow[] {
  const buf = Buffer.alloc(1400 * 16)
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 131) & 255
  const r = rate(() => {
    let acc = 0
    for (let i = 0; i < 16; i++) acc += onesSum(buf, i * 1400, 1400)
    sink ^= acc
    return 16
  }, o)
  return [{ stage: 'checksum', what: 'onesSum over 1400 bytes (JS)', unit: 'packets/s', ...r, note: `${(r.rate * 1400 / 1e9).toFixed(2)} GB/s` }]
}

/** Read until the fd has nothing more (bounded); returns packets read. */
function drain (io: PacketIo, maxReads: number): number {
  let got = 0
  for (let k = 0; k < maxReads; k++) {
    const n = io.read()
    if (n <= 0) break
    got += n
  }
  return got
}

// --- the segment stage (in a network namespace) ------------------------------

interface SegmentFigures {
  /** segments per second of time inside send() */
  send: number
  sendBest: number
  /** segments per second of time inside read(), with and without the inner checksum check */
  recvChecked: number
  recvPlain: number
  recvCheckedBest: number
  recvPlainBest: number
  segmentsSent: number
  segmentsReceived: number
  gro: boolean
  gsoRefused: number
  badChecksums: number
}

/** Runs in the namespace: super-packets to ourselves over 127.0.0.1. */
function segmentChild (o: Required<Omit<MicroOptions, 'progress'>>): SegmentFigures {
  const LO = ip4(127, 0, 0, 1)
  const rxSock = openUdp4({ addr: LO, port: 0, batch: 64, rcvbuf: 32 << 20 })
  const txSock = openUdp4({ addr: LO, port: 0, batch: 64, sndbuf: 8 << 20 })
  try {
    const gro = trySetUdpGro(rxSock.io)
    const rx = new PacketBatch({ size: 64, slotSize: 65536 + 64 })
    const k = 8
    const superLen = HDRS + SUPER_SEGMENTS * MSS
    const tx = new PacketBatch({ size: k, slotSize: 65536 + 128, headroom: 64 })
    const fdb = peerTable()
    const vx = new VxlanEncap(1, Buffer.from([0x02, 0, 0, 0, 0, 0xfe]), fdb)
    const peers = new PeerTable(1)
    peers.set(0, LO, rxSock.port)
    const off = new Uint32Array(k)
    for (let i = 0; i < k; i++) {
      const ip = tx.offsets[i]
      writeTcpPacket(tx.slab, ip, SUPER_SEGMENTS * MSS, i * 100_000)
      tx.slab.fill(i + 1, ip + HDRS, ip + superLen)
      off[i] = vx.encap(tx.slab, ip, superLen, 0)
    }
    const reset = (): void => {
      for (let i = 0; i < k; i++) {
        tx.offsets[i] = off[i]
        tx.lengths[i] = superLen + VXLAN_HEADROOM
        tx.dests[i] = 0
        tx.segs[i] = (1 << 16) | MSS
      }
    }
    txSock.io.sendFrom(tx, peers, { gso: true, inner: VXLAN_HEADROOM })
    let sendNs = 0n
    let recvNs = 0n
    let received = 0
    let bad = 0
    const recv = (): void => {
      for (let r = 0; r < 1000; r++) {
        const t0 = process.hrtime.bigint()
        const n = rxSock.io.read()
        recvNs += process.hrtime.bigint() - t0
        if (n <= 0) return
        for (let i = 0; i < n; i++) {
          const len = rx.lengths[i]
          if (len === 0) continue
          received += rx.segs[i] > 0 ? Math.ceil(len / rx.segs[i]) : 1
          if (rx.bad[2 * i] !== 0 || rx.bad[2 * i + 1] !== 0) bad++
        }
      }
    }
    // k super-packets per call; what the kernel does not take (a full
    // receive queue) is sent again after draining, from the front
    const round = (): number => {
      reset()
      let left = k
      for (let tries = 0; left > 0 && tries < 100; tries++) {
        const t0 = process.hrtime.bigint()
        const sent = txSock.io.send(left)
        sendNs += process.hrtime.bigint() - t0
        recv()
        if (sent >= left) break
        for (let i = sent; i < left; i++) {
          tx.offsets[i - sent] = tx.offsets[i]
          tx.lengths[i - sent] = tx.lengths[i]
          tx.segs[i - sent] = tx.segs[i]
        }
        left -= sent
      }
      return k * SUPER_SEGMENTS
    }
    // One round of wall time; the figures are segments per second of time inside send() and read().
    const timed = (): { send: number, recv: number } => {
      sendNs = 0n
      recvNs = 0n
      received = 0
      let sent = 0
      const end = process.hrtime.bigint() + BigInt(o.roundMs * 1e6)
      while (process.hrtime.bigint() < end) sent += round()
      return { send: sent / (Number(sendNs) / 1e9), recv: received / (Number(recvNs) / 1e9) }
    }
    // Rounds without and with the inner checksum checked on receive, in
    // pairs, so that both see the same load on a shared machine.
    const send: number[] = []
    const plain: number[] = []
    const checked: number[] = []
    for (let r = 0; r <= o.rounds; r++) {
      rxSock.io.receiveInto(rx)
      const a = timed()
      rxSock.io.receiveInto(rx, { checkInner: VXLAN_HEADROOM })
      const b = timed()
      if (r === 0) continue // warm-up
      send.push(a.send, b.send)
      plain.push(a.recv)
      checked.push(b.recv)
    }
    const s = txSock.io.stats()
    const r = rxSock.io.stats()
    return {
      send: median(send),
      sendBest: Math.max(...send),
      recvChecked: median(checked),
      recvCheckedBest: Math.max(...checked),
      recvPlain: median(plain),
      recvPlainBest: Math.max(...plain),
      segmentsSent: s.txSegmented,
      segmentsReceived: r.rxGroSegments > 0 ? r.rxGroSegments : r.rxPackets,
      gro,
      gsoRefused: s.txGsoRefused,
      badChecksums: bad
    }
  } finally {
    txSock.io.close()
    rxSock.io.close()
  }
}

/** The segment rows: in a fresh namespace (its own loopback), as a child process. */
async function segmentRows (o: Required<Omit<MicroOptions, 'progress'>>): Promise<MicroRow[]> {
  const out = await withTopology(undefined, { hosts: 1, label: 'bench-micro', timeoutMs: 60_000 }, async (topo) => {
    const r = await topo.exec(topo.hosts[0], [process.execPath, path.join(__dirname, 'micro.js'), '--segment-child', '--round-ms', String(o.roundMs), '--rounds', String(o.rounds)], { timeoutMs: 30_000 })
    const line = r.stdout.split('\n').find((l) => l.startsWith('{"segment"'))
    if (line === undefined) throw new Error(`micro: the segment stage printed no result: ${r.stdout.slice(-300)}${r.stderr.slice(-300)}`)
    return (JSON.parse(line) as { segment: SegmentFigures }).segment
  })
  const notes: string[] = []
  if (!out.gro) notes.push('no UDP_GRO on the receiver')
  if (out.gsoRefused > 0) notes.push('UDP_SEGMENT refused: sent one datagram per segment')
  if (out.badChecksums > 0) notes.push(`${out.badChecksums} reads with bad inner checksums`)
  // preemption only ever adds time: the best rounds are the closer estimate of the check's own cost
  const checkNs = 1e9 / out.recvCheckedBest - 1e9 / out.recvPlainBest
  return [
    { stage: 'segment', what: 'PacketIo.send of TCP super-packets: cut in the addon, UDP_SEGMENT to 127.0.0.1', unit: 'segments/s', rate: out.send, best: out.sendBest, note: [`${(out.send * (MSS + HDRS + VXLAN_HEADROOM) * 8 / 1e9).toFixed(1)} Gbit/s of datagrams`, ...notes].join('; ') },
    { stage: 'checksum', what: 'native, receive with the inner TCP checksum checked (UDP_GRO read)', unit: 'segments/s', rate: out.recvChecked, best: out.recvCheckedBest, note: `without the check ${fmtRate(out.recvPlain)}/s (best ${fmtRate(out.recvPlainBest)}/s)${checkNs > 0 ? `: ~${checkNs.toFixed(0)} ns per 1398-byte check, from the best rounds` : ''}` }
  ]
}

// --- all of it -----------------------------------------------------------------

export async function runMicro (opts: MicroOptions = {}): Promise<MicroResult> {
  const o = { roundMs: opts.roundMs ?? 60, rounds: opts.rounds ?? 5 }
  if (!(o.roundMs >= 10 && o.roundMs <= 5000) || !Number.isInteger(o.rounds) || o.rounds < 1 || o.rounds > 50) throw new RangeError('micro: --round-ms must be 10..5000 and --rounds 1..50')
  const progress = opts.progress ?? (() => {})
  const rows: MicroRow[] = []
  progress('micro: parse, lookup, encapsulate ...')
  rows.push(...parseRows(o), ...lookupRows(o), ...encapRows(o))
  progress('micro: coalesce, checksum ...')
  rows.push(...coalesceRows(o), ...checksumRows(o))
  const skipped = netnsSkipReason()
  if (skipped === undefined) {
    progress('micro: segment (in a network namespace) ...')
    rows.push(...await segmentRows(o))
  } else {
    progress(`micro: segment stage skipped: ${skipped}`)
  }
  const order = ['parse', 'lookup', 'encapsulate', 'segment', 'coalesce', 'checksum']
  rows.sort((a, b) => order.indexOf(a.stage) - order.indexOf(b.stage))
  return skipped === undefined ? { rows } : { rows, skipped }
}

export function fmtRate (x: number): string {
  if (!Number.isFinite(x)) return '-'
  if (x >= 1e9) return `${(x / 1e9).toFixed(2)} G`
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`
  return x.toFixed(0)
}

export function printMicro (m: MicroResult, print: (line: string) => void): void {
  print('micro-benchmarks, one core, median of rounds (best round)')
  print(`${'stage'.padEnd(12)} ${'rate'.padStart(11)} ${'(best)'.padStart(11)}  unit        what`)
  for (const r of m.rows) {
    print(`${r.stage.padEnd(12)} ${fmtRate(r.rate).padStart(11)} ${`(${fmtRate(r.best)})`.padStart(11)}  ${r.unit.padEnd(10)}  ${r.what}${r.note !== undefined ? ` [${r.note}]` : ''}`)
  }
  if (m.skipped !== undefined) print(`segment and native checksum skipped: ${m.skipped}`)
}

async function main (): Promise<void> {
  const flags = benchArgs('micro', {
    'round-ms': { type: 'string', default: '60' },
    rounds: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
    // how the segment stage runs itself in a namespace of its own (not for people)
    'segment-child': { type: 'boolean', default: false }
  })
  const o = { roundMs: Number(flags['round-ms']), rounds: Number(flags.rounds) }
  if (flags['segment-child']) {
    console.log(JSON.stringify({ segment: segmentChild(o) }))
    return
  }
  const m = await runMicro({ ...o, progress: (msg) => process.stderr.write(`${msg}\n`) })
  if (flags.json) console.log(JSON.stringify({ bench: 'micro', ...m }))
  else printMicro(m, (l) => console.log(l))
  if (sink === 0.5) console.log('') // never: keeps `sink` observable
}

if (require.main === module) main().catch((err) => { console.error(err); process.exitCode = 1 })
