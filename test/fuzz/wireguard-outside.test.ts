// Hostile input at the WireGuard backend's outside path (underlay -> pods):
// random bytes; the real session's transport messages intact, cut, extended,
// bit-flipped, replayed, re-addressed to receiver indices the node never gave
// out, left behind by a counter that jumped past the replay window; handshake
// messages of every type, genuine and random, mutated, their mac1 recomputed
// so the mutation reaches the checks behind it. For every datagram, exactly
// one of: it reaches the pods as exactly the packet the peer sealed, it is
// taken quietly (a cookie reply that decrypts), or one drop counter with a
// reason the datagram really has goes up by one. Nothing throws; no counter
// reaches the pods twice; every cookie reply the node sends answers a
// handshake it refused for want of mac2; and the session made before the
// fuzz still carries a packet each way after it.
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { reasonsMatch } from './reasons-match'
import { performance } from 'node:perf_hooks'
import { WgDrop, WG_DROP_NAMES } from '../../src/wireguard/reasons'
import { DROP_NAMES } from '../../src/dataplane/stats'
import { udpPacket } from '../dataplane/helpers'
import { budget } from './budget'
import { directRig, NODE, PEER, socketRig } from './wireguard-drive'
import type { WgRig } from './wireguard-drive'
import { anyRecipe, dataRecipe, randomRecipe, reindexedRecipe, replayRecipe, shakeRecipe, WgModel } from './wireguard-frames'
import type { Recipe } from './wireguard-frames'

const hex = (b: Buffer): string => b.toString('hex')

interface Tally { runs: number, datagrams: number, passed: number, quiet: number, dropped: Record<string, number>, cookieReplies: number }

interface Fuzz { rig: WgRig, model: WgModel, tally: Tally, deliveredCounters: Set<number> }

async function check (f: Fuzz, recipes: readonly Recipe[]): Promise<void> {
  const { rig, model, tally } = f
  const ds = model.build(recipes)
  const wants = model.expect(ds, rig.exactBatches)
  const quiet = wants.filter((w) => w.quiet === true).length
  const out = await rig.inject(ds, ds.length - quiet)
  tally.runs++
  tally.datagrams += ds.length
  assert.equal(out.threw, undefined, `the outside loop threw: ${String(out.threw)}`)
  const show = (i: number): string => `#${i} from ${ds[i].from}${ds[i].glue === true ? ' (glued)' : ''}, ${ds[i].bytes.length} bytes ${hex(ds[i].bytes.subarray(0, 48))}…: model ${wants[i].pass !== undefined ? 'pass' : wants[i].quiet === true ? 'quiet' : 'drop'} ${JSON.stringify([...wants[i].reasons])}`
  const all = (): string => ds.map((_, i) => show(i)).join('\n')
  const summary = `${ds.length} datagrams, delivered ${out.delivered.length}, quiet ${quiet}, drops ${JSON.stringify(out.drops)}`
  const dropped = Object.values(out.drops).reduce((n, v) => n + v, 0)
  assert.equal(out.delivered.length + dropped + quiet, ds.length, `each accounted for exactly once: ${summary}\n${all()}`)
  assert.equal(out.passed, out.delivered.length, `counted as passed iff it reached the TUN: ${summary}`)
  // What reached the TUN is, in order, exactly what must pass
  let j = 0
  const notDelivered: Array<Set<string>> = []
  for (let i = 0; i < ds.length; i++) {
    const w = wants[i]
    if (w.quiet === true) continue
    if (w.pass === undefined) { notDelivered.push(w.reasons); continue }
    const got = out.delivered[j]
    assert.ok(got !== undefined && got.equals(w.pass), `${show(i)} reached the pods wrong or not at all: got ${got === undefined ? 'nothing' : hex(got)}\n     want ${hex(w.pass)}\n${summary}\n${all()}`)
    j++
    tally.passed++
    assert.ok(!f.deliveredCounters.has(w.counter as number), `counter ${w.counter} reached the pods twice`)
    f.deliveredCounters.add(w.counter as number)
  }
  assert.equal(j, out.delivered.length, `the TUN got ${out.delivered.length - j} packets nobody sealed or that must not pass: ${summary}\n${all()}`)
  assert.ok(reasonsMatch(notDelivered, out.drops), `drops counted under reasons these datagrams do not have: ${summary}\n${all()}`)
  // what the node sent meanwhile: a cookie reply for each handshake refused for want of mac2, and nothing else but keepalives
  const cookies = out.sent.filter((s) => s.bytes[0] === 3 && s.bytes.length === 64)
  assert.equal(cookies.length, out.drops.bad_mac2 ?? 0, `a cookie reply for every bad_mac2: ${summary}`)
  const other = out.sent.filter((s) => !cookies.includes(s) && !(s.bytes[0] === 4 && s.bytes.length === 32))
  assert.deepEqual(other.map((s) => hex(s.bytes.subarray(0, 16))), [], 'the node sent nothing but cookie replies and keepalives')
  tally.quiet += quiet
  tally.cookieReplies += cookies.length
  for (const [r, n] of Object.entries(out.drops)) tally.dropped[r] = (tally.dropped[r] ?? 0) + n
}

