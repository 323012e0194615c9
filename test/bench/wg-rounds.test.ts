// The WireGuard head to head's figures (bench/wg-rounds.ts) and its profile's
// buckets (bench/wg-profile.ts), from made-up runs and callchains; a run's
// JSON re-reported (--report). The rounds themselves need namespaces, iperf3
// and wireguard-go: `npm run bench -- --only wireguard`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { roundOrder, summariseWg } from '../../bench/wg-rounds'
import type { WgRun } from '../../bench/wg-rounds'
import { bucketOf, grouped, parsePerfScript } from '../../bench/wg-profile'

const RUN = path.join(__dirname, '..', '..', 'bench', 'run.js')

const run = (gbps: number, cpuS: [number, number], extra: Partial<WgRun> = {}): WgRun => ({ gbps, retransmits: 0, wall: 5, cpuS, cpuPerGB: (cpuS[0] + cpuS[1]) / (gbps * 5 / 8), machineBusy: 2, ...extra })

test('the order rotates: over as many rounds as paths, each path runs in each place once', () => {
  const places = [0, 1, 2].map(() => new Set<number>())
  for (let r = 0; r < 3; r++) roundOrder(3, r, 0).forEach((k, place) => places[k].add(place))
  assert.deepEqual(places.map((s) => s.size), [3, 3, 3])
  assert.deepEqual(roundOrder(3, 0, 1), [1, 2, 0], 'the next congestion control starts one further on')
  assert.deepEqual(roundOrder(2, 1, 0), [1, 0])
})

test('ratios are taken round by round, and a failed run loses only its round', () => {
  const defs = [{ name: 'wireguard-go', label: 'wireguard-go', podMtu: 1420 }, { name: 'wireguard', label: 'weft wireguard', podMtu: 1420 }, { name: 'vxlan', label: 'weft vxlan', podMtu: 1450 }]
  const c = summariseWg({ congestion: 'default', algorithm: 'bbr' }, defs, [
    [run(0.4, [2, 2]), run(0.5, [2, 2]), run(0.3, [2, 2])],
    [run(2.0, [1, 1]), run(2.4, [1, 1]), run(NaN, [0, 0], { error: 'iperf3 failed' })],
    [run(5, [1, 1]), run(6, [1, 1]), run(4, [1, 1])]
  ])
  assert.equal(c.label, 'default (bbr)')
  assert.deepEqual(c.weftVsGo.rounds, [5, 4.8])
  assert.equal(c.weftVsGo.median, 4.9)
  assert.equal(c.weftVsGo.min, 4.8)
  assert.deepEqual(c.weftVsVxlan.rounds.map((x) => Number(x.toFixed(2))), [0.4, 0.4])
  const go = c.paths[0]
  assert.equal(go.medianGbps, 0.4)
  assert.equal(go.cpuPerGB, 4 / (0.4 * 5 / 8), 'the median of the runs\' CPU s/GB')
  assert.equal(go.senderCores, 0.4)
  const wg = c.paths[1]
  assert.equal(wg.runs.length, 3, 'the failed run is kept, with its error')
  assert.equal(wg.medianGbps, 2.2, 'and left out of the figures')
  // wireguard-go spends 4 CPU s per 0.25 GB (16 s/GB); weft 2 per 1.25 (1.6 s/GB)
  assert.equal(Number(c.cpuGoVsWeft.rounds[0].toFixed(3)), 10)
})

test('without weft vxlan there is no wireguard/vxlan ratio, the others stand', () => {
  const c = summariseWg({ congestion: 'cubic', algorithm: 'cubic' }, [{ name: 'wireguard-go', label: 'wireguard-go', podMtu: 1420 }, { name: 'wireguard', label: 'weft wireguard', podMtu: 1420 }], [[run(0.4, [1, 1])], [run(2, [1, 1])]])
  assert.equal(c.label, 'cubic')
  assert.deepEqual(c.weftVsVxlan.rounds, [])
  assert.ok(Number.isNaN(c.weftVsVxlan.median))
  assert.equal(c.weftVsGo.median, 5)
})

