// The WireGuard transport cipher (ChaCha20-Poly1305, RFC 8439) with each
// library the addon can use, on one core, in batches of 64 packets as the
// dataplane seals and opens them:
// 1. library: the addon's own loop (weft_wg_bench, native/src/wg_crypto.c)
//    calls the same per-packet function as the batch path, with
//    - libsodium: crypto_aead_chacha20poly1305_ietf_{en,de}crypt_detached
//    - OpenSSL (node's own 3.0), a context per key, only the nonce set per
//      packet (EVP_CipherInit_ex with the cipher and key NULL)
//    - OpenSSL, cipher and key set again for every packet
//    These figures chose native/src/wg_crypto.c's hot-path library (its
//    comment holds the figures it was chosen by).
// 2. batch: WgSealer.seal and WgOpener.open as the dataplane calls them (one
//    N-API call per 64 plain packets: headers, copy, padding, cipher; the
//    inner checksum check on open), timed around the call in JS.
// Figures are ns per packet and Gbit/s of packet bytes, the median of the
// rounds (the best round in brackets: the machine is shared, so the best is
// the closer estimate of what the code can do). Pin it to one core with
// taskset to keep the scheduler out.
//
// usage: node dist/bench/wg-cipher.js [--rounds 7] [--batches 400] [--sizes 64,1420] [--json]
import os from 'node:os'
import { PacketBatch } from '../src/native/batch'
import { cipherBench, WgKeys, WgLib, WgOpener, WgSealer } from '../src/native/wg'
import { benchArgs, numberFlag } from './args'
import { median } from './stats'

const BATCH = 64

interface Row {
  what: string
  size: number
  /** ns per packet: median of the rounds, and the best */
  seal: number
  sealBest: number
  open: number
  openBest: number
}

const LIBS: Array<[string, number]> = [
  ['libsodium', WgLib.SODIUM],
  ['OpenSSL, nonce per packet', WgLib.OPENSSL_IV],
  ['OpenSSL, key+nonce per packet', WgLib.OPENSSL_FULL]
]

function library (name: string, lib: number, size: number, rounds: number, batches: number): Row {
  cipherBench(lib, size, BATCH, Math.max(1, batches >> 2)) // warm up: caches, the CPU's clock
  const seal: number[] = []
  const open: number[] = []
  for (let r = 0; r < rounds; r++) {
    const [s, o] = cipherBench(lib, size, BATCH, batches)
    seal.push(s / (batches * BATCH))
    open.push(o / (batches * BATCH))
  }
  return { what: name, size, seal: median(seal), sealBest: Math.min(...seal), open: median(open), openBest: Math.min(...open) }
}

/** IPv4 + UDP, `size` bytes in all (at least 28), checksum 0 (none). */
function udpPacket (buf: Buffer, at: number, size: number): void {
  buf.fill(0x5a, at, at + size)
  buf[at] = 0x45
  buf[at + 1] = 0
  buf.writeUInt16BE(size, at + 2)
  buf.writeUInt32BE(0, at + 4)
  buf[at + 8] = 64
  buf[at + 9] = 17
  buf.writeUInt16BE(size - 20, at + 24)
  buf.writeUInt16BE(0, at + 26)
}

function batchPath (size: number, rounds: number, batches: number): Row {
  const keys = new WgKeys(2)
  keys.set(0, Buffer.alloc(32, 7))
  const input = new PacketBatch({ size: BATCH, slotSize: 2048 })
  const output = new PacketBatch({ size: BATCH, slotSize: 2048 })
  const sealer = new WgSealer({ keys, input, output, mtu: 1420 })
  const opener = new WgOpener({ keys, slab: output.slab, max: BATCH })
  for (let i = 0; i < BATCH; i++) {
    udpPacket(input.slab, input.offsets[i], size)
    input.lengths[i] = size
    sealer.keySlot[i] = 0
    opener.offsets[i] = output.offsets[i]
    opener.keySlot[i] = 0
  }
  let counter = 0
  const round = (n: number): [number, number] => {
    let ts = 0n
    let to = 0n
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < BATCH; i++) sealer.counter[i] = counter++
      const t0 = process.hrtime.bigint()
      const m = sealer.seal(BATCH)
      const t1 = process.hrtime.bigint()
      for (let j = 0; j < m; j++) opener.lengths[j] = output.lengths[j]
      const t2 = process.hrtime.bigint()
      if (opener.open(m) !== BATCH) throw new Error('a sealed packet did not open')
      to += process.hrtime.bigint() - t2
      ts += t1 - t0
    }
    return [Number(ts) / (n * BATCH), Number(to) / (n * BATCH)]
  }
  round(Math.max(1, batches >> 2))
  const seal: number[] = []
  const open: number[] = []
  for (let r = 0; r < rounds; r++) {
    const [s, o] = round(batches)
    seal.push(s)
    open.push(o)
  }
  const hot = LIBS.find(([, l]) => l === WgLib.HOT)?.[0] ?? String(WgLib.HOT)
  return { what: `WgSealer/WgOpener (${hot})`, size, seal: median(seal), sealBest: Math.min(...seal), open: median(open), openBest: Math.min(...open) }
}

function main (): void {
  const args = benchArgs('wg-cipher', {
    rounds: { type: 'string', default: '7' },
    batches: { type: 'string', default: '400', hint: 'N (of 64 packets, per round)' },
    sizes: { type: 'string', default: '64,1420' },
    json: { type: 'boolean', default: false }
  })
  const rounds = numberFlag('rounds', args.rounds, { min: 1, max: 1000, integer: true })
  const batches = numberFlag('batches', args.batches, { min: 1, max: 1e6, integer: true })
  const sizes = args.sizes.split(',').map((s) => numberFlag('sizes', s, { min: 28, max: 1420, integer: true }))
  const rows: Row[] = []
  for (const size of sizes) {
    for (const [name, lib] of LIBS) rows.push(library(name, lib, size, rounds, batches))
    rows.push(batchPath(size, rounds, batches))
  }
  if (args.json) {
    process.stdout.write(JSON.stringify({ cpu: os.cpus()[0]?.model, batch: BATCH, rounds, batches, rows }, null, 2) + '\n')
    return
  }
  const gbit = (size: number, ns: number): string => (size * 8 / ns).toFixed(2)
  const ns = (m: number, b: number): string => `${m.toFixed(0)} (${b.toFixed(0)})`
  process.stdout.write(`ChaCha20-Poly1305, batches of ${BATCH}, one core (${os.cpus()[0]?.model ?? '?'}); ns/packet median (best), Gbit/s of the median\n`)
  process.stdout.write(`${'what'.padEnd(46)} ${'bytes'.padStart(5)} ${'seal ns'.padStart(13)} ${'Gbit/s'.padStart(7)} ${'open ns'.padStart(13)} ${'Gbit/s'.padStart(7)}\n`)
  for (const r of rows) {
    process.stdout.write(`${r.what.padEnd(46)} ${String(r.size).padStart(5)} ${ns(r.seal, r.sealBest).padStart(13)} ${gbit(r.size, r.seal).padStart(7)} ${ns(r.open, r.openBest).padStart(13)} ${gbit(r.size, r.open).padStart(7)}\n`)
  }
}

main()
