// How long a container runtime waits for weft's CNI plugin: the wall time of
// a CNI ADD and of a DEL through `bin/weft` (CNI_COMMAND set), delegating to
// Debian's /usr/lib/cni/bridge + host-local, measured from this process
// (spawn to exit) the way a runtime sees it.
//
// 1. one topology host and a subnet.env written by hand (10.244.7.1/24, MTU
//    1450, no daemon: the plugin only reads the file), the network config on
//    stdin as in test/cni/plugin.test.ts: subnetFile, dataDir and
//    ipam.dataDir in a temp dir
// 2. `--count` (default 100) pod namespaces created first, so namespace
//    creation is not in the timings
// 3. one ADD per pod, sequential, then one DEL per pod in the same order;
//    each call exactly as the test makes it: `ip netns exec <host> env
//    CNI_COMMAND=.. CNI_CONTAINERID=.. CNI_NETNS=/var/run/netns/<pod>
//    CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni bin/weft`, config on stdin; every
//    ADD must succeed with its own address, every DEL too, and afterwards
//    host-local must hold no address and weft no saved config
// 4. for scale, `--baseline` (default 20) calls each of: the same wrapper
//    running `true` (what `ip netns exec` + `env` cost on their own), `node
//    -e 0` (Node starting, nothing loaded), weft VERSION (Node starting and
//    loading weft's CLI, no delegate), and the bridge
//    plugin called directly with the delegate config weft saved (ADD and DEL
//    on extra pods: what the delegate costs without weft in front)
// 5. median, p90, worst and best of each, the median less the wrapper's, a
//    table, then one JSON line (with every sample, in ms)
//
// usage: sudo node dist/bench/cni-latency.js [--count 100] [--baseline 20]
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { attachmentFile } from '../src/cni/attachments'
import { withTopology } from '../lab/netns'
import type { Host, Topology } from '../lab/netns'
import { netnsSkipReason } from '../lab/skip'
import { benchArgs, numberFlag } from './args'
import { max, mean, median, min, percentile } from './stats'

const BIN = path.join(__dirname, '..', '..', 'bin', 'weft')
const CNI_PATH = '/usr/lib/cni'
const SUBNET = { network: '10.244.0.0/16', gateway: '10.244.7.1', prefix: 24, mtu: 1450 }

const flags = benchArgs('cni-latency', {
  count: { type: 'string', default: '100' },
  baseline: { type: 'string', default: '20' }
})
// host-local hands out .2 .. .254 of the /24, and the direct bridge calls take some too
const count = numberFlag('count', flags.count, { min: 1, max: 200, integer: true })
const baseline = numberFlag('baseline', flags.baseline, { min: 1, max: 50, integer: true })

const progress = (msg: string): void => { process.stderr.write(`cni-latency: ${msg}\n`) }

/** Cores something else keeps busy while nothing of ours runs (first line of /proc/stat, 1 s apart). */
async function backgroundLoad (): Promise<number> {
  const ticks = (): { busy: number, total: number } => {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number)
    const total = f.reduce((a, b) => a + b, 0)
    return { busy: total - f[3] - f[4], total }
  }
  const a = ticks()
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const b = ticks()
  return (b.busy - a.busy) / Math.max(1, b.total - a.total) * os.cpus().length
}

interface Timed { ms: number, code: number, stdout: string, stderr: string }

/** One process in the host's namespace, timed from just before the spawn to its exit. */
async function timed (topo: Topology, h: Host, argv: string[], input?: string): Promise<Timed> {
  const t0 = performance.now()
  const r = await topo.exec(h, argv, { input, allowFail: true, timeoutMs: 30_000 })
  return { ms: performance.now() - t0, code: r.code, stdout: r.stdout, stderr: r.stderr }
}

/** `env VAR=.. plugin`, as test/cni/plugin.test.ts runs it. */
function cniArgv (plugin: string, vars: Record<string, string>): string[] {
  return ['env', ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), plugin]
}

function podVars (command: string, id: string, ns: string): Record<string, string> {
  return { CNI_COMMAND: command, CNI_PATH, CNI_IFNAME: 'eth0', CNI_CONTAINERID: id, CNI_NETNS: `/var/run/netns/${ns}` }
}

