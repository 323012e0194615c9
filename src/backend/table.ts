// Every backend weft has, in one explicit table (flannel fills a global
// registry from init() side effects; a table shows what exists at a glance).
import { WeftError } from '../errors'
import type { BackendConfig } from '../subnet/config'
import type { Backend, BackendContext } from './backend'
import { VxlanBackend } from './vxlan/backend'
import { UdpBackend } from './udp/backend'
import { IpipBackend } from './ipip/backend'
import { HostGwBackend } from './host-gw/backend'

type Factory<T extends BackendConfig['type']> = (ctx: BackendContext, cfg: Extract<BackendConfig, { type: T }>) => Backend

const BACKENDS: { [T in BackendConfig['type']]?: Factory<T> } = {
  vxlan: (ctx, cfg) => new VxlanBackend(ctx, cfg),
  udp: (ctx, cfg) => new UdpBackend(ctx, cfg),
  ipip: (ctx, cfg) => new IpipBackend(ctx, cfg),
  'host-gw': (ctx, cfg) => new HostGwBackend(ctx, cfg)
}

export function createBackend (ctx: BackendContext): Backend {
  const cfg = ctx.config.backend
  const make = BACKENDS[cfg.type] as Factory<typeof cfg.type> | undefined
  if (make === undefined) throw new WeftError('EBACKEND', `the ${cfg.type} backend is not implemented yet (available: ${Object.keys(BACKENDS).join(', ')})`)
  return make(ctx, cfg as never)
}
