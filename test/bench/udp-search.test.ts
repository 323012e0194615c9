// The bench's UDP search (bench/udp-search.ts): which rates it offers, when
// it stops, what it reports, and a run's JSON re-reported (--report). The
// probes themselves need namespaces and iperf3: `npm run bench -- --only udp`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { kernelRate, LOSS_LIMIT, MAX_PROBES, RateSearch } from '../../bench/udp-search'
import type { UdpProbe } from '../../bench/udp-search'

const RUN = path.join(__dirname, '..', '..', 'bench', 'run.js')

/** A probe at `offered` through a path that loses `loss(offered)` % and whose sender sends at most `sendCap`. */
function probeOf (offered: number, loss: (r: number) => number, sendCap = Infinity): UdpProbe {
  const sent = Math.min(offered, sendCap)
  const lostPercent = loss(sent)
  return { offeredMbps: offered, sentMbps: sent, receivedMbps: sent * (1 - lostPercent / 100), lostPercent, packets: 1000, lostPackets: Math.round(lostPercent * 10), podRcvbufErrors: 0, machineCores: 1.5, senderBound: sent < 0.95 * offered, pass: lostPercent <= LOSS_LIMIT }
}

/** Runs a search to its end against a path; returns the rates it offered. */
function drive (s: RateSearch, loss: (r: number) => number, sendCap = Infinity): number[] {
  const offered: number[] = []
  for (let r = s.next(); r !== undefined; r = s.next()) {
    offered.push(r)
    s.record(probeOf(r, loss, sendCap))
  }
  return offered
}

/** A path that carries up to `knee` Mbit/s within the limit and loses 5 % above it. */
const kneeAt = (knee: number) => (r: number): number => r <= knee ? 0.2 : 5

test('from 500 Mbit/s the search doubles, then bisects to within 10 % of the knee', () => {
  const s = new RateSearch()
  const offered = drive(s, kneeAt(800))
  assert.deepEqual(offered.slice(0, 2), [500, 1000])
  assert.ok(offered.length <= MAX_PROBES, `${offered.length} probes`)
  const r = s.result('vxlan', 'weft vxlan')
  assert.ok(r.finished)
  assert.ok(r.maxOfferedMbps <= 800 && r.maxOfferedMbps >= 800 / 1.1, `found ${r.maxOfferedMbps}`)
  assert.equal(r.maxMbps, r.probes.find((p) => p.offeredMbps === r.maxOfferedMbps)?.receivedMbps)
})

test('a path that fails at the start is halved down to a rate it carries', () => {
  const s = new RateSearch()
  const offered = drive(s, kneeAt(150))
  assert.deepEqual(offered.slice(0, 3), [500, 250, 130])
  const r = s.result('udp', 'weft udp')
  assert.ok(r.maxOfferedMbps >= 130 && r.maxOfferedMbps <= 150, `found ${r.maxOfferedMbps}`)
})

test('a sender that cannot send what is offered ends the search at what it sent: the path carries at least that', () => {
  const s = new RateSearch()
  const offered = drive(s, kneeAt(5000), 650)
  assert.deepEqual(offered, [500, 1000])
  const r = s.result('kernel-vxlan', 'kernel VXLAN')
  assert.ok(r.senderBound && r.finished)
  assert.equal(r.maxOfferedMbps, 1000)
  assert.equal(kernelRate(r), 650, 'the at-rate rounds offer what the kernel\'s sender sent, not what was offered')
})

test('a sender-bound failure bounds the search by what was sent', () => {
  const s = new RateSearch()
  // sends at most 700, and loses 2 % above 600
  const offered = drive(s, kneeAt(600), 700)
  assert.equal(offered[1], 1000)
  assert.ok(offered.slice(2).every((r) => r < 700), `after the sender-bound fail: ${offered.slice(2).join(', ')}`)
})

test('nothing within the limit, down to the floor: no rate, and the search ends', () => {
  const s = new RateSearch()
  const offered = drive(s, () => 30)
  assert.ok(offered.length <= MAX_PROBES)
  const r = s.result('udp', 'weft udp')
  assert.ok(Number.isNaN(r.maxMbps))
  assert.equal(kernelRate(r), undefined)
})

