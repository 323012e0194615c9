// Pods in both families through weft's CNI plugin and the real bridge and
// host-local plugins: with FLANNEL_IPV6_SUBNET in subnet.env a pod gets an
// IPv4 and an IPv6 address and a route to each network via the bridge; an
// IPv6-only subnet.env gives IPv6 alone. DEL frees both addresses.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { withTopology, waitFor } from '../../lab/netns'
import type { Topology } from '../../lab/netns'
import { netnsSkipReason } from '../../lab/skip'
import { cniPods, cniSkipReason, CNI_PATH } from '../../lab/cni'
import type { Pod } from '../../lab/pods'

const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'weft')
const skip = netnsSkipReason() ?? cniSkipReason()

function tmp (t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-cni6-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** ping (either family) until it answers: a new IPv6 address is usable once duplicate address detection is done. */
async function reaches (topo: Topology, from: string, ip: string): Promise<void> {
  await waitFor(async () => (await topo.exec(from, ['ping', '-n', '-c', '1', '-W', '1', ip], { allowFail: true })).code === 0, { what: `${from} reaches ${ip}`, timeoutMs: 10_000, intervalMs: 200 })
}

async function routes (topo: Topology, p: Pod, family: '-4' | '-6'): Promise<string> {
  return (await topo.exec(p.ns, ['ip', family, 'route', 'show'])).stdout
}

test('dual stack: each pod gets an IPv4 and an IPv6 address, routes to both networks via the bridge, and reaches the other pod and the gateway in both families; DEL frees both', { skip, timeout: 90_000 }, async (t) => {
  const dir = tmp(t)
  fs.writeFileSync(`${dir}/subnet.env`, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:7::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n')
  await withTopology(t, { hosts: 1, label: 'cni-dual', ipv6: true }, async (topo) => {
    const h = topo.hosts[0]
    const pods = await cniPods(topo, h, { subnetFile: `${dir}/subnet.env`, dataDir: dir, count: 2 })
    for (const p of pods) {
      assert.match(p.ip, /^10\.244\.7\.\d+$/)
      assert.match(p.ip6 ?? '', /^fc00:0:0:7::[0-9a-f]+$/, `${p.name} has an IPv6 address`)
      assert.match(await routes(topo, p, '-4'), /10\.244\.0\.0\/16 via 10\.244\.7\.1 dev eth0/)
      assert.match(await routes(topo, p, '-6'), /fc00::\/48 via fc00:0:0:7::1 dev eth0/)
    }
    assert.match((await topo.exec(h, ['ip', '-6', 'addr', 'show', 'cni0'])).stdout, /fc00:0:0:7::1\/64/)
    await reaches(topo, pods[0].ns, pods[1].ip)
    await reaches(topo, pods[0].ns, pods[1].ip6 as string)
    await reaches(topo, pods[1].ns, 'fc00:0:0:7::1')

    // the saved delegate config is flannel's, both ranges
    const saved = JSON.parse(fs.readFileSync(`${dir}/cni/cbr0:${pods[0].name}:eth0`, 'utf8')) as { ipam: { ranges: unknown, routes: unknown } }
    assert.deepEqual(saved.ipam.ranges, [[{ subnet: '10.244.7.0/24' }], [{ subnet: 'fc00:0:0:7::/64' }]])
    assert.deepEqual(saved.ipam.routes, [{ dst: '10.244.0.0/16' }, { dst: 'fc00::/48' }])

    for (const p of pods) {
      const vars = { CNI_COMMAND: 'DEL', CNI_PATH, CNI_IFNAME: 'eth0', CNI_CONTAINERID: p.name, CNI_NETNS: `/var/run/netns/${p.ns}` }
      const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'cbr0', type: 'weft', subnetFile: `${dir}/subnet.env`, dataDir: `${dir}/cni`, ipam: { dataDir: `${dir}/ipam` } })
      const r = await topo.exec(h, ['env', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), BIN], { input: conf, allowFail: true })
      assert.equal(r.code, 0, r.stdout)
    }
    const left = fs.readdirSync(`${dir}/ipam`, { recursive: true }).map(String).map((f) => path.basename(f)).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f) || f.includes(':'))
    assert.deepEqual(left, [], 'both addresses went back to host-local')
  })
})

test('IPv6 only: the pod gets an IPv6 address alone and a route to the IPv6 network', { skip, timeout: 60_000 }, async (t) => {
  const dir = tmp(t)
  fs.writeFileSync(`${dir}/subnet.env`, 'FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00:0:0:9::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n')
  await withTopology(t, { hosts: 1, label: 'cni-v6only', ipv6: true }, async (topo) => {
    const pods = await cniPods(topo, topo.hosts[0], { subnetFile: `${dir}/subnet.env`, dataDir: dir, count: 2 })
    for (const p of pods) {
      assert.match(p.ip, /^fc00:0:0:9::[0-9a-f]+$/)
      assert.equal(p.ip6, p.ip)
      assert.doesNotMatch((await topo.exec(p.ns, ['ip', '-4', 'addr', 'show', 'eth0'])).stdout, /inet /, 'no IPv4 address')
      assert.match(await routes(topo, p, '-6'), /fc00::\/48 via fc00:0:0:9::1 dev eth0/)
    }
    await reaches(topo, pods[0].ns, pods[1].ip)
  })
})
