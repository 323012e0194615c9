// Our WireGuard against the real thing: Debian's wireguard-go, set up as
// flanneld sets up flannel-wg (lab/wireguard.ts), in one namespace; our side
// (interop-peer.ts: src/wireguard over a plain UDP socket, the transport
// cipher Node's) in another, as a node whose pod subnet is 10.244.6.0/24.
// Both ways: we initiate and ping wireguard-go's device address; wireguard-go
// initiates (its kernel pings toward our subnet) and we answer. mac1 is
// checked by wireguard-go's responder, and a flood makes it answer with a
// cookie reply, which our retry's mac2 gets past. Skipped, with the reason,
// without root, namespaces or the tools.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { waitFor, withTopology, type ChildHandle, type Host, type Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { ping } from '../../lab/traffic'
import { wireguardGoNode, type WireguardGoNode } from '../../lab/wireguard'
import { encodeKey, generateKeyPair } from '../../src/wireguard/keys'

const skip = netnsSkipReason() ?? toolSkipReason('wireguard-go', 'wg', 'nsenter', 'ping')
const PEER_SCRIPT = path.join(__dirname, 'interop-peer.js')
const OUR_SUBNET = '10.244.6.0/24'
const OUR_IP = '10.244.6.1'
const PORT = 51820

interface Setup {
  topo: Topology
  wgo: WireguardGoNode
  weft: Host
  child: ChildHandle
  /** events printed by the child so far */
  events: () => Array<Record<string, unknown>>
  command: (c: Record<string, unknown>) => void
}

async function setup (topo: Topology, o: { psk?: string, weftKnowsEndpoint: boolean, oneThread?: boolean }): Promise<Setup> {
  const [h1, h2] = topo.hosts as [Host, Host]
  // oneThread: wireguard-go with GOMAXPROCS=1. wireguardGoNode passes our
  // environment to wireguard-go when it spawns it, before its first await.
  const saved = process.env.GOMAXPROCS
  if (o.oneThread === true) process.env.GOMAXPROCS = '1'
  const starting = wireguardGoNode(topo, h1, { subnet: '10.244.5.0/24', ...(o.psk ? { psk: o.psk } : {}) })
  if (saved === undefined) delete process.env.GOMAXPROCS
  else process.env.GOMAXPROCS = saved
  const wgo = await starting
  const ours = generateKeyPair()
  await wgo.setPeer({ publicKey: encodeKey(ours.publicKey), publicIp: h2.underlayIp, port: PORT, subnet: OUR_SUBNET })
  const cfg = {
    privateKey: encodeKey(ours.privateKey),
    peerPublicKey: wgo.publicKey,
    ...(o.psk ? { psk: o.psk } : {}),
    listenPort: PORT,
    ...(o.weftKnowsEndpoint ? { peerEndpoint: `${wgo.publicIp}:${wgo.port}` } : {}),
    localIp: OUR_IP,
    remoteIp: wgo.deviceIp,
  }
  const child = topo.spawn(h2, [process.execPath, PEER_SCRIPT, JSON.stringify(cfg)], { stdin: 'pipe' })
  await child.waitForLine(/"event":"listening"/, 10_000, 'stdout')
  return {
    topo,
    wgo,
    weft: h2,
    child,
    events: () => child.stdoutLines.map((l) => JSON.parse(l) as Record<string, unknown>),
    command: (c) => { child.stdin!.write(JSON.stringify(c) + '\n') },
  }
}

function diagnose (t: TestContext, s: Setup | undefined): void {
  if (s === undefined) return
  t.diagnostic(`weft side: ${s.child.stdout.slice(-3000)}${s.child.stderr.slice(-2000)}`)
  t.diagnostic(`wireguard-go: ${s.wgo.child.stderr.slice(-3000)}${s.wgo.child.stdout.slice(-3000)}`)
}

test('we initiate: wireguard-go accepts our handshake, our echo request reaches its device address and its reply comes back', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'wg-interop-out' }, async (topo) => {
    let s: Setup | undefined
    try {
      s = await setup(topo, { weftKnowsEndpoint: true })
      s.command({ cmd: 'ping', seq: 1 })
      await s.child.waitForLine(/"event":"session","initiator":true/, 10_000, 'stdout')
      const reply = JSON.parse(await s.child.waitForLine(/"event":"echo-reply","seq":1/, 10_000, 'stdout')) as { from: string }
      assert.equal(reply.from, s.wgo.deviceIp)
      s.command({ cmd: 'ping', seq: 2 })
      await s.child.waitForLine(/"event":"echo-reply","seq":2/, 10_000, 'stdout')
      const dump = await s.wgo.dump()
      const p = dump.peers[0]!
      assert.ok(p.latestHandshake > 0, 'wireguard-go recorded the handshake')
      assert.equal(p.endpoint, `${s.weft.underlayIp}:${PORT}`)
      assert.ok(p.rxBytes > 0 && p.txBytes > 0)
      const handshakes = s.events().filter((e) => e.event === 'handshake')
      assert.deepEqual(handshakes.map((e) => [e.type, e.reason]), [[2, 'ok']], 'one response, accepted')
    } catch (e) {
      diagnose(t, s)
      throw e
    }
  })
})

