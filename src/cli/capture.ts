// `weft capture`: tcpdump for the overlay. Captures tunnel packets on the
// underlay (or pod packets on the VTEP) through libpcap, prints one line per
// packet with the outer and inner headers decoded, optionally writes a pcap
// file. Always bounded by --count / --seconds or a signal, and it closes the
// libpcap handle on every way out.
import { parseArgs } from 'node:util'
import { WeftError } from '../errors'
import { findUnderlay } from '../kernel/iface'
import { deviceExists, deviceKind, openCapture, type CaptureSession } from '../capture/capture'
import { decodePacket, LINKTYPE_NAMES } from '../capture/decode'
import { BACKENDS, buildFilter, decodeOptionsFor, matchesPods, parseAddressOrNet, type Backend } from '../capture/filter'
import { formatJson, formatLine } from '../capture/format'
import { PcapWriter } from '../capture/pcap-writer'
import type { Command, Io } from './command'

const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/

function positiveInt (v: string | undefined, flag: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max) throw new WeftError('EFLAG', `${flag} must be an integer in 1..${max}, got ${JSON.stringify(v)}`)
  return Number(v)
}

/** --iface: a device name as is, an address names its interface; default the default route's. */
function pickDevice (iface: string | undefined): string {
  if (iface === undefined) return findUnderlay([], '').name
  if (IPV4_RE.test(iface)) return findUnderlay([iface], '').name
  if (!deviceExists(iface)) throw new WeftError('EIFACE', `no network interface ${iface} here`)
  return iface
}

export const capture: Command = {
  name: 'capture',
  summary: 'capture overlay packets (VXLAN, IP-in-IP, UDP, WireGuard) and print outer and inner headers, or write a pcap file',
  usage: 'weft capture [--iface NAME] [--backend vxlan|ipip|udp|wireguard|auto] [--port N] [--pod IP[/LEN]]... [--node IP[/LEN]]... ' +
    '[--count N] [--seconds S] [--write FILE.pcap] [--json]\n\n' +
    '  --iface    device to capture on (default: the default route\'s); a VTEP such as weft.1\n' +
    '             shows the pods\' packets themselves\n' +
    '  --backend  which tunnel traffic to capture on the underlay (default auto: all four)\n' +
    '  --port     the tunnel\'s UDP port (VXLAN 8472 for vxlan/auto, 8285 for udp, 51820 for wireguard)\n' +
    '  --pod      only packets from or to this pod address or subnet (inner headers); repeatable\n' +
    '  --node     only tunnel packets from or to this node address or subnet (outer); repeatable\n' +
    '  --count    stop after N packets;  --seconds  stop after S seconds (Ctrl-C stops too)\n' +
    '  --write    also write the packets to a pcap file (tcpdump -r, Wireshark)\n' +
    '  --json     one JSON object per packet instead of a line',
  async run (argv, io) {
    const { values } = parseArgs({
      args: argv,
      options: {
        iface: { type: 'string' },
        backend: { type: 'string', default: 'auto' },
        port: { type: 'string' },
        pod: { type: 'string', multiple: true },
        node: { type: 'string', multiple: true },
        count: { type: 'string' },
        seconds: { type: 'string' },
        write: { type: 'string' },
        json: { type: 'boolean' }
      }
    })
    const backend = values.backend as Backend
    if (!BACKENDS.includes(backend)) throw new WeftError('EFLAG', `--backend must be one of ${BACKENDS.join(', ')}, got ${JSON.stringify(values.backend)}`)
    const port = positiveInt(values.port, '--port', 65535)
    if (port !== undefined && backend === 'ipip') throw new WeftError('EFLAG', '--port does not apply to --backend ipip (IP-in-IP has no ports)')
    const count = positiveInt(values.count, '--count')
    let seconds: number | undefined
    if (values.seconds !== undefined) {
      seconds = Number(values.seconds)
      if (!/^\d+(\.\d+)?$/.test(values.seconds) || !(seconds > 0)) throw new WeftError('EFLAG', `--seconds must be a positive number, got ${JSON.stringify(values.seconds)}`)
    }
    const pods = (values.pod ?? []).map((p) => parseAddressOrNet(p, '--pod'))
    const nodes = (values.node ?? []).map((n) => parseAddressOrNet(n, '--node'))

    const device = pickDevice(values.iface)
    const kind = deviceKind(device)
    const filter = buildFilter({ backend, port, pods, nodes, kind })
    const decodeOpts = decodeOptionsFor(backend, port, kind)
    return await runCapture(io, {
      device, kind, filter, decodeOpts, pods, count, seconds, write: values.write, json: values.json === true
    })
  }
}

interface RunOptions {
  device: string
  kind: string
  filter: string
  decodeOpts: ReturnType<typeof decodeOptionsFor>
  pods: ReturnType<typeof parseAddressOrNet>[]
  count: number | undefined
  seconds: number | undefined
  write: string | undefined
  json: boolean
}

async function runCapture (io: Io, o: RunOptions): Promise<number> {
  let shown = 0
  let skipped = 0
  let writer: PcapWriter | undefined
  let failure: unknown
  let finish: () => void = () => {}
  const done = new Promise<void>((resolve) => { finish = resolve })

  let session: CaptureSession | undefined
  const stop = (): void => {
    session?.close()
    finish()
  }
  const timers: NodeJS.Timeout[] = []
  // Signals first: whoever sees the "listening" line may stop us right away.
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  try {
    session = openCapture(o.device, o.filter, (frame, tsUs) => {
      try {
        const d = decodePacket(frame, session?.linkType ?? 0, o.decodeOpts)
        if (!matchesPods(d, o.pods)) { skipped++; return }
        io.out(o.json ? formatJson(d, tsUs) : formatLine(d, tsUs))
        writer?.write(tsUs, frame)
        shown++
        if (o.count !== undefined && shown >= o.count) stop()
      } catch (err) {
        failure = err
        stop()
      }
    })
    // Packets arrive only once this function yields to the event loop, so
    // none is missed between open and here.
    if (o.write !== undefined) writer = PcapWriter.create(o.write, session.linkType)
    const link = LINKTYPE_NAMES[session.linkType] ?? String(session.linkType)
    io.err(`weft capture: listening on ${o.device} (${o.kind}, link type ${link}), filter "${o.filter}"`)
    if (o.seconds !== undefined) timers.push(setTimeout(stop, o.seconds * 1000))
    if (writer !== undefined) {
      const w = writer
      timers.push(setInterval(() => {
        try { w.flush() } catch (err) { failure = err; stop(); return }
        io.err(`weft capture: ${w.packets} packets written to ${w.path}`)
      }, 1000))
    }
    await done
  } finally {
    process.removeListener('SIGINT', stop)
    process.removeListener('SIGTERM', stop)
    for (const t of timers) clearTimeout(t)
    session?.close()
    writer?.close()
  }
  if (failure !== undefined) throw failure
  const filtered = skipped > 0 ? `, ${skipped} more not matching --pod` : ''
  io.err(`weft capture: ${shown} packets captured${filtered}${writer !== undefined ? `, written to ${writer.path}` : ''}`)
  return 0
}
