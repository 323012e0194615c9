// A bounded UDP load generator on the batched native path (sendmmsg), used by
// the benchmarks to offer more packets than the thing under test can carry.
// Stops after --seconds or --max-packets, whichever comes first, and prints
// {"flood":{sent, seconds, eagain}}.
//
// usage: udp-flood --to IP:PORT --size BYTES --batch N --seconds S [--max-packets M]
import { openUdp4, PacketBatch, PeerTable } from '../src/native'
import { parseIp4 } from '../src/packet/ip'
import { benchArgs } from './args'

const flags = benchArgs('udp-flood', {
  to: { type: 'string', hint: 'IP:PORT' },
  size: { type: 'string', default: '64' },
  batch: { type: 'string', default: '64' },
  seconds: { type: 'string', default: '3' },
  'max-packets': { type: 'string', default: String(50_000_000) }
})
if (flags.to === undefined) throw new Error('missing --to')
const [ip, port] = flags.to.split(':')
const size = Number(flags.size)
const batch = Number(flags.batch)
const seconds = Number(flags.seconds)
const maxPackets = Number(flags['max-packets'])

const udp = openUdp4({ addr: 0, port: 0, batch, sndbuf: 4 << 20 })
const peers = new PeerTable(1)
peers.set(0, parseIp4(ip), Number(port))
const b = new PacketBatch({ size: batch, slotSize: Math.max(size, 1) })
b.slab.fill(0x5a)
b.lengths.fill(size)
udp.io.sendFrom(b, peers)

const start = process.hrtime.bigint()
const deadline = start + BigInt(Math.round(seconds * 1e9))
let sent = 0

function finish (): void {
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9
  const s = udp.io.stats()
  process.stdout.write(JSON.stringify({ flood: { sent, seconds: elapsed, eagain: s.txEagain, dropped: s.txDropError + s.txDropUnreachable } }) + '\n')
  udp.io.close()
}

// Send bursts until the socket pushes back, then yield to the event loop so a
// full queue is waited out with uv_poll instead of spinning.
function burst (): void {
  for (let k = 0; k < 64; k++) {
    if (sent >= maxPackets || process.hrtime.bigint() >= deadline) { finish(); return }
    const n = udp.io.send(batch)
    sent += n
    if (n < batch) { udp.io.wantWritable(); return }
  }
  setImmediate(burst)
}

udp.io.start(() => {}, burst)
udp.io.setReading(false)
burst()
