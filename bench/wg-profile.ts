// Where a WireGuard packet's time goes in weft: both daemons of a weft
// wireguard path profiled with `perf` while one TCP stream runs pod to pod,
// each sample put in one bucket by its leaf frame (and the frames above it):
//   crypto     OpenSSL's ChaCha20 and Poly1305 (node's own OpenSSL, linked
//              into the node binary), and apart from them the EVP calls
//              that drive them per packet (the nonce set through
//              EVP_CipherInit_ex, parameters looked up by name, the tag)
//   kernel     time in the kernel, by the system call it ran under: TUN
//              read, TUN write (which delivers to the pod's TCP in the same
//              call), UDP send (which crosses the veths and the bridge to the
//              other node's socket in the same call), UDP receive, epoll,
//              and anything else (interrupts, other calls)
//   addon      the addon's own C outside the cipher: copies, checksums,
//              segmentation, batch bookkeeping (memcpy/memset called from it)
//   JS         weft's TypeScript, JIT-compiled (the daemons run with
//              --perf-basic-prof, so perf names the functions) and V8's
//              builtins it calls
//   runtime    the rest of node: V8 (GC, the interpreter's runtime calls),
//              N-API, libuv
// 1. two weft daemons (`{"Backend":{"Type":"wireguard"}}`, each with its own
//    key file), NODE_OPTIONS=--perf-basic-prof for them alone; a pod on
//    each at MTU 1420 (its gso_max_size as weft's CNI plugin sets it)
// 2. warm-up: 300 pings at 2 ms and 3 s of TCP, unmeasured
// 3. iperf3, one stream pod on h1 -> pod on h2, --seconds + 2 s; after 1 s,
//    `perf record -F --freq -g -p <both daemons>` for --seconds, with the
//    daemons' CPU (/proc) and dataplane counters (batches, packets) read
//    around it
// 4. `perf script`, every sample bucketed; per daemon: cores, the share of
//    each bucket, and the time per batch (TUN reads on the sender, socket
//    reads on the receiver) and per packet (1420-byte segment) it stands for
// 5. beside it, the cipher alone (the addon's cipherBench: OpenSSL, batches
//    of 64, 1436-byte messages) times the packets each daemon sealed or
//    opened: what the crypto should cost on an idle core
// Needs root, iperf3 and perf. The perf data and the daemons' perf maps are
// deleted at the end (--keep DIR keeps perf.data and a copy of the maps).
//
// usage: sudo node dist/bench/wg-profile.js [--seconds 5] [--congestion cubic] [--freq 999] [--keep DIR] [--json]
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { formatCidr } from '../src/packet/net'
import { podGsoMaxSize } from '../src/cni/gso'
import { cipherBench, WgLib } from '../src/native/wg'
import { waitFor, withTopology } from '../lab/netns'
import type { Host } from '../lab/netns'
import { addPods } from '../lab/pods'
import { iperf, ping } from '../lab/traffic'
import { netnsSkipReason, toolSkipReason } from '../lab/skip'
import { backgroundLoad, cpuOf, nodePid } from '../lab/cpu'
import { cluster, startDaemon } from '../lab/daemons'
import { benchArgs, congestionOption, numberFlag } from './args'
import { proveReachable, weftCounters } from './paths'
import type { Weft } from './paths'
import { WARM_UP_PINGS } from './rounds'
import { median } from './stats'

const run = promisify(execFile)
const CONFIG = JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'wireguard' } })
/** The cipher's batch, as the dataplane seals and opens */
const BATCH = 64
/** A full-size message's ciphertext: a 1420-byte packet (the device's MTU) plus nothing (1420 is a multiple of 4, padded to 1420: never past the MTU) */
const CIPHER_LEN = 1420

