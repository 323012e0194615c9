// The --write file is standard pcap: its header bytes follow the format, and
// tcpdump reads our files back with the same packets, bytes and time stamps.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../../src/capture/decode'
import { PCAP_GLOBAL_HLEN, PCAP_RECORD_HLEN, PcapWriter, pcapGlobalHeader, pcapRecordHeader } from '../../src/capture/pcap-writer'
import { WeftError } from '../../src/errors'
import { toolSkipReason } from '../../lab/skip'
import { KERNEL_VXLAN_FRAMES } from '../packet/vectors/kernel-vxlan'
import { tcpdumpRead } from './tcpdump'

const noTcpdump = toolSkipReason('tcpdump')

function tmpdir (t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-pcap-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

test('global and record headers: little-endian, microsecond magic, version 2.4, snaplen, link type', () => {
  const g = pcapGlobalHeader(LINKTYPE_RAW, 1500)
  assert.equal(g.length, PCAP_GLOBAL_HLEN)
  assert.equal(g.toString('hex'), 'd4c3b2a1' + '0200' + '0400' + '00000000' + '00000000' + 'dc050000' + '65000000')
  const r = pcapRecordHeader(1_700_000_000_123_456, 60, 1514)
  assert.equal(r.length, PCAP_RECORD_HLEN)
  assert.deepEqual([r.readUInt32LE(0), r.readUInt32LE(4), r.readUInt32LE(8), r.readUInt32LE(12)], [1_700_000_000, 123_456, 60, 1514])
})

test('the file is the header, then per packet a record header and the bytes', (t) => {
  const file = path.join(tmpdir(t), 'a.pcap')
  const w = PcapWriter.create(file, LINKTYPE_ETHERNET)
  assert.equal(fs.statSync(file).size, PCAP_GLOBAL_HLEN, 'the header is on disk at once')
  const reused = Buffer.from('0102030405', 'hex')
  w.write(2_000_000, reused)
  reused.fill(0) // cap reuses its buffer: the writer must have copied
  w.write(3_000_001, Buffer.alloc(70_000, 7)) // more than the snap length: cut, wire length kept
  w.flush()
  w.close()
  w.close()
  assert.equal(w.packets, 2)
  const b = fs.readFileSync(file)
  let off = PCAP_GLOBAL_HLEN
  assert.deepEqual([b.readUInt32LE(off), b.readUInt32LE(off + 4), b.readUInt32LE(off + 8), b.readUInt32LE(off + 12)], [2, 0, 5, 5])
  assert.equal(b.subarray(off + 16, off + 21).toString('hex'), '0102030405')
  off += 21
  assert.deepEqual([b.readUInt32LE(off), b.readUInt32LE(off + 4), b.readUInt32LE(off + 8), b.readUInt32LE(off + 12)], [3, 1, 65535, 70_000])
  assert.equal(b.length, off + 16 + 65535)
  assert.throws(() => w.write(0, reused), (e: unknown) => e instanceof WeftError && e.code === 'EWRITE')
})

test('a file that cannot be created is a WeftError naming it', (t) => {
  const file = path.join(tmpdir(t), 'no', 'such', 'dir.pcap')
  assert.throws(() => PcapWriter.create(file, LINKTYPE_ETHERNET), (e: unknown) => e instanceof WeftError && e.code === 'EWRITE' && e.message.includes(file))
})

test('tcpdump -r reads our Ethernet file: same packets, bytes and time stamps', { skip: noTcpdump }, (t) => {
  const file = path.join(tmpdir(t), 'vxlan.pcap')
  const frames = KERNEL_VXLAN_FRAMES.map((f) => Buffer.from(f.hex, 'hex'))
  const w = PcapWriter.create(file, LINKTYPE_ETHERNET)
  const t0 = 1_700_000_000_000_000
  frames.forEach((f, i) => w.write(t0 + i * 1_000_001, f))
  w.close()

  const r = tcpdumpRead(file)
  assert.equal(r.linkType, 'EN10MB (Ethernet)')
  assert.equal(r.packets.length, frames.length)
  r.packets.forEach((p, i) => {
    const us = t0 + i * 1_000_001
    assert.equal(p.ts, `${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}`)
    assert.equal(p.hex, frames[i]!.toString('hex'))
    // tcpdump sees the VXLAN and the packet inside.
    assert.match(p.text, /^IP 198\.18\.0\.\d\.\d+ > 198\.18\.0\.\d\.8472: OTV, flags \[I\] \(0x08\), overlay 0, instance 1 \| IP 10\.244\./)
  })
})

test('tcpdump -r reads a RAW (VTEP) file, and an empty one', { skip: noTcpdump }, (t) => {
  const dir = tmpdir(t)
  const inner = Buffer.from(KERNEL_VXLAN_FRAMES[0]!.hex, 'hex').subarray(64) // past outer Eth/IP/UDP/VXLAN and inner Eth
  const raw = path.join(dir, 'raw.pcap')
  const w = PcapWriter.create(raw, LINKTYPE_RAW)
  w.write(1_700_000_000_000_001, inner)
  w.close()
  const r = tcpdumpRead(raw)
  assert.equal(r.linkType, 'RAW (Raw IP)')
  assert.equal(r.packets.length, 1)
  assert.match(r.packets[0]!.text, /^IP 10\.244\.1\.0 > 10\.244\.2\.0: ICMP echo request, id \d+, seq 1, length 64$/)
  assert.equal(r.packets[0]!.hex, inner.toString('hex'))

  const empty = path.join(dir, 'empty.pcap')
  PcapWriter.create(empty, LINKTYPE_ETHERNET).close()
  assert.deepEqual(tcpdumpRead(empty), { linkType: 'EN10MB (Ethernet)', packets: [] })
})
