// The namespace harness itself: topology shape, reachability, isolation and,
// above all, that nothing outlives a test (namespaces, links, processes).
// Without root these are reported as skipped, with the reason.

import { spawnSync } from 'node:child_process'
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { cleanupStale, createTopology, listNamespaces, NIC_LIKE_GRO_FLUSH_NS, NIC_LIKE_OFF, waitFor, withTopology, type Host, type Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'

const skip = netnsSkipReason()

function ping (topo: Topology, from: Host, toIp: string, allowFail = false) {
  return topo.exec(from, ['ping', '-c', '1', '-W', '1', toIp], { allowFail, timeoutMs: 5000 })
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    assert.equal((e as NodeJS.ErrnoException).code, 'ESRCH')
    return false
  }
}

/** An orphaned grandchild is reaped by init a moment after it dies, so poll briefly. */
async function assertGone (pid: number): Promise<void> {
  await waitFor(() => !isAlive(pid), { timeoutMs: 3000, what: `pid ${pid} to be gone` })
}

async function assertNamespacesGone (names: readonly string[]): Promise<void> {
  const left = (await listNamespaces()).filter((n) => names.includes(n))
  assert.deepEqual(left, [], 'namespaces left behind')
}

function rootLinkNames (): string[] {
  // Read-only look at the root namespace, to prove we added nothing there.
  const out = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout
  return out.split('\n').filter(Boolean).map((l) => l.split(':')[1]!.trim()).sort()
}

test('hosts are h1..hN in wt-<runid>-hN namespaces with 198.18.0.N/24 on eth0, ports on the underlay bridge', { skip }, async (t) => {
  const rootLinksBefore = rootLinkNames()
  await withTopology(t, { hosts: 3, label: 'shape' }, async (topo) => {
    assert.equal(topo.underlayNs, `wt-${topo.runId}-u`)
    assert.deepEqual(
      topo.hosts.map((h) => ({ ...h })),
      [1, 2, 3].map((i) => ({ index: i, name: `h${i}`, ns: `wt-${topo.runId}-h${i}`, underlayIp: `198.18.0.${i}`, underlayIp6: undefined, ifname: 'eth0' }))
    )
    assert.deepEqual(topo.namespaces, [topo.underlayNs, ...topo.hosts.map((h) => h.ns)])
    for (const h of topo.hosts) {
      const addr = await topo.exec(h, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])
      assert.match(addr.stdout, new RegExp(`inet ${h.underlayIp.replace(/\./g, '\\.')}/24 `))
      const links = await topo.exec(h, ['ip', '-o', 'link', 'show'])
      assert.match(links.stdout, /\blo: <LOOPBACK,UP,LOWER_UP>/)
      assert.match(links.stdout, /\beth0@\w+: <[^>]*\bUP\b[^>]*> mtu 1500 /)
    }
    const ports = await topo.exec(topo.underlayNs, ['ip', '-o', 'link', 'show', 'master', 'br0'])
    assert.deepEqual(ports.stdout.split('\n').filter(Boolean).map((l) => l.split(/[:@]/)[1]!.trim()), ['h1', 'h2', 'h3'])
    assert.deepEqual(rootLinkNames(), rootLinksBefore, 'no link may appear in the root namespace')
  })
})

test('hosts reach each other over the underlay', { skip }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'ping' }, async (topo) => {
    const [h1, h2, h3] = topo.hosts as [Host, Host, Host]
    await ping(topo, h1, '198.18.0.2')
    await ping(topo, h2, h3.underlayIp)
    await ping(topo, h3, h1.underlayIp)
  })
})

test('the mtu option sets the MTU of the veths and the bridge', { skip }, async (t) => {
  await withTopology(t, { hosts: 2, mtu: 9000, label: 'mtu' }, async (topo) => {
    const [h1] = topo.hosts as [Host]
    assert.match((await topo.exec(h1, ['ip', '-o', 'link', 'show', 'eth0'])).stdout, / mtu 9000 /)
    assert.match((await topo.exec(topo.underlayNs, ['ip', '-o', 'link', 'show', 'br0'])).stdout, / mtu 9000 /)
    // 8972 + 8 (ICMP) + 20 (IPv4) = 9000, with DF set: only passes if every hop carries 9000.
    await topo.exec(h1, ['ping', '-c', '1', '-W', '1', '-M', 'do', '-s', '8972', '198.18.0.2'])
  })
})

