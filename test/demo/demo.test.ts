// `weft demo`, as a newcomer runs it: it builds, shows, and leaves nothing
// behind, also when interrupted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'weft')
const skip = netnsSkipReason() ?? toolSkipReason('iperf3') ?? (fs.existsSync('/usr/lib/cni/bridge') ? undefined : '/usr/lib/cni/bridge missing (containernetworking-plugins)')

const demoNamespaces = (pid: number): string[] => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(`weft-demo-${pid.toString(36)}-`))

/** Daemons a demo started (their arguments name its state dir) still alive. */
const demoProcesses = (): string[] => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => /weft-demo-/.test(l) && !/\bps\b/.test(l))

function run (args: string[], onLine?: (l: string, kill: () => void) => void): Promise<{ code: number | null, out: string, pid: number }> {
  return new Promise((resolve) => {
    const child = spawn(BIN, ['demo', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000) // a bound: a demo that hangs is killed
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      for (const l of d.toString().split('\n')) onLine?.(l, () => child.kill('SIGINT'))
    })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out, pid: child.pid ?? 0 }) })
  })
}

test('the demo with --ipv6 runs a dual-stack cluster: each pod has both families, every pod reaches every pod over each, iperf3 runs over each, and it cleans up', { skip, timeout: 150_000 }, async () => {
  const r = await run(['--ipv6', '--nodes', '2', '--pods', '2', '--seconds', '1'])
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /fc00::\/48, dual stack/)
  assert.match(r.out, /n2p2\s+n2 \(198\.18\.0\.2\)\s+10\.244\.\d+\.3\s+fc00:0:0:[0-9a-f]+::3/)
  assert.match(r.out, /every pod reaches every pod over IPv4/)
  assert.match(r.out, /every pod reaches every pod over IPv6/)
  assert.match(r.out, /n2p1 -> n1p1: [\d.]+ Gbit\/s over 1 s \(TCP over IPv6/)
  assert.deepEqual(demoNamespaces(r.pid), [])
  assert.deepEqual(demoProcesses(), [], 'no daemon left running')
})

test('the demo refuses --ipv6 with a backend that has no IPv6', { skip }, async () => {
  const r = await run(['--ipv6', '--backend', 'ipip'])
  assert.equal(r.code, 1, r.out)
  assert.match(r.out, /--ipv6 runs with the vxlan backend only \(weft's ipip backend is IPv4-only, as flannel's is\)/)
})

test('the demo attaches pods through the CNI plugin, every pod reaches every pod, iperf3 runs, and it cleans up', { skip, timeout: 150_000 }, async () => {
  const r = await run(['--nodes', '3', '--pods', '2', '--seconds', '2'])
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /\[4\/6\] attaching 2 pods per node through weft's CNI plugin/)
  assert.match(r.out, /n3p2\s+n3 \(198\.18\.0\.3\)\s+10\.244\.\d+\.3/)
  assert.match(r.out, /every pod reaches every pod/)
  assert.match(r.out, /n2p1 -> n1p1: [\d.]+ Gbit\/s over 2 s/)
  assert.deepEqual(demoNamespaces(r.pid), [])
  assert.deepEqual(demoProcesses(), [], 'no daemon left running')
})

test('Ctrl-C in the middle of the demo tears everything down', { skip, timeout: 150_000 }, async () => {
  const r = await run(['--nodes', '2', '--pods', '1', '--seconds', '20'], (l, kill) => { if (/^\s+1 s /.test(l)) kill() })
  assert.match(r.out, /interrupted: tearing down/)
  assert.deepEqual(demoNamespaces(r.pid), [])
  assert.deepEqual(demoProcesses(), [])
})

test('--backend wireguard: the same demo, encrypted: every pod reaches every pod, node 1 has a session with each peer, iperf3 runs, and it cleans up', { skip, timeout: 150_000 }, async () => {
  const r = await run(['--backend', 'wireguard', '--nodes', '3', '--pods', '1', '--seconds', '2'])
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, /\[2\/6\] storing the network config \(10\.244\.0\.0\/16, WireGuard\) in the embedded store/)
  assert.match(r.out, /n3p1\s+n3 \(198\.18\.0\.3\)\s+10\.244\.\d+\.2/)
  assert.match(r.out, /every pod reaches every pod/)
  for (const n of [2, 3]) assert.match(r.out, new RegExp(`^ {2}n1 -> n${n} \\(10\\.244\\.\\d+\\.0/24\\) at 198\\.18\\.0\\.${n}:51820: session up, handshake \\d+ s ago, key [A-Za-z0-9+/]{8}\\.\\.\\.$`, 'm'))
  assert.match(r.out, /n2p1 -> n1p1: [\d.]+ Gbit\/s over 2 s \(TCP, one stream, encrypted by weft's userspace WireGuard\)/)
  assert.deepEqual(demoNamespaces(r.pid), [])
  assert.deepEqual(demoProcesses(), [], 'no daemon left running')
})

test('a backend the demo does not run is refused before anything is built', { timeout: 30_000 }, async () => {
  const r = await run(['--backend', 'host-gw'])
  assert.equal(r.code, 1)
  assert.match(r.out, /--backend "host-gw": the demo runs vxlan, wireguard, udp, ipip \[EFLAG\]/)
  assert.doesNotMatch(r.out, /\[1\/6\]/)
})