function mustSucceed (what: string, r: Timed): Record<string, unknown> {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stdout.slice(0, 500)}${r.stderr.slice(0, 500)}`)
  return r.stdout.trim() === '' ? {} : JSON.parse(r.stdout) as Record<string, unknown>
}

function firstAddress (what: string, out: Record<string, unknown>): string {
  const ips = out.ips as Array<{ address?: string }> | undefined
  const a = ips?.[0]?.address
  if (typeof a !== 'string') throw new Error(`${what}: no address in the result: ${JSON.stringify(out).slice(0, 300)}`)
  return a
}

/** host-local's allocation files (named by address) left in a directory tree. */
function allocations (dir: string): string[] {
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir, { recursive: true }).map(String).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(path.basename(f)))
}

// --- statistics -------------------------------------------------------------

interface Stats { n: number, median: number, p90: number, worst: number, best: number, mean: number, ms: number[] }

function stats (ms: number[]): Stats {
  return {
    n: ms.length,
    median: median(ms),
    p90: percentile(ms, 90),
    worst: max(ms),
    best: min(ms),
    mean: mean(ms),
    ms: ms.map((x) => Math.round(x * 10) / 10)
  }
}

// --- the run ----------------------------------------------------------------

interface Results {
  add: number[]
  del: number[]
  /** index of the slowest ADD: the first one also creates cni0 */
  slowestAdd: number
  wrapper: number[]
  /** Node itself starting an empty script */
  node: number[]
  version: number[]
  bridgeAdd: number[]
  bridgeDel: number[]
}

async function run (dir: string): Promise<Results> {
  const name = `weft-bench-${path.basename(dir)}`
  const conf = JSON.stringify({
    cniVersion: '1.0.0',
    name,
    type: 'weft',
    subnetFile: `${dir}/subnet.env`,
    dataDir: `${dir}/data`,
    ipam: { dataDir: `${dir}/ipam` }
  })
  // generous: a loaded 2-core machine may take half a second per call
  const timeoutMs = (2 * count + 5 * baseline) * 2000 + 120_000
  return await withTopology(undefined, { hosts: 1, label: 'bench-cni', timeoutMs }, async (topo) => {
    const h = topo.hosts[0]
    progress(`creating ${count} + ${baseline} pod namespaces ...`)
    const pods: string[] = []
    for (let i = 1; i <= count; i++) pods.push(await topo.createNamespace(`p${i}`))
    const extra: string[] = []
    for (let i = 1; i <= baseline; i++) extra.push(await topo.createNamespace(`b${i}`))

    progress(`${count} ADDs ...`)
    const add: number[] = []
    const addresses = new Set<string>()
    for (let i = 0; i < count; i++) {
      const r = await timed(topo, h, cniArgv(BIN, podVars('ADD', `c${i + 1}`, pods[i])), conf)
      const a = firstAddress(`ADD c${i + 1}`, mustSucceed(`ADD c${i + 1}`, r))
      if (addresses.has(a)) throw new Error(`ADD c${i + 1}: ${a} was given out twice`)
      addresses.add(a)
      add.push(r.ms)
    }
    const saved = attachmentFile(`${dir}/data`, { network: name, containerId: 'c1', ifname: 'eth0' })
    if (!fs.existsSync(saved)) throw new Error('weft saved no delegate config for c1')
    // the delegate config weft saved for c1: what it hands to bridge
    const delegate = fs.readFileSync(saved, 'utf8')

    progress(`${count} DELs ...`)
    const del: number[] = []
    for (let i = 0; i < count; i++) {
      const r = await timed(topo, h, cniArgv(BIN, podVars('DEL', `c${i + 1}`, pods[i])), conf)
      mustSucceed(`DEL c${i + 1}`, r)
      del.push(r.ms)
    }
    const leftIpam = allocations(`${dir}/ipam`)
    if (leftIpam.length > 0) throw new Error(`after every DEL host-local still holds ${leftIpam.join(', ')}`)
    const leftData = fs.existsSync(`${dir}/data`) ? fs.readdirSync(`${dir}/data`) : []
    if (leftData.length > 0) throw new Error(`after every DEL weft still keeps ${leftData.join(', ')}`)

    progress(`baselines, ${baseline} each ...`)
    const wrapper: number[] = []
    for (let i = 0; i < baseline; i++) {
      const r = await timed(topo, h, cniArgv('true', podVars('ADD', `w${i + 1}`, extra[i])), conf)
      mustSucceed('true', r)
      wrapper.push(r.ms)
    }
    const node: number[] = []
    for (let i = 0; i < baseline; i++) {
      const r = await timed(topo, h, ['env', process.execPath, '-e', '0'])
      mustSucceed('node -e 0', r)
      node.push(r.ms)
    }
    const version: number[] = []
    for (let i = 0; i < baseline; i++) {
      const r = await timed(topo, h, cniArgv(BIN, { CNI_COMMAND: 'VERSION' }), '')
      mustSucceed('VERSION', r)
      version.push(r.ms)
    }
    const bridge = path.join(CNI_PATH, 'bridge')
    const bridgeAdd: number[] = []
    for (let i = 0; i < baseline; i++) {
      const r = await timed(topo, h, cniArgv(bridge, podVars('ADD', `d${i + 1}`, extra[i])), delegate)
      firstAddress(`bridge ADD d${i + 1}`, mustSucceed(`bridge ADD d${i + 1}`, r))
      bridgeAdd.push(r.ms)
    }
    const bridgeDel: number[] = []
    for (let i = 0; i < baseline; i++) {
      const r = await timed(topo, h, cniArgv(bridge, podVars('DEL', `d${i + 1}`, extra[i])), delegate)
      mustSucceed(`bridge DEL d${i + 1}`, r)
      bridgeDel.push(r.ms)
    }
    const leftDirect = allocations(`${dir}/ipam`)
    if (leftDirect.length > 0) throw new Error(`after the direct bridge DELs host-local still holds ${leftDirect.join(', ')}`)
    return { add, del, slowestAdd: add.indexOf(Math.max(...add)), wrapper, node, version, bridgeAdd, bridgeDel }
  })
}

function report (r: Results, background: number): void {
  const rows: Array<[string, string, Stats]> = [
    ['add', 'weft ADD (bridge + host-local)', stats(r.add)],
    ['del', 'weft DEL (bridge + host-local)', stats(r.del)],
    ['version', 'weft VERSION (no delegate)', stats(r.version)],
    ['node', 'node -e 0 (Node alone)', stats(r.node)],
    ['bridgeAdd', 'bridge ADD, called directly', stats(r.bridgeAdd)],
    ['bridgeDel', 'bridge DEL, called directly', stats(r.bridgeDel)],
    ['wrapper', 'the wrapper alone (true)', stats(r.wrapper)]
  ]
  const wrap = rows[rows.length - 1][2].median
  const f1 = (x: number): string => x.toFixed(1)
  const cpus = os.cpus().length
  console.log(`\nCNI plugin wall time in ms, spawn to exit, sequential calls on one host, ${cpus} CPUs, kernel ${os.release()}, node ${process.version}`)
  console.log('every call runs as `ip netns exec <host> env CNI_...=... <plugin>`; "less wrapper" takes the wrapper\'s median off')
  console.log('call                              n   median      p90    worst     best   less wrapper')
  for (const [key, label, s] of rows) {
    console.log(`${label.padEnd(30)} ${String(s.n).padStart(4)} ${f1(s.median).padStart(8)} ${f1(s.p90).padStart(8)} ${f1(s.worst).padStart(8)} ${f1(s.best).padStart(8)}   ${key === 'wrapper' ? '' : f1(s.median - wrap).padStart(12)}`)
  }
  console.log(`slowest ADD: #${r.slowestAdd + 1}${r.slowestAdd === 0 ? ' (the first: it also creates cni0)' : ''}`)
  if (background > 0.25) console.log(`\nnote: the machine was not idle (${background.toFixed(2)} of ${cpus} cores busy before the run): the calls share the cores with that load`)
  console.log(JSON.stringify({
    bench: 'cni-latency',
    count,
    baseline,
    cpus,
    kernel: os.release(),
    node: process.version,
    background,
    slowestAdd: r.slowestAdd + 1,
    calls: Object.fromEntries(rows.map(([key, , s]) => [key, s]))
  }))
}

async function main (): Promise<void> {
  const missing = ['bridge', 'host-local'].find((p) => !fs.existsSync(path.join(CNI_PATH, p)))
  const skip = netnsSkipReason() ?? (missing !== undefined ? `${CNI_PATH}/${missing} not found: install containernetworking-plugins` : undefined)
  if (skip !== undefined) { console.log(`cni-latency: skipped: ${skip}`); return }
  const background = await backgroundLoad()
  progress(`background load ${background.toFixed(2)} cores`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-bench-cni-'))
  try {
    fs.writeFileSync(`${dir}/subnet.env`, `FLANNEL_NETWORK=${SUBNET.network}\nFLANNEL_SUBNET=${SUBNET.gateway}/${SUBNET.prefix}\nFLANNEL_MTU=${SUBNET.mtu}\nFLANNEL_IPMASQ=false\n`)
    const t0 = performance.now()
    const r = await run(dir)
    progress(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`)
    report(r, background)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
