// bench/summary.ts: several runs' figures per measure, their spread, and
// whether every run met issue 19's goal.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync, spawnSync } from 'node:child_process'
import { formatSummary, runFiles, summarise } from '../../bench/summary'
import type { RunJson } from '../../bench/summary'

const SUMMARY = path.join(__dirname, '..', '..', 'bench', 'summary.js')

function cond (name: string, ratio: number): RunJson['headToHeadByCondition'] extends Array<infer C> | undefined ? C : never {
  return { name, label: name, source: 'pod', streams: 1, congestion: name.split(':')[1], algorithm: 'cubic', rounds: [], medianRatio: ratio, minRatio: ratio, maxRatio: ratio, kernelGbps: 10, weftGbps: 10 * ratio }
}

function run (started: string, podDefault: number, ping: [number, number]): RunJson {
  return {
    started,
    options: { congestion: 'cubic' },
    headToHead: [
      { name: 'vxlan', label: 'weft vxlan', rounds: [], medianRatio: podDefault + 0.05 },
      { name: 'ipip', label: 'weft ipip', rounds: [], medianRatio: 0.11 }
    ],
    headToHeadByCondition: [cond('pod:default', podDefault), cond('pod-4:default', 0.3)],
    pingRounds: [
      { name: 'vxlan', label: 'weft vxlan', rounds: [{ kernelMs: ping[0], weftMs: ping[1], gapUs: 1000 * (ping[1] - ping[0]), round: 0 }], medianGapUs: 1000 * (ping[1] - ping[0]) },
      // the C forwarder, the floor, in the same round: 3x kernel VXLAN
      { name: 'forwarder', label: 'C forwarder', rounds: [{ kernelMs: ping[0], weftMs: 3 * ping[0], gapUs: 2000 * ping[0], round: 0 }], medianGapUs: 2000 * ping[0] }
    ]
  }
}

test('each measure: every run\'s figure, least / median / greatest, and whether every run met its goal', () => {
  const s = summarise([
    { file: 'a.json', run: run('2026-12-07T10:00:00Z', 0.72, [0.1, 0.19]) },
    { file: 'b.json', run: run('2026-12-07T11:00:00Z', 0.65, [0.1, 0.25]) },
    { file: 'c.json', run: { started: '2026-12-07T12:00:00Z', headToHeadByCondition: [cond('pod:default', 0.8)] } }
  ])
  const by = Object.fromEntries(s.measures.map((m) => [m.key, m]))
  assert.deepEqual(by['pod:default'].values, [0.72, 0.65, 0.8])
  assert.equal(by['pod:default'].min, 0.65)
  assert.equal(by['pod:default'].median, 0.72)
  assert.equal(by['pod:default'].max, 0.8)
  assert.equal(by['pod:default'].metInEvery, false, '0.65 < 0.7 in run 2')
  // pod under cubic is weft vxlan's per-path head to head when the run's --congestion was cubic
  assert.deepEqual(by['pod:cubic'].values.map((v) => v === null ? null : Math.round(v * 100) / 100), [0.77, 0.7, null])
  assert.equal(by['pod:cubic'].metInEvery, true, 'a run that did not measure it does not count against it')
  assert.deepEqual(by['pod-4:default'].values, [0.3, 0.3, null])
  assert.equal(by['pod-4:default'].metInEvery, false)
  assert.ok(Math.abs(by['ping:vxlan'].values[0]! - 1.9) < 1e-9 && Math.abs(by['ping:vxlan'].values[1]! - 2.5) < 1e-9)
  assert.equal(by['ping:vxlan'].metInEvery, false, 'at most 2x: 2.5 is not')
  assert.deepEqual(by['ping:forwarder'].values.map((v) => v === null ? null : Math.round(v * 100) / 100), [3, 3, null])
  assert.deepEqual(by['ping:vxlan/forwarder'].values.map((v) => v === null ? null : Math.round(v * 100) / 100), [0.63, 0.83, null], 'weft over the floor, paired by round')
  assert.equal(by.ipip.metInEvery, false)
  assert.equal(by['node:default'], undefined, 'a measure no run has is left out')
  const text = formatSummary(s).join('\n')
  assert.match(text, /run 2: 2026-12-07T11:00:00Z \(b\.json\)/)
  assert.match(text, /TCP pod -> pod, 1 stream, default, weft vxlan \/ kernel VXLAN\s+0\.72\s+0\.65\s+0\.80\s+0\.65 \/ 0\.72 \/ 0\.80\s+>= 0\.7\s+NO/)
})

test('the command reads the files named, leaves out what is not a run and says so, and prints JSON with --json', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-summary-'))
  try {
    const a = path.join(dir, '2026-12-07T10-00-00Z.json')
    fs.writeFileSync(a, JSON.stringify(run('2026-12-07T10:00:00Z', 0.75, [0.1, 0.15])))
    const junk = path.join(dir, 'junk.json')
    fs.writeFileSync(junk, '{not json')
    const empty = path.join(dir, 'empty.json')
    fs.writeFileSync(empty, JSON.stringify({ started: 'x' }))
    assert.deepEqual(runFiles(dir), [a, empty, junk].sort())
    const r = spawnSync(process.execPath, [SUMMARY, a, junk, empty, '--json'], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stderr, /junk\.json: not a bench run/)
    assert.match(r.stderr, /empty\.json: measured none of the rounds/)
    const s = JSON.parse(r.stdout) as { runs: unknown[], measures: Array<{ key: string, metInEvery: boolean | null }> }
    assert.equal(s.runs.length, 1)
    assert.equal(s.measures.find((m) => m.key === 'pod:default')?.metInEvery, true)
    const none = spawnSync(process.execPath, [SUMMARY, junk], { encoding: 'utf8' })
    assert.equal(none.status, 1)
    assert.match(none.stderr, /no bench runs to summarise/)
    assert.match(execFileSync(process.execPath, [SUMMARY, a], { encoding: 'utf8' }), /1 run:/)
  } finally { fs.rmSync(dir, { recursive: true, force: true }) }
})
