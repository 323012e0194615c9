// The daemon's HTTP servers against hostile clients, in-process on loopback
// and on a unix socket: every request answered or refused with a status,
// each refusal counted and logged once, the limits enforced, and the
// server still answering afterwards. (The same against real daemons in
// namespaces: test/hostile/http-abuse.test.ts; random input: test/fuzz/http.test.ts.)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { Health } from '../../src/daemon/health'
import { ControlServer, fetchStatus } from '../../src/daemon/control'
import { HEALTHZ_LIMITS, closeServer, guardedServer, hasParam, isLoopback, listen, parseTarget } from '../../src/daemon/http-guard'
import type { HttpLimits, RefusedReason } from '../../src/daemon/http-guard'
import { captureLogger } from '../helpers/log'
import { waitFor } from '../../lab/wait'
import { connections, get, KILLERS, raw, statusesOf } from '../../lab/raw-http'
import type { To } from '../../lab/raw-http'

test('targets are parsed by hand: origin-form and absolute-form, anything else refused, nothing thrown', () => {
  assert.deepEqual(parseTarget('/readyz?verbose'), { path: '/readyz', query: 'verbose' })
  assert.deepEqual(parseTarget('/healthz#x'), { path: '/healthz', query: '' })
  assert.deepEqual(parseTarget('http://10.0.0.1:8081/metrics?a=b'), { path: '/metrics', query: 'a=b' })
  assert.deepEqual(parseTarget('HTTP://x'), { path: '/', query: '' })
  assert.deepEqual(parseTarget('http://x?verbose'), { path: '/', query: 'verbose' })
  for (const t of KILLERS) assert.ok(parseTarget(t) !== undefined, t)
  assert.deepEqual(parseTarget('//[?'), { path: '//[', query: '' })
  for (const t of ['*', 'a:1', '', 'abc', 'http:x', 'ftp://x/healthz']) assert.equal(parseTarget(t), undefined, t)
  assert.ok(hasParam('verbose', 'verbose') && hasParam('a=1&verbose=true', 'verbose'))
  assert.ok(!hasParam('verbosely', 'verbose') && !hasParam('', 'verbose'))
  assert.ok(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('::ffff:127.0.0.5'))
  assert.ok(!isLoopback('10.0.0.1') && !isLoopback(undefined) && !isLoopback('::ffff:10.0.0.1'))
})

interface Served {
  to: To
  health: Health
  refused: Map<RefusedReason, number>
  log: ReturnType<typeof captureLogger>
}

async function serve (t: TestContext, limits: Partial<HttpLimits> = {}, host = '127.0.0.1'): Promise<Served> {
  const log = captureLogger('info')
  const refused = new Map<RefusedReason, number>()
  const health = new Health({ log: log.log, limits, onRefused: (r) => refused.set(r, (refused.get(r) ?? 0) + 1) })
  health.setReady(true)
  health.setMetrics(async () => 'weft_peers 0\n')
  const port = await health.listen(host, 0)
  t.after(async () => await health.close())
  return { to: { host: '127.0.0.1', port }, health, refused, log }
}

