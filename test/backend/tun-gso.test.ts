// The TUN device keeps the kernel's gso_max_size (64 KB), and a TCP stream
// from a pod attached without weft's gso_max_size (as another CNI plugin
// attaches it) reaches the daemon as super-packets, not one segment per read.
// Why the device is not given the size weft's CNI plugin gives pods
// (src/backend/tun/device.ts): the kernel takes it on a TUN, but since
// Linux 6.13 it also cuts up, before the device, every forwarded
// super-packet at least that size. The second half shows that on this
// kernel, as diagnostics only (an older kernel forwards them whole).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { withTopology } from '../../lab/netns'
import type { Topology } from '../../lab/netns'
import type { Endpoint } from '../../lab/traffic'
import { iperf, ping } from '../../lab/traffic'
import type { Daemon } from '../../lab/daemons'
import type { Pod } from '../../lab/pods'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { fittedGsoMaxSize } from '../../src/kernel/gso'
import { pair } from './mesh'

// this tests what weft's own pipeline reads from the TUN:
// its daemons carry every packet themselves, without the peer offload
// (src/backend/tun/peer-offload.ts)
process.env.WEFT_OFFLOAD = 'off'

const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const skip = netnsSkipReason() ?? toolSkipReason('iperf3')

type Counters = Record<'tun' | 'sock' | 'counters', Record<string, number>>

async function gsoOf (topo: Topology, d: Daemon, dev: string): Promise<number> {
  const [link] = JSON.parse((await topo.exec(d.host, ['ip', '-d', '-j', 'link', 'show', 'dev', dev])).stdout) as Array<{ gso_max_size?: number }>
  assert.equal(typeof link?.gso_max_size, 'number', 'iproute2 prints gso_max_size')
  return link.gso_max_size as number
}

/** A 2-second TCP stream from `from` to `to`, and what the sending daemon read from its TUN and sent meanwhile. */
async function stream (topo: Topology, sender: Daemon, from: Endpoint, to: Pod): Promise<{ gbps: number, reads: number, superPackets: number, segments: number }> {
  const counters = async (): Promise<Counters> => (await sender.status()).counters as unknown as Counters
  const c0 = await counters()
  const { gbps } = await iperf(topo, to, from, { serverIp: to.ip, seconds: 2, congestion: 'cubic' })
  const c1 = await counters()
  const d = (k: keyof Counters, n: string): number => (c1[k][n] ?? 0) - (c0[k][n] ?? 0)
  return { gbps, reads: d('tun', 'rxPackets'), superPackets: d('tun', 'rxSuperPackets'), segments: d('sock', 'txSegmented') }
}

test('the TUN keeps the kernel\'s gso_max_size, so a pod with the default 64 KB (another CNI\'s) reaches weft as super-packets', { skip, timeout: 120_000 }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'tun-gso', timeoutMs: 100_000 }, async (topo) => {
    const { a, b, pa, pb } = await pair(t, topo, CONFIG)
    const dev = String((await a.status()).device)
    assert.equal(await gsoOf(topo, a, dev), 65536)
    assert.equal(await gsoOf(topo, b, dev), 65536)
    // the lab's pods are attached as the bridge plugin attaches them: the kernel's size
    const [podLink] = JSON.parse((await topo.exec(pa.ns, ['ip', '-d', '-j', 'link', 'show', 'dev', 'eth0'])).stdout) as Array<{ gso_max_size: number }>
    assert.equal(podLink.gso_max_size, 65536)
    assert.equal((await ping(topo, pa, pb.ip, { count: 3, intervalS: 0.2 })).received, 3)

    const whole = await stream(topo, a, pa, pb)
    t.diagnostic(`TUN at 64 KB, pod at 64 KB: ${whole.gbps.toFixed(2)} Gbit/s, ${whole.reads} TUN reads, ${whole.superPackets} super-packets, ${(whole.segments / Math.max(1, whole.superPackets)).toFixed(1)} segments each`)
    assert.ok(whole.superPackets > 1000, 'the stream was read as super-packets')
    assert.ok(whole.superPackets * 2 > whole.reads, `most reads are super-packets (${whole.superPackets} of ${whole.reads})`)

    // the TUN lowered to the pods' size: the kernel takes it; what it does to the same pod's stream, and the node's own
    const fitted = fittedGsoMaxSize(Number((await a.status()).mtu)) as number
    await topo.exec(a.host, ['ip', 'link', 'set', 'dev', dev, 'gso_max_size', String(fitted)])
    assert.equal(await gsoOf(topo, a, dev), fitted, 'the kernel honours a TUN\'s gso_max_size')
    const cut = await stream(topo, a, pa, pb)
    t.diagnostic(`TUN at ${fitted}, pod at 64 KB: ${cut.gbps.toFixed(2)} Gbit/s, ${cut.reads} TUN reads, ${cut.superPackets} super-packets (the kernel ${cut.superPackets * 2 > cut.reads ? 'forwarded them whole' : 'cut them up before the TUN'})`)
    const node = await stream(topo, a, a.host, pb)
    t.diagnostic(`TUN at ${fitted}, the node's own TCP: ${node.gbps.toFixed(2)} Gbit/s, ${node.superPackets} super-packets, ${(node.segments / Math.max(1, node.superPackets)).toFixed(1)} segments each`)
    assert.ok(node.gbps > 0)
  })
})
