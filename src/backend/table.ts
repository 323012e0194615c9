// Every backend weft has, in one explicit table (flannel fills a global
// registry from init() side effects; a table shows what exists at a glance).
//
// Adding a backend (say wireguard) is one folder and one line here:
// 1. its config: a variant of BackendConfig, parsed and validated in
//    ../subnet/config.ts (flannel's net-conf keys, defaults, clear errors)
// 2. backend/<name>/backend.ts: a Backend (backend.ts) that knows its config,
//    what goes in its lease (leaseAttrs: BackendType and BackendData exactly
//    as flannel writes them) and the pods' MTU (mtu.ts), and start()s into a
//    Network
// 3. a TUN backend starts with startTun (tun/start.ts), giving its device
//    name, its underlay socket, its Encapsulation (backend/<name>/encap.ts,
//    the interface in ../dataplane/encap.ts) and its peer rules
//    (which leases it can use: otherBackend in backend.ts, and what the
//    table needs from each); the peer table, pipeline, lease events,
//    counters, status and clean-up are then the shared ones. A backend
//    without a TUN (host-gw) implements Network itself (host-gw/network.ts)
// 4. its line in BACKENDS below, and a test in the shape of
//    test/backend/mesh.ts (every backend passes the same end-to-end scenario)
// What only one backend needs (vxlan's VTEP MAC, its --workers threads)
// stays in its folder.
import { WeftError } from '../errors'
import type { BackendConfig } from '../subnet/config'
import type { Backend, BackendContext } from './backend'
import { VxlanBackend } from './vxlan/backend'
import { UdpBackend } from './udp/backend'
import { IpipBackend } from './ipip/backend'
import { HostGwBackend } from './host-gw/backend'
import { WireguardBackend } from './wireguard/backend'

type Factory<T extends BackendConfig['type']> = (ctx: BackendContext, cfg: Extract<BackendConfig, { type: T }>) => Backend

const BACKENDS: { [T in BackendConfig['type']]?: Factory<T> } = {
  vxlan: (ctx, cfg) => new VxlanBackend(ctx, cfg),
  udp: (ctx, cfg) => new UdpBackend(ctx, cfg),
  ipip: (ctx, cfg) => new IpipBackend(ctx, cfg),
  'host-gw': (ctx, cfg) => new HostGwBackend(ctx, cfg),
  wireguard: (ctx, cfg) => new WireguardBackend(ctx, cfg)
}

export function createBackend (ctx: BackendContext): Backend {
  const cfg = ctx.config.backend
  const make = BACKENDS[cfg.type] as Factory<typeof cfg.type> | undefined
  if (make === undefined) throw new WeftError('EBACKEND', `the ${cfg.type} backend is not implemented yet (available: ${Object.keys(BACKENDS).join(', ')})`)
  return make(ctx, cfg as never)
}
