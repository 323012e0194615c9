// A host-gw node without a store, for the IPv6 host-gw tests: run inside a
// host's namespace, it starts weft's host-gw backend (rules, forwarding,
// routes) on a lease given on the command line and takes peer events as
// JSON lines on stdin, answering on stdout:
//   {"op":"peers","id":N,"events":[{"type":"added"|"removed","lease":{...}}]}  -> {"id":N,"ok":"peers"}
//   {"op":"status","id":N}  -> {"id":N,"status": <NetworkStatus>}
//   {"op":"close","id":N}   -> {"id":N,"ok":"closed"}, then exits
// A lease is {"subnet": "10.244.1.0/24" (omit for IPv6-only), "subnet6":
// "fc00:0:0:1::/64", "publicIP": "198.18.0.1", "publicIPv6": "2001:2::1"}.
// Arguments: --config <net-conf JSON> --lease <lease JSON> --public-ip <v4>
// --public-ipv6 <v6>. Logs (pino JSON) go to stderr.
import readline from 'node:readline'
import { HostGwBackend } from '../../src/backend/host-gw/backend'
import { createLogger } from '../../src/log'
import { parseCidr } from '../../src/packet/net'
import { parseCidr6, parseIp6 } from '../../src/packet/net6'
import { parseIp4 } from '../../src/packet/ip'
import { parseNetworkConfig } from '../../src/subnet/config'
import type { Lease } from '../../src/subnet/lease'
import type { PeerEvent } from '../../src/lease/watcher'

interface LeaseJson { subnet?: string, subnet6?: string, publicIP?: string, publicIPv6?: string | null, backendType?: string }

function arg (name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

function lease (j: LeaseJson, revision: number): Lease {
  return {
    subnet: j.subnet !== undefined ? parseCidr(j.subnet) : { ip: 0, prefixLen: 0 },
    ...(j.subnet6 !== undefined ? { subnet6: parseCidr6(j.subnet6) } : {}),
    attrs: { publicIP: j.publicIP !== undefined ? parseIp4(j.publicIP) : 0, publicIPv6: j.publicIPv6 ?? null, backendType: j.backendType ?? 'host-gw' },
    expiration: null,
    revision
  }
}

async function main (): Promise<void> {
  const log = createLogger({ name: 'host-gw6-node' })
  const config = parseNetworkConfig(arg('config') ?? '')
  const publicIP = arg('public-ip')
  const publicIPv6 = arg('public-ipv6')
  const ip = publicIP !== undefined ? parseIp4(publicIP) : 0
  const ip6 = publicIPv6 !== undefined ? parseIp6(publicIPv6) : undefined
  const underlay = { name: 'eth0', ip, publicIP: ip, mtu: 1500, ...(ip6 !== undefined ? { ip6, publicIPv6: ip6 } : {}) }
  const backend = new HostGwBackend({ config, underlay, ...(ip6 !== undefined ? { publicIPv6: ip6 } : {}), stateDir: '/tmp', ipMasq: false, log }, { type: 'host-gw' })
  const own = lease(JSON.parse(arg('lease') ?? '{}') as LeaseJson, 0)
  const network = await backend.start({ ...own, attrs: backend.leaseAttrs() })
  const out = (o: unknown): void => { process.stdout.write(`${JSON.stringify(o)}\n`) }
  out({ ok: 'started', attrs: backend.leaseAttrs() })
  let revision = 0
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line) as { op: string, id?: number, events?: Array<{ type: 'added' | 'removed', lease: LeaseJson }> }
    if (cmd.op === 'peers') {
      network.handlePeers((cmd.events ?? []).map((e): PeerEvent => ({ type: e.type, lease: lease(e.lease, ++revision) })))
      out({ id: cmd.id, ok: 'peers' })
    } else if (cmd.op === 'status') {
      out({ id: cmd.id, status: network.status() })
    } else if (cmd.op === 'close') {
      await network.close()
      out({ id: cmd.id, ok: 'closed' })
      process.exit(0)
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
