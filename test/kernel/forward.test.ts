// Proof that the forward rules do their job, not just that they are listed:
// h2 routes between h1 and h3 over veths of their own; with its FORWARD
// policy at DROP (as Docker sets it) pod-network traffic dies in h2 until
// TrafficRules.apply() there, and dies again after remove().
//
//   h1 [w12 10.244.1.1/24] ── [w21 10.244.1.254/24] h2 [w23 10.244.3.254/24] ── [w32 10.244.3.1/24] h3
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { withTopology, type Host, type Topology } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { TrafficRules } from '../../src/kernel/iptables'
import { addAddress, addRoute, setLinkUp } from '../../src/kernel/link'
import { enableForwarding } from '../../src/kernel/sysctl'

const skip = netnsSkipReason() ?? toolSkipReason('iptables', 'iptables-restore', 'ping')

/** A veth from a to b (created inside a's namespace, peer moved straight into b's). */
async function wire (topo: Topology, a: Host, aDev: string, aCidr: string, b: Host, bDev: string, bCidr: string): Promise<void> {
  await topo.exec(a, ['ip', 'link', 'add', aDev, 'type', 'veth', 'peer', 'name', bDev, 'netns', b.ns])
  await addAddress(aDev, aCidr, { netns: a.ns })
  await addAddress(bDev, bCidr, { netns: b.ns })
  await setLinkUp(aDev, { netns: a.ns })
  await setLinkUp(bDev, { netns: b.ns })
}

/** True if h1 gets an answer from h3 (up to 3 probes, about 2 s at worst). */
async function reaches (topo: Topology, from: Host, ip: string): Promise<boolean> {
  const r = await topo.exec(from, ['ping', '-n', '-c', '3', '-i', '0.2', '-w', '2', '-W', '1', ip], { allowFail: true, timeoutMs: 5000 })
  return r.code === 0
}

test('forward rules let pod traffic through a FORWARD DROP router', { skip }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'ipt-forward' }, async (topo) => {
    const [h1, h2, h3] = [topo.hosts[0]!, topo.hosts[1]!, topo.hosts[2]!]
    await wire(topo, h1, 'w12', '10.244.1.1/24', h2, 'w21', '10.244.1.254/24')
    await wire(topo, h3, 'w32', '10.244.3.1/24', h2, 'w23', '10.244.3.254/24')
    await addRoute({ dst: '10.244.0.0/16', via: '10.244.1.254', dev: 'w12' }, { netns: h1.ns })
    await addRoute({ dst: '10.244.0.0/16', via: '10.244.3.254', dev: 'w32' }, { netns: h3.ns })
    await enableForwarding({ netns: h2.ns })

    // the wiring works while FORWARD accepts...
    assert.equal(await reaches(topo, h1, '10.244.3.1'), true, 'h1 -> h3 with FORWARD ACCEPT')
    // ...and a DROP policy stops it
    await topo.exec(h2, ['iptables', '-w', '5', '-P', 'FORWARD', 'DROP'])
    assert.equal(await reaches(topo, h1, '10.244.3.1'), false, 'h1 -> h3 with FORWARD DROP')

    const tr = new TrafficRules({ network: '10.244.0.0/16', podSubnet: '10.244.1.0/24', ipMasq: false, forwardRules: true, netns: h2.ns })
    await tr.apply()
    assert.equal(await reaches(topo, h1, '10.244.3.1'), true, 'h1 -> h3 after apply()')
    assert.equal(await reaches(topo, h3, '10.244.1.1'), true, 'h3 -> h1 after apply()')

    await tr.remove()
    assert.equal(await reaches(topo, h1, '10.244.3.1'), false, 'h1 -> h3 after remove()')
  })
})

test('forward rules accept only the flannel network', { skip }, async (t) => {
  await withTopology(t, { hosts: 3, label: 'ipt-forward-scope' }, async (topo) => {
    const [h1, h2, h3] = [topo.hosts[0]!, topo.hosts[1]!, topo.hosts[2]!]
    // the same shape, on addresses outside Network
    await wire(topo, h1, 'w12', '192.168.1.1/24', h2, 'w21', '192.168.1.254/24')
    await wire(topo, h3, 'w32', '192.168.3.1/24', h2, 'w23', '192.168.3.254/24')
    await addRoute({ dst: '192.168.0.0/16', via: '192.168.1.254', dev: 'w12' }, { netns: h1.ns })
    await addRoute({ dst: '192.168.0.0/16', via: '192.168.3.254', dev: 'w32' }, { netns: h3.ns })
    await enableForwarding({ netns: h2.ns })
    await topo.exec(h2, ['iptables', '-w', '5', '-P', 'FORWARD', 'DROP'])
    await new TrafficRules({ network: '10.244.0.0/16', podSubnet: '10.244.1.0/24', ipMasq: false, forwardRules: true, netns: h2.ns }).apply()
    assert.equal(await reaches(topo, h1, '192.168.3.1'), false)
  })
})