test('the probes run out before it converges: the best so far, marked unfinished', () => {
  const s = new RateSearch({ start: 500, min: 50, max: 8000, resolution: 1.01, maxProbes: 3 })
  drive(s, kneeAt(800))
  const r = s.result('vxlan', 'weft vxlan')
  assert.equal(r.probes.length, 3)
  assert.equal(r.finished, false)
  // 500 passed, 1000 failed, 710 passed
  assert.equal(r.maxOfferedMbps, 710)
})

test('loss that is not monotone (noise near the limit) ends the search when the bounds cross, keeping the highest pass', () => {
  const s = new RateSearch()
  const losses = new Map([[500, 0.5], [1000, 3], [710, 0.4]])
  for (let r = s.next(); r !== undefined; r = s.next()) s.record(probeOf(r, (x) => losses.get(x) ?? (x > 710 ? 2 : 0.1)))
  const r = s.result('vxlan', 'weft vxlan')
  assert.ok(r.finished)
  assert.ok(r.maxOfferedMbps >= 710)
})

test('--report prints the UDP search and the at-rate rounds, and draws its panel', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'udp.json')
  const p = (offered: number, loss: number, sent = offered, extra: Partial<UdpProbe> = {}): UdpProbe => ({ ...probeOf(offered, () => loss, sent), ...extra })
  fs.writeFileSync(file, JSON.stringify({
    started: '2026-12-07T03:00:00.000Z',
    options: { seconds: 3, offloads: true, udpRate: '1G', pings: 200, rounds: 3, only: 'udp' },
    paths: [],
    udpMaxRate: {
      lossLimitPercent: 1,
      probeSeconds: 2,
      datagramBytes: 1422,
      pacing: '',
      seconds: 80,
      paths: [
        { name: 'kernel-vxlan', label: 'kernel VXLAN', probes: [p(500, 0.1), p(1000, 0.5, 640)], maxMbps: 637, maxOfferedMbps: 1000, senderBound: true, finished: true },
        { name: 'vxlan', label: 'weft vxlan', probes: [p(500, 0.1, 500, { pacingWaits: 12 }), p(1000, 4, 1000, { pacingWaits: 900, podRcvbufErrors: 40, underlayRcvbufErrors: 3 })], maxMbps: 499, maxOfferedMbps: 500, senderBound: false, finished: false }
      ],
      atKernelRate: {
        offeredMbps: 640,
        paths: [
          { name: 'kernel-vxlan', label: 'kernel VXLAN', probes: [p(640, 0.3), p(640, 0.5)], medianLostPercent: 0.4 },
          { name: 'vxlan', label: 'weft vxlan', probes: [p(640, 0.2), p(640, 0.6)], medianLostPercent: 0.4 }
        ]
      }
    }
  }))
  const r = spawnSync(process.execPath, [RUN, '--report', file], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /UDP: the highest rate each path carries with at most 1 % loss .*2 s probes.*weft UDP pacing on \(the default, factor 2\)/)
  assert.match(r.stdout, /^kernel VXLAN\s+637 Mbit\/s\*\s+.*500 0\.10, 1000 0\.50\*$/m)
  assert.match(r.stdout, /^weft vxlan\s+499 Mbit\/s \?\s+0\.78x\s+98 % of 41\s+3\s+912\s+500 0\.10, 1000 4\.00$/m)
  assert.match(r.stdout, /UDP at kernel VXLAN's rate, 640 Mbit\/s offered, 2 rounds/)
  assert.match(r.stdout, /^weft vxlan\s+639, 0\.20\s+636, 0\.60\s+0\.40/m)
  assert.doesNotMatch(r.stdout, /all paths, pod on h1/, 'an --only udp run has no paths\' table')
  const svg = fs.readFileSync(path.join(dir, 'udp.svg'), 'utf8')
  assert.match(svg, /UDP: the highest rate carried with at most 1 % loss/)
})

test('--only takes udp, wireguard and ipv6 beside head-to-head, and nothing else', () => {
  const r = spawnSync(process.execPath, [RUN, '--only', 'tcp'], { encoding: 'utf8' })
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--only takes head-to-head, udp, wireguard or ipv6, got tcp/)
})
