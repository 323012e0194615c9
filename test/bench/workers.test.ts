// The bench's two-workers-against-one rounds (bench/run.ts): a run's report
// prints each round and the median, and the chart gives them a panel with
// weft vxlan (one worker) as the reference. The rounds themselves need
// namespaces: `npm run bench -- --paths vxlan,vxlan-2w`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const RUN = path.join(__dirname, '..', '..', 'bench', 'run.js')

test('a report prints two workers against one, round by round with the median ratio, and draws it beside one worker', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'run.json')
  const round = (one: number, two: number): Record<string, number> => ({ kernelGbps: one, weftGbps: two, ratio: two / one })
  fs.writeFileSync(file, JSON.stringify({
    started: '2026-12-06T12:00:00.000Z',
    options: { seconds: 3, offloads: true, udpRate: '1G', pings: 200, rounds: 3 },
    paths: [],
    workers: [{ name: 'vxlan-2w', label: 'weft vxlan x2', rounds: [round(10, 12), round(11, 11), round(10, 9)], medianRatio: 1 }]
  }))
  const r = spawnSync(process.execPath, [RUN, '--report', file], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /two workers against one: TCP 4 streams/)
  assert.match(r.stdout, /weft vxlan x2 +10\.00\/12\.00 = 1\.20x +11\.00\/11\.00 = 1\.00x +10\.00\/9\.00 = 0\.90x +1\.00x \(0\.90 to 1\.20\)/)
  const svg = fs.readFileSync(path.join(dir, 'run.svg'), 'utf8')
  assert.match(svg, /TCP, 4 streams, two workers against one: median of 3 alternating rounds/)
  assert.doesNotMatch(svg, /kernel VXLAN \(flannel\)/, 'one worker is drawn as a weft path, not as the kernel')
})
