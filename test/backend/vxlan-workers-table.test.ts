// The pieces a multi-worker VXLAN dataplane stands on, each on its own:
// the steering program on a group of SO_REUSEPORT sockets, a table copy that
// follows the main table index for index, and the shared counters' layout.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import fs from 'node:fs'
import { parseCidr } from '../../src/packet/net'
import { Fdb } from '../../src/dataplane/fdb'
import { sharedCounters } from '../../src/backend/vxlan/workers'
import { closeFd, native, openUdp4Fd, steerInnerFlow } from '../../src/native'
import { parseIp4 } from '../../src/packet/ip'

const LOOPBACK = parseIp4('127.0.0.1')

/** A VXLAN datagram's payload as far as the steering reads it: inner IPv4 at 22, its ports after it. */
function vxlanPayload (src: string, dst: string, sport: number, dport: number): Buffer {
  const b = Buffer.alloc(22 + 20 + 8)
  b[0] = 0x08
  b[22] = 0x45
  b[22 + 9] = 6
  b.writeUInt32BE(parseIp4(src) >>> 0, 22 + 12)
  b.writeUInt32BE(parseIp4(dst) >>> 0, 22 + 16)
  b.writeUInt16BE(sport, 42)
  b.writeUInt16BE(dport, 44)
  return b
}

/** Datagrams queued on a non-blocking socket fd, read until it is empty, by their first inner port. */
function drain (fd: number): number[] {
  const got: number[] = []
  const buf = Buffer.alloc(256)
  for (;;) {
    try {
      const n = fs.readSync(fd, buf)
      got.push(n >= 44 ? buf.readUInt16BE(42) : -1)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return got
      throw err
    }
  }
}

test('steering by inner flow: every datagram of a flow reaches the same socket of the group, and client flows (even ports, one server port) spread over all of them', async (t) => {
  const socks = 3
  const fds: number[] = []
  t.after(() => { for (const fd of fds) closeFd(fd) })
  fds.push(openUdp4Fd({ addr: LOOPBACK, port: 0, reusePort: true }))
  const port = native.sockLocalPort(fds[0])
  for (let k = 1; k < socks; k++) fds.push(openUdp4Fd({ addr: LOOPBACK, port, reusePort: true }))
  steerInnerFlow(fds[0], socks)

  // from one source port, as between two weft nodes: the outer 4-tuple never changes
  const out = dgram.createSocket('udp4')
  t.after(() => { out.close() })
  const flows = 48
  for (let round = 0; round < 3; round++) {
    for (let f = 0; f < flows; f++) {
      // Linux gives connect()ing sockets even ports: the case a weak hash gets wrong
      const payload = vxlanPayload('10.244.1.2', '10.244.2.3', 40000 + 2 * f, 5201)
      await new Promise<void>((resolve, reject) => { out.send(payload, port, '127.0.0.1', (err) => { if (err !== null) reject(err); else resolve() }) })
    }
  }
  const bySocket = fds.map(drain)
  const where = new Map<number, number>()
  for (const [k, ports] of bySocket.entries()) {
    for (const p of ports) {
      assert.ok(!where.has(p) || where.get(p) === k, `flow from port ${p} reached sockets ${String(where.get(p))} and ${k}`)
      where.set(p, k)
    }
  }
  assert.equal(bySocket.flat().length, 3 * flows, 'every datagram arrived')
  for (const [k, ports] of bySocket.entries()) assert.ok(ports.length >= 3 * 4, `socket ${k} took ${ports.length / 3} of ${flows} flows`)
  t.diagnostic(`flows per socket: ${bySocket.map((p) => p.length / 3).join(', ')}`)
})

test('a short datagram is not lost to the steering: from whatever source port, it goes to the first socket', async (t) => {
  const fds: number[] = []
  t.after(() => { for (const fd of fds) closeFd(fd) })
  fds.push(openUdp4Fd({ addr: LOOPBACK, port: 0, reusePort: true }))
  const port = native.sockLocalPort(fds[0])
  fds.push(openUdp4Fd({ addr: LOOPBACK, port, reusePort: true }))
  steerInnerFlow(fds[0], 2)
  // eight senders: without the program the kernel's hash of the source port would spread them
  for (let k = 0; k < 8; k++) {
    const out = dgram.createSocket('udp4')
    t.after(() => { out.close() })
    await new Promise<void>((resolve, reject) => { out.send(Buffer.from('short'), port, '127.0.0.1', (err) => { if (err !== null) reject(err); else resolve() }) })
  }
  assert.deepEqual(fds.map(drain), [Array(8).fill(-1), []])
})

test('a table copy that follows from the start gives every peer the same index, through adds, moves and removals', () => {
  const opts = { network: parseCidr('10.244.0.0/16'), subnetLen: 24, port: 8472 }
  const main = new Fdb(opts)
  const copy = new Fdb(opts)
  main.follow({
    set: (subnet, publicIP, mac, port, remCsum) => { copy.set(subnet, publicIP, mac, port, remCsum) },
    delete: (subnet) => { copy.delete(subnet) }
  })
  const mac = Buffer.from([2, 0, 0, 0, 0, 1])
  main.set(parseCidr('10.244.1.0/24'), parseIp4('198.18.0.1'), mac)
  main.set(parseCidr('10.244.2.0/24'), parseIp4('198.18.0.2'), mac, 8472, true)
  main.set(parseCidr('10.244.3.0/24'), parseIp4('198.18.0.3'), undefined)
  main.delete(parseCidr('10.244.2.0/24'))
  main.set(parseCidr('10.244.1.0/24'), parseIp4('198.18.0.9'), mac) // moved
  main.set(parseCidr('10.244.4.0/24'), parseIp4('198.18.0.4'), mac) // reuses a freed index
  assert.equal(main.delete(parseCidr('10.244.99.0/24')), false) // nothing to replay
  assert.deepEqual(copy.entries(), main.entries())
  for (const dst of ['10.244.1.7', '10.244.2.7', '10.244.3.7', '10.244.4.7']) assert.equal(copy.lookup(parseIp4(dst)), main.lookup(parseIp4(dst)), dst)
  assert.equal(copy.source(parseIp4('198.18.0.9')), main.source(parseIp4('198.18.0.9')))
  assert.equal(copy.source(parseIp4('198.18.0.1')), -1, 'the moved peer\'s old address is gone in the copy too')
})

test('shared counters: the worker re-opens the layout the main thread made, view for view', () => {
  const made = sharedCounters(16)
  const again = sharedCounters(16, made.sab).views
  made.views.stats[3] = 7
  made.views.sock[1] = 8
  made.views.perPeer[16 * 4 - 1] = 9
  made.views.unknown[15] = 10
  assert.equal(again.stats[3], 7)
  assert.equal(again.sock[1], 8)
  assert.equal(again.tun[1], 0)
  assert.equal(again.perPeer[16 * 4 - 1], 9)
  assert.equal(again.unknown[15], 10)
})
