// The dataplane's per-packet calls allocate nothing: a million send() and
// received() calls on a live session (counters, replay window, timers,
// roaming checks) and the index lookups cause no garbage collection.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import v8 from 'node:v8'
import vm from 'node:vm'
import { WgDrop } from '../../src/wireguard/reasons'
import { gcCounter } from '../dataplane/gc'
import { Net, T0 } from './net'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

test('peer.send, indexes.slotOf/keypairAt, kp.expired and peer.received allocate nothing per packet', (t) => {
  const net = new Net()
  const a = net.node('a', '198.18.0.1')
  const b = net.node('b', '198.18.0.2')
  const [ab, ba] = net.link(a, b)
  ab.send(T0)
  net.run(a, a.dev.takeOutgoing(), T0)
  const index = ab.current!.remoteIndex
  const loop = (n: number, start: number): number => {
    let ok = 0
    for (let i = 0; i < n; i++) {
      const now = T0 + 1 + (start + i) / 100_000 // a millisecond per 100,000 packets
      const counter = ab.send(now, 1)
      const slot = b.dev.indexes.slotOf(index)
      const kp = b.dev.indexes.keypairAt(slot)!
      if (kp.expired(now)) continue
      if (ba.received(kp, counter, 1400, now, a.addr, a.port) === WgDrop.OK) ok++
    }
    return ok
  }
  loop(100_000, 0) // warm up
  const gcs = gcCounter(t)
  gc()
  gcs.reset()
  const ok = loop(1_000_000, 100_000)
  assert.equal(ok, 1_000_000)
  assert.equal(a.dev.hasOutgoing || b.dev.hasOutgoing, false, 'nothing to send: no handshake started')
  assert.ok(gcs.count <= 1, `${gcs.count} GCs over a million packets`)
})
