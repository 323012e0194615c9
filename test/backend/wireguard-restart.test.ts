// The WireGuard backend across restarts and key changes, on real daemons in
// namespaces with a pod behind each node:
// - a node keeps its key pair in flannel's key file (WIREGUARD_KEY_FILE, the
//   base64 key without a newline, mode 0400 as flannel's writePrivateKey
//   leaves it): SIGTERM and start again, and its lease names the same
//   PublicKey and its peers reach it again within a few seconds
// - a peer whose key changes in the store (its key file deleted, the node
//   restarted: a new key in its lease) is taken up live: the other node
//   drops the old peer's sessions, handshakes with the new key, and its pods
//   reach the peer's within a few seconds; a key a store writer puts in the
//   peer's lease is written back by the peer at once (said once), and the
//   other node ends on the real key
// - the node that started that last handshake, late in its life, restarts,
//   and is let back in at once: its handshakes carry WireGuard's wall-clock
//   TAI64N timestamp, newer than any its previous run sent (the peer refuses
//   one that is not newer, as a replay)
// - a lease whose BackendData has no usable PublicKey or Port (or a key
//   that is ours, or another lease's) is skipped with one warning for it and
//   counted (peer_unusable), and the rest keep working
// - in-process, with the node's socket full at the moment a peer's key
//   changes: the packets for that peer still waiting to be sealed are
//   dropped, never sealed under the key of another session that took the
//   freed key slot meanwhile (a counter used twice under one key: WireGuard's
//   nonce, and ChaCha20's keystream, reused)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { formatCidr } from '../../src/packet/net'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store'
import { KEY_FILE_MODE, generateKeyPair, encodeKey, parseKey, publicKeyOf } from '../../src/wireguard/keys'
import { waitFor, withTopology } from '../../lab/netns'
import type { Host, Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { cluster } from '../../lab/daemons'
import type { Cluster, Daemon } from '../../lab/daemons'
import type { Pod } from '../../lab/pods'
import { ping } from '../../lab/traffic'
import { writeKeyFile } from '../../lab/wireguard'
import { parseIp4 } from '../../src/packet/ip'
import type { PacketIo } from '../../src/native'
import { Count } from '../../src/dataplane/stats'
import { Device } from '../../src/wireguard/device'
import type { Peer } from '../../src/wireguard/peer'
import type { KeyPair } from '../../src/wireguard/keys'
import { openTransport } from '../../src/wireguard/session'
import { WgDrop, WG_DROP_NAMES } from '../../src/wireguard/reasons'
import { addWgPeer, tsoSuperPacket, wgNode } from '../dataplane/wireguard-helpers'
import { DirectSocket, NODE } from '../fuzz/wireguard-drive'
import { logs, podsFor, rawLeases } from './mesh'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}'
const skip = netnsSkipReason() ?? toolSkipReason('wg')
/** How soon pods must reach each other again after a restart or a key change. */
const RECONNECT_MS = 4000

type WgStatus = Awaited<ReturnType<Daemon['status']>>
interface WgPeerStatus { subnet?: unknown, publicKey?: string, session?: boolean, latestHandshake?: string | null }

const keyFileOf = (d: Daemon | { stateDir: string }): string => `${d.stateDir}/wgkey`
const wgDrops = (s: WgStatus): Record<string, number> => (s.counters as unknown as { wireguard: { drops: Record<string, number> } }).wireguard.drops

/** The PublicKey of the lease holding `h`'s address, as `weft leases` shows it. */
function leaseKey (c: Cluster, h: Host): string {
  const l = (JSON.parse(c.weft('leases', '--json')) as Array<{ publicIP: string, backendData: { PublicKey?: string } | null }>).filter((x) => x.publicIP === h.underlayIp)
  assert.equal(l.length, 1, `one lease holds ${h.underlayIp}`)
  return l[0].backendData?.PublicKey ?? ''
}

/** The key file as flannel's writePrivateKey leaves it: base64 of 32 bytes, no newline, mode 0400; its public key. */
function keyFileIsFlannels (file: string): string {
  const st = fs.statSync(file)
  assert.equal(st.mode & 0o777, KEY_FILE_MODE, `${file} is mode ${(st.mode & 0o777).toString(8)}, flannel writes ${KEY_FILE_MODE.toString(8)}`)
  const text = fs.readFileSync(file, 'utf8')
  assert.match(text, /^[A-Za-z0-9+/]{43}=$/, 'the base64 key and nothing else (no newline)')
  return encodeKey(publicKeyOf(parseKey(text)))
}