/** After the fuzz: a fresh packet each way over the session made before it. */
async function sessionStillWorks (f: Fuzz): Promise<void> {
  const there = udpPacket('10.244.1.7', '10.244.2.7', 300, 77)
  const before = f.tally.passed
  await check(f, [{ k: 'data', plain: there, wire: [], from: 'peer', glue: false, jump: 0 }])
  assert.equal(f.tally.passed, before + 1, 'a packet from the peer reaches the pods')
  const back = udpPacket('10.244.2.7', '10.244.1.7', 300, 78)
  const msg = await f.rig.outbound(back)
  assert.ok(msg !== null, 'the node sealed a packet for the peer')
  const r = f.rig.peer.receiveTransport(msg, NODE, f.rig.node.port, performance.timeOrigin + performance.now())
  assert.equal(WG_DROP_NAMES[r.reason], 'ok', 'the peer opens it')
  assert.equal(hex((r.payload as Buffer).subarray(0, back.length)), hex(back))
}

async function fuzz (t: TestContext, rig: WgRig, recipes: fc.Arbitrary<Recipe>, runs: number, seconds: number, maxBatch = 24): Promise<Fuzz> {
  t.after(async () => await rig.close())
  const f: Fuzz = { rig, model: new WgModel(rig), tally: { runs: 0, datagrams: 0, passed: 0, quiet: 0, dropped: {}, cookieReplies: 0 }, deliveredCounters: new Set() }
  const batches = fc.array(recipes, { minLength: 1, maxLength: Math.min(rig.maxBatch, maxBatch), ...(maxBatch > 24 ? { size: 'large' as const } : {}) })
  await fc.assert(fc.asyncProperty(batches, async (rs) => { await check(f, rs) }), budget(runs, seconds))
  await sessionStillWorks(f)
  const { tally } = f
  t.diagnostic(`${tally.runs} batches, ${tally.datagrams} datagrams: ${tally.passed} passed, ${tally.quiet} taken quietly, ${tally.cookieReplies} cookie replies sent, dropped ${JSON.stringify(tally.dropped)}`)
  return f
}

test('the drop reasons the WireGuard outside path counts have one name each', () => {
  const both = WG_DROP_NAMES.filter((n) => n !== 'ok' && DROP_NAMES.includes(n))
  assert.deepEqual(both, [], 'a name in both would make the tallies ambiguous')
  assert.equal(WG_DROP_NAMES[WgDrop.REPLAY], 'replay')
})

test('random bytes at the WireGuard outside path are each dropped once, for a reason they have', async (t) => {
  const f = await fuzz(t, await directRig(true), randomRecipe, 400, 1.5)
  assert.equal(f.tally.passed, 1, 'random bytes are never a packet for the pods (the one that passed is the check after the fuzz)')
  for (const r of ['bad_type', 'bad_length', 'unknown_receiver_index']) assert.ok((f.tally.dropped[r] ?? 0) > 0, `some ${r}: ${JSON.stringify(f.tally.dropped)}`)
})

test('the session\'s transport messages, intact, mutated on the wire, replayed, re-addressed, fallen behind the window, some in UDP_GRO entries: each reaches the pods as exactly the packet sealed or is dropped once with a true reason, and none twice', async (t) => {
  const recipes = fc.oneof({ weight: 6, arbitrary: dataRecipe }, { weight: 3, arbitrary: replayRecipe }, { weight: 1, arbitrary: reindexedRecipe })
  const f = await fuzz(t, await directRig(true), recipes, 600, 3)
  const d = f.tally.dropped
  // not vacuous: packets the node must take, and each way of refusing a transport message
  assert.ok(f.tally.passed > f.tally.datagrams / 20, `only ${f.tally.passed} of ${f.tally.datagrams} passed`)
  for (const r of ['replay', 'decrypt_failed', 'unknown_receiver_index', 'spoofed_source']) assert.ok((d[r] ?? 0) > 0, `some ${r}: ${JSON.stringify(d)}`)
  // the peer that sent another's source is remembered for the control plane to name (by its lease's address)
  assert.ok(f.rig.node.loops.spoofRings()[0].includes(PEER >>> 0), 'the peer is in the ring of spoofing senders')
})

test('handshake messages of every type, genuine and random, mutated, mac1 recomputed: each dropped once with a true reason (a cookie reply that decrypts is taken quietly); a cookie reply answers each bad_mac2', async (t) => {
  // batches of up to 40 (the loop takes up to HANDSHAKES_PER_BATCH handshake messages from one)
  const f = await fuzz(t, await directRig(true), shakeRecipe, 400, 3, 40)
  const d = f.tally.dropped
  for (const r of ['bad_length', 'bad_mac1']) assert.ok((d[r] ?? 0) > 0, `some ${r}: ${JSON.stringify(d)}`)
  assert.ok((d.stale_timestamp ?? 0) + (d.unknown_peer ?? 0) + (d.decrypt_failed ?? 0) + (d.bad_mac2 ?? 0) > 0, `mutations with a valid mac1 reached the checks behind it: ${JSON.stringify(d)}`)
})

test('everything mixed, read without UDP_GRO (datagrams longer than the socket\'s slot are cut and counted): the same', async (t) => {
  const f = await fuzz(t, await directRig(false), anyRecipe, 600, 3)
  assert.ok(f.tally.passed > 0)
})

test('over real loopback sockets: the same, end to end through the kernel and the addon', async (t) => {
  const f = await fuzz(t, await socketRig(), anyRecipe, 80, 3)
  assert.ok(f.tally.passed > 0)
})
