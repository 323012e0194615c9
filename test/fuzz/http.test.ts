// Hostile HTTP at the daemon's two servers, over raw sockets: /healthz on
// loopback TCP and the control socket's unix path. A session is one
// connection carrying any mix of malformed request lines, targets (the four
// that once ended the process among them), methods, headers, bodies and
// line endings, pipelined, cut at random points, half-closed or dropped
// mid-request. Whatever it holds, the server answers each response with a
// status it means to give (never 500: that is a bug of ours caught by the
// guard), the process survives (an exception out of a handler would end
// this test run), and afterwards /healthz (and /status) still answer 200.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import { Health } from '../../src/daemon/health'
import { ControlServer } from '../../src/daemon/control'
import { Metrics } from '../../src/daemon/metrics'
import type { HttpLimits, RefusedReason } from '../../src/daemon/http-guard'
import { captureLogger } from '../helpers/log'
import { get, KILLERS, raw } from '../../lab/raw-http'
import type { To } from '../../lab/raw-http'
import { budget } from './budget'

/** Statuses the servers give on purpose (100 and 417: node's own answers to Expect). */
const MEANT = new Set([100, 200, 400, 404, 405, 408, 417, 429, 431, 503])
/** The fuzzer is one client on one address: lift the rate so the check after each run is not a 429 (test/daemon covers the limit). */
const LIMITS: Partial<HttpLimits> = { ratePerSecond: 1e6, burst: 1e6, headersTimeoutMs: 2000, requestTimeoutMs: 3000 }

/** Mostly what node's parser takes, so that the routes see it; now and then anything. */
const often = <T>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<T>): fc.Arbitrary<T> => fc.oneof({ weight: 19, arbitrary: usual }, { weight: 1, arbitrary: odd })

/** what a path may hold, the four killers' characters among them */
const pathChars = fc.constantFrom(...'%[]:@/?#&=.~-+!$\'()*,;azAZ09'.split(''))
/** what node's parser refuses in a target */
const badChars = fc.constantFrom(...'\\^`{|}"<> \t\x7f\x80\xff\x00'.split(''))
const target = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...KILLERS, '/healthz', '/readyz', '/readyz?verbose', '/metrics', '/status', '/', 'http://x/healthz', 'HTTP://x:99999/readyz?verbose=1', '//', '/?', '/#') },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom('/', '/', '//', 'http://x/', 'http://', 'https://'), fc.string({ unit: pathChars, maxLength: 40 })).map(([a, b]) => a + b) },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom('*', 'a:1', ''), fc.string({ unit: fc.oneof(pathChars, badChars), maxLength: 30 }), fc.string({ unit: 'binary-ascii', maxLength: 30 })) }
)
const method = often(
  fc.constantFrom('GET', 'GET', 'GET', 'GET', 'GET', 'GET', 'HEAD', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'CONNECT', 'PATCH', 'TRACE'),
  fc.oneof(fc.constantFrom('PRI', 'get', 'G ET', ''), fc.string({ unit: 'binary-ascii', maxLength: 8 }))
)
const version = often(fc.constantFrom('HTTP/1.1', 'HTTP/1.0'), fc.constantFrom('HTTP/0.9', 'HTTP/2.0', 'HTTP/1.1 x', 'http/1.1', '', 'HTTP/1.10'))
const header = often(
  fc.constantFrom<[string, string]>(['host', 'weft'], ['connection', 'close'], ['connection', 'keep-alive'], ['content-length', '0'], ['expect', '100-continue'],
    ['upgrade', 'websocket'], ['accept', '*/*'], ['x-a', 'b']),
  fc.tuple(
    fc.oneof(fc.constantFrom('host', 'content-length', 'Content-Length', 'transfer-encoding', 'connection', 'expect', 'upgrade', 'x-a'), fc.string({ unit: 'binary-ascii', maxLength: 10 })),
    fc.oneof(
      fc.constantFrom('0', '5', '-1', '99999999999999999999', 'chunked', 'gzip, chunked', 'close, upgrade', 'x', ''),
      fc.string({ unit: 'binary-ascii', maxLength: 20 }),
      fc.integer({ min: 1, max: 12 }).map((k) => 'a'.repeat(k * 1024))
    )
  )
)
const body = often(
  fc.constant(''),
  fc.oneof(fc.string({ unit: 'binary-ascii', maxLength: 64 }), fc.constantFrom('5\r\nhello\r\n0\r\n\r\n', 'zz\r\n', '0\r\n\r\n', 'ffffffffffffffff\r\nx'))
)
const request = fc.record({ method, target, version, headers: fc.array(header, { maxLength: 4 }), body, eol: often(fc.constant('\r\n'), fc.constantFrom('\n', '\r')) })
  .map((r) => `${r.method} ${r.target}${r.version === '' ? '' : ' ' + r.version}${r.eol}${r.headers.map(([k, v]) => `${k}: ${v}${r.eol}`).join('')}${r.eol}${r.body}`)