export const BUCKETS = ['crypto: ChaCha20, Poly1305', 'crypto: OpenSSL EVP calls per packet', 'kernel: TUN read', 'kernel: TUN write (and the pod\'s receive)', 'kernel: UDP send (and the other node\'s receive)', 'kernel: UDP receive', 'kernel: epoll/futex (waiting)', 'kernel: interrupts, other', 'addon (copies, checksums, segmentation)', 'JS (weft, JIT)', 'JS (V8 builtins)', 'runtime (V8, GC, N-API, libuv)', 'other'] as const
export type Bucket = typeof BUCKETS[number]

/** One frame of a perf callchain: the symbol and the object it is in. */
export interface Frame { sym: string, dso: string }

const CRYPTO_SYM = /chacha|poly1305|^ossl_|^EVP_|^OPENSSL_|^CRYPTO_|^ERR_|^evp_|cipher|seal_openssl|open_openssl|weft_wg_(seal|open)_one|^seal_with|^open_with|clean_upper/i
const ADDON_DSO = /weft_native\.node|\.node$/
const JIT_DSO = /perf-\d+\.map/
const LIBC_DSO = /libc[.-]|libc\.so/
const KERNEL_DSO = /kernel\.kallsyms|\[kernel|vmlinux/

/** The bucket of a sample from its callchain, leaf first. */
export function bucketOf (frames: readonly Frame[]): Bucket {
  const leaf = frames[0]
  if (leaf === undefined) return 'other'
  if (KERNEL_DSO.test(leaf.dso)) {
    const syms = frames.filter((f) => KERNEL_DSO.test(f.dso)).map((f) => f.sym)
    const has = (re: RegExp): boolean => syms.some((s) => re.test(s))
    if (has(/tun_chr_read_iter|tun_do_read/)) return 'kernel: TUN read'
    if (has(/tun_chr_write_iter|tun_get_user/)) return 'kernel: TUN write (and the pod\'s receive)'
    if (has(/udp_sendmsg|__sys_sendmmsg|__sys_sendmsg|udp_send_skb/)) return 'kernel: UDP send (and the other node\'s receive)'
    if (has(/udp_recvmsg|__sys_recvmmsg|__sys_recvmsg|udp_gro/)) return 'kernel: UDP receive'
    if (has(/epoll_wait|do_epoll|ep_poll|futex|schedule$|__schedule/)) return 'kernel: epoll/futex (waiting)'
    return 'kernel: interrupts, other'
  }
  // the cipher's own rounds; else the EVP calls around them (per packet: the
  // nonce set through EVP_CipherInit_ex, parameters looked up by name, the
  // tag): the leaf, or a frame above it up to the addon's own code
  if (/chacha|poly1305/i.test(leaf.sym) && !ADDON_DSO.test(leaf.dso)) return 'crypto: ChaCha20, Poly1305'
  for (const f of frames) {
    if (CRYPTO_SYM.test(f.sym)) return 'crypto: OpenSSL EVP calls per packet'
    if (ADDON_DSO.test(f.dso) || JIT_DSO.test(f.dso)) break
  }
  if (ADDON_DSO.test(leaf.dso)) return 'addon (copies, checksums, segmentation)'
  if (LIBC_DSO.test(leaf.dso) && /mem(cpy|move|set)|memcmp/.test(leaf.sym)) {
    // a copy: whose is it?
    const caller = frames.slice(1).find((f) => !LIBC_DSO.test(f.dso))
    if (caller !== undefined && ADDON_DSO.test(caller.dso)) return 'addon (copies, checksums, segmentation)'
    if (caller !== undefined && JIT_DSO.test(caller.dso)) return 'JS (weft, JIT)'
    return 'runtime (V8, GC, N-API, libuv)'
  }
  if (JIT_DSO.test(leaf.dso)) return 'JS (weft, JIT)'
  if (/^Builtins?_|^Builtin:/.test(leaf.sym)) return 'JS (V8 builtins)'
  if (/\bnode$|libnode|libuv|libstdc\+\+|libgcc/.test(leaf.dso) || /^v8::|^node::|^napi_|^uv_|^Napi::/.test(leaf.sym)) return 'runtime (V8, GC, N-API, libuv)'
  if (LIBC_DSO.test(leaf.dso)) return 'runtime (V8, GC, N-API, libuv)'
  return 'other'
}

export interface PerfSample { pid: number, frames: Frame[] }

/**
 * `perf script -F pid,tid,ip,sym,dso` output with callchains: a header line
 * per sample (`pid/tid`, padded with spaces when short), then its frames,
 * one per line, indented: `   ffffffff8123 sym+0x12 ([kernel.kallsyms])`.
 */
export function parsePerfScript (text: string): PerfSample[] {
  const out: PerfSample[] = []
  let cur: PerfSample | undefined
  for (const line of text.split('\n')) {
    if (line.trim() === '') { cur = undefined; continue }
    // a frame: address, symbol, (object); anything else starts a sample (perf pads a short pid with spaces)
    const f = /^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$/.exec(line)
    if (f === null || cur === undefined) {
      const m = /^\s*(?:\S.*?\s+)?(\d+)\/(\d+)\s*$/.exec(line)
      if (m === null) continue
      cur = { pid: Number(m[1]), frames: [] }
      out.push(cur)
      continue
    }
    cur.frames.push({ sym: f[1].replace(/\+0x[0-9a-f]+$/, ''), dso: f[2] })
  }
  return out
}

export interface DaemonProfile {
  node: string
  role: 'sender' | 'receiver'
  pid: number
  /** CPU over the perf window, cores (user + sys from /proc) */
  cores: number
  /** user and sys seconds over the window */
  user: number
  sys: number
  samples: number
  /** share of the samples, by bucket (0..1) */
  shares: Record<string, number>
  /** the batches the role's loop took (TUN reads on the sender, socket reads on the receiver) and the packets (segments) in them */
  batches: number
  packets: number
  /** µs of CPU per batch, by bucket and in all */
  usPerBatch: Record<string, number>
  /** ns of CPU per packet (segment), in all */
  nsPerPacket: number
  /** the top symbols (leaf), share of the samples */
  top: Array<{ sym: string, dso: string, bucket: string, share: number }>
  /** the cipher alone, ns per 1420-byte message (seal on the sender, open on the receiver), median of rounds, on whichever core was free */
  cipherNsPerPacket: number
  /** what that cipher cost, times the packets, would be as a share of the daemon's CPU */
  cipherShare: number
}

export interface WgProfile {
  bench: 'wg-profile'
  seconds: number
  congestion: string
  freq: number
  gbps: number
  background: number
  loadavg: number[]
  cpus: number
  kernel: string
  daemons: DaemonProfile[]
}

/** The cipher alone on one core, ns per message: [seal, open], median of 5 rounds. */
function cipherAlone (): [number, number] {
  const batches = 200
  cipherBench(WgLib.HOT, CIPHER_LEN, BATCH, 20)
  const seal: number[] = []
  const open: number[] = []
  for (let r = 0; r < 5; r++) {
    const [s, o] = cipherBench(WgLib.HOT, CIPHER_LEN, BATCH, batches)
    seal.push(s / (batches * BATCH))
    open.push(o / (batches * BATCH))
  }
  return [median(seal), median(open)]
}

async function main (): Promise<void> {
  const flags = benchArgs('wg-profile', {
    seconds: { type: 'string', default: '5' },
    congestion: { type: 'string', default: 'cubic' },
    freq: { type: 'string', default: '999' },
    keep: { type: 'string', hint: 'DIR' },
    json: { type: 'boolean', default: false }
  })
  const seconds = numberFlag('seconds', flags.seconds, { min: 1, max: 60 })
  const freq = numberFlag('freq', flags.freq, { min: 50, max: 20000, integer: true })
  const congestion = congestionOption(flags.congestion)
  const progress = (msg: string): void => { process.stderr.write(`wg-profile: ${msg}\n`) }
  const skip = netnsSkipReason() ?? toolSkipReason('iperf3', 'perf')
  if (skip !== undefined) { console.log(`wg-profile: skipped: ${skip}`); return }

  const [sealNs, openNs] = cipherAlone()
  const background = await backgroundLoad()
  const loadavg = os.loadavg()
  progress(`setting up (background load ${background.toFixed(2)} cores)`)
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-wgprof-'))
  const maps: string[] = []
  const cleanups: Array<() => void> = []
  try {
    const result = await withTopology(undefined, { hosts: 2, label: 'bench-wgprof', timeoutMs: (seconds * 3 + 120) * 1000 }, async (topo) => {
      const [h1, h2] = topo.hosts as [Host, Host]
      const c = cluster({ after: (fn) => { cleanups.push(fn) } }, topo, CONFIG)
      const nodeOptions = [process.env.NODE_OPTIONS, '--perf-basic-prof'].filter((x) => x !== undefined && x !== '').join(' ')
      const start = async (h: Host) => await startDaemon(topo, h, { dir: c.dir, store: ['--store', `sqlite:${c.dir}/store.db`], env: { ...process.env, WIREGUARD_KEY_FILE: `${c.dir}/${h.name}/wgkey`, NODE_OPTIONS: nodeOptions } })
      const d1 = await start(h1)
      const d2 = await start(h2)
      const pids = [nodePid(d1.child.pid), nodePid(d2.child.pid)]
      for (const pid of pids) maps.push(`/tmp/perf-${pid}.map`)
      await waitFor(async () => (await d1.status()).peers.length === 1 && (await d2.status()).peers.length === 1, { what: 'both daemons know each other', timeoutMs: 10_000 })
      const mtu = Math.min(d1.env().mtu, d2.env().mtu)
      const gsoMaxSize = podGsoMaxSize(mtu)
      const [p1] = await addPods(topo, h1, { subnet: formatCidr(d1.env().subnet), count: 1, mtu, gsoMaxSize })
      const [p2] = await addPods(topo, h2, { subnet: formatCidr(d2.env().subnet), count: 1, mtu, gsoMaxSize })
      await proveReachable(topo, p1, p2, 'weft wireguard')
      progress('warm-up: pings, 3 s of TCP ...')
      await ping(topo, p1, p2.ip, { count: WARM_UP_PINGS, intervalS: 0.002, waitS: 1 })
      await iperf(topo, p2, p1, { serverIp: p2.ip, seconds: 3, congestion })
      const [s1, s2] = await Promise.all([d1.status(), d2.status()])
      const w: Weft = { backend: 'wireguard', daemons: [d1, d2], pids, tuns: [String(s1.device), String(s2.device)], tun: true, deviceMtu: Number(s1.mtu), offloads: [] }

      progress(`iperf3 ${seconds + 2} s, perf record -F ${freq} -g for ${seconds} s of it ...`)
      const traffic = iperf(topo, p2, p1, { serverIp: p2.ip, seconds: seconds + 2, congestion })
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const k0 = await weftCounters(topo, w)
      const cpu0 = pids.map(cpuOf)
      const t0 = performance.now()
      const data = path.join(work, 'perf.data')
      await run('perf', ['record', '-F', String(freq), '-g', '-p', pids.join(','), '-o', data, '--', 'sleep', String(seconds)], { timeout: (seconds + 30) * 1000, maxBuffer: 1 << 24 })
      const wall = (performance.now() - t0) / 1000
      const cpu1 = pids.map(cpuOf)
      const k1 = await weftCounters(topo, w)
      const t = await traffic
      progress(`${t.gbps.toFixed(2)} Gbit/s; perf script ...`)
      const script = await run('perf', ['script', '-i', data, '-F', 'pid,tid,ip,sym,dso'], { maxBuffer: 1 << 30 })
      const samples = parsePerfScript(script.stdout)
      if (flags.keep !== undefined) {
        fs.mkdirSync(flags.keep, { recursive: true })
        fs.copyFileSync(data, path.join(flags.keep, 'perf.data'))
        for (const m of maps) if (fs.existsSync(m)) fs.copyFileSync(m, path.join(flags.keep, path.basename(m)))
      }

      const daemons: DaemonProfile[] = pids.map((pid, j) => {
        const mine = samples.filter((s) => s.pid === pid)
        const counts = new Map<string, number>()
        const leaves = new Map<string, { sym: string, dso: string, bucket: string, n: number }>()
        for (const s of mine) {
          const b = bucketOf(s.frames)
          counts.set(b, (counts.get(b) ?? 0) + 1)
          const leaf = s.frames[0] ?? { sym: '?', dso: '?' }
          const key = `${leaf.sym} ${leaf.dso}`
          const e = leaves.get(key) ?? { sym: leaf.sym, dso: path.basename(leaf.dso), bucket: b, n: 0 }
          e.n++
          leaves.set(key, e)
        }
        const n = Math.max(1, mine.length)
        const shares = Object.fromEntries(BUCKETS.map((b) => [b, (counts.get(b) ?? 0) / n]))
        const user = cpu1[j].user - cpu0[j].user
        const sys = cpu1[j].sys - cpu0[j].sys
        const cpuS = user + sys
        const sender = j === 0
        const delta = (k: string): number => (k1.counters[j][k] ?? 0) - (k0.counters[j][k] ?? 0)
        const batches = sender ? delta('inside_batches') : delta('outside_batches')
        const packets = sender ? delta('inside_packets') : delta('outside_packets')
        const usPerBatch: Record<string, number> = { all: cpuS / Math.max(1, batches) * 1e6 }
        for (const b of BUCKETS) usPerBatch[b] = usPerBatch.all * shares[b]
        const cipherNs = sender ? sealNs : openNs
        return {
          node: (j === 0 ? h1 : h2).name,
          role: sender ? 'sender' : 'receiver',
          pid,
          cores: cpuS / wall,
          user,
          sys,
          samples: mine.length,
          shares,
          batches,
          packets,
          usPerBatch,
          nsPerPacket: cpuS / Math.max(1, packets) * 1e9,
          top: [...leaves.values()].sort((a, b) => b.n - a.n).slice(0, 15).map((e) => ({ sym: e.sym, dso: e.dso, bucket: e.bucket, share: e.n / n })),
          cipherNsPerPacket: cipherNs,
          cipherShare: packets * cipherNs * 1e-9 / Math.max(1e-9, cpuS)
        }
      })
      return { gbps: t.gbps, daemons }
    })
    const out: WgProfile = { bench: 'wg-profile', seconds, congestion: congestion ?? 'default', freq, gbps: result.gbps, background, loadavg, cpus: os.cpus().length, kernel: os.release(), daemons: result.daemons }
    if (flags.json) console.log(JSON.stringify(out, null, 2))
    else printProfile(out, (l) => console.log(l))
  } finally {
    for (const fn of cleanups.splice(0).reverse()) { try { fn() } catch {} }
    fs.rmSync(work, { recursive: true, force: true })
    // the daemons' perf maps: theirs alone (their pids), written because we asked
    for (const m of maps) fs.rmSync(m, { force: true })
  }
}

/** The buckets in five: crypto, kernel, the addon's other C, JS, the rest of node. */
export function grouped (shares: Record<string, number>): Record<'crypto' | 'kernel' | 'addon' | 'JS' | 'runtime', number> {
  const sum = (prefix: string): number => Object.entries(shares).filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0)
  return { crypto: sum('crypto'), kernel: sum('kernel'), addon: sum('addon'), JS: sum('JS'), runtime: sum('runtime') + sum('other') }
}

