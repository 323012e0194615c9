// IPv6 beside IPv4 (bench/ipv6.ts, issue 22): the rounds' order and
// figures from made-up runs, a run's JSON re-reported (--report), and the
// flag's checks. The rounds themselves need namespaces and iperf3:
// `npm run bench -- --only ipv6`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { IPV6_PATHS, ipv6RoundOrder, roundOf, summariseIpv6 } from '../../bench/ipv6'
import type { Ipv6HeadToHead, Ipv6Run } from '../../bench/ipv6'

const RUN = path.join(__dirname, '..', '..', 'bench', 'run.js')

const ok = (gbps: number, cpuPerGB?: number): Ipv6Run => ({ gbps, retransmits: 0, ...(cpuPerGB !== undefined ? { cpuPerGB } : {}) })
const failed: Ipv6Run = { gbps: NaN, retransmits: NaN, error: 'iperf3 client failed' }

/** kernel IPv4, weft IPv4, kernel IPv6, weft IPv6 */
const round = (k4: Ipv6Run, w4: Ipv6Run, k6: Ipv6Run, w6: Ipv6Run): ReturnType<typeof roundOf> => roundOf({ kernel4: k4, weft4: w4, kernel6: k6, weft6: w6 })

test('each family\'s pair runs kernel-weft, then weft-kernel, and the families alternate', () => {
  const keys = (r: number): string[] => ipv6RoundOrder(r).map((k) => IPV6_PATHS[k].key)
  assert.deepEqual(keys(0), ['kernel4', 'weft4', 'kernel6', 'weft6'])
  assert.deepEqual(keys(1), ['weft6', 'kernel6', 'weft4', 'kernel4'])
  assert.deepEqual(keys(2), keys(0))
})

test('ratios are taken round by round; the difference is of the medians; a failed run loses only its family\'s ratio in its round', () => {
  const rounds = [
    round(ok(10), ok(6), ok(10), ok(5.5)),
    round(ok(8), ok(4), ok(9), ok(4.5, 1.5)),
    round(ok(12), ok(7.2), failed, ok(6))
  ]
  assert.equal(rounds[2].ratio4, 0.6)
  assert.ok(Number.isNaN(rounds[2].ratio6) && Number.isNaN(rounds[2].difference))
  const s = summariseIpv6(rounds)
  assert.equal(s.ratio4, 0.6)
  assert.equal(s.ratio6, (0.55 + 0.5) / 2)
  assert.ok(Math.abs(s.difference - (0.525 - 0.6)) < 1e-12)
  assert.equal(s.withinTarget, true)
  assert.ok(Math.abs(s.medianRoundDifference - (-0.025)) < 1e-12, 'the rounds\' own differences: -0.05 and 0')
  const k6 = s.paths.find((p) => p.key === 'kernel6')
  assert.deepEqual([k6?.medianGbps, k6?.minGbps, k6?.maxGbps], [9.5, 9, 10])
  assert.equal(s.paths.find((p) => p.key === 'weft6')?.cpuPerGB, 1.5, 'CPU per GB from the runs that have it')
  assert.equal(summariseIpv6([round(ok(10), ok(6), ok(10), ok(4.5))]).withinTarget, false, '0.45 against 0.6 is not within 0.1')
})

test('--report prints IPv6 beside IPv4: every round, the medians, their difference, the MTUs and the drops; and draws it', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'ipv6.json')
  const roundList = [round(ok(10), ok(6), ok(10), ok(5.5)), round(ok(8), ok(4), ok(9), ok(4.5))]
  const h: Ipv6HeadToHead = {
    rounds: 2,
    seconds: 3,
    congestion: 'cubic',
    podMtu: 1430,
    kernelV6Mtu: 1430,
    flanneldPodMtu: 1450,
    weftMtu: 1430,
    gsoMaxSize: 62000,
    roundList,
    ...summariseIpv6(roundList),
    drops: [{ node: 'h1', ipv4: {}, ipv6: { truncated: 2 }, tunTxDropped: { ipv4: 0, ipv6: 0 }, ipv6Packets: 1000 }, { node: 'h2', ipv4: {}, ipv6: {}, tunTxDropped: { ipv4: 0, ipv6: 0 }, ipv6Packets: 900 }],
    background: 0.1,
    loadavg: { before: [1, 1, 1], after: [2, 2, 2] },
    took: 90
  }
  fs.writeFileSync(file, JSON.stringify({
    started: '2026-12-07T07:30:00.000Z',
    options: { seconds: 3, offloads: true, udpRate: '1G', pings: 200, rounds: 2, only: 'ipv6' },
    paths: [],
    ipv6HeadToHead: h
  }))
  const r = spawnSync(process.execPath, [RUN, '--report', file], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.doesNotMatch(r.stdout, /all paths, pod on h1/, 'no paths\' table in a run of --only ipv6')
  assert.match(r.stdout, /IPv6 beside IPv4: .* 2 rounds of 3 s, TCP cubic/)
  assert.match(r.stdout, /^1\s+10\.00\/6\.00 = 0\.60x\s+10\.00\/5\.50 = 0\.55x\s+-0\.05$/m)
  assert.match(r.stdout, /^2\s+8\.00\/4\.00 = 0\.50x\s+9\.00\/4\.50 = 0\.50x\s+0\.00$/m)
  assert.match(r.stdout, /^median\s+ratio4 0\.55x\s+ratio6 0\.53x\s+-0\.03\s+\(within the goal of 0\.1;/m)
  assert.match(r.stdout, /^kernel flannel-v6\.1\s+9\.50 \(9\.00 to 10\.00\)/m)
  assert.match(r.stdout, /flannel-v6\.1's MTU 1430, the underlay less 70, .* FLANNEL_MTU 1450/)
  assert.match(r.stdout, /^weft h1: 1000 packets through the IPv6 half; dropped: IPv4 half nothing, IPv6 half truncated 2;/m)
  assert.match(r.stdout, /^weft h2: 900 packets through the IPv6 half; dropped nothing$/m)
  const svg = fs.readFileSync(path.join(dir, 'ipv6.svg'), 'utf8')
  assert.match(svg, /IPv6 beside IPv4/)
  assert.match(svg, /IPv6 \(flannel-v6\.1\)/)
})

test('--only ipv6 needs rounds, and --only names it among its choices', () => {
  let r = spawnSync(process.execPath, [RUN, '--only', 'ipv6', '--rounds', '0'], { encoding: 'utf8' })
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--only ipv6 needs --rounds 1 or more/)
  r = spawnSync(process.execPath, [RUN, '--only', 'ipv7'], { encoding: 'utf8' })
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--only takes head-to-head, udp, wireguard or ipv6, got ipv7/)
})
