// The bench's head-to-head figure: the median of the rounds' ratios, and a
// run's JSON re-reported (--report) with its head-to-head table and chart
// panel. The rounds themselves need namespaces and iperf3: `npm run bench`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { median } from '../../bench/stats'

const RUN = path.join(__dirname, '..', '..', 'bench', 'run.js')

test('the median of an odd count is the middle ratio, whatever the order', () => {
  assert.equal(median([0.58, 0.36, 0.30]), 0.36)
})

test('the median of an even count is the mean of the middle two', () => {
  assert.equal(median([0.4, 0.6, 0.5, 0.9]), 0.55)
})

test('no rounds have no median', () => {
  assert.ok(Number.isNaN(median([])))
})

test('--report prints every round and the median, and draws the head-to-head panel', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'run.json')
  const rounds = [
    { kernelGbps: 14, weftGbps: 7, ratio: 0.5 },
    { kernelGbps: 12, weftGbps: 7.2, ratio: 0.6 },
    { kernelGbps: 15, weftGbps: 6, ratio: 0.4 }
  ]
  fs.writeFileSync(file, JSON.stringify({
    started: '2026-11-23T12:00:00.000Z',
    options: { seconds: 3, offloads: true, udpRate: '1G', pings: 200, rounds: 3 },
    paths: [
      { name: 'kernel-vxlan', label: 'kernel VXLAN', kind: 'reference', background: 0, podMtu: 1450, tcp1: { gbps: 14, retransmits: 0, window: { wall: 3, cores: {} } } },
      { name: 'vxlan', label: 'weft vxlan', kind: 'weft', background: 0, podMtu: 1450, backend: 'vxlan', tcp1: { gbps: 7, retransmits: 0, window: { wall: 3, cores: {} } } }
    ],
    headToHead: [{ name: 'vxlan', label: 'weft vxlan', rounds, medianRatio: 0.5 }]
  }))
  const r = spawnSync(process.execPath, [RUN, '--report', file], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /head to head: TCP 1 stream, kernel VXLAN and each weft path set up at once and run in turn, 3 rounds of 3 s/)
  assert.match(r.stdout, /weft vxlan\s+14\.00\/7\.00 = 0\.50x\s+12\.00\/7\.20 = 0\.60x\s+15\.00\/6\.00 = 0\.40x\s+0\.50x \(0\.40 to 0\.60\)/)
  const svg = fs.readFileSync(path.join(dir, 'run.svg'), 'utf8')
  assert.match(svg, /head to head: median of 3 alternating rounds/)
  assert.match(svg, /rounds 0\.40 to 0\.60/)
})

test('a JSON from before head to head existed is still reported', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'old.json')
  fs.writeFileSync(file, JSON.stringify({
    started: '2026-11-20T12:00:00.000Z',
    options: { seconds: 3, offloads: true, udpRate: '1G', pings: 200 },
    paths: [{ name: 'kernel-vxlan', label: 'kernel VXLAN', kind: 'reference', background: 0, podMtu: 1450 }]
  }))
  const r = spawnSync(process.execPath, [RUN, '--report', file], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.doesNotMatch(r.stdout, /head to head/)
})
