// The CNI plugin: the `weft` executable acts as one when CNI_COMMAND is set
// (conflist "type": "weft"; installed as "flannel" it stands in for flannel's).
// 1. read the network config (stdin, bounded: read.ts) and check it and the
//    environment before acting on either (validate.ts: container ID, ifname,
//    netns, CNI_PATH, plugin names, the config's paths)
// 2. ADD: build the delegate config (delegate.ts), save it for DEL under
//    dataDir, keyed by network, container and interface (attachments.ts),
//    run the delegate (bridge + host-local) from CNI_PATH (invoke.ts), print
//    its result; if the delegate fails, undo (delegate DEL, forget the saved
//    config) so no half-attached container is left behind; then lower the pod
//    interface's gso_max_size so its TCP super-packets fit one weft message
//    (gso.ts; a failure there is a warning, the pod works without it)
// 3. DEL: run the delegate's DEL with the saved config; an unknown container
//    is a success (the spec asks DEL to be idempotent)
// 4. CHECK (our own state), VERSION, STATUS and GC as the spec defines them;
//    GC touches only this network's attachments
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { WeftError } from '../errors'
import { formatCidr } from '../packet/net'
import { formatCidr6, networkOf6 } from '../packet/net6'
import { parseSubnetEnv } from '../subnet/env'
import type { SubnetEnv } from '../subnet/env'
import { attachmentFile, legacyFile, loadSaved, parseEntryName, save } from './attachments'
import type { Attachment } from './attachments'
import { CniCode, CniError } from './errors'
import { podGsoMaxSize } from './gso'
import { dataDirOf, delegateConf, parseConf, subnetFileOf } from './delegate'
import type { WeftCniConf } from './delegate'
import { delegateError, execPlugin, versionFor } from './invoke'
import { MAX_CONFIG_BYTES, readBounded } from './read'
import { checkContainerId, checkIfName, checkNetns, checkPluginName, cniPathDirs, needEnv } from './validate'

export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']

export interface CniIo {
  env: NodeJS.ProcessEnv
  /** the network config, or a reader of it (called once, inside the error handling, so a failed read is a spec error too) */
  stdin: string | (() => string)
  out: (text: string) => void
  /** a warning for the runtime's log (stderr); the result is still a success */
  warn?: (text: string) => void
}

/** subnet.env is a few lines; anything much larger is not one. */
const MAX_SUBNET_ENV_BYTES = 64 * 1024