test('wireguard-go initiates (a ping from its side to our subnet), with a preshared key: we answer its initiation and its echo requests', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'wg-interop-in' }, async (topo) => {
    let s: Setup | undefined
    try {
      s = await setup(topo, { psk: randomBytes(32).toString('base64'), weftKnowsEndpoint: false })
      const r = await ping(topo, s.wgo.host, OUR_IP, { count: 5, intervalS: 0.2, waitS: 3 })
      assert.ok(r.received >= 4, `ping through wireguard-go to us: ${r.output}`)
      await s.child.waitForLine(/"event":"session","initiator":false/, 5000, 'stdout')
      const ev = s.events()
      assert.deepEqual(ev.filter((e) => e.event === 'handshake').map((e) => [e.type, e.reason]), [[1, 'ok']])
      assert.ok(ev.filter((e) => e.event === 'echo-request').length >= 4)
      assert.equal(ev.find((e) => e.event === 'sent' && e.kind === 'response')?.to, `${s.wgo.publicIp}:${s.wgo.port}`, 'endpoint learnt from the initiation')
      const dump = await s.wgo.dump()
      assert.ok(dump.peers[0]!.latestHandshake > 0)
    } catch (e) {
      diagnose(t, s)
      throw e
    }
  })
})

test('wireguard-go ignores an initiation with a broken mac1 and answers a good one', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'wg-interop-mac1' }, async (topo) => {
    let s: Setup | undefined
    try {
      s = await setup(topo, { weftKnowsEndpoint: true })
      s.command({ cmd: 'bad-mac1' })
      const bad = JSON.parse(await s.child.waitForLine(/"kind":"bad-mac1"/, 5000, 'stdout')) as { sender: number }
      s.command({ cmd: 'ping', seq: 1 })
      await s.child.waitForLine(/"event":"echo-reply","seq":1/, 10_000, 'stdout')
      // a second round trip: anything wireguard-go sent for the bad one has arrived by now
      s.command({ cmd: 'ping', seq: 2 })
      await s.child.waitForLine(/"event":"echo-reply","seq":2/, 10_000, 'stdout')
      const responses = s.events().filter((e) => e.event === 'handshake' && e.type === 2)
      assert.equal(responses.length, 1)
      assert.notEqual(responses[0]!.receiver, bad.sender, 'the response answers the good initiation')
      assert.equal(responses[0]!.reason, 'ok')
    } catch (e) {
      diagnose(t, s)
      throw e
    }
  })
})

test('flooded wireguard-go answers our initiation with a cookie reply; the retry carries mac2 and completes', { skip, timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'wg-interop-cookie' }, async (topo) => {
    let s: Setup | undefined
    try {
      s = await setup(topo, { weftKnowsEndpoint: true, oneThread: true })
      // wireguard-go is "under load" while 128 or more handshake messages are
      // queued (and for a second after). To get there every time, it is
      // stopped (SIGSTOP, by PID) while a stranger's initiations (each costs
      // it a DH operation) and then ours wait in its socket buffer, and
      // continued once ours is sent. On one thread (GOMAXPROCS=1) its reader
      // queues what the buffer holds before a handshake worker runs; with
      // two, the workers keep the queue short and it is under load only
      // some of the time.
      const FLOOD = 220
      const pid = s.wgo.pid
      const resume = () => { try { process.kill(pid, 'SIGCONT') } catch {} }
      t.after(resume)
      /** the n-th initiation sent behind a flood */
      const sentBehindFlood = async (n: number): Promise<Record<string, unknown>> => {
        const lines = await waitFor(() => {
          const l = s!.child.stdoutLines.filter((x) => /"kind":"initiation".*"flood":[1-9]/.test(x))
          return l.length >= n ? l : undefined
        }, { what: `initiation ${n} sent behind a flood`, timeoutMs: 15_000 })
        assert.equal(lines.length, n)
        return JSON.parse(lines[n - 1]!) as Record<string, unknown>
      }
      process.kill(pid, 'SIGSTOP')
      s.command({ cmd: 'flood-ahead', n: FLOOD })
      s.command({ cmd: 'ping', seq: 1 })
      const first = await sentBehindFlood(1)
      assert.equal(first.mac2, false, 'no cookie yet: no mac2')
      resume()
      // (the flood's own cookie replies go to the stranger's index: unknown_receiver_index)
      const wgoLog = (re: RegExp): number => s!.wgo.child.stdoutLines.concat(s!.wgo.child.stderrLines).filter((l) => re.test(l)).length
      const cookieLine = await s.child.waitForLine(/"event":"handshake","type":3,"reason":"ok"/, 5000, 'stdout').catch((e: Error) => {
        throw new Error(`${e.message}; wireguard-go processed ${wgoLog(/invalid initiation/)} of the flood and sent ${wgoLog(/cookie response/)} cookie replies`)
      })
      const cookie = JSON.parse(cookieLine) as Record<string, unknown>
      assert.equal(cookie.receiver, first.sender, 'a cookie reply, not a response, for our initiation')
      assert.ok(!s.events().some((e) => e.event === 'handshake' && e.type === 2), 'no response')

      // The retransmission (Rekey-Timeout later) carries mac2; it goes out
      // the same way, so wireguard-go is under load when it reaches it: it
      // must pass on its mac2 instead of earning another cookie reply.
      process.kill(pid, 'SIGSTOP')
      s.command({ cmd: 'flood-ahead', n: FLOOD })
      const retry = await sentBehindFlood(2)
      resume()
      assert.equal(retry.mac2, true, 'the retry carries mac2')
      await s.child.waitForLine(/"event":"echo-reply","seq":1/, 10_000, 'stdout')
      const ev = s.events()
      assert.ok(ev.filter((e) => e.event === 'handshake' && e.type === 3 && e.reason === 'unknown_receiver_index').length >= 2, 'wireguard-go answered both floods with cookie replies: it was under load')
      assert.ok(!ev.some((e) => e.event === 'handshake' && e.type === 3 && e.receiver === retry.sender), 'no cookie reply for the retry')
      assert.ok(ev.some((e) => e.event === 'handshake' && e.type === 2 && e.reason === 'ok' && e.receiver === retry.sender), 'the retry was answered with a response')
    } catch (e) {
      diagnose(t, s)
      throw e
    }
  })
})
