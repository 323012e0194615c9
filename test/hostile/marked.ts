// Watching for a marked payload with tcpdump, for the hostile-input tests:
// a flood carries a marker at the start of its inner UDP payload, and a
// capture where a spoofed packet would land counts what arrived with it.
import assert from 'node:assert/strict'
import type { ChildHandle } from '../../lab/netns'

/** tcpdump filter: UDP whose payload starts with the marker's first four bytes */
export function markedFilter (marker: string): string {
  return `udp and udp[8:4] = 0x${Buffer.from(marker).subarray(0, 4).toString('hex')}`
}

/** Packets a tcpdump saw, from its exit summary (stops it). */
export async function captured (cap: ChildHandle): Promise<number> {
  await cap.stop(2000)
  const m = /(\d+) packets? captured/.exec(cap.stderr)
  assert.ok(m !== null, `tcpdump printed no summary: ${cap.stderr.slice(-300)}`)
  return Number(m[1])
}