test('the killer targets, bad methods, bad request lines, oversized headers: each answered with a status, counted, logged once; /healthz still answers', async (t) => {
  const s = await serve(t)
  for (const target of KILLERS) {
    const r = await get(s.to, target)
    assert.equal(r.status, 404, `GET ${target}`)
  }
  assert.deepEqual(await get(s.to, 'http://anyhost:1/healthz'), { status: 200, body: 'weft is running\n' })
  assert.equal((await get(s.to, '/%68ealthz')).status, 404)
  assert.equal((await get(s.to, '/healthz?x=%zz')).status, 200)

  const post = await raw(s.to, ['POST /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\n\r\nabc'])
  assert.deepEqual(post.statuses, [405])
  assert.match(post.text, /^allow: GET, HEAD$/im)
  assert.match(post.text, /^connection: close$/im, 'a request with a body is answered, then the connection closed')
  assert.deepEqual((await raw(s.to, ['CONNECT a:1 HTTP/1.1\r\n\r\n'])).statuses, [405])
  assert.deepEqual((await raw(s.to, ['OPTIONS * HTTP/1.1\r\n\r\n'])).statuses, [405])
  assert.deepEqual((await raw(s.to, ['GET * HTTP/1.1\r\n\r\n'])).statuses, [400])
  assert.deepEqual((await raw(s.to, ['FOO / HTTP/1.1\r\n\r\n'])).statuses, [400])
  assert.deepEqual((await raw(s.to, ['GET / HTTP/7.0\r\n\r\n'])).statuses, [400])
  assert.deepEqual((await raw(s.to, ['\x00\x01\x02\r\n\r\n'])).statuses, [400])
  const big = await raw(s.to, [`GET /healthz HTTP/1.1\r\nx: ${'a'.repeat(9 * 1024)}\r\n\r\n`])
  assert.deepEqual(big.statuses, [431])
  assert.ok(big.closed, 'and the connection closed')
  assert.deepEqual((await raw(s.to, [`GET /${'a'.repeat(9 * 1024)} HTTP/1.1\r\n\r\n`])).statuses, [431], 'a long target counts against the same limit')
  // HEAD: the status and headers, no body
  const head = await raw(s.to, ['HEAD /healthz HTTP/1.1\r\n\r\n'])
  assert.deepEqual(head.statuses, [200])
  assert.ok(!head.text.includes('weft is running'))
  // half-closed after a request: answered all the same
  assert.deepEqual((await raw(s.to, ['GET /healthz HTTP/1.1\r\n\r\n'], { end: true })).statuses, [200])

  assert.deepEqual(await get(s.to, '/healthz'), { status: 200, body: 'weft is running\n' })
  assert.equal(s.refused.get('not_found'), 5)
  assert.equal(s.refused.get('method'), 3)
  assert.equal(s.refused.get('bad_target'), 1)
  assert.equal(s.refused.get('bad_request'), 3)
  assert.equal(s.refused.get('headers_too_large'), 2)
  for (const reason of s.refused.keys()) {
    assert.equal(s.log.lines.filter((l) => l.reason === reason).length, 1, `${reason}: logged once`)
  }
  assert.ok(s.log.lines.every((l) => l.level === 40), 'at warn')
})

test('over the rate: 429 with Retry-After, per source address; the bucket refills; requests pipelined behind a 429 close the connection', async (t) => {
  let now = 0
  const log = captureLogger('info')
  const refused: RefusedReason[] = []
  const server = guardedServer({ name: 'test', log: log.log, limits: { ...HEALTHZ_LIMITS, ratePerSecond: 2, burst: 3 }, onRefused: (r) => refused.push(r), now: () => now },
    () => ({ status: 200, body: 'ok\n' }))
  const addr = await listen(server, log.log, 'test', 0, '127.0.0.1')
  t.after(async () => await closeServer(server))
  const to = { host: '127.0.0.1', port: (addr as { port: number }).port }
  const r = await raw(to, ['GET / HTTP/1.1\r\n\r\n'.repeat(6)])
  assert.deepEqual(r.statuses, [200, 200, 200, 429, 429])
  assert.ok(r.closed, 'closed after answering the request pipelined behind the 429')
  assert.match(r.text, /^retry-after: 1$/im)
  assert.deepEqual(refused, ['rate', 'rate', 'rate'])
  now += 500 // one token back
  assert.deepEqual((await raw(to, ['GET / HTTP/1.1\r\n\r\n'], { responses: 1 })).statuses, [200])
  assert.deepEqual((await raw(to, ['GET / HTTP/1.1\r\n\r\n'], { responses: 1 })).statuses, [429])
  now += 10_000 // a full bucket, never more
  assert.deepEqual((await raw(to, ['GET / HTTP/1.1\r\n\r\n'.repeat(3)], { responses: 3 })).statuses, [200, 200, 200])
  assert.equal(log.lines.length, 1, 'logged once')
})