/** Resolves once a ping from `from` to `to` is answered, at most `ms` from now; how long it took. */
async function reachable (topo: Topology, from: Pod, to: Pod, ms: number, what: string): Promise<number> {
  const t0 = Date.now()
  await waitFor(async () => (await ping(topo, from, to.ip, { count: 1, waitS: 0.5 })).received === 1, { what, timeoutMs: ms, intervalMs: 50 })
  return Date.now() - t0
}

/** A key pair whose public key sorts above nearly every other (first byte 0xff): the node holding it starts each handshake (loops.ts). */
function highKey (): string {
  for (let i = 0; i < 100_000; i++) {
    const k = generateKeyPair()
    if (k.publicKey[0] === 0xff && k.publicKey[1] >= 0xf0) return encodeKey(k.privateKey)
  }
  throw new Error('no high key found')
}

test('wireguard restarts: a node keeps its key file and lease key across SIGTERM and its peer reaches it again at once; a peer\'s new key is taken up live; the node that took it up restarts and is let back in at once', { skip, timeout: 180_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'wg-restart', timeoutMs: 160_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const c = cluster(t, topo, CONFIG)
    // h1's key file as a flanneld run left it (a key that starts every
    // handshake with a peer); h2's made by weft on its first start
    writeKeyFile(`${c.dir}/${h1.name}/wgkey`, highKey())
    let a = await c.start(h1)
    let b = await c.start(h2)
    const [pa] = await podsFor(topo, a, 1)
    const [pb] = await podsFor(topo, b, 1)
    await waitFor(async () => (await a.status()).peers.length === 1 && (await b.status()).peers.length === 1, { what: 'each node knows the other', timeoutMs: 5000 })
    await reachable(topo, pa, pb, 5000, 'pa -> pb before any restart')
    const aKey = keyFileIsFlannels(keyFileOf(a))
    const bKey = keyFileIsFlannels(keyFileOf(b))
    assert.equal(leaseKey(c, h1), aKey, 'h1\'s lease names the public key of its key file')
    assert.equal(leaseKey(c, h2), bKey, 'h2\'s lease names the public key of the key file weft wrote')
    const bFile = fs.readFileSync(keyFileOf(b))

    // 1. h2 restarts: same key file, same lease key; h1's pod reaches its pod again within seconds
    assert.equal((await b.child.stop(5000)).code, 0, 'a clean exit on SIGTERM')
    b = await c.start(h2)
    assert.deepEqual(fs.readFileSync(keyFileOf(b)), bFile, 'the key file is kept as it was')
    assert.equal(keyFileIsFlannels(keyFileOf(b)), bKey)
    assert.equal(leaseKey(c, h2), bKey, 'the lease names the same key')
    const back1 = await reachable(topo, pa, pb, RECONNECT_MS, 'pa -> pb after h2 restarted')
    await reachable(topo, pb, pa, RECONNECT_MS, 'pb -> pa after h2 restarted')

    // 2. h2's key changes in the store: its key file deleted, the node restarted with a new one
    assert.equal((await b.child.stop(5000)).code, 0)
    fs.rmSync(keyFileOf(b))
    b = await c.start(h2)
    const bKey2 = keyFileIsFlannels(keyFileOf(b))
    assert.notEqual(bKey2, bKey, 'a new key')
    assert.equal(leaseKey(c, h2), bKey2, 'h2\'s lease names the new key')
    const changedAt = Date.now()
    await waitFor(async () => ((await a.status()).peers[0] as WgPeerStatus).publicKey === bKey2, { what: 'h1 takes up h2\'s new key', timeoutMs: 3000 })
    const back2 = await reachable(topo, pa, pb, RECONNECT_MS, 'pa -> pb after h2\'s key changed')
    const seen = (await a.status()).peers[0] as WgPeerStatus
    assert.equal(seen.session, true)
    assert.ok(Date.parse(seen.latestHandshake ?? '') >= changedAt - 1000, `a handshake with the new key (latest ${seen.latestHandshake})`)
    // the old key is gone from h1's device: one peer, the new one, as `wg show` reads it
    assert.deepEqual((await a.wg(['show', 'weft-wg', 'peers'])).stdout.trim().split('\n'), [bKey2], 'h1\'s WireGuard device has the new key as its one peer')

    // 2b. a store writer puts a key in h2's lease that h2 does not hold: h2
    // writes its own back at once (saying so once), and h1 ends on h2's real key
    const bLeaseKey = formatCidr(b.env().subnet).replace('/', '-')
    const real = rawLeases(c)[bLeaseKey]
    const forged = encodeKey(generateKeyPair().publicKey)
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    try {
      store.putRaw(bLeaseKey, real.replace(bKey2, forged), 86400)
    } finally { await store.close() }
    await waitFor(() => logs(b).some((l) => /someone rewrote our lease/.test(l.msg)), { what: 'h2 notices its lease rewritten', timeoutMs: 3000 })
    await waitFor(() => leaseKey(c, h2) === bKey2, { what: 'h2 writes its real key back', timeoutMs: 3000 })
    await waitFor(async () => ((await a.status()).peers[0] as WgPeerStatus).publicKey === bKey2, { what: 'h1 ends on h2\'s real key', timeoutMs: 3000 })
    const back2b = await reachable(topo, pa, pb, RECONNECT_MS, 'pa -> pb after h2\'s real key was written back')

    // 3. h1, which started that last handshake (late in its life), restarts: h2 lets it back in at once
    assert.equal((await a.child.stop(5000)).code, 0)
    a = await c.start(h1)
    assert.equal(leaseKey(c, h1), aKey, 'h1 kept its key too')
    const back3 = await reachable(topo, pa, pb, RECONNECT_MS, 'pa -> pb after h1 restarted')
    await reachable(topo, pb, pa, RECONNECT_MS, 'pb -> pa after h1 restarted')
    const drops = wgDrops(await b.status())
    assert.equal(drops.stale_timestamp ?? 0, 0, `h2 refused none of the restarted h1's initiations as replays: ${JSON.stringify(drops)}`)
    t.diagnostic(`pods reached each other again ${back1} ms after h2 restarted, ${back2} ms after its key changed, ${back2b} ms after its real key was written back, ${back3} ms after h1 restarted; h2's drops ${JSON.stringify(drops)}`)
    assert.deepEqual(logs(a).filter((l) => typeof l.level === 'number' && l.level >= 50).map((l) => l.msg), [], 'h1 logged no errors')
  })
})

