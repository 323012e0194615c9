// `bin/weft capture` for real, as root, inside network namespaces we create:
// kernel VXLAN traffic between two hosts decoded outer and inner; --pod,
// --json and --write (read back by tcpdump); IP-in-IP, UDP-backend and
// malformed VXLAN frames injected on the underlay; WireGuard messages sent
// over UDP sockets between two hosts; a TUN VTEP (link type RAW); and the
// ways a capture ends (--count, --seconds, SIGTERM).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { kernelVxlanNode } from '../../lab/kernel-vxlan'
import { withTopology, type ChildHandle, type Host, type Topology } from '../../lab/netns'
import { settlesWithin } from '../../lab/proc'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import * as f from './frames'
import { tcpdumpRead } from './tcpdump'

const ROOT = path.join(__dirname, '..', '..', '..')
const BIN = path.join(ROOT, 'bin', 'weft')
const DIST = path.join(ROOT, 'dist')

let registered: { reason: string | undefined } | undefined
function registrationSkipReason (): string | undefined {
  registered ??= {
    reason: /usage: weft capture/.test(spawnSync(process.execPath, [BIN, 'help', 'capture'], { encoding: 'utf8', timeout: 20_000 }).stdout)
      ? undefined
      : '`weft capture` is not registered in src/main.ts (COMMANDS) yet'
  }
  return registered.reason
}

const skip = netnsSkipReason() ?? toolSkipReason('ping') ?? registrationSkipReason()
const isRoot = process.getuid?.() === 0
const TIME = '\\d\\d:\\d\\d:\\d\\d\\.\\d{6}'

function weftCapture (topo: Topology, host: Host, ...args: string[]): ChildHandle {
  return topo.spawn(host, [process.execPath, BIN, 'capture', ...args])
}

/** Start a capture and wait until libpcap is listening (its stderr line). */
async function startCapture (topo: Topology, host: Host, ...args: string[]): Promise<ChildHandle> {
  const c = weftCapture(topo, host, ...args)
  await c.waitForLine(/weft capture: listening on/, 15_000, 'stderr')
  return c
}

async function finished (c: ChildHandle, ms = 15_000): Promise<void> {
  const ok = await settlesWithin(c.exited, ms)
  assert.ok(ok, `capture did not stop within ${ms}ms; stdout:\n${c.stdout}\nstderr:\n${c.stderr}`)
  const exit = await c.exited
  assert.equal(exit.code, 0, `capture exited ${String(exit.code)}/${String(exit.signal)}: ${c.stderr}`)
}

