// The addon's surface: names agree with the TypeScript side, errors carry
// errno names and say which syscall failed, offloads are reported.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import path from 'node:path'
import { constants, native, openTun, probeOffloads, COUNTER_NAMES } from '../../src/native'
import { SystemError } from '../../src/errors'

test('the counter names in TypeScript match the addon, slot for slot', () => {
  assert.deepEqual([...native.counterNames], [...COUNTER_NAMES])
})

test('constructors and registrations take one options object; one without its views is refused with a TypeError naming the shape', () => {
  const [a, b] = native.socketPair()
  assert.throws(() => new (native.Io as unknown as new (...args: unknown[]) => unknown)(a, constants.KIND_FD, new Float64Array(COUNTER_NAMES.length), 4), /Io\(\{ fd, kind/)
  const io = new native.Io({ fd: a, kind: constants.KIND_FD, counters: new Float64Array(COUNTER_NAMES.length), maxBatch: 4 })
  try {
    assert.throws(() => { io.setReceive({ slab: Buffer.alloc(64) } as never) }, /setReceive\(\{ slab/)
    assert.throws(() => { io.setSend({ slab: Buffer.alloc(64), offsets: new Uint32Array(4) } as never) }, /setSend\(\{ slab/)
    assert.throws(() => { io.read() }, /before setReceive/)
    io.setReceive({ slab: Buffer.alloc(64), offsets: new Uint32Array([0, 16, 32, 48]), lengths: new Uint32Array(4), capacity: 16 })
    assert.equal(io.read(), 0, 'registered: nothing queued yet')
  } finally {
    io.close()
    native.closeFd(b)
  }
})

test('a device name longer than IFNAMSIZ is refused with ENAMETOOLONG, naming the syscall', () => {
  assert.throws(() => openTun({ name: 'a-name-far-too-long-for-linux' }), (err: unknown) => {
    assert.ok(err instanceof SystemError)
    assert.equal(err.code, 'ENAMETOOLONG')
    assert.equal(err.syscall, 'ioctl(TUNSETIFF)')
    assert.match(err.message, /ioctl\(TUNSETIFF\)/)
    return true
  })
})

test('probeOffloads reports each offload as a yes/no or the reason it could not be probed', () => {
  // The TSO probe makes a transient TUN device: as root, do it in a private
  // network namespace (unshare) so the root namespace is never touched.
  const script = `console.log(JSON.stringify(require(${JSON.stringify(path.join(__dirname, '../../src/native'))}).probeOffloads()))`
  const argv = process.getuid?.() === 0 ? ['unshare', '--net', process.execPath, '-e', script] : [process.execPath, '-e', script]
  const o = JSON.parse(execFileSync(argv[0], argv.slice(1), { encoding: 'utf8' })) as ReturnType<typeof probeOffloads>
  for (const k of ['udpGso', 'udpGro', 'tun', 'tunVnetHdr', 'tunMultiQueue'] as const) assert.equal(typeof o[k], 'boolean', k)
  for (const k of ['tunTso', 'tunUso'] as const) assert.ok(typeof o[k] === 'boolean' || /^E[A-Z]+$/.test(String(o[k])), k)
})

// Without CAP_NET_ADMIN a TUN open must fail with a clear error, not a crash.
// As root we prove it in a child that runs as `nobody`.
const asNobody = (): string => {
  const script = `
    const { openTun } = require(${JSON.stringify(path.join(__dirname, '../../src/native'))})
    try { openTun({ name: 'wt-noperm' }); console.log('opened') }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, name: e.name })) }`
  if (process.getuid?.() === 0) {
    return execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, '-e', script], { encoding: 'utf8' })
  }
  return execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })
}

test('without privileges, opening a TUN gives a clear error naming the cause', () => {
  const out = JSON.parse(asNobody().trim()) as { code: string, message: string, name: string }
  assert.equal(out.name, 'SystemError')
  assert.ok(['EACCES', 'EPERM', 'ENOENT'].includes(out.code), out.code)
  assert.match(out.message, /\/dev\/net\/tun|CAP_NET_ADMIN/)
})

test('sockets refuse a busy port with EADDRINUSE and a hint', () => {
  const { openUdp4 } = require('../../src/native') as typeof import('../../src/native')
  const a = openUdp4({ addr: 0x7f000001, port: 0 })
  try {
    assert.throws(() => openUdp4({ addr: 0x7f000001, port: a.port }), (err: unknown) => {
      assert.ok(err instanceof SystemError)
      assert.equal(err.code, 'EADDRINUSE')
      assert.match(err.message, /taken by another process/)
      return true
    })
  } finally { a.io.close() }
})

test('the addon itself holds a send\'s address table to the socket\'s family: udp6 takes tableStride 5, IPv4 sockets 2 (or none)', () => {
  const { openUdp4Fd, openUdp6Fd } = require('../../src/native') as typeof import('../../src/native')
  const six = new native.Io({ fd: openUdp6Fd({ addr: Buffer.alloc(16), port: 0 }), kind: constants.KIND_UDP6, counters: new Float64Array(COUNTER_NAMES.length), maxBatch: 4 })
  const four = new native.Io({ fd: openUdp4Fd({ addr: 0x7f000001, port: 0 }), kind: constants.KIND_UDP4, counters: new Float64Array(COUNTER_NAMES.length), maxBatch: 4 })
  const views = { slab: Buffer.alloc(64), offsets: new Uint32Array(4), lengths: new Uint32Array(4), dests: new Uint32Array(4), table: new Uint32Array(10) }
  try {
    assert.throws(() => { six.setSend(views) }, /udp6 socket sends through a PeerTable6 \(tableStride 5\)/)
    assert.throws(() => { six.setSend({ ...views, tableStride: 2 }) }, /PeerTable6/)
    six.setSend({ ...views, tableStride: 5 })
    assert.throws(() => { four.setSend({ ...views, tableStride: 5 }) }, /IPv4 socket sends through a PeerTable \(tableStride 2\)/)
    four.setSend(views)
    four.setSend({ ...views, tableStride: 2 })
  } finally { six.close(); four.close() }
})

test('an IPv6 socket address must be 16 bytes; a busy IPv6 port is refused with EADDRINUSE and a hint', () => {
  const { openUdp6 } = require('../../src/native') as typeof import('../../src/native')
  assert.throws(() => openUdp6({ addr: Buffer.alloc(4), port: 0 }), (err: unknown) => {
    assert.equal((err as { code?: string }).code, 'EINVAL')
    return true
  })
  assert.throws(() => { native.udp6Open(Buffer.alloc(15), 0) }, /udp6Open\(addr: Buffer of 16 bytes/)
  const a = openUdp6({ addr: Buffer.alloc(16), port: 0 })
  try {
    assert.throws(() => openUdp6({ addr: Buffer.alloc(16), port: a.port }), (err: unknown) => {
      assert.ok(err instanceof SystemError)
      assert.equal(err.code, 'EADDRINUSE')
      assert.equal(err.syscall, 'socket/bind(udp6)')
      assert.match(err.message, /\[::\]:\d+/)
      assert.match(err.message, /taken by another process/)
      return true
    })
  } finally { a.io.close() }
})
