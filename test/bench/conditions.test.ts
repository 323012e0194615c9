// The bench's head to head by condition (bench/conditions.ts, run.ts): the
// flags that pick conditions and congestion controls, a condition's figures
// from its rounds, and a run's report printing every condition by name with
// its rounds, median ratio and range, and drawing them. The rounds themselves
// need namespaces: `npm run bench -- --only head-to-head`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { CONDITIONS, conditionLabel, selectConditions, selectCongestions, summarise } from '../../bench/conditions'
import { congestionOption } from '../../bench/args'

const RUN = path.join(__dirname, '..', '..', 'bench', 'run.js')

test('--conditions picks conditions in the canonical order and refuses unknown names', () => {
  assert.deepEqual(CONDITIONS.map((c) => c.name), ['pod', 'pod-4', 'node', 'other-cni'])
  assert.deepEqual(selectConditions('other-cni,node').map((c) => c.name), ['node', 'other-cni'])
  assert.deepEqual(selectConditions('pod-4').map((c) => [c.source, c.streams]), [['pod', 4]])
  for (const bad of ['', 'pods', 'node,host']) assert.throws(() => selectConditions(bad), RangeError)
})

test('--h2h-congestion takes default and algorithm names, each once, checked as --congestion is', () => {
  assert.deepEqual(selectCongestions('default,cubic,default', congestionOption), ['default', 'cubic'])
  assert.throws(() => selectCongestions('', congestionOption), RangeError)
  assert.throws(() => selectCongestions('default,Cubic', congestionOption), RangeError)
})

test('a condition is named by its source, streams and congestion control, the default one resolved', () => {
  assert.equal(conditionLabel({ source: 'node', streams: 1, congestion: 'default', algorithm: 'bbr' }), 'node -> pod, 1 stream, default (bbr)')
  assert.equal(conditionLabel({ source: 'pod', streams: 4, congestion: 'cubic', algorithm: 'cubic' }), 'pod -> pod, 4 streams, cubic')
  assert.equal(conditionLabel({ source: 'other-cni', streams: 1, congestion: 'cubic', algorithm: 'cubic' }), 'other-CNI pod -> pod, 1 stream, cubic')
})

test('a condition\'s figures: the median of its ratios with the least and greatest, and each path\'s median rate', () => {
  const c = summarise({
    name: 'node:default',
    source: 'node',
    streams: 1,
    congestion: 'default',
    algorithm: 'bbr',
    rounds: [{ kernelGbps: 20, weftGbps: 8, ratio: 0.4 }, { kernelGbps: 19, weftGbps: 9.5, ratio: 0.5 }, { kernelGbps: 21, weftGbps: 9.45, ratio: 0.45 }]
  })
  assert.equal(c.medianRatio, 0.45)
  assert.equal(c.minRatio, 0.4)
  assert.equal(c.maxRatio, 0.5)
  assert.equal(c.kernelGbps, 20)
  assert.equal(c.weftGbps, 9.45)
  assert.equal(c.label, 'node -> pod, 1 stream, default (bbr)')
  const none = summarise({ name: 'pod:cubic', source: 'pod', streams: 1, congestion: 'cubic', algorithm: 'cubic', rounds: [] })
  assert.ok(Number.isNaN(none.medianRatio) && Number.isNaN(none.minRatio) && Number.isNaN(none.kernelGbps))
})

test('a report prints head to head by condition, every condition by name with its rounds and range, and draws it', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'run.json')
  const round = (k: number, w: number): Record<string, number> => ({ kernelGbps: k, weftGbps: w, ratio: w / k })
  const conds = [
    summarise({ name: 'node:default', source: 'node', streams: 1, congestion: 'default', algorithm: 'bbr', rounds: [round(20, 8), round(20, 10), round(20, 9)] as never }),
    summarise({ name: 'pod-4:cubic', source: 'pod', streams: 4, congestion: 'cubic', algorithm: 'cubic', rounds: [round(25, 10), round(25, 12.5), round(25, 15)] as never }),
    { ...summarise({ name: 'other-cni:cubic', source: 'other-cni', streams: 1, congestion: 'cubic', algorithm: 'cubic', rounds: [round(16, 8)] as never }), error: 'iperf3 client failed' }
  ]
  fs.writeFileSync(file, JSON.stringify({
    started: '2026-12-07T12:00:00.000Z',
    options: { seconds: 3, offloads: true, udpRate: '1G', pings: 200, rounds: 3, only: 'head-to-head', conditions: ['node', 'pod-4', 'other-cni'], h2hCongestion: ['default', 'cubic'] },
    paths: [],
    headToHeadByCondition: conds
  }))
  const r = spawnSync(process.execPath, [RUN, '--report', file], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /head to head by condition: weft vxlan against kernel VXLAN, both set up at once and run in turn, 3 rounds of 3 s/)
  assert.match(r.stdout, /node -> pod, 1 stream, default \(bbr\) +20\.00\/8\.00 = 0\.40x +20\.00\/10\.00 = 0\.50x +20\.00\/9\.00 = 0\.45x +0\.45x \(0\.40 to 0\.50\) +20\.00\/9\.00/)
  assert.match(r.stdout, /pod -> pod, 4 streams, cubic +25\.00\/10\.00 = 0\.40x .* 0\.50x \(0\.40 to 0\.60\) +25\.00\/12\.50/)
  assert.match(r.stdout, /other-CNI pod -> pod, 1 stream, cubic +16\.00\/8\.00 = 0\.50x .*failed: iperf3 client failed/)
  assert.doesNotMatch(r.stdout, /all paths/, 'a run of the conditions alone has no paths table')
  const svg = fs.readFileSync(path.join(dir, 'run.svg'), 'utf8')
  assert.match(svg, /head to head by condition/)
  assert.match(svg, />node, bbr</)
  assert.match(svg, />pod x4, cubic</)
  assert.match(svg, /rounds 0\.40 to 0\.60/)
})