function tmpdir (t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-capture-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Two hosts with flanneld-style kernel VTEPs (flannel.1): 10.244.1.0/24 on h1, 10.244.2.0/24 on h2. */
async function kernelPair (topo: Topology): Promise<void> {
  const [h1, h2] = topo.hosts as [Host, Host]
  const a = await kernelVxlanNode(topo, h1, { subnet: '10.244.1.0/24' })
  const b = await kernelVxlanNode(topo, h2, { subnet: '10.244.2.0/24' })
  await a.addPeer(b.peer)
  await b.addPeer(a.peer)
}

test('kernel VXLAN between two hosts: each packet printed with outer and inner headers', { skip }, async (t) => {
  await withTopology(t, { hosts: 2, label: 'capture-vxlan' }, async (topo) => {
    await kernelPair(topo)
    const h1 = topo.hosts[0] as Host
    const cap = await startCapture(topo, h1, '--iface', 'eth0', '--count', '4')
    assert.match(cap.stderr, /listening on eth0 \(underlay, link type EN10MB\), filter "\(udp port 8472 or ip proto 4 or udp port 8285 or udp port 51820\)"/)
    await topo.exec(h1, ['ping', '-c', '2', '-i', '0.2', '-W', '2', '10.244.2.0'])
    await finished(cap)

    const lines = cap.stdoutLines
    assert.equal(lines.length, 4, cap.stdout)
    const want = [
      ['198.18.0.1 > 198.18.0.2', '10.244.1.0 > 10.244.2.0 ICMP echo request', 1],
      ['198.18.0.2 > 198.18.0.1', '10.244.2.0 > 10.244.1.0 ICMP echo reply', 1],
      ['198.18.0.1 > 198.18.0.2', '10.244.1.0 > 10.244.2.0 ICMP echo request', 2],
      ['198.18.0.2 > 198.18.0.1', '10.244.2.0 > 10.244.1.0 ICMP echo reply', 2]
    ] as const
    want.forEach(([outer, inner, seq], i) => {
      assert.match(lines[i] ?? '', new RegExp(`^${TIME} ${outer} VXLAN vni 1 \\| ${inner} id \\d+ seq ${seq} len 84$`))
    })
    assert.match(cap.stderr, /weft capture: 4 packets captured/)
  })
})

test('--pod keeps one pod\'s packets, --json prints objects, --write leaves a pcap tcpdump reads', { skip: skip ?? toolSkipReason('tcpdump') }, async (t) => {
  const file = path.join(tmpdir(t), 'pod.pcap')
  await withTopology(t, { hosts: 2, label: 'capture-write' }, async (topo) => {
    await kernelPair(topo)
    const [h1, h2] = topo.hosts as [Host, Host]
    // A second address on h1's VTEP stands for a second pod.
    await topo.exec(h1, ['ip', 'addr', 'add', '10.244.1.5/32', 'dev', 'flannel.1'])
    const cap = await startCapture(topo, h2, '--iface', 'eth0', '--backend', 'vxlan', '--node', '198.18.0.1',
      '--pod', '10.244.1.5', '--count', '2', '--json', '--write', file)
    assert.match(cap.stderr, /filter "udp port 8472 and host 198\.18\.0\.1"/)
    await topo.exec(h1, ['ping', '-c', '1', '-W', '2', '10.244.2.0']) // from 10.244.1.0: not the pod asked for
    await cap.waitForLine(/weft capture: \d+ packets written to /, 5000, 'stderr') // a progress line, checked below
    await topo.exec(h1, ['ping', '-c', '1', '-W', '2', '-I', '10.244.1.5', '10.244.2.0'])
    await finished(cap)

    const objs = cap.stdoutLines.map((l) => JSON.parse(l) as { time: string, summary: string, ip: { src: string, encap: { vni: number }, inner: { ip: { src: string, dst: string } } } })
    assert.equal(objs.length, 2, cap.stdout)
    assert.match(objs[0]!.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/)
    assert.deepEqual(objs.map((o) => [o.ip.src, o.ip.encap.vni, o.ip.inner.ip.src, o.ip.inner.ip.dst]),
      [['198.18.0.1', 1, '10.244.1.5', '10.244.2.0'], ['198.18.0.2', 1, '10.244.2.0', '10.244.1.5']])
    assert.match(objs[0]!.summary, /^198\.18\.0\.1 > 198\.18\.0\.2 VXLAN vni 1 \| 10\.244\.1\.5 > 10\.244\.2\.0 ICMP echo request id \d+ seq 1 len 84$/)
    assert.match(cap.stderr, /weft capture: \d+ packets written to /)
    assert.match(cap.stderr, /2 packets captured, 2 more not matching --pod, written to /)

    const r = tcpdumpRead(file)
    assert.equal(r.linkType, 'EN10MB (Ethernet)')
    assert.equal(r.packets.length, 2)
    assert.match(r.packets[0]!.text, /^IP 198\.18\.0\.1\.\d+ > 198\.18\.0\.2\.8472: OTV, flags \[I\] \(0x08\), overlay 0, instance 1 \| IP 10\.244\.1\.5 > 10\.244\.2\.0: ICMP echo request/)
    assert.match(r.packets[1]!.text, /^IP 198\.18\.0\.2\.\d+ > 198\.18\.0\.1\.8472: OTV.* \| IP 10\.244\.2\.0 > 10\.244\.1\.5: ICMP echo reply/)
  })
})

/** A node one-liner that sends whole Ethernet frames on eth0 through libpcap (cap's pcap_sendpacket). */
function injectScript (frames: Buffer[]): string {
  return [
    `const { Cap } = require(${JSON.stringify(require.resolve('cap'))})`,
    'const c = new Cap()',
    "c.open('eth0', '', 1 << 20, Buffer.alloc(65536))",
    `for (const h of ${JSON.stringify(frames.map((f) => f.toString('hex')))}) c.send(Buffer.from(h, 'hex'))`,
    'c.close()'
  ].join('\n')
}

test('IP-in-IP, UDP-backend and broken VXLAN frames on the underlay; the filter drops the rest', { skip }, async (t) => {
  // Built here and handed over as hex: the injecting script needs only cap.
  const badVxlan = f.vxlanFrame(f.icmpPacket(f.POD1, f.POD2, 5, 1), 3)
  badVxlan[14 + 20 + 8] = 0 // VXLAN I flag cleared
  const frames = [
    f.ethernet(0x020000000002, 0x020000000001, f.udpDatagram(f.NODE1, f.NODE2, 5000, 9999, Buffer.alloc(10))), // not a tunnel
    f.ipipFrame(f.icmpPacket(f.POD1, f.POD2, 9, 1)),
    f.udpBackendFrame(f.tcpSegment(f.POD1, f.POD2, { sport: 40000, dport: 5201, seq: 123, ack: 0, flags: 2, window: 64240 })),
    badVxlan
  ]
  await withTopology(t, { hosts: 1, label: 'capture-inject' }, async (topo) => {
    const h1 = topo.hosts[0] as Host
    const cap = await startCapture(topo, h1, '--iface', 'eth0', '--count', '3')
    await topo.exec(h1, [process.execPath, '-e', injectScript(frames)])
    await finished(cap)
    const lines = cap.stdoutLines.map((l) => l.replace(new RegExp(`^${TIME} `), ''))
    assert.deepEqual(lines, [
      '198.18.0.1 > 198.18.0.2 IPIP | 10.244.1.2 > 10.244.2.3 ICMP echo request id 9 seq 1 len 84',
      '198.18.0.1 > 198.18.0.2 FLANNEL-UDP | 10.244.1.2:40000 > 10.244.2.3:5201 TCP [S] seq 123 len 0',
      '198.18.0.1 > 198.18.0.2 VXLAN vni 3 malformed vxlan: bad_vxlan_flags (106 bytes)'
    ])
  })
})

/** A node one-liner on h1 that sends each payload to 198.18.0.2's `port`, one after another, from UDP port 51820 (or from an ephemeral one when `fromWg` is false). */
function udpSendScript (datagrams: Array<[Buffer, number, boolean?]>): string {
  return [
    "const dgram = require('node:dgram')",
    "const wg = dgram.createSocket('udp4')",
    "const other = dgram.createSocket('udp4')",
    `const all = ${JSON.stringify(datagrams.map(([b, port, fromWg]) => [b.toString('hex'), port, fromWg !== false]))}`,
    "wg.bind(51820, '198.18.0.1', async () => {",
    "  for (const [h, port, fromWg] of all) await new Promise((resolve, reject) => (fromWg ? wg : other).send(Buffer.from(h, 'hex'), port, '198.18.0.2', (e) => e ? reject(e) : resolve()))",
    '  wg.close()',
    '  other.close()',
    '})'
  ].join('\n')
}

test('WireGuard messages sent over UDP between two hosts: each kind decoded; --backend wireguard, --port and --json', { skip }, async (t) => {
  // Hand-built messages (no WireGuard on either host): only their headers are read.
  const shortTransport = f.wgTransport(9, 1n, 0).subarray(0, 20)
  const datagrams: Array<[Buffer, number, boolean?]> = [
    [Buffer.alloc(10), 9999, false], // neither port WireGuard's: the filter drops it
    [f.wgInitiation(0x1a2b3c4d), 51820],
    [f.wgResponse(0x00c0ffee, 0x1a2b3c4d), 51820],
    [f.wgCookieReply(0x1a2b3c4d), 51820],
    [f.wgTransport(0x00c0ffee, 17n, 1420), 51820], // a full-size packet on a 1420 MTU: unpadded
    [f.wgTransport(0x00c0ffee, 18n, 0), 51820],
    [shortTransport, 51820]
  ]
  await withTopology(t, { hosts: 2, label: 'capture-wg' }, async (topo) => {
    const [h1, h2] = topo.hosts as [Host, Host]
    const cap = await startCapture(topo, h1, '--iface', 'eth0', '--count', '6')
    await topo.exec(h1, [process.execPath, '-e', udpSendScript(datagrams)])
    await finished(cap)
    const lines = cap.stdoutLines.map((l) => l.replace(new RegExp(`^${TIME} `), ''))
    const ep = '198.18.0.1:51820 > 198.18.0.2:51820 WireGuard'
    assert.deepEqual(lines, [
      `${ep} initiation sender 0x1a2b3c4d len 148`,
      `${ep} response sender 0x00c0ffee receiver 0x1a2b3c4d len 92`,
      `${ep} cookie reply receiver 0x1a2b3c4d len 64`,
      `${ep} transport receiver 0x00c0ffee counter 17 len 1452`,
      `${ep} keepalive receiver 0x00c0ffee counter 18 len 32`,
      `${ep} transport malformed wireguard: bad_wireguard_length (20 bytes)`
    ])

    // Another port, on the receiving side, as JSON.
    const json = await startCapture(topo, h2, '--iface', 'eth0', '--backend', 'wireguard', '--port', '51999', '--node', '198.18.0.1', '--json', '--count', '1')
    assert.match(json.stderr, /filter "udp port 51999 and host 198\.18\.0\.1"/)
    await topo.exec(h1, [process.execPath, '-e', udpSendScript([[f.wgTransport(0x1a2b3c4d, 5n, 0), 51820], [f.wgTransport(0x1a2b3c4d, 2n ** 60n, 64), 51999]])])
    await finished(json)
    assert.equal(json.stdoutLines.length, 1, json.stdout)
    const o = JSON.parse(json.stdoutLines[0] as string) as { ip: { src: string, dst: string, encap: unknown }, summary: string }
    assert.deepEqual([o.ip.src, o.ip.dst], ['198.18.0.1', '198.18.0.2'])
    assert.deepEqual(o.ip.encap, { type: 'wireguard', srcPort: 51820, dstPort: 51999, message: 'transport', receiverIndex: 0x1a2b3c4d, counter: '1152921504606846976', length: 96 })
    assert.equal(o.summary, '198.18.0.1:51820 > 198.18.0.2:51999 WireGuard transport receiver 0x1a2b3c4d counter 1152921504606846976 len 96')
  })
})

test('on a TUN VTEP (weft.1): link type RAW, the pods\' packets themselves', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'capture-tun' }, async (topo) => {
    const h1 = topo.hosts[0] as Host
    // Hold weft.1 open (a TUN without a reader has no carrier and passes nothing).
    const holder = topo.spawn(h1, [process.execPath, '-e',
      `require(${JSON.stringify(path.join(DIST, 'src', 'native'))}).openTun({ name: 'weft.1' }); console.log('open'); setInterval(() => {}, 1000)`])
    await holder.waitForLine(/^open$/, 10_000, 'stdout')
    await topo.exec(h1, ['ip', 'addr', 'add', '10.244.1.0/32', 'dev', 'weft.1'])
    await topo.exec(h1, ['ip', 'route', 'add', '10.244.2.0/24', 'dev', 'weft.1'])

    const cap = await startCapture(topo, h1, '--iface', 'weft.1', '--pod', '10.244.2.0/24', '--count', '2')
    assert.match(cap.stderr, /listening on weft\.1 \(vtep, link type RAW\), filter "ip and net 10\.244\.2\.0\/24"/)
    // Nobody answers on the other side of the TUN: ping fails, the requests are what we want.
    await topo.exec(h1, ['ping', '-c', '2', '-i', '0.2', '-W', '1', '10.244.2.0'], { allowFail: true })
    await finished(cap)
    assert.equal(cap.stdoutLines.length, 2, cap.stdout)
    cap.stdoutLines.forEach((l, i) => {
      assert.match(l, new RegExp(`^${TIME} 10\\.244\\.1\\.0 > 10\\.244\\.2\\.0 ICMP echo request id \\d+ seq ${i + 1} len 84$`))
    })

    const bad = await topo.exec(h1, [process.execPath, BIN, 'capture', '--iface', 'weft.1', '--node', '198.18.0.2', '--count', '1'], { allowFail: true })
    assert.equal(bad.code, 1)
    assert.match(bad.stderr, /--node matches outer .* use --pod.*\[EFLAG\]/)
  })
})