test('perf script output: each sample\'s pid and its frames, leaf first', () => {
  const text = [
    'node  4242/4242',
    '\t    7f00aa ChaCha20_16x+0x1a0 (/usr/bin/node)',
    '\t    7f00bb chacha20_poly1305_cipher+0x20 (/usr/bin/node)',
    '\t    7f00cc weft_wg_seal_one+0x10 (/work/main/build/Release/weft_native.node)',
    '',
    ' 4243/4250  ',
    '\tffffffff81 _copy_to_iter+0x5 ([kernel.kallsyms])',
    '\tffffffff82 tun_do_read+0x30 ([kernel.kallsyms])',
    '\tffffffff83 tun_chr_read_iter+0x30 ([kernel.kallsyms])',
    ''
  ].join('\n')
  const s = parsePerfScript(text)
  assert.equal(s.length, 2)
  assert.equal(s[0].pid, 4242)
  assert.deepEqual(s[0].frames[0], { sym: 'ChaCha20_16x', dso: '/usr/bin/node' })
  assert.equal(s[1].pid, 4243)
  assert.equal(s[1].frames.length, 3)
})

test('samples go to buckets by their leaf and the frames above it', () => {
  const f = (sym: string, dso: string) => ({ sym, dso })
  const K = '[kernel.kallsyms]'
  const NODE = '/usr/bin/node'
  const ADDON = '/work/main/build/Release/weft_native.node'
  assert.equal(bucketOf([f('ChaCha20_16x', NODE), f('seal_openssl', ADDON)]), 'crypto: ChaCha20, Poly1305')
  assert.equal(bucketOf([f('poly1305_blocks_vpmadd52_8x', NODE)]), 'crypto: ChaCha20, Poly1305')
  assert.equal(bucketOf([f('__strcmp_evex', '/usr/lib/x86_64-linux-gnu/libc.so.6'), f('OSSL_PARAM_locate', NODE), f('EVP_CipherInit_ex', NODE), f('seal_openssl', ADDON)]), 'crypto: OpenSSL EVP calls per packet')
  assert.equal(bucketOf([f('_copy_from_iter', K), f('udp_sendmsg', K), f('__sys_sendmmsg', K)]), 'kernel: UDP send (and the other node\'s receive)')
  assert.equal(bucketOf([f('_copy_from_iter', K), f('tun_get_user', K), f('tun_chr_write_iter', K)]), 'kernel: TUN write (and the pod\'s receive)')
  assert.equal(bucketOf([f('_copy_to_iter', K), f('tun_chr_read_iter', K)]), 'kernel: TUN read')
  assert.equal(bucketOf([f('handle_softirqs', K), f('irq_exit_rcu', K)]), 'kernel: interrupts, other')
  assert.equal(bucketOf([f('weft_csum_add.avx2', ADDON), f('weft_gso_segment', ADDON)]), 'addon (copies, checksums, segmentation)')
  assert.equal(bucketOf([f('__memmove_avx512_unaligned_erms', '/usr/lib/x86_64-linux-gnu/libc.so.6'), f('seal_super', ADDON)]), 'addon (copies, checksums, segmentation)')
  assert.equal(bucketOf([f('JS:*tcp /work/main/dist/src/dataplane/tun-writes.js:108:8', '/tmp/perf-77.map')]), 'JS (weft, JIT)')
  assert.equal(bucketOf([f('Builtins_CallApiCallback', NODE)]), 'JS (V8 builtins)')
  assert.equal(bucketOf([f('v8::internal::Heap::Scavenge', NODE)]), 'runtime (V8, GC, N-API, libuv)')
  assert.deepEqual(grouped({ 'crypto: ChaCha20, Poly1305': 0.4, 'crypto: OpenSSL EVP calls per packet': 0.1, 'kernel: TUN read': 0.1, 'kernel: interrupts, other': 0.1, 'JS (weft, JIT)': 0.2, other: 0.1 }), { crypto: 0.5, kernel: 0.2, addon: 0, JS: 0.2, runtime: 0.1 })
})

