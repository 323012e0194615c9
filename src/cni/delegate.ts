// flannel's CNI plugin logic: from subnet.env and the network config, the
// config for the delegate plugins (bridge + host-local), the way
// cni-plugin/flannel_linux.go builds it (flannel.md section 11):
//   type bridge, isGateway true, ipMasq = !FLANNEL_IPMASQ, mtu = FLANNEL_MTU,
//   ipam host-local with ranges [[{subnet: FLANNEL_SUBNET}]] and a route to
//   FLANNEL_NETWORK; fields the user set in `delegate` win; the user may not
//   set `name` or `ipam` inside `delegate`.
import { formatCidr } from '../packet/net'
import type { SubnetEnv } from '../subnet/env'
import { CniCode, CniError } from './errors'
import { checkNetworkName, checkPluginName, configPath } from './validate'

export interface WeftCniConf {
  cniVersion: string
  name: string
  type: string
  subnetFile?: string
  dataDir?: string
  delegate?: Record<string, unknown>
  ipam?: Record<string, unknown>
  runtimeConfig?: unknown
  [k: string]: unknown
}

export const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env'
export const DEFAULT_DATA_DIR = '/var/lib/cni/weft'

export function parseConf (text: string): WeftCniConf {
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch (err) {
    throw new CniError(CniCode.DECODE_FAILURE, 'failed to parse the network configuration', (err as Error).message)
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CniError(CniCode.DECODE_FAILURE, 'the network configuration is not a JSON object')
  const c = v as WeftCniConf
  if (typeof c.cniVersion !== 'string' || c.cniVersion === '') throw new CniError(CniCode.INVALID_CONFIG, 'cniVersion is missing')
  if (typeof c.name !== 'string' || c.name === '') throw new CniError(CniCode.INVALID_CONFIG, 'name is missing')
  // the name is part of the saved file's name (attachments.ts): libcni's rule keeps it one path component
  checkNetworkName(c.name)
  if (c.delegate !== undefined && !isObject(c.delegate)) throw new CniError(CniCode.INVALID_CONFIG, 'delegate must be an object')
  if (c.delegate !== undefined && ('name' in c.delegate || 'ipam' in c.delegate)) {
    throw new CniError(CniCode.INVALID_CONFIG, '"name" and "ipam" may not be set inside "delegate" (weft sets them, as flannel does)')
  }
  if (c.ipam !== undefined && !isObject(c.ipam)) throw new CniError(CniCode.INVALID_CONFIG, 'ipam must be an object')
  // Refused here, for every command, rather than when a delegate is about to
  // run: a config naming a program outside CNI_PATH is not one to act on at all.
  // (ipam.type is run by the bridge plugin, whose libcni refuses the same.)
  if (c.delegate?.type !== undefined) checkPluginName(c.delegate.type, 'delegate.type')
  if (c.ipam?.type !== undefined) checkPluginName(c.ipam.type, 'ipam.type')
  configPath(c.subnetFile, 'subnetFile', DEFAULT_SUBNET_FILE)
  configPath(c.dataDir, 'dataDir', DEFAULT_DATA_DIR)
  return c
}

function isObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** subnetFile, absolute (checked by parseConf) */
export function subnetFileOf (conf: WeftCniConf): string {
  return configPath(conf.subnetFile, 'subnetFile', DEFAULT_SUBNET_FILE)
}

/** dataDir, absolute (checked by parseConf) */
export function dataDirOf (conf: WeftCniConf): string {
  return configPath(conf.dataDir, 'dataDir', DEFAULT_DATA_DIR)
}

export function delegateConf (conf: WeftCniConf, env: SubnetEnv): Record<string, unknown> {
  const d: Record<string, unknown> = { ...(conf.delegate ?? {}) }
  d.name = conf.name
  if (d.type === undefined) d.type = 'bridge'
  if (d.ipMasq === undefined) d.ipMasq = !env.ipMasq
  if (d.mtu === undefined) d.mtu = env.mtu
  if (d.type === 'bridge' && d.isGateway === undefined) d.isGateway = true
  d.cniVersion = conf.cniVersion
  const ipam: Record<string, unknown> = { ...(conf.ipam ?? {}) }
  if (ipam.type === undefined) ipam.type = 'host-local'
  ipam.ranges = [[{ subnet: formatCidr(env.subnet) }]]
  const routes = Array.isArray(ipam.routes) ? [...(ipam.routes as unknown[])] : []
  routes.push({ dst: formatCidr(env.network) })
  ipam.routes = routes
  d.ipam = ipam
  if (conf.runtimeConfig !== undefined) d.runtimeConfig = conf.runtimeConfig
  return sortKeys(d)
}

/** Go marshals maps in key order; so do we, so the saved file reads the same as flannel's. */
function sortKeys (o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(o).sort()) {
    const v = o[k]
    out[k] = v !== null && typeof v === 'object' && !Array.isArray(v) ? sortKeys(v as Record<string, unknown>) : v
  }
  return out
}