test('wireguard: a lease with a missing or malformed PublicKey or Port is skipped with one warning for it and counted, and the rest keep working', { skip, timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'wg-badlease', timeoutMs: 100_000 }, async (topo) => {
    const [h1, h2] = topo.hosts
    const c = cluster(t, topo, CONFIG)
    const a = await c.start(h1)
    const b = await c.start(h2)
    const [pa] = await podsFor(topo, a, 1)
    const [pb] = await podsFor(topo, b, 1)
    await waitFor(async () => (await a.status()).peers.length === 1, { what: 'h1 knows h2', timeoutMs: 5000 })
    await reachable(topo, pa, pb, 5000, 'pa -> pb')
    const unusableBefore = (await a.status()).counters.drops.peer_unusable ?? 0
    // h2 may have sent its first initiation before h1 had read h2's lease (unknown_peer): count from here
    const wgBefore = wgDrops(await a.status())

    const good = encodeKey(generateKeyPair().publicKey)
    // (a lease without Port, or Port 0, means our own ListenPort, as flannel reads it: not bad)
    const bad: Record<string, unknown> = {
      '10.244.201.0-24': { Port: 51820 },
      '10.244.202.0-24': { PublicKey: 'not a key', Port: 51820 },
      '10.244.203.0-24': { PublicKey: good.slice(0, 40), Port: 51820 },
      '10.244.204.0-24': { PublicKey: `${good}=`, Port: 51820 },
      '10.244.205.0-24': { PublicKey: good, Port: -1 },
      '10.244.206.0-24': { PublicKey: good, Port: '51820' },
      '10.244.207.0-24': { PublicKey: good, Port: 70000 },
      '10.244.208.0-24': { PublicKey: good, Port: 51820.5 },
      '10.244.209.0-24': null,
      '10.244.210.0-24': [good, 51820],
      // keys that are not a new peer's: h2's (a copy of its key file?), h1's own, and a low-order point
      '10.244.211.0-24': { PublicKey: leaseKey(c, h2), Port: 51820 },
      '10.244.212.0-24': { PublicKey: leaseKey(c, h1), Port: 51820 },
      '10.244.213.0-24': { PublicKey: encodeKey(Buffer.alloc(32)), Port: 51820 }
    }
    // each its own address, each written twice (a writer renewing it): still one warning each
    const value = (i: number, data: unknown): string => JSON.stringify({ PublicIP: `198.18.0.${100 + i}`, PublicIPv6: null, BackendType: 'wireguard', BackendData: data })
    const store = new SqliteStore({ path: `${c.dir}/store.db` })
    try {
      for (let round = 0; round < 2; round++) Object.entries(bad).forEach(([key, data], i) => store.putRaw(key, value(i, data), 86400))
    } finally { await store.close() }

    const msg = 'ignoring a peer this backend cannot reach'
    const warned = (): string[] => logs(a).filter((l) => l.msg === msg).map((l) => l.subnet as string)
    await waitFor(() => warned().length >= Object.keys(bad).length, { what: 'a warning for each bad lease', timeoutMs: 5000 }).catch((err: Error) => {
      throw new Error(`${err.message}: warned for ${JSON.stringify(warned())}; logged ${JSON.stringify(logs(a).slice(-12).map((l) => l.msg))}; leases ${c.weft('leases', '--json')}`)
    })
    await waitFor(async () => ((await a.status()).counters.drops.peer_unusable ?? 0) - unusableBefore >= 2 * Object.keys(bad).length, { what: 'each bad lease event counted', timeoutMs: 5000 })
    const subnets = Object.keys(bad).map((k) => k.replace('-', '/')).sort()
    assert.deepEqual([...warned()].sort(), subnets, 'one warning per bad lease, naming its subnet')
    for (const l of logs(a).filter((x) => x.msg === msg)) assert.match(String(l.reason), /PublicKey|Port|BackendData/, `the warning says what is wrong: ${String(l.reason)}`)
    assert.deepEqual(wgDrops(await a.status()), wgBefore, 'nothing more for the WireGuard protocol to count: the leases never became peers')
    const s = await a.status()
    assert.equal(s.counters.drops.peer_unusable - unusableBefore, 2 * Object.keys(bad).length, 'every bad lease event counted as peer_unusable')
    assert.deepEqual(s.peers.map((p) => p.subnet), [formatCidr(b.env().subnet)], 'none of them went into the peer table')
    await reachable(topo, pa, pb, 3000, 'pa -> pb with the bad leases in the store')
    await reachable(topo, pb, pa, 3000, 'pb -> pa with the bad leases in the store')
    assert.equal(a.child.running, true)
  })
})