function loadSubnetEnv (conf: WeftCniConf): SubnetEnv {
  const file = subnetFileOf(conf)
  let fd: number
  try {
    // O_NONBLOCK: a FIFO there must not hang the plugin (it is refused below)
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CniError(CniCode.TRY_AGAIN_LATER, `${file} does not exist yet: is \`weft run\` running on this node?`)
    throw new CniError(CniCode.INVALID_CONFIG, `cannot use ${file}`, (err as Error).message)
  }
  try {
    if (!fs.fstatSync(fd).isFile()) throw new CniError(CniCode.INVALID_CONFIG, `cannot use ${file}`, 'not a regular file')
    return parseSubnetEnv(readBounded(fd, MAX_SUBNET_ENV_BYTES, file).toString('utf8'), file)
  } catch (err) {
    if (err instanceof CniError) throw err
    // the parser's message names the file, the key and why (a bad
    // FLANNEL_IPV6_SUBNET, say): that is the message the runtime should log
    if (err instanceof WeftError && err.code === 'ESUBNETENV') throw new CniError(CniCode.INVALID_CONFIG, err.message, 'subnet.env is written by `weft run` (or flanneld); check that node\'s daemon')
    throw new CniError(CniCode.INVALID_CONFIG, `cannot use ${file}`, (err as Error).message)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * The attachment a command is about, from the environment, checked as
 * libcni's skel checks it (plus an absolute CNI_NETNS and CNI_PATH). DEL may
 * come without a namespace (the container is gone); ADD and CHECK may not.
 */
function attachmentEnv (conf: WeftCniConf, env: NodeJS.ProcessEnv, needNetns: boolean): Attachment & { netns?: string } {
  const containerId = checkContainerId(needEnv(env, 'CNI_CONTAINERID'))
  const netns = needNetns || (env.CNI_NETNS ?? '') !== '' ? checkNetns(needEnv(env, 'CNI_NETNS')) : undefined
  const ifname = checkIfName(needEnv(env, 'CNI_IFNAME'))
  cniPathDirs(needEnv(env, 'CNI_PATH'))
  return { network: conf.name, containerId, ifname, ...(netns !== undefined ? { netns } : {}) }
}

function cmdAdd (conf: WeftCniConf, io: CniIo): void {
  const a = attachmentEnv(conf, io.env, true)
  const env = loadSubnetEnv(conf)
  const d = delegateConf(conf, env)
  const type = checkPluginName(d.type, 'delegate.type')
  d.cniVersion = versionFor(type, conf.cniVersion, io.env)
  const file = attachmentFile(dataDirOf(conf), a)
  save(file, d)
  const undo = (): void => {
    execPlugin(type, 'DEL', d, io.env)
    fs.rmSync(file, { force: true })
  }
  const r = execPlugin(type, 'ADD', d, io.env)
  if (r.code !== 0) {
    const err = delegateError(type, 'ADD', r)
    // Undo whatever the delegate did before failing, then forget the config.
    undo()
    throw err
  }
  let result: unknown
  try {
    result = JSON.parse(r.stdout)
  } catch (err) {
    undo()
    throw new CniError(CniCode.DECODE_FAILURE, `${type} ADD printed a result that is not JSON`, (err as Error).message)
  }
  if (result === null || typeof result !== 'object' || Array.isArray(result)) {
    undo()
    throw new CniError(CniCode.DECODE_FAILURE, `${type} ADD printed a result that is not a JSON object`, r.stdout.trim().slice(0, 200))
  }
  const res = result as Record<string, unknown>
  res.cniVersion = conf.cniVersion
  tunePodGso(io, env.mtu, a.netns as string, a.ifname)
  io.out(JSON.stringify(res))
}

/** Set the pod interface's gso_max_size (gso.ts), inside the pod's namespace. */
function tunePodGso (io: CniIo, mtu: number, netns: string, ifname: string): void {
  const size = podGsoMaxSize(mtu)
  if (size === undefined) return
  const r = spawnSync('nsenter', [`--net=${netns}`, 'ip', 'link', 'set', 'dev', ifname, 'gso_max_size', String(size)], { encoding: 'utf8', timeout: 5000 })
  if (r.status !== 0) io.warn?.(`weft: could not set gso_max_size ${size} on ${ifname} in ${netns} (${(r.error?.message ?? r.stderr).trim()}): the pod works, its TCP just costs weft more messages`)
}

/**
 * The saved delegate config of an attachment and its file: the file of this
 * network, container and interface, else (attached before weft keyed files
 * that way) the container's old-layout file if it is this network's.
 * Undefined if neither is. A file under the new name that is not a weft
 * delegate config of this network has been tampered with: an error, left
 * for an administrator to look at.
 */
function findSaved (conf: WeftCniConf, a: Attachment, io: CniIo): { file: string, d: Record<string, unknown> } | undefined {
  const dir = dataDirOf(conf)
  const file = attachmentFile(dir, a)
  const s = loadSaved(file, conf.name)
  if (s.state === 'ours') return { file, d: s.conf }
  if (s.state === 'other') throw new CniError(CniCode.INVALID_CONFIG, `the saved delegate config ${file} is for network ${JSON.stringify(s.network)}, not ${conf.name}`)
  if (s.state === 'unproven') throw new CniError(CniCode.INVALID_CONFIG, `the saved delegate config ${file} ${s.why}: weft will not act on it`)
  const old = legacyFile(dir, a.containerId)
  const l = loadSaved(old, conf.name)
  if (l.state === 'ours') return { file: old, d: l.conf }
  if (l.state === 'unproven') io.warn?.(`weft: leaving ${old} alone: it ${l.why}`)
  return undefined
}

function cmdDel (conf: WeftCniConf, io: CniIo): void {
  const s = findSaved(conf, attachmentEnv(conf, io.env, false), io)
  if (s === undefined) return // never added, or already deleted: success
  const r = execPlugin(String(s.d.type), 'DEL', s.d, io.env)
  if (r.code !== 0) throw delegateError(String(s.d.type), 'DEL', r)
  fs.rmSync(s.file, { force: true })
}

// CHECK verifies our own state: the attachment is known and its subnet is
// still this node's. It does not run the bridge plugin's CHECK: that compares
// host-local's gateway-less route ({dst: NETWORK}) with the pod's table, where
// the bridge installed it via the gateway, and so fails on every healthy pod
// (flannel's plugin does nothing at all on CHECK).
function cmdCheck (conf: WeftCniConf, io: CniIo): void {
  const a = attachmentEnv(conf, io.env, true)
  const s = findSaved(conf, a, io)
  if (s === undefined) throw new CniError(CniCode.UNKNOWN_CONTAINER, `no attachment of container ${a.containerId} (${a.ifname}) to ${conf.name} is known`)
  const env = loadSubnetEnv(conf)
  const ranges = (s.d.ipam as { ranges?: unknown } | undefined)?.ranges
  // each family the node has now must be one the pod was given an address from
  const wants: string[] = []
  if (env.subnet !== undefined) wants.push(formatCidr(env.subnet))
  if (env.subnet6 !== undefined) wants.push(formatCidr6(networkOf6(env.subnet6)))
  for (const want of wants) {
    if (!Array.isArray(ranges) || !ranges.some((set) => Array.isArray(set) && set.some((r) => (r as { subnet?: unknown } | null)?.subnet === want))) {
      throw new CniError(CniCode.INVALID_CONFIG, `the container was attached to another subnet than this node's ${want}: the node's lease changed; recreate the pod`)
    }
  }
}

function cmdStatus (conf: WeftCniConf): void {
  try {
    loadSubnetEnv(conf)
  } catch (err) {
    const e = err as CniError
    throw new CniError(CniCode.NOT_AVAILABLE, `weft is not ready: ${e.message}`, e.details)
  }
}

/**
 * The attachments the runtime still has, as "containerID/ifname" keys and
 * bare container IDs (for old-layout files, which do not record the
 * interface, and attachments listed without one). libcni once spelled the
 * key "cni.dev/attachments" (containernetworking/cni#1101) and sends null
 * for an empty list; a GC without the key at all is refused rather than
 * read as "nothing is valid".
 */
function validAttachments (conf: WeftCniConf): { pairs: Set<string>, ids: Set<string> } {
  const key = conf['cni.dev/valid-attachments'] !== undefined ? 'cni.dev/valid-attachments' : 'cni.dev/attachments'
  const list = conf[key]
  if (list === undefined) throw new CniError(CniCode.INVALID_CONFIG, 'GC needs cni.dev/valid-attachments', 'without it every attachment would look stale')
  const pairs = new Set<string>()
  const ids = new Set<string>()
  if (list === null) return { pairs, ids }
  if (!Array.isArray(list)) throw new CniError(CniCode.INVALID_CONFIG, `${key} must be an array`)
  for (const a of list as unknown[]) {
    const { containerID, ifname } = (a ?? {}) as { containerID?: unknown, ifname?: unknown }
    if (typeof containerID !== 'string' || (ifname !== undefined && typeof ifname !== 'string')) {
      throw new CniError(CniCode.INVALID_CONFIG, `${key} holds an entry that is not {containerID, ifname}`, JSON.stringify(a) ?? String(a))
    }
    ids.add(containerID)
    // listed without an interface: every interface of the container is kept
    pairs.add(`${containerID}/${ifname === undefined || ifname === '' ? '*' : ifname}`)
  }
  return { pairs, ids }
}

/**
 * Release (through the delegate's DEL) and forget this network's attachments
 * the runtime no longer has. Only files attachments.ts can show are this
 * network's are candidates; another network's, and anything else in dataDir,
 * are left alone. A delegate that fails keeps its file for the next GC; the
 * others go on, and the failures are reported together at the end.
 */
function cmdGc (conf: WeftCniConf, io: CniIo): void {
  cniPathDirs(needEnv(io.env, 'CNI_PATH'))
  const { pairs, ids } = validAttachments(conf)
  const dir = dataDirOf(conf)
  let names: string[]
  try { names = fs.readdirSync(dir).sort() } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return
    throw new CniError(CniCode.IO_FAILURE, `cannot list ${dir}`, (err as Error).message)
  }
  const failed: CniError[] = []
  for (const name of names) {
    const e = parseEntryName(name)
    if (e === undefined) continue
    if (e.kind === 'attachment') {
      if (e.network !== conf.name || pairs.has(`${e.containerId}/${e.ifname}`) || pairs.has(`${e.containerId}/*`)) continue
    } else if (ids.has(e.containerId)) {
      continue
    }
    const file = path.join(dir, name)
    const s = loadSaved(file, conf.name)
    if (s.state !== 'ours') {
      if (s.state === 'unproven' && e.kind === 'attachment') io.warn?.(`weft: GC leaves ${file} alone: it ${s.why}`)
      continue
    }
    // Old-layout files do not say which interface they were for; eth0 is
    // the one Kubernetes gives a pod's primary network, and what weft's GC
    // always passed before.
    const ifname = e.kind === 'attachment' ? e.ifname : 'eth0'
    const type = String(s.conf.type)
    try {
      const r = execPlugin(type, 'DEL', s.conf, io.env, { CNI_CONTAINERID: e.containerId, CNI_IFNAME: ifname, CNI_NETNS: '', CNI_ARGS: '' })
      if (r.code !== 0) throw delegateError(type, 'DEL', r)
      fs.rmSync(file, { force: true })
    } catch (err) {
      failed.push(err instanceof CniError ? err : new CniError(CniCode.IO_FAILURE, (err as Error).message))
    }
  }
  if (failed.length > 0) {
    throw new CniError(failed[0].code, `GC could not release ${failed.length} stale attachment${failed.length === 1 ? '' : 's'}; ${failed.length === 1 ? 'its file is' : 'their files are'} kept for the next GC`, failed.map((e) => e.message).join('; '))
  }
}

/** Runs one CNI command; returns the exit code. Errors are printed as the spec's JSON. */
export function runCni (io: CniIo): number {
  let version = '1.0.0'
  try {
    const command = needEnv(io.env, 'CNI_COMMAND')
    if (command === 'VERSION') {
      io.out(JSON.stringify({ cniVersion: '1.1.0', supportedVersions: SUPPORTED_VERSIONS }))
      return 0
    }
    const text = typeof io.stdin === 'function' ? io.stdin() : io.stdin
    if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) throw new CniError(CniCode.INVALID_CONFIG, `the network configuration on stdin is larger than ${MAX_CONFIG_BYTES} bytes`)
    const conf = parseConf(text)
    version = conf.cniVersion
    if (!SUPPORTED_VERSIONS.includes(conf.cniVersion)) throw new CniError(CniCode.INCOMPATIBLE_VERSION, `cniVersion ${conf.cniVersion} is not supported`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`)
    switch (command) {
      case 'ADD': cmdAdd(conf, io); break
      case 'DEL': cmdDel(conf, io); break
      case 'CHECK': cmdCheck(conf, io); break
      case 'STATUS': cmdStatus(conf); break
      case 'GC': cmdGc(conf, io); break
      default: throw new CniError(CniCode.INVALID_ENV, `unknown CNI_COMMAND ${JSON.stringify(command)}`)
    }
    return 0
  } catch (err) {
    const e = err instanceof CniError ? err : new CniError(CniCode.IO_FAILURE, err instanceof Error ? err.message : String(err))
    io.out(JSON.stringify(e.toJSON(version)))
    return 1
  }
}
