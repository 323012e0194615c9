// The bench's ping rounds (bench/run.ts, rounds.ts): a run's report prints
// each round's medians and gap and the median gap per weft path, and the
// chart draws the gaps against the 50 µs line. The rounds themselves need
// namespaces: `npm run bench -- --paths kernel-vxlan,vxlan`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const RUN = path.join(__dirname, '..', '..', 'bench', 'run.js')

test('a report prints the ping rounds, round by round with the median gap to kernel VXLAN, and weft over the C forwarder in the same rounds, and draws the gaps against 50 µs', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'run.json')
  const round = (kernelMs: number, weftMs: number, r: number): Record<string, number> => ({ kernelMs, weftMs, gapUs: (weftMs - kernelMs) * 1000, round: r })
  fs.writeFileSync(file, JSON.stringify({
    started: '2026-12-06T12:00:00.000Z',
    options: { seconds: 3, offloads: true, udpRate: '1G', pings: 200, rounds: 3 },
    paths: [],
    pingRounds: [
      { name: 'vxlan', label: 'weft vxlan', rounds: [round(0.03, 0.13, 0), round(0.04, 0.12, 1), round(0.03, 0.15, 2)], medianGapUs: 100 },
      { name: 'vxlan-bp', label: 'weft vxlan --busy-poll', rounds: [round(0.03, 0.06, 0), round(0.04, 0.065, 1), round(0.03, 0.05, 2)], medianGapUs: 25 },
      // the forwarder failed its second round: the rounds pair by number, not by place
      { name: 'forwarder', label: 'C forwarder', rounds: [round(0.03, 0.10, 0), round(0.03, 0.09, 2)], medianGapUs: 65 }
    ]
  }))
  const r = spawnSync(process.execPath, [RUN, '--report', file], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /ping rounds: kernel VXLAN, weft vxlan, weft vxlan --busy-poll 20000, C forwarder set up at once/)
  // rounds 1 and 3: weft 30 and 60 µs behind the forwarder, 1.3x and 1.67x it; the forwarder 3.33x and 3x kernel VXLAN
  assert.match(r.stdout, /weft vxlan over the C forwarder \(the floor of a TUN-and-socket design\) in the same rounds: median 45 µs behind it, 1\.48x its median; the C forwarder is 3\.17x kernel VXLAN's/)
  assert.match(r.stdout, /weft vxlan +0\.030\/0\.130, 100 µs +0\.040\/0\.120, 80 µs +0\.030\/0\.150, 120 µs +100 µs/)
  assert.match(r.stdout, /weft vxlan --busy-poll +0\.030\/0\.060, 30 µs .* +25 µs/)
  const svg = fs.readFileSync(path.join(dir, 'run.svg'), 'utf8')
  assert.match(svg, /ping, median of 3 alternating rounds: weft&#39;s median minus kernel VXLAN&#39;s|ping, median of 3 alternating rounds: weft's median minus kernel VXLAN's/)
  assert.match(svg, /50 µs/)
})
