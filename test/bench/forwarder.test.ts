// The bench's C forwarder path (bench/forwarder.c, the floor under any TUN
// tunnel): it builds with the machine's C compiler, and a run's report draws
// it as the floor beside the ping panel. Forwarding itself needs namespaces:
// `npm run bench -- --paths kernel-vxlan,forwarder`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { forwarderBinary } from '../../bench/forwarder'

const RUN = path.join(__dirname, '..', '..', 'bench', 'run.js')

function compilerMissing (): string | undefined {
  const cc = process.env.CC ?? 'cc'
  return spawnSync(cc, ['--version']).error !== undefined ? `no C compiler (${cc}) on this machine` : undefined
}

test('the forwarder builds with the machine\'s C compiler and says how to call it', (t) => {
  const skip = compilerMissing()
  if (skip !== undefined) { t.skip(skip); return }
  const bin = forwarderBinary()
  assert.equal(forwarderBinary(), bin, 'built once per process')
  const r = spawnSync(bin, ['only-a-name'], { encoding: 'utf8' })
  assert.equal(r.status, 2)
  assert.match(r.stderr, /usage: forwarder NAME LOCAL_IP PEER_IP SECONDS/)
})

test('a report draws the ping panel, with the forwarder as the floor and only the kinds it has in the legend', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'run.json')
  const window = { wall: 2, cores: {} }
  fs.writeFileSync(file, JSON.stringify({
    started: '2026-12-06T12:00:00.000Z',
    options: { seconds: 3, offloads: true, udpRate: '1G', pings: 200, rounds: 0 },
    paths: [
      { name: 'kernel-vxlan', label: 'kernel VXLAN', kind: 'reference', background: 0, podMtu: 1450, ping: { sent: 200, received: 200, medianMs: 0.12, p99Ms: 0.15, window } },
      { name: 'forwarder', label: 'C forwarder', kind: 'floor', background: 0, podMtu: 1450, ping: { sent: 200, received: 200, medianMs: 0.18, p99Ms: 0.3, window } }
    ]
  }))
  const r = spawnSync(process.execPath, [RUN, '--report', file], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /C forwarder .* 0\.180 {3}0\.300/)
  const svg = fs.readFileSync(path.join(dir, 'run.svg'), 'utf8')
  assert.match(svg, /ping round trip, median \(shorter is better\)/)
  assert.match(svg, /\(1\.50x\)/, 'the forwarder\'s RTT as a ratio to kernel VXLAN')
  assert.match(svg, /C forwarder \(TUN floor\)/)
  assert.doesNotMatch(svg, /weft backends|plain veth \(ceiling\)/)
})