test('a capture ends on --seconds and on SIGTERM, cleanly; bad input is a one-line error', { skip }, async (t) => {
  await withTopology(t, { hosts: 1, label: 'capture-stop' }, async (topo) => {
    const h1 = topo.hosts[0] as Host
    const t0 = Date.now()
    const timed = await startCapture(topo, h1, '--iface', 'eth0', '--seconds', '1')
    await finished(timed, 10_000)
    assert.ok(Date.now() - t0 < 9000)
    assert.match(timed.stderr, /weft capture: 0 packets captured/)

    // Without --iface: the default route's device.
    await topo.exec(h1, ['ip', 'route', 'add', 'default', 'via', '198.18.0.254', 'dev', 'eth0'])
    const sig = await startCapture(topo, h1, '--seconds', '60')
    assert.match(sig.stderr, /listening on eth0 /)
    sig.kill('SIGTERM')
    await finished(sig, 10_000)
    assert.match(sig.stderr, /weft capture: 0 packets captured/)

    const cases: Array<[string[], RegExp]> = [
      [['--iface', 'nosuch0'], /no network interface nosuch0 here \[EIFACE\]/],
      [['--iface', 'eth0', '--backend', 'gre'], /--backend must be one of vxlan, ipip, udp, wireguard, auto.*\[EFLAG\]/],
      [['--iface', 'eth0', '--backend', 'wireguard', '--pod', '10.244.1.2'], /--pod matches inner .* WireGuard encrypts them: use --node.*\[EFLAG\]/],
      [['--iface', 'eth0', '--count', '0'], /--count must be an integer.*\[EFLAG\]/],
      [['--iface', 'eth0', '--pod', 'pod-a'], /--pod "pod-a" is neither an IP address nor a CIDR \[EFLAG\]/],
      [['--iface', 'eth0', '--backend', 'ipip', '--port', '9'], /--port does not apply.*\[EFLAG\]/]
    ]
    for (const [args, re] of cases) {
      const r = await topo.exec(h1, [process.execPath, BIN, 'capture', ...args], { allowFail: true })
      assert.equal(r.code, 1, args.join(' '))
      assert.match(r.stderr, re)
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/)
    }
  })
})

test('without the privilege to capture: a one-line EPERM error, not a crash', { skip: registrationSkipReason() ?? (isRoot ? toolSkipReason('setpriv') : undefined) }, () => {
  // Opening fails before anything is captured, so the root namespace's lo is safe to name.
  const argv = [process.execPath, BIN, 'capture', '--iface', 'lo', '--count', '1']
  const cmd = isRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', ...argv] : argv
  const r = spawnSync(cmd[0] as string, cmd.slice(1), { encoding: 'utf8', timeout: 20_000 })
  assert.equal(r.status, 1, `exit ${String(r.status)}/${String(r.signal)}: ${r.stderr}`)
  assert.match(r.stderr, /^weft: cannot capture on lo: .*\(needs root or CAP_NET_RAW\) \[EPERM\]\n$/)
})
