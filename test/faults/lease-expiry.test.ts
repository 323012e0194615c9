// Issue 8, item 4: a node whose lease expires while it is down is removed
// from the others; when it comes back it gets its subnet again if it is
// still free, or a new one, with a log line naming both, if another node
// has taken it meanwhile; subnet.env follows. Leases last WEFT_LEASE_TTL=8 s
// here instead of 24 h (the only change from a production run); the nodes
// that stay up renew theirs every 4 s and keep them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { formatCidr, parseCidr } from '../../src/packet/net'
import { ip4ToString } from '../../src/packet/ip'
import { writeSubnetEnv } from '../../src/subnet/env'
import { withTopology, waitFor } from '../../lab/netns'
import { netnsSkipReason, toolSkipReason } from '../../lab/skip'
import { ping } from '../../lab/traffic'
import type { Pod } from '../../lab/pods'
import { cluster, startDaemon } from '../../lab/daemons'
import type { Daemon } from '../../lab/daemons'
import { podsFor } from '../backend/mesh'
import { count, logsOf, peerSubnets } from './helpers'

const skip = netnsSkipReason() ?? toolSkipReason('ping')
const CONFIG = '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'
const TTL_S = 8

test('a node whose lease expires while it is down is dropped by the others; back, it gets its subnet again if free, else a new one with a log line naming both, and subnet.env follows', { skip, timeout: 90_000 }, async (t) => {
  await withTopology(t, { hosts: 4, label: 'lease-expiry' }, async (topo) => {
    const c = cluster(t, topo, CONFIG)
    const env = { ...process.env, WEFT_LEASE_TTL: String(TTL_S) }
    const node = async (i: number): Promise<Daemon> => await startDaemon(topo, topo.hosts[i], { dir: c.dir, store: ['--store', `sqlite:${c.dir}/store.db`], env })
    const leases = (): Array<{ subnet: string, publicIP: string, expiration: string | null }> => JSON.parse(c.weft('leases', '--json')) as never
    const reachable = async (from: Pod, ip: string, since: number): Promise<number> => {
      await waitFor(async () => (await ping(topo, from, ip, { count: 1, waitS: 0.5 })).received === 1, { what: `${ip} answers`, timeoutMs: 10_000, intervalMs: 20 })
      return Date.now() - since
    }
    /** waits until both a and b have dropped `subnet`; ms since the lease expired, for each */
    const dropped = async (subnet: string, expiredAt: number): Promise<number[]> => await Promise.all([a, b].map(async (d) => {
      await waitFor(async () => !(await peerSubnets(d)).includes(subnet), { what: `${d.host.name} drops ${subnet}`, timeoutMs: (TTL_S + 5) * 1000, intervalMs: 50 })
      return Date.now() - expiredAt
    }))

    const a = await node(0)
    const b = await node(1)
    let gone = await node(2)
    assert.equal(count(a, (l) => /WEFT_LEASE_TTL is set: leases last 8 s/.test(l.msg) && l.level === 40), 1, 'the short TTL is announced')
    const subnet = formatCidr(gone.env().subnet)
    await waitFor(async () => (await Promise.all([a, b, gone].map(peerSubnets))).every((p) => p.length === 2), { what: 'a full mesh', timeoutMs: 5000 })
    const [pa] = await podsFor(topo, a, 1)
    const [pg] = await podsFor(topo, gone, 1)
    await reachable(pa, pg.ip, Date.now())
    await waitFor(() => count(a, (l) => l.msg === 'renewed the lease') >= 1, { what: 'a renewal', timeoutMs: TTL_S * 1000 })

    // down (SIGKILL: no chance to say goodbye); its lease runs out
    gone.child.kill('SIGKILL')
    await gone.child.exited
    const killedAt = Date.now()
    const expiry = Date.parse(leases().find((l) => l.subnet === subnet)?.expiration ?? '')
    assert.ok(expiry > killedAt && expiry <= killedAt + TTL_S * 1000, 'the lease outlives the node by at most its TTL')
    const late = await dropped(subnet, expiry)
    t.diagnostic(`killed node dropped from both peers' tables ${late.join(' and ')} ms after its lease expired (${expiry - killedAt} ms after the kill)`)
    for (const ms of late) assert.ok(ms >= -50 && ms < 2000, `dropped ${ms} ms after the expiry: not before it, and promptly`)
    for (const d of [a, b]) assert.equal(count(d, (l) => l.msg === 'peer removed from the FDB' && l.subnet === subnet), 1)
    assert.deepEqual(leases().map((l) => l.publicIP).sort(), ['198.18.0.1', '198.18.0.2'], 'the nodes that stayed up kept their leases')

    // back while its subnet is free: the same one, from subnet.env
    let back = Date.now()
    gone = await node(2)
    assert.equal(formatCidr(gone.env().subnet), subnet)
    assert.equal(count(gone, (l) => l.msg === 'leased the subnet from the previous subnet.env' && l.subnet === subnet), 1)
    t.diagnostic(`back with the same subnet: its pod answers a pod on another node ${await reachable(pa, pg.ip, back)} ms after the restart`)
    for (const d of [a, b]) await waitFor(async () => (await peerSubnets(d)).includes(subnet), { what: `${d.host.name} learns it again`, timeoutMs: 3000 })

    // down again, and this time another node comes and asks for that subnet
    // (its own previous subnet.env names it) once the lease has run out
    gone.child.kill('SIGKILL')
    await gone.child.exited
    await dropped(subnet, Date.parse(leases().find((l) => l.subnet === subnet)?.expiration ?? ''))
    writeSubnetEnv(`${c.dir}/h4/subnet.env`, { network: parseCidr('10.244.0.0/16'), subnet: parseCidr(subnet), mtu: 1450, ipMasq: false })
    const taker = await node(3)
    assert.equal(formatCidr(taker.env().subnet), subnet, 'the other node took the free subnet')

    back = Date.now()
    gone = await node(2)
    const fresh = formatCidr(gone.env().subnet)
    assert.notEqual(fresh, subnet)
    const said = logsOf(gone.child).filter((l) => l.previous === subnet && l.subnet === fresh)
    assert.equal(said.length, 1, 'one log line names the old and the new subnet')
    assert.equal(said[0].level, 40)
    assert.equal(said[0].heldBy, '198.18.0.4')
    assert.equal(said[0].msg, `our previous subnet ${subnet} is held by another node; leased ${fresh} instead`)
    assert.match(readFileSync(`${gone.stateDir}/subnet.env`, 'utf8'), new RegExp(`^FLANNEL_SUBNET=${ip4ToString(gone.env().subnet.ip + 1).replace(/\./g, '\\.')}/24$`, 'm'), 'subnet.env names the new subnet')
    t.diagnostic(`back to find its subnet taken: leased ${fresh} instead; reachable ${await reachable(pa, ip4ToString(gone.env().subnet.ip), back)} ms after the restart`)
    for (const d of [a, b]) {
      await waitFor(async () => {
        const peers = (await d.status()).peers
        return peers.some((p) => p.subnet === fresh && p.publicIP === '198.18.0.3') && peers.some((p) => p.subnet === subnet && p.publicIP === '198.18.0.4')
      }, { what: `${d.host.name} knows the new subnet of the returning node, and who holds its old one`, timeoutMs: 3000 })
    }
    const final = leases()
    assert.equal(final.length, 4)
    assert.deepEqual(final.map((l) => l.publicIP).sort(), ['198.18.0.1', '198.18.0.2', '198.18.0.3', '198.18.0.4'], 'one lease per node')
  })
})
