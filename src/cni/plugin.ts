// The CNI plugin: the `weft` executable acts as one when CNI_COMMAND is set
// (conflist "type": "weft"; installed as "flannel" it stands in for flannel's).
// 1. read the network config (stdin) and subnet.env (written by `weft run`)
// 2. ADD: build the delegate config (delegate.ts), save it under dataDir for
//    DEL, run the delegate (bridge + host-local) from CNI_PATH, print its result;
//    if the delegate fails, undo (delegate DEL, forget the saved config) so no
//    half-attached container is left behind; then lower the pod interface's
//    gso_max_size so its TCP super-packets fit one weft message (gso.ts; a
//    failure there is a warning, the pod works without it)
// 3. DEL: run the delegate's DEL with the saved config; an unknown container
//    is a success (the spec asks DEL to be idempotent)
// 4. CHECK (our own state), VERSION, STATUS and GC as the spec defines them
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { formatCidr } from '../ip/net'
import { readSubnetEnv } from '../subnet/env'
import type { SubnetEnv } from '../subnet/env'
import { CniCode, CniError } from './errors'
import { podGsoMaxSize } from './gso'
import { DEFAULT_DATA_DIR, DEFAULT_SUBNET_FILE, delegateConf, parseConf } from './delegate'
import type { WeftCniConf } from './delegate'

export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']

export interface CniIo {
  env: NodeJS.ProcessEnv
  stdin: string
  out: (text: string) => void
  /** a warning for the runtime's log (stderr); the result is still a success */
  warn?: (text: string) => void
}

function need (env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name]
  if (v === undefined || v === '') throw new CniError(CniCode.INVALID_ENV, `${name} is not set`)
  return v
}

function loadSubnetEnv (conf: WeftCniConf): SubnetEnv {
  const file = typeof conf.subnetFile === 'string' ? conf.subnetFile : DEFAULT_SUBNET_FILE
  let env: SubnetEnv | undefined
  try {
    env = readSubnetEnv(file)
  } catch (err) {
    throw new CniError(CniCode.INVALID_CONFIG, `cannot use ${file}`, (err as Error).message)
  }
  if (env === undefined) throw new CniError(CniCode.TRY_AGAIN_LATER, `${file} does not exist yet: is \`weft run\` running on this node?`)
  return env
}

function dataDir (conf: WeftCniConf): string {
  return typeof conf.dataDir === 'string' ? conf.dataDir : DEFAULT_DATA_DIR
}

function findPlugin (type: string, env: NodeJS.ProcessEnv): string {
  const dirs = need(env, 'CNI_PATH').split(':').filter((d) => d !== '')
  for (const d of dirs) {
    const p = path.join(d, type)
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch { /* next */ }
  }
  throw new CniError(CniCode.NOT_AVAILABLE, `delegate plugin "${type}" not found in CNI_PATH (${dirs.join(':')})`)
}

interface ExecResult { code: number, stdout: string }

function execPlugin (type: string, command: string, conf: Record<string, unknown>, env: NodeJS.ProcessEnv, extraEnv: Record<string, string> = {}): ExecResult {
  const bin = findPlugin(type, env)
  const r = spawnSync(bin, [], { input: JSON.stringify(conf), env: { ...env, ...extraEnv, CNI_COMMAND: command }, encoding: 'utf8', timeout: 60_000 })
  // EPIPE: the plugin exited without reading all of its config (it failed
  // early, or needed none); its exit status and output still tell the story.
  if (r.error !== undefined && !((r.error as NodeJS.ErrnoException).code === 'EPIPE' && r.status !== null)) {
    throw new CniError(CniCode.IO_FAILURE, `running ${bin} failed`, r.error.message)
  }
  return { code: r.status ?? 1, stdout: r.stdout }
}

/** A delegate's own error object, passed on as it came (or wrapped if it printed none). */
function delegateError (type: string, command: string, r: ExecResult): CniError {
  try {
    const e = JSON.parse(r.stdout) as { code?: number, msg?: string, details?: string }
    if (typeof e.code === 'number') return new CniError(e.code, `${type} ${command}: ${e.msg ?? ''}`, e.details ?? '')
  } catch { /* not JSON */ }
  return new CniError(CniCode.IO_FAILURE, `${type} ${command} failed (exit ${r.code})`, r.stdout.trim())
}

const delegateVersions = new Map<string, string[]>()

/** The cniVersion to give a delegate: ours if it speaks it, else the newest it does (1.1 -> 1.0). */
function versionFor (type: string, want: string, env: NodeJS.ProcessEnv): string {
  // Only 1.1.0 may need lowering (Debian's plugins stop at 1.0.0); anything
  // older every delegate speaks, so skip the extra process start.
  if (want !== '1.1.0') return want
  let v = delegateVersions.get(type)
  if (v === undefined) {
    const r = execPlugin(type, 'VERSION', { cniVersion: want }, env)
    try { v = (JSON.parse(r.stdout) as { supportedVersions: string[] }).supportedVersions } catch { v = [want] }
    delegateVersions.set(type, v)
  }
  if (v.includes(want)) return want
  if (want === '1.1.0' && v.includes('1.0.0')) return '1.0.0'
  throw new CniError(CniCode.INCOMPATIBLE_VERSION, `delegate ${type} does not support cniVersion ${want}`)
}

function savePath (conf: WeftCniConf, containerId: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(containerId)) throw new CniError(CniCode.INVALID_ENV, `CNI_CONTAINERID ${JSON.stringify(containerId)} is not a valid container ID`)
  return path.join(dataDir(conf), containerId)
}

function save (file: string, d: Record<string, unknown>): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  const fd = fs.openSync(file, 'w', 0o600)
  try {
    fs.writeSync(fd, JSON.stringify(d))
    fs.fsyncSync(fd)
  } finally { fs.closeSync(fd) }
}