test('after a 429 the connection is not read for the second Retry-After asks for', async (t) => {
  const now = 0
  const log = captureLogger('info')
  const server = guardedServer({ name: 'test', log: log.log, limits: { ...HEALTHZ_LIMITS, ratePerSecond: 1, burst: 1 }, now: () => now },
    () => ({ status: 200, body: 'ok\n' }))
  const addr = await listen(server, log.log, 'test', 0, '127.0.0.1')
  t.after(async () => await closeServer(server))
  const port = (addr as { port: number }).port
  // a client that waits for each answer, and asks again at once
  const s = net.connect(port, '127.0.0.1')
  t.after(() => s.destroy())
  const answers: Array<{ status: number, at: number }> = []
  let text = ''
  s.on('data', (d: Buffer) => {
    text += d.toString('latin1')
    const statuses = statusesOf(text)
    for (const status of statuses.slice(answers.length)) {
      answers.push({ status, at: performance.now() })
      if (answers.length < 3) s.write('GET / HTTP/1.1\r\n\r\n')
    }
  })
  s.write('GET / HTTP/1.1\r\n\r\n')
  await waitFor(() => answers.length === 3, { what: 'three answers', timeoutMs: 5000 })
  assert.deepEqual(answers.map((a) => a.status), [200, 429, 429])
  const gap = answers[2].at - answers[1].at
  assert.ok(gap >= 900, `the request after the 429 was answered ${gap.toFixed(0)} ms later`)
})

test('connections: beyond the per-source limit closed at once; one that sends nothing, or half its headers, answered 408 and closed', async (t) => {
  const s = await serve(t, { maxConnectionsPerSource: 3, headersTimeoutMs: 300, requestTimeoutMs: 600 })
  const c = await connections(s.to, 6, 300)
  assert.equal(c.opened, 6, 'the kernel accepts them all')
  assert.equal(c.closedByServer, 3, 'weft closes those over the limit')
  await waitFor(() => s.refused.get('connections') === 3, { what: '3 refused connections', timeoutMs: 2000 })
  // the slots come back when the connections go
  await waitFor(async () => (await get(s.to, '/healthz')).status === 200, { what: '/healthz', timeoutMs: 2000 })

  const slow = await raw(s.to, ['GET /healthz HTTP/1.1\r\nx-slow: '], { idleMs: 3000, maxMs: 4000 })
  assert.deepEqual(slow.statuses, [408])
  assert.ok(slow.closed && slow.ms < 2500, `closed after ${slow.ms} ms`)
  const silent = await raw(s.to, [], { idleMs: 3000, maxMs: 4000 })
  assert.ok(silent.closed && silent.ms < 2500, `a silent connection closed after ${silent.ms} ms`)
  assert.ok((s.refused.get('timeout') ?? 0) >= 1)
})

test('the total connection limit: over it, node drops the connection and it is counted', async (t) => {
  const s = await serve(t, { maxConnections: 2, maxConnectionsPerSource: 10 })
  const c = await connections(s.to, 4, 300)
  assert.equal(c.closedByServer, 2)
  assert.equal(s.refused.get('connections'), 2)
  await waitFor(async () => (await get(s.to, '/healthz')).status === 200, { what: '/healthz', timeoutMs: 2000 })
})

