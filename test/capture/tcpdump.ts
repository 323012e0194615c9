// Read a pcap file back with tcpdump itself (`-r FILE -n -tt -xx`), the
// independent reader that says our --write files are real pcap: per packet
// its epoch time stamp, tcpdump's text and the bytes.
import { spawnSync } from 'node:child_process'

export interface TcpdumpPacket {
  /** seconds.microseconds, as -tt prints it */
  ts: string
  /** tcpdump's text for the packet, lines joined by ' | ' */
  text: string
  /** the frame's bytes, hex */
  hex: string
}

export interface TcpdumpRead {
  /** e.g. 'EN10MB (Ethernet)', 'RAW (Raw IP)' */
  linkType: string
  packets: TcpdumpPacket[]
}

export function tcpdumpRead (file: string): TcpdumpRead {
  const r = spawnSync('tcpdump', ['-r', file, '-n', '-tt', '-xx'], { encoding: 'utf8', timeout: 20_000 })
  if (r.status !== 0) throw new Error(`tcpdump -r ${file} failed (${r.status}): ${r.stderr}`)
  const m = /link-type (.+?), snapshot length/.exec(r.stderr)
  const packets: TcpdumpPacket[] = []
  for (const line of r.stdout.split('\n')) {
    if (line === '') continue
    const ts = /^(\d+\.\d{6}) (.*)$/.exec(line)
    const hex = /^\t0x[0-9a-f]+:\s+((?:[0-9a-f]{2,4} ?)+)/.exec(line)
    const last = packets[packets.length - 1]
    if (ts !== null) packets.push({ ts: ts[1] as string, text: ts[2] as string, hex: '' })
    else if (hex !== null && last !== undefined) last.hex += (hex[1] as string).replace(/\s+/g, '')
    else if (last !== undefined) last.text += ` | ${line.trim()}`
  }
  return { linkType: m?.[1] ?? '', packets }
}
