// flannel's CNI plugin logic: from subnet.env and the network config, the
// config for the delegate plugins (bridge + host-local), the way
// cni-plugin/flannel_linux.go builds it (flannel.md section 11):
//   type bridge, isGateway true, ipMasq = !FLANNEL_IPMASQ, mtu = FLANNEL_MTU,
//   ipam host-local with one range set per family, IPv4 first:
//   ranges [[{subnet: FLANNEL_SUBNET}], [{subnet: FLANNEL_IPV6_SUBNET}]]
//   (either alone on a single-family node), and after the routes the user
//   gave, a route to FLANNEL_NETWORK then one to FLANNEL_IPV6_NETWORK;
//   fields the user set in `delegate` win; the user may not set `name` or
//   `ipam` inside `delegate`.
import { formatCidr, parseCidr } from '../packet/net'
import { formatCidr6, networkOf6, parseCidr6, parseIp6 } from '../packet/net6'
import { parseIp4 } from '../packet/ip'
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
  if (c.ipam?.routes !== undefined) checkRoutes(c.ipam.routes)
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
  // subnet.env names the bridge address ("10.244.1.1/24"); host-local wants
  // the network, as flannel's plugin prints the net.IPNet it parsed
  const ranges: unknown[] = []
  if (env.subnet !== undefined) ranges.push([{ subnet: formatCidr(env.subnet) }])
  if (env.subnet6 !== undefined) ranges.push([{ subnet: formatCidr6(networkOf6(env.subnet6)) }])
  ipam.ranges = ranges
  const routes = Array.isArray(ipam.routes) ? [...(ipam.routes as unknown[])] : []
  if (env.network !== undefined) routes.push({ dst: formatCidr(env.network) })
  if (env.network6 !== undefined) routes.push({ dst: formatCidr6(networkOf6(env.network6)) })
  ipam.routes = routes
  d.ipam = ipam
  if (conf.runtimeConfig !== undefined) d.runtimeConfig = conf.runtimeConfig
  return sortKeys(d)
}

/**
 * ipam.routes as flannel's plugin reads them (types.Route: dst a CIDR of
 * either family, gw an address): a route that is not one is refused before
 * anything runs, with the entry and field named, where flannel says "failed
 * to parse ipam.routes". The entries are passed on as given.
 */
function checkRoutes (routes: unknown): void {
  if (!Array.isArray(routes)) throw new CniError(CniCode.INVALID_CONFIG, 'ipam.routes must be an array of {"dst": CIDR, "gw"?: address}')
  routes.forEach((r: unknown, i) => {
    const where = `ipam.routes[${i}]`
    if (!isObject(r)) throw new CniError(CniCode.INVALID_CONFIG, `${where} must be an object {"dst": CIDR, "gw"?: address}`)
    const dst = r.dst
    if (typeof dst !== 'string' || !isCidr(dst)) throw new CniError(CniCode.INVALID_CONFIG, `${where}.dst ${JSON.stringify(dst) ?? String(dst)} is not an IPv4 or IPv6 CIDR`)
    if (r.gw !== undefined && (typeof r.gw !== 'string' || !isAddress(r.gw))) throw new CniError(CniCode.INVALID_CONFIG, `${where}.gw ${JSON.stringify(r.gw) ?? String(r.gw)} is not an IPv4 or IPv6 address`)
  })
}

const isCidr = (s: string): boolean => parsesAs(s, parseCidr, parseCidr6)
const isAddress = (s: string): boolean => parsesAs(s, parseIp4, parseIp6)

/** Whether s parses as the family its text says (a colon: IPv6). */
function parsesAs (s: string, parse4: (s: string) => unknown, parse6: (s: string) => unknown): boolean {
  try {
    (s.includes(':') ? parse6 : parse4)(s)
    return true
  } catch {
    return false
  }
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