function load (file: string): Record<string, unknown> | undefined {
  let text: string
  try { text = fs.readFileSync(file, 'utf8') } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined
    throw new CniError(CniCode.IO_FAILURE, `cannot read ${file}`, (err as Error).message)
  }
  try { return JSON.parse(text) as Record<string, unknown> } catch (err) {
    throw new CniError(CniCode.DECODE_FAILURE, `the saved delegate config ${file} is damaged`, (err as Error).message)
  }
}

function cmdAdd (conf: WeftCniConf, io: CniIo): void {
  const containerId = need(io.env, 'CNI_CONTAINERID')
  need(io.env, 'CNI_NETNS')
  need(io.env, 'CNI_IFNAME')
  const env = loadSubnetEnv(conf)
  const d = delegateConf(conf, env)
  const type = String(d.type)
  d.cniVersion = versionFor(type, conf.cniVersion, io.env)
  const file = savePath(conf, containerId)
  save(file, d)
  const r = execPlugin(type, 'ADD', d, io.env)
  if (r.code !== 0) {
    const err = delegateError(type, 'ADD', r)
    // Undo whatever the delegate did before failing, then forget the config.
    execPlugin(type, 'DEL', d, io.env)
    fs.rmSync(file, { force: true })
    throw err
  }
  let result: Record<string, unknown>
  try {
    result = JSON.parse(r.stdout) as Record<string, unknown>
  } catch (err) {
    execPlugin(type, 'DEL', d, io.env)
    fs.rmSync(file, { force: true })
    throw new CniError(CniCode.DECODE_FAILURE, `${type} ADD printed a result that is not JSON`, (err as Error).message)
  }
  result.cniVersion = conf.cniVersion
  tunePodGso(io, env.mtu)
  io.out(JSON.stringify(result))
}

/** Set the pod interface's gso_max_size (gso.ts), inside the pod's namespace. */
function tunePodGso (io: CniIo, mtu: number): void {
  const size = podGsoMaxSize(mtu)
  if (size === undefined) return
  const netns = need(io.env, 'CNI_NETNS')
  const ifname = need(io.env, 'CNI_IFNAME')
  const r = spawnSync('nsenter', [`--net=${netns}`, 'ip', 'link', 'set', 'dev', ifname, 'gso_max_size', String(size)], { encoding: 'utf8', timeout: 5000 })
  if (r.status !== 0) io.warn?.(`weft: could not set gso_max_size ${size} on ${ifname} in ${netns} (${(r.error?.message ?? r.stderr).trim()}): the pod works, its TCP just costs weft more messages`)
}

function cmdDel (conf: WeftCniConf, io: CniIo): void {
  const file = savePath(conf, need(io.env, 'CNI_CONTAINERID'))
  const d = load(file)
  if (d === undefined) return // never added, or already deleted: success
  const r = execPlugin(String(d.type), 'DEL', d, io.env)
  if (r.code !== 0) throw delegateError(String(d.type), 'DEL', r)
  fs.rmSync(file, { force: true })
}

// CHECK verifies our own state: the attachment is known and its subnet is
// still this node's. It does not run the bridge plugin's CHECK: that compares
// host-local's gateway-less route ({dst: NETWORK}) with the pod's table, where
// the bridge installed it via the gateway, and so fails on every healthy pod
// (flannel's plugin does nothing at all on CHECK).
function cmdCheck (conf: WeftCniConf, io: CniIo): void {
  const file = savePath(conf, need(io.env, 'CNI_CONTAINERID'))
  const d = load(file)
  if (d === undefined) throw new CniError(CniCode.UNKNOWN_CONTAINER, `no attachment of container ${io.env.CNI_CONTAINERID ?? ''} is known`)
  const env = loadSubnetEnv(conf)
  const ranges = ((d.ipam as Record<string, unknown> | undefined)?.ranges ?? []) as Array<Array<{ subnet?: string }>>
  const want = formatCidr(env.subnet)
  if (!ranges.some((set) => set.some((r) => r.subnet === want))) {
    throw new CniError(CniCode.INVALID_CONFIG, `the container was attached to another subnet than this node's ${want}: the node's lease changed; recreate the pod`)
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

/** Forget (and release through the delegate) attachments the runtime no longer has. */
function cmdGc (conf: WeftCniConf, io: CniIo): void {
  const valid = new Set(((conf['cni.dev/valid-attachments'] ?? []) as Array<{ containerID?: string }>).map((a) => a.containerID))
  const dir = dataDir(conf)
  let names: string[]
  try { names = fs.readdirSync(dir) } catch { return }
  for (const id of names) {
    if (valid.has(id)) continue
    const d = load(path.join(dir, id))
    if (d !== undefined) execPlugin(String(d.type), 'DEL', d, io.env, { CNI_CONTAINERID: id, CNI_NETNS: '', CNI_IFNAME: 'eth0' })
    fs.rmSync(path.join(dir, id), { force: true })
  }
}

/** Runs one CNI command; returns the exit code. Errors are printed as the spec's JSON. */
export function runCni (io: CniIo): number {
  let version = '1.0.0'
  try {
    const command = need(io.env, 'CNI_COMMAND')
    if (command === 'VERSION') {
      io.out(JSON.stringify({ cniVersion: '1.1.0', supportedVersions: SUPPORTED_VERSIONS }))
      return 0
    }
    const conf = parseConf(io.stdin)
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
    const e = err instanceof CniError ? err : new CniError(CniCode.IO_FAILURE, (err as Error).message ?? String(err))
    io.out(JSON.stringify(e.toJSON(version)))
    return 1
  }
}
