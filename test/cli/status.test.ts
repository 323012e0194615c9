// `weft status` against a control socket serving a made-up status: the
// counters it prints only when they moved (busy polling, UDP pacing).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ControlServer } from '../../src/daemon/control'
import { status } from '../../src/cli/status'
import { captureLogger } from '../helpers/log'

async function statusText (t: { after: (fn: () => Promise<void> | void) => void }, counters: Record<string, number>): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-status-'))
  const server = new ControlServer(dir, () => ({
    lease: { subnet: '10.244.1.0/24', publicIP: '192.0.2.1', expiration: null },
    ready: true,
    backend: 'vxlan',
    device: 'weft.1',
    mtu: 1450,
    peers: [],
    counters: { counters, drops: {} }
  }), captureLogger('info').log)
  await server.listen()
  t.after(async () => {
    await server.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const out: string[] = []
  assert.equal(await status.run(['--state-dir', dir], { out: (l) => out.push(l), err: () => {} }), 0)
  return out.join('\n')
}

test('weft status shows the pacer\'s waits once UDP was paced', async (t) => {
  const text = await statusText(t, { inside_packets: 1, outside_packets: 2, outside_paced: 42 })
  assert.match(text, /^paced\s+UDP to pods waited 42 times, a backlog read at once written to the TUN in pieces \(WEFT_UDP_PACING\)$/m)
  assert.match(text, /^traffic\s+out 1 packets/m)
})

test('weft status says nothing of pacing (nor busy polling) while neither happened', async (t) => {
  const text = await statusText(t, { inside_packets: 1, outside_packets: 2, outside_paced: 0 })
  assert.doesNotMatch(text, /paced|busy poll/)
  assert.match(text, /^drops\s+none$/m)
})