test('a peer\'s key changes while packets for it wait for a full socket: none of them is sealed under the key of the session that took its key slot meanwhile', async (t) => {
  const sock = new DirectSocket(false)
  // the node's key the lowest: its peers start the handshakes
  const [nodeKeys, k1, k2, k1new] = [generateKeyPair(), generateKeyPair(), generateKeyPair(), generateKeyPair()].sort((x, y) => Buffer.compare(x.publicKey, y.publicKey))
  const node = wgNode('10.244.2.0/24', { sock: sock as unknown as PacketIo, port: 51820, keys: nodeKeys, mtu: 1420, offloads: { vnet: true, tso: true, uso: false, gro: false, gso: false }, wireSlot: 65600, wireTxSize: 32 })
  t.after(async () => await node.close())
  const ONE = { addr: parseIp4('127.77.1.1') >>> 0, port: 51820 }
  const TWO = { addr: parseIp4('127.77.1.2') >>> 0, port: 51820 }
  addWgPeer(node, { subnet: '10.244.1.0/24', keys: k1, port: 51820 }, ONE.addr)
  addWgPeer(node, { subnet: '10.244.3.0/24', keys: k2, port: 51820 }, TWO.addr)
  let clock = Date.now()
  /** The peer (the protocol alone) starts a handshake with the node: the node's response, if it sent one. */
  const initiate = (dev: Device, peer: Peer, at: typeof ONE): Buffer | undefined => {
    peer.send(clock, 0)
    const init = dev.takeOutgoing().find((o) => o.kind === 'initiation')
    assert.ok(init !== undefined, 'the peer sent an initiation')
    const mark = sock.sent.length
    sock.deliver([{ bytes: init.bytes, from: 'peer', at }])
    return sock.sent.slice(mark).find((m) => m.bytes[0] === 2)?.bytes
  }
  const complete = (dev: Device, response: Buffer | undefined, at: typeof ONE): void => {
    assert.ok(response !== undefined, 'the node answered')
    const r = dev.handshakeMessage(response, NODE, 51820, clock, false)
    assert.equal(WG_DROP_NAMES[r.reason], 'ok')
    const keepalive = r.replies.find((m) => m.kind === 'keepalive')
    assert.ok(keepalive !== undefined)
    sock.deliver([{ bytes: keepalive.bytes, from: 'peer', at }])
  }
  const peerOf = (keys: KeyPair): { dev: Device, peer: Peer } => {
    const dev = new Device({ privateKey: keys.privateKey })
    return { dev, peer: dev.addPeer({ publicKey: nodeKeys.publicKey, endpoint: { addr: NODE >>> 0, port: 51820 } }) }
  }
  const two = peerOf(k2)
  const one = peerOf(k1)
  t.after(() => { two.dev.close(); one.dev.close() })
  complete(two.dev, initiate(two.dev, two.peer, TWO), TWO)
  complete(one.dev, initiate(one.dev, one.peer, ONE), ONE)
  const consumedAt = Date.now()
  const batchesBefore = node.loops.stats[Count.INSIDE_BATCHES]

  // 12 TSO super-packets of 46 segments for peer one (small ones: they go
  // into the TUN together): 552 messages, more than the send batch holds
  // (512); the socket is full, so the rest wait unsealed
  sock.blocked = true
  const mss = 150
  for (let i = 0; i < 12; i++) {
    const p = tsoSuperPacket('10.244.2.9', '10.244.1.9', 46 * mss, mss, 40000 + i)
    p.copy(node.wireTx.slab, node.wireTx.offsets[i])
    node.wireTx.lengths[i] = p.length
  }
  assert.equal(node.wire.send(12), 12)
  await waitFor(() => node.loops.stats[Count.INSIDE_SUPER_PACKETS] >= 12 && node.loops.stats[Count.INSIDE_BACKPRESSURE] >= 1, { what: 'the node to read them and find its socket full', timeoutMs: 2000, intervalMs: 5 })
  assert.equal(node.loops.stats[Count.INSIDE_BATCHES] - batchesBefore, 1, 'in one read')

  // meanwhile one's key changes in the store (the node drops its sessions) and
  // two starts a new session (the node's new keypair takes the first free key slot)
  addWgPeer(node, { subnet: '10.244.1.0/24', keys: k1new, port: 51820 }, ONE.addr)
  await waitFor(() => Date.now() - consumedAt > 25, { what: 'past the 20 ms a peer must leave between initiations', timeoutMs: 1000, intervalMs: 5 })
  two.peer.zeroAll()
  clock += 10_000 // two's Rekey-Timeout has passed on its own clock
  const mark = sock.sent.length
  assert.equal(initiate(two.dev, two.peer, TWO), undefined, 'the node\'s response waits behind the full socket')

  sock.unblock()
  await waitFor(() => sock.sent.slice(mark).some((m) => m.bytes[0] === 2), { what: 'the node\'s response to go once the socket drained', timeoutMs: 2000, intervalMs: 5 })
  const after = sock.sent.slice(mark)
  complete(two.dev, after.find((m) => m.bytes[0] === 2)?.bytes, TWO)
  const session = two.peer.current
  assert.ok(session !== null, 'two has its new session')
  const opened = after.filter((m) => m.bytes[0] === 4 && openTransport(session, m.bytes) !== null)
  assert.equal(opened.length, 0, `${opened.length} of the ${after.filter((m) => m.bytes[0] === 4).length} messages sent once the socket drained were sealed under two's new session, with counters from one's old one (${opened.slice(0, 3).map((m) => m.bytes.readUInt32LE(8)).join(', ')}…), which two's session issues again`)
  assert.ok(node.loops.wgDrops[WgDrop.NO_SESSION] > 0, 'the packets for one\'s old session that were never sealed are counted no_session')
})