test('destroy() deletes every namespace and kills spawned process groups', { skip }, async () => {
  const topo = await createTopology({ hosts: 2, label: 'destroy' })
  const names = [...topo.namespaces]
  try {
    const sleeper = topo.spawn(topo.hosts[0]!, ['sleep', '60'])
    // A grandchild in the same process group must die too.
    const shell = topo.spawn(topo.underlayNs, ['sh', '-c', 'sleep 60 & echo grandchild=$!; wait'])
    const grandchild = Number((await shell.waitForLine(/^grandchild=\d+$/)).split('=')[1])
    assert.ok(isAlive(sleeper.pid) && isAlive(grandchild))
    assert.deepEqual((await listNamespaces()).filter((n) => names.includes(n)).sort(), [...names].sort())

    await topo.destroy()

    await assertNamespacesGone(names)
    assert.throws(() => process.kill(sleeper.pid, 0), { code: 'ESRCH' })
    assert.equal(sleeper.running, false)
    await assertGone(grandchild)
    await topo.destroy() // idempotent
    await assert.rejects(topo.exec('h1', ['true']), /already destroyed/)
  } finally {
    await topo.destroy()
  }
})

test('a callback that throws inside withTopology still leaves nothing behind', { skip }, async () => {
  let names: string[] = []
  let pid = 0
  await assert.rejects(
    withTopology(undefined, { hosts: 2, label: 'throws' }, async (topo) => {
      names = [...topo.namespaces]
      pid = topo.spawn('h2', ['sleep', '60']).pid
      throw new Error('boom from the test body')
    }),
    /boom from the test body/
  )
  assert.equal(names.length, 3)
  await assertNamespacesGone(names)
  await assertGone(pid)
})

test('withTopology destroys and rejects when the callback overruns its timeout', { skip }, async () => {
  let names: string[] = []
  await assert.rejects(
    withTopology(undefined, { hosts: 1, label: 'overrun', timeoutMs: 300 }, async (topo) => {
      names = [...topo.namespaces]
      await topo.spawn('h1', ['sleep', '60']).exited // ends only when destroy() kills it
    }),
    /did not finish within 300ms/
  )
  await assertNamespacesGone(names)
})

test('addHost() gives a host reachable from the others', { skip }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'addhost' }, async (topo) => {
    const h3 = await topo.addHost()
    assert.deepEqual({ ...h3 }, { index: 3, name: 'h3', ns: `wt-${topo.runId}-h3`, underlayIp: '198.18.0.3', underlayIp6: undefined, ifname: 'eth0' })
    assert.equal(topo.hosts.length, 3)
    await ping(topo, topo.hosts[0]!, h3.underlayIp)
    await ping(topo, h3, topo.hosts[1]!.underlayIp)
  })
})

test('two topologies at once do not collide and are isolated from each other', { skip }, async (t) => {
  const [a, b] = await Promise.all([createTopology({ hosts: 2, label: 'A' }), createTopology({ hosts: 3, label: 'B' })])
  t.after(() => Promise.all([a.destroy(), b.destroy()]))
  assert.notEqual(a.runId, b.runId)
  assert.equal(a.namespaces.filter((n) => b.namespaces.includes(n)).length, 0)
  // Same addresses in both, separate wires: A has no 198.18.0.3, B does.
  await ping(a, a.hosts[0]!, '198.18.0.2')
  await ping(b, b.hosts[0]!, '198.18.0.3')
  const r = await ping(a, a.hosts[0]!, '198.18.0.3', true)
  assert.notEqual(r.code, 0, 'A must not reach B')
  // Tearing one down leaves the other intact.
  await a.destroy()
  await ping(b, b.hosts[1]!, '198.18.0.1')
})

test('exec reports failures with stderr, honours allowFail and timeouts, and refuses foreign namespaces', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'exec' }, async (topo) => {
    const fail = ['sh', '-c', 'echo out; echo oops >&2; exit 3']
    await assert.rejects(topo.exec('h1', fail), /exited with code 3: oops/)
    assert.deepEqual(await topo.exec('h1', fail, { allowFail: true }), { stdout: 'out\n', stderr: 'oops\n', code: 3 })
    assert.equal((await topo.exec('h1', ['cat'], { input: 'piped' })).stdout, 'piped')
    await assert.rejects(topo.exec('h1', ['sleep', '10'], { timeoutMs: 200 }), /timed out after 200ms/)
    // Never run anything in the root namespace or someone else's.
    await assert.rejects(topo.exec('not-ours', ['true']), /not a namespace of this topology/)
    assert.throws(() => topo.spawn('h9', ['true']), /not a namespace of this topology/)
  })
})