const pct = (x: number): string => `${(100 * x).toFixed(0)} %`.padStart(5)

export function printProfile (p: WgProfile, print: (l: string) => void): void {
  print(`\nweft wireguard, one TCP stream pod -> pod (${p.congestion}), ${p.gbps.toFixed(2)} Gbit/s; perf -F ${p.freq} -g on both daemons for ${p.seconds} s; ${p.cpus} CPUs, kernel ${p.kernel}`)
  const [a, b] = p.daemons
  if (a === undefined || b === undefined) return
  print(`${''.padEnd(48)}${`${a.node} sender`.padStart(22)}${`${b.node} receiver`.padStart(22)}`)
  print(`${'CPU, cores (user + sys)'.padEnd(48)}${`${a.cores.toFixed(2)} (${a.user.toFixed(2)} + ${a.sys.toFixed(2)} s)`.padStart(22)}${`${b.cores.toFixed(2)} (${b.user.toFixed(2)} + ${b.sys.toFixed(2)} s)`.padStart(22)}`)
  print(`${'batches (TUN reads / socket reads), packets'.padEnd(48)}${`${a.batches}, ${a.packets}`.padStart(22)}${`${b.batches}, ${b.packets}`.padStart(22)}`)
  print(`${'packets per batch; CPU ns per packet'.padEnd(48)}${`${(a.packets / Math.max(1, a.batches)).toFixed(1)}; ${a.nsPerPacket.toFixed(0)}`.padStart(22)}${`${(b.packets / Math.max(1, b.batches)).toFixed(1)}; ${b.nsPerPacket.toFixed(0)}`.padStart(22)}`)
  print(`${'bucket: share of samples, µs per batch'.padEnd(48)}${'share    µs'.padStart(22)}${'share    µs'.padStart(22)}`)
  for (const k of BUCKETS) {
    if ((a.shares[k] ?? 0) === 0 && (b.shares[k] ?? 0) === 0) continue
    print(`${k.padEnd(48)}${`${pct(a.shares[k] ?? 0)} ${(a.usPerBatch[k] ?? 0).toFixed(1).padStart(7)}`.padStart(22)}${`${pct(b.shares[k] ?? 0)} ${(b.usPerBatch[k] ?? 0).toFixed(1).padStart(7)}`.padStart(22)}`)
  }
  print(`${'all'.padEnd(48)}${`${a.samples} samples ${(a.usPerBatch.all ?? 0).toFixed(1).padStart(7)}`.padStart(22)}${`${b.samples} samples ${(b.usPerBatch.all ?? 0).toFixed(1).padStart(7)}`.padStart(22)}`)
  const ga = grouped(a.shares)
  const gb = grouped(b.shares)
  for (const k of Object.keys(ga) as Array<keyof typeof ga>) {
    print(`${`  in all: ${k}`.padEnd(48)}${`${pct(ga[k])} ${(a.usPerBatch.all * ga[k]).toFixed(1).padStart(7)}`.padStart(22)}${`${pct(gb[k])} ${(b.usPerBatch.all * gb[k]).toFixed(1).padStart(7)}`.padStart(22)}`)
  }
  print(`${'the cipher alone: ns per message (seal / open)'.padEnd(48)}${a.cipherNsPerPacket.toFixed(0).padStart(22)}${b.cipherNsPerPacket.toFixed(0).padStart(22)}`)
  print(`${'  x packets, as a share of the daemon\'s CPU'.padEnd(48)}${pct(a.cipherShare).padStart(22)}${pct(b.cipherShare).padStart(22)}`)
  for (const d of p.daemons) {
    print(`\ntop leaf symbols, ${d.node} ${d.role}`)
    for (const t of d.top) print(`  ${pct(t.share)}  ${t.sym.slice(0, 60).padEnd(60)} ${t.dso.slice(0, 28).padEnd(28)} ${t.bucket}`)
  }
  print(`\nbackground load ${p.background.toFixed(2)} cores before the run; load average ${p.loadavg.map((x) => x.toFixed(2)).join(' ')}`)
}

if (require.main === module) main().catch((err) => { console.error(err); process.exitCode = 1 })