test('--report prints the WireGuard head to head: each path\'s rounds, CPU per GB and the ratios', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'wg.json')
  const defs = [{ name: 'wireguard-go', label: 'wireguard-go', podMtu: 1420 }, { name: 'wireguard', label: 'weft wireguard', podMtu: 1420 }, { name: 'vxlan', label: 'weft vxlan', podMtu: 1450 }]
  const c = summariseWg({ congestion: 'cubic', algorithm: 'cubic' }, defs, [
    [run(0.4, [2, 2]), run(0.5, [2, 2]), run(0.3, [2, 2])],
    [run(2.0, [1, 1]), run(2.4, [1, 1]), run(1.5, [1, 1])],
    [run(5, [1, 1]), run(6, [1, 1]), run(4, [1, 1])]
  ])
  fs.writeFileSync(file, JSON.stringify({
    started: '2026-12-07T03:00:00.000Z',
    options: { seconds: 5, offloads: true, udpRate: '1G', pings: 200, rounds: 3, only: 'wireguard' },
    paths: [],
    wireguardHeadToHead: { rounds: 3, seconds: 5, wireguardGo: 'wireguard-go v0.0.20220316', background: 0.2, loadavg: { before: [1, 1, 1], after: [2, 2, 2] }, congestions: [c], took: 60 }
  }))
  const r = spawnSync(process.execPath, [RUN, '--report', file], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /WireGuard head to head: wireguard-go, weft wireguard, weft vxlan set up at once, .* 3 rounds of 5 s .*wireguard-go v0\.0\.20220316/)
  assert.match(r.stdout, /^cubic\s+wireguard-go\s+1420\s+0\.40\s+0\.50\s+0\.30\s+0\.40 \(0\.30 to 0\.50\)\s+16\.0\s+0\.40\/0\.40$/m)
  assert.match(r.stdout, /^\s+weft vxlan\s+1450\s+5\.00\s+6\.00\s+4\.00\s+5\.00 \(4\.00 to 6\.00\)/m)
  assert.match(r.stdout, /weft wireguard \/ wireguard-go, Gbit\/s: 5\.00x \(4\.80 to 5\.00\), every round >= 4x/)
  assert.match(r.stdout, /weft wireguard \/ weft vxlan, Gbit\/s: 0\.40x \(0\.38 to 0\.40\)/)
  assert.doesNotMatch(r.stdout, /all paths, pod on h1/, 'an --only wireguard run has no paths\' table')
  const svg = fs.readFileSync(path.join(dir, 'wg.svg'), 'utf8')
  assert.match(svg, /WireGuard head to head, TCP 1 stream, cubic/)
  assert.match(svg, />wireguard-go<\/text>/, 'the legend names the reference drawn')
})

test('--only wireguard needs rounds', () => {
  const r = spawnSync(process.execPath, [RUN, '--only', 'wireguard', '--rounds', '0'], { encoding: 'utf8' })
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--only wireguard needs --rounds 1 or more/)
})

test('--report: the daemons\' table has wireguard-go\'s processes beside weft\'s daemons, with CPU seconds per GB of TCP', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'run.json')
  const daemon = (cores: number) => ({ node: 'h1', user: 0, sys: 0, main: 0, insidePackets: 0, insideBatches: 0, outsidePackets: 0, outsideBatches: 0, tunTxDropped: 0, drops: {}, cores, rssMiB: 70 })
  // 3 s at 2 Gbit/s is 0.75 GB; 1.5 cores for 3 s is 4.5 CPU s: 6 s/GB
  fs.writeFileSync(file, JSON.stringify({
    started: '2026-12-07T03:00:00.000Z',
    options: { seconds: 3, offloads: true, udpRate: '1G', pings: 200, rounds: 0 },
    paths: [
      { name: 'kernel-vxlan', label: 'kernel VXLAN', kind: 'reference', background: 0, podMtu: 1450, tcp1: { gbps: 14, retransmits: 0, window: { wall: 3, cores: {} } } },
      { name: 'wireguard', label: 'weft wireguard', kind: 'weft', background: 0, podMtu: 1420, backend: 'wireguard', deviceMtu: 1420, tcp1: { gbps: 2, retransmits: 0, window: { wall: 3, cores: {}, daemons: [daemon(1), daemon(0.5)] } } },
      { name: 'wireguard-go', label: 'wireguard-go', kind: 'reference', background: 0, podMtu: 1420, tcp1: { gbps: 0.5, retransmits: 0, window: { wall: 3, cores: {}, processes: [0.75, 0.75] } } }
    ]
  }))
  const r = spawnSync(process.execPath, [RUN, '--report', file], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /pod MTU 1450 \(weft wireguard, wireguard-go: 1420\)/)
  assert.match(r.stdout, /^weft wireguard\s+-\s+1\.50\s+-\s+-\s+-\s+6\.00\s+-\s+70\/-\s+70\/-\s+1420/m)
  assert.match(r.stdout, /^wireguard-go\s+-\s+1\.50\s+-\s+-\s+-\s+24\.00\s+-\s+-\s+-\s+1420\s+none/m)
})