test('spawned processes: output is collected, waitForLine waits for it, stop() ends the group', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'spawn' }, async (topo) => {
    const p = topo.spawn('h1', ['sh', '-c', 'echo starting; sleep 0.2; echo "ready port=5000" >&2; exec sleep 60'])
    assert.equal(await p.waitForLine(/ready port=\d+/, 3000), 'ready port=5000')
    assert.equal(await p.waitForLine(/starting/, 10, 'stdout'), 'starting') // already printed: found at once
    assert.deepEqual(p.stderrLines, ['ready port=5000'])
    assert.equal(p.stdout, 'starting\n')
    assert.deepEqual(await p.stop(), { code: null, signal: 'SIGTERM' })

    const quitter = topo.spawn('h1', ['sh', '-c', 'echo bye'])
    await assert.rejects(quitter.waitForLine(/never/, 3000), /exited \(code 0\) without printing a line matching \/never\//)
    const silent = topo.spawn('h1', ['sleep', '60'])
    await assert.rejects(silent.waitForLine(/never/, 100), /timed out after 100ms/)
  })
})

test('cleanupStale() deletes namespaces of dead runs and spares live ones', { skip }, async () => {
  const deadPid = spawnSync('true').pid! // exited and reaped: its pid is free
  assert.equal(isAlive(deadPid), false)
  const stale = `wt-${deadPid.toString(36)}-zz9-u`
  const mine = `wt-${process.pid.toString(36)}-zz9-u`
  for (const ns of [stale, mine]) spawnSync('ip', ['netns', 'add', ns])
  try {
    const deleted = await cleanupStale()
    // (A concurrent test run may have reaped `stale` first, so check the outcome, not who did it.)
    assert.ok(!deleted.includes(mine))
    const now = await listNamespaces()
    assert.ok(!now.includes(stale), `${stale} should be deleted`)
    assert.ok(now.includes(mine), `${mine} belongs to a live process and must survive`)
  } finally {
    for (const ns of [stale, mine]) spawnSync('ip', ['netns', 'delete', ns])
  }
})

// These two need no privileges and run everywhere.

test('skip reasons name what is missing', () => {
  assert.equal(toolSkipReason('sh'), undefined)
  assert.match(toolSkipReason('sh', 'weft-no-such-tool')!, /`weft-no-such-tool` not found/)
  if (process.getuid!() !== 0) assert.match(netnsSkipReason()!, /^not root \(uid \d+\): network namespaces need CAP_SYS_ADMIN/)
})

test('waitFor resolves with the first truthy value and times out naming what it waited for', async () => {
  let n = 0
  assert.equal(await waitFor(() => ++n >= 3 && n, { intervalMs: 1, what: 'n to reach 3' }), 3)
  await assert.rejects(
    waitFor(() => { throw new Error('not yet') }, { timeoutMs: 50, intervalMs: 10, what: 'the impossible' }),
    /timed out after 50ms waiting for the impossible; last error: not yet/
  )
})

test('a NIC-like underlay: each host\'s eth0 segments tunnels in software and merges what arrives (GRO with a flush timeout), and the hosts still reach each other', { skip: netnsSkipReason() ?? toolSkipReason('ethtool'), timeout: 60_000 }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'nic-like', underlay: 'nic' }, async (topo) => {
    assert.equal(topo.underlay, 'nic')
    for (const h of topo.hosts) {
      const k = (await topo.exec(h, ['ethtool', '-k', 'eth0'])).stdout
      for (const f of NIC_LIKE_OFF) assert.match(k, new RegExp(`^\\s*${f}: off`, 'm'), `${h.name}: ${f} off`)
      assert.match(k, /^generic-receive-offload: on/m, `${h.name}: GRO on`)
      assert.equal((await topo.exec(h, ['cat', '/sys/class/net/eth0/gro_flush_timeout'])).stdout.trim(), String(NIC_LIKE_GRO_FLUSH_NS))
      assert.match((await topo.exec(topo.underlayNs, ['ethtool', '-k', h.name])).stdout, /^tcp-segmentation-offload: off/m, `${h.name}'s bridge port sends without TSO`)
    }
    const [h1, h2] = topo.hosts as [Host, Host]
    const r = await topo.exec(h1, ['ping', '-c', '2', '-i', '0.2', '-W', '2', h2.underlayIp])
    assert.match(r.stdout, /2 received/)
  })
})
