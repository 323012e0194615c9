// What the peer offload's tests (ipip-offload, vxlan-offload) check of a
// node's peers: a peer's insidePackets and outsidePackets count what went to
// and came from it either way; offloadPackets and offloadInPackets what the
// kernel carried of that (src/backend/tun/peer-offload.ts).
import assert from 'node:assert/strict'
import type { Daemon } from '../../lab/daemons'

export interface OffloadPeer { subnet: string, sendOffload?: boolean, receiveOffload?: boolean, offloadPackets?: number, offloadBytes?: number, offloadInPackets?: number, insidePackets: number, outsidePackets: number }
export interface OffloadStatus { peers: OffloadPeer[], counters: { subnet: string, counters: Record<string, number>, drops: Record<string, number> } }
export const offloadStatus = async (d: Daemon): Promise<OffloadStatus> => await d.status() as unknown as OffloadStatus

/** What went to the peer through weft's own pipeline. */
export const pipedOut = (p: OffloadPeer): number => p.insidePackets - (p.offloadPackets ?? 0)
/** What came from the peer through weft's own pipeline. */
export const pipedIn = (p: OffloadPeer): number => p.outsidePackets - (p.offloadInPackets ?? 0)

/** Light packets are the receive program's: after `count` pings, each node's kernel received them all from its one peer, weft's pipeline none. */
export async function assertPingsByKernel (nodes: Array<[string, Daemon]>, count: number): Promise<void> {
  for (const [name, d] of nodes) {
    const p = (await offloadStatus(d)).peers[0]
    assert.ok((p.offloadInPackets ?? 0) >= count && pipedIn(p) === 0, `${name}: the kernel received the pings (${p.offloadInPackets ?? 0}), weft's pipeline ${pipedIn(p)}`)
  }
}

/** Both programs ran for each peer and the kernel carried the traffic both ways; weft's pipeline sent next to nothing. */
export function assertCarriedByKernel (peers: Array<[string, OffloadPeer]>): void {
  for (const [name, p] of peers) {
    assert.equal(p.sendOffload, true, `${name} sends through the offload`)
    assert.equal(p.receiveOffload, true, `${name} receives through the offload`)
    assert.ok((p.offloadPackets ?? 0) > 20 && (p.offloadInPackets ?? 0) > 20, `${name}: the kernel carried the pings and the streams both ways`)
    assert.ok(pipedOut(p) < 20, `${name}: weft's own pipeline sent next to nothing`)
    assert.ok(p.insidePackets >= (p.offloadPackets ?? 0) && p.outsidePackets >= (p.offloadInPackets ?? 0), `${name}: the peer's counts include what the kernel carried`)
  }
}

/** One line for the test's diagnostics: each node's packets carried by the kernel and by weft's pipeline, out/in. */
export function carriedBy (peers: Array<[string, OffloadPeer]>): string {
  return `carried by the kernel, out/in: ${peers.map(([n, p]) => `${n} ${p.offloadPackets}/${p.offloadInPackets}`).join(', ')}; by weft's pipeline: ${peers.map(([n, p]) => `${n} ${pipedOut(p)}/${pipedIn(p)}`).join(', ')}`
}