test('/readyz?verbose: the failing check and for how long to anyone; the store\'s error text only to a client on the node itself', async (t) => {
  const external = Object.values(os.networkInterfaces()).flat().find((i) => i !== undefined && i.family === 'IPv4' && !i.internal)?.address
  const s = await serve(t, {}, '0.0.0.0')
  s.health.setStore(() => ({ reason: 'etcd at https://10.1.2.3:2379 is unreachable', forMs: 12_345 }))
  const local = await get(s.to, '/readyz?verbose')
  assert.equal(local.status, 503)
  assert.equal(local.body, '[+]lease ok\n[-]store failed for 12.3 s: etcd at https://10.1.2.3:2379 is unreachable\nweft is degraded: the store is unreachable\n')
  if (external === undefined) {
    t.diagnostic('no non-loopback IPv4 address here: the remote half is covered by test/hostile/http-abuse.test.ts')
    return
  }
  const remote = await get({ host: external, port: (s.to as { port: number }).port }, '/readyz?verbose')
  assert.equal(remote.status, 503)
  assert.equal(remote.body, '[+]lease ok\n[-]store failed for 12.3 s (the error is in weft\'s log)\nweft is degraded: the store is unreachable\n')
  assert.equal((await get(s.to, '/readyz')).body, 'weft is degraded: the store is unreachable\n')
})

test('a route that throws or rejects: 500, logged once at error, and the server goes on', async (t) => {
  const s = await serve(t)
  let fail: 'throw' | 'reject' = 'throw'
  s.health.setMetrics(() => {
    if (fail === 'throw') throw new Error('bug')
    return Promise.reject(new Error('bug too'))
  })
  assert.equal((await get(s.to, '/metrics')).status, 500)
  fail = 'reject'
  assert.equal((await get(s.to, '/metrics')).status, 500)
  assert.equal(s.refused.get('handler_error'), 2)
  assert.equal(s.log.lines.filter((l) => l.level === 50).length, 1)
  assert.equal((await get(s.to, '/healthz')).status, 200)
})

test('the control socket: a status() that throws is a 500 (fetchStatus rejects, naming it), malformed requests are refused, and it still answers', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-control-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const log = captureLogger('info')
  const refused: RefusedReason[] = []
  let broken = false
  const c = new ControlServer(dir, () => {
    if (broken) throw new Error('no status')
    return { ok: true }
  }, log.log, { onRefused: (r) => refused.push(r) })
  await c.listen()
  t.after(async () => await c.close())
  const to = { path: c.path }
  for (const target of KILLERS) assert.equal((await get(to, target)).status, 404, target)
  assert.deepEqual((await raw(to, ['DELETE /status HTTP/1.1\r\n\r\n'])).statuses, [405])
  assert.deepEqual((await raw(to, [`GET /status HTTP/1.1\r\nx: ${'a'.repeat(9000)}\r\n\r\n`])).statuses, [431])
  broken = true
  await assert.rejects(fetchStatus(dir), /answered 500/)
  broken = false
  assert.deepEqual(await fetchStatus(dir), { ok: true })
  assert.deepEqual(refused, ['not_found', 'not_found', 'not_found', 'not_found', 'method', 'headers_too_large', 'handler_error'])
})

test('clients that reset the connection the moment they have sent a CONNECT or a malformed request: their answers fail to go out (EPIPE, ECONNRESET) and nothing else happens; /healthz still answers', async (t) => {
  // The fuzzer found it: node hands a CONNECT's socket over without an error
  // listener, so a write to a client that had gone was an uncaught error,
  // which ends the daemon.
  const s = await serve(t, { ratePerSecond: 1e6, burst: 1e6 })
  const uncaught: unknown[] = []
  const onUncaught = (err: unknown): void => { uncaught.push(err) }
  process.on('uncaughtException', onUncaught)
  t.after(() => { process.removeListener('uncaughtException', onUncaught) })
  for (let i = 0; i < 200; i++) {
    const { host, port } = s.to as { host: string, port: number }
    const c = net.connect(port, host)
    await new Promise<void>((resolve) => c.once('connect', () => resolve()))
    c.on('error', () => {})
    c.write(i % 2 === 0 ? 'CONNECT a:1 HTTP/1.1\r\nhost: a\r\n\r\n' : 'GET / HTTP/1.1\r\nbad header\r\n\r\n')
    c.resetAndDestroy()
  }
  assert.equal((await get(s.to, '/healthz')).status, 200)
  assert.deepEqual(uncaught, [])
})
