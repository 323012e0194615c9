// Hostile input at the outside path of an IPv6 pipeline (VXLAN carrying
// inner IPv6): random bytes, and well-formed datagrams mutated, with
// extension headers sound and broken, fragments, jumbograms, lying payload
// lengths, Neighbour Discovery, spoofed sources and RCO marks. For every
// datagram, exactly one of: its inner packet reaches the TUN byte for byte
// (but for a TCP/UDP checksum a sender left partial, which the node
// finishes), or one drop counter with a reason the datagram really has goes
// up by one. Nothing throws; nothing from a stranger passes.
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { reasonsMatch } from './reasons-match'
import { budget } from './budget'
import { directRig6 } from './drive6'
import type { Datagram } from './drive'
import { expected6, randomInnerCase6, structuredCase6 } from './frames6'

const hex = (b: Buffer): string => b.toString('hex')

/** `got` is `want`, but perhaps for the TCP/UDP checksum field of a packet with TCP/UDP right after the fixed header (finished). */
function samePacket6 (got: Buffer, want: Buffer): boolean | 'finished' {
  if (got.equals(want)) return true
  if (got.length !== want.length || (want[6] !== 6 && want[6] !== 17)) return false
  const at = 40 + (want[6] === 6 ? 16 : 6)
  const g = Buffer.from(got)
  g[at] = want[at]; g[at + 1] = want[at + 1]
  return g.equals(want) ? 'finished' : false
}

interface Tally { datagrams: number, passed: number, dropped: Record<string, number> }

async function fuzz (t: TestContext, cases: fc.Arbitrary<Datagram>, runs: number, seconds: number): Promise<Tally> {
  const rig = directRig6()
  t.after(() => rig.close())
  const tally: Tally = { datagrams: 0, passed: 0, dropped: {} }
  await fc.assert(fc.asyncProperty(fc.array(cases, { minLength: 1, maxLength: 24 }), async (cs) => {
    const out = rig.inject(cs)
    assert.equal(out.threw, undefined, `the outside loop threw: ${String(out.threw)}`)
    const wants = cs.map((c) => expected6(c.datagram, c.from))
    const show = (i: number): string => `#${i} from ${cs[i].from} ${hex(cs[i].datagram)}: model ${wants[i].pass !== undefined ? 'pass' : 'drop'} ${JSON.stringify([...wants[i].reasons])}`
    const summary = `${cs.length} datagrams, delivered ${out.delivered.length}, drops ${JSON.stringify(out.drops)}\n${cs.map((_, i) => show(i)).join('\n')}`
    let j = 0
    let finished = 0
    const dropped: Array<Set<string>> = []
    for (let i = 0; i < cs.length; i++) {
      const pass = wants[i].pass
      if (pass === undefined) { dropped.push(wants[i].reasons); continue }
      const same = j < out.delivered.length ? samePacket6(out.delivered[j], pass) : false
      // one that must pass may be missing only if the socket cut it (rx_truncated)
      if (same === false && wants[i].reasons.has('rx_truncated')) { dropped.push(new Set(['rx_truncated'])); continue }
      if (same === false) assert.fail(`${show(i)} did not reach the TUN as it should: ${summary}`)
      if (same === 'finished') finished++
      j++
    }
    assert.equal(j, out.delivered.length, `the TUN got packets that must not pass: ${summary}`)
    assert.equal(out.passed, out.delivered.length)
    assert.equal(out.finished, finished, 'checksums counted as finished are the ones that changed (RCO finishes are not counted as such)')
    assert.ok(reasonsMatch(dropped, out.drops), `drops counted under reasons these datagrams do not have: ${summary}`)
    tally.datagrams += cs.length
    tally.passed += out.delivered.length
    for (const [r, n] of Object.entries(out.drops)) tally.dropped[r] = (tally.dropped[r] ?? 0) + n
  }), budget(runs, seconds))
  t.diagnostic(`${tally.datagrams} datagrams: ${tally.passed} passed, dropped ${JSON.stringify(tally.dropped)}`)
  return tally
}

test('IPv6 inside VXLAN: well-formed and mutated datagrams are each passed byte for byte or dropped once with a true reason', async (t) => {
  const tally = await fuzz(t, structuredCase6, 600, 3)
  assert.ok(tally.passed > tally.datagrams / 20, `only ${tally.passed} of ${tally.datagrams} passed`)
  for (const r of ['unknown_source', 'ndp', 'bad_extension_header', 'jumbogram', 'bad_payload_length', 'spoofed_source', 'not_for_us']) {
    assert.ok((tally.dropped[r] ?? 0) > 0, `some ${r}: ${JSON.stringify(tally.dropped)}`)
  }
})

test('IPv6 inside VXLAN: random bytes behind a valid header are each passed exactly or dropped once, for a reason they have', async (t) => {
  await fuzz(t, randomInnerCase6, 400, 1.5)
})
