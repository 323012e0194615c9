// weft vxlan against the C forwarder in the bench's ping rounds. Issue 19
// names the forwarder (bench/forwarder.c: one packet per syscall, no JS) the
// floor of a TUN-and-socket design; this is how far above it weft is, paired
// round by round, since a round's medians move by 2x between minutes here.
import type { PingHeadToHead } from './rounds'
import { median } from './stats'

/** weft vxlan against the C forwarder, round by round: the median of the rounds' gaps and ratios, and the forwarder's ratio to kernel VXLAN. */
export function overFloor (pings: PingHeadToHead[]): { gapUs: number, ratio: number, floorRatio: number } | undefined {
  const weft = pings.find((h) => h.name === 'vxlan' && h.error === undefined)
  const fwd = pings.find((h) => h.name === 'forwarder' && h.error === undefined)
  if (weft === undefined || fwd === undefined) return undefined
  const pairs = weft.rounds.flatMap((w) => {
    const f = fwd.rounds.find((x) => x.round !== undefined && x.round === w.round)
    return f === undefined ? [] : [{ gapUs: (w.weftMs - f.weftMs) * 1000, ratio: w.weftMs / f.weftMs, floorRatio: f.weftMs / f.kernelMs }]
  })
  if (pairs.length === 0) return undefined
  return { gapUs: median(pairs.map((x) => x.gapUs)), ratio: median(pairs.map((x) => x.ratio)), floorRatio: median(pairs.map((x) => x.floorRatio)) }
}