/** A session: requests (or raw bytes) on one connection, cut into chunks, ended in one of three ways. */
const session = fc.record({
  parts: fc.array(fc.oneof({ weight: 9, arbitrary: request }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) }), { minLength: 1, maxLength: 4 }),
  cuts: fc.array(fc.nat(), { maxLength: 4 }),
  how: fc.constantFrom('wait', 'half-close', 'drop')
})

async function drive (to: To, s: { parts: string[], cuts: number[], how: string }): Promise<number[]> {
  const bytes = Buffer.from(s.parts.join(''), 'latin1')
  const at = [...new Set(s.cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let from = 0
  for (const c of [...at, bytes.length]) {
    if (c > from) chunks.push(bytes.subarray(from, c))
    from = c
  }
  // 'drop': gone before the server could answer
  const r = await raw(to, chunks, { end: s.how === 'half-close', idleMs: s.how === 'drop' ? 1 : 50, maxMs: 3000 })
  return r.statuses
}

function counter (): { refused: Map<RefusedReason, number>, onRefused: (r: RefusedReason) => void } {
  const refused = new Map<RefusedReason, number>()
  return { refused, onRefused: (r) => refused.set(r, (refused.get(r) ?? 0) + 1) }
}

test('the healthz server under random malformed sessions: a meant status for each answer, never 500, /healthz still answers', async (t) => {
  const log = captureLogger('info')
  const c = counter()
  const metrics = new Metrics(() => undefined, () => 0)
  const health = new Health({ log: log.log, limits: LIMITS, onRefused: c.onRefused })
  health.setMetrics(() => metrics.text())
  health.setReady(true)
  const port = await health.listen('127.0.0.1', 0)
  t.after(async () => await health.close())
  const to = { host: '127.0.0.1', port }
  let runs = 0
  const answers: Record<number, number> = {}
  await fc.assert(fc.asyncProperty(session, async (s) => {
    runs++
    const statuses = await drive(to, s)
    for (const st of statuses) answers[st] = (answers[st] ?? 0) + 1
    for (const st of statuses) assert.ok(MEANT.has(st), `answered ${st}`)
    assert.deepEqual(await get(to, '/healthz'), { status: 200, body: 'weft is running\n' })
  }), budget(1000, 6))
  assert.equal(c.refused.get('handler_error'), undefined)
  t.diagnostic(`${runs} sessions, answers by status ${JSON.stringify(answers)}; refused: ${JSON.stringify(Object.fromEntries(c.refused))}; ${log.lines.length} log lines`)
  assert.ok(log.lines.length <= 9, 'at most one line per reason')
})

test('the control socket under random malformed sessions: a meant status for each answer, never 500, /status still answers', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-fuzz-control-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const log = captureLogger('info')
  const c = counter()
  const control = new ControlServer(dir, () => ({ peers: [] }), log.log, { limits: LIMITS, onRefused: c.onRefused })
  await control.listen()
  t.after(async () => await control.close())
  const to = { path: control.path }
  let runs = 0
  await fc.assert(fc.asyncProperty(session, async (s) => {
    runs++
    for (const st of await drive(to, s)) assert.ok(MEANT.has(st), `answered ${st}`)
    assert.deepEqual(await get(to, '/status'), { status: 200, body: '{"peers":[]}' })
  }), budget(600, 4))
  assert.equal(c.refused.get('handler_error'), undefined)
  t.diagnostic(`${runs} sessions; refused: ${JSON.stringify(Object.fromEntries(c.refused))}`)
})
