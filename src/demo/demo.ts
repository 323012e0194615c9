// `weft demo`: a small cluster on this one host, to see weft work.
// 1. check what it needs (root, /dev/net/tun, iproute2, iperf3, the CNI plugins)
// 2. N nodes as namespaces on a bridge underlay, one embedded store file
//    holding the network config with the chosen backend (--backend)
// 3. a `weft run` daemon per node; wait for each to write subnet.env. With
//    wireguard each node has its own key file in its state dir (flannel's
//    default, /run/flannel/wgkey, is one per host, and these nodes share one)
//    and its own /run/wireguard (a tmpfs in the mount namespace `ip netns
//    exec` gives it), so each has a `wg show` socket and the host's is left
//    alone
// 4. two pods per node, attached through weft's CNI plugin, which delegates to
//    the real bridge and host-local plugins
// 5. the pod table, a ping matrix (wireguard: then node 1's sessions), an
//    iperf3 figure between two nodes
// 6. tear everything down (also on Ctrl-C), unless --keep
// With --ipv6 (vxlan) the network is dual stack, as flannel's with
// EnableIPv6: the nodes also have IPv6 underlay addresses, each pod gets an
// address of each family, and the ping matrix and iperf3 run over both.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import readline from 'node:readline'
import os from 'node:os'
import path from 'node:path'
import { WeftError } from '../errors'
import { readSubnetEnv } from '../subnet/env'
import { SqliteStore } from '../store/sqlite/sqlite-store'
import { formatCidr } from '../packet/net'
import { formatCidr6 } from '../packet/net6'
import { DEMO_PREFIX, DEMO_UNDERLAY6, DemoNet, inNs, sh, stopPids } from './host'

/** What a node's subnet.env says it leased, both families. */
function leased (file: string): string {
  const env = readSubnetEnv(file)
  if (env === undefined) return '-'
  return [env.subnet !== undefined ? formatCidr(env.subnet) : undefined, env.subnet6 !== undefined ? formatCidr6(env.subnet6) : undefined].filter((x) => x !== undefined).join(' ')
}

/** The backends the demo runs (Backend.Type), how its lines name each, and what carries the iperf3 stream. */
export const DEMO_BACKENDS: Readonly<Record<string, { name: string, path: string }>> = {
  vxlan: { name: 'VXLAN', path: 'through weft\'s userspace VXLAN' },
  wireguard: { name: 'WireGuard', path: 'encrypted by weft\'s userspace WireGuard' },
  udp: { name: 'UDP encapsulation', path: 'through weft\'s userspace UDP encapsulation' },
  ipip: { name: 'IP-in-IP', path: 'through weft\'s userspace IP-in-IP' }
  // not host-gw: the demo's pods have no default route, and the bridge
  // plugin's ipMasq gives their packets to other nodes the node's underlay
  // address (what leaves through a weft device has its overlay address),
  // which the pod at the other end cannot answer
}

export interface DemoOptions {
  /** a DEMO_BACKENDS key; default vxlan */
  backend?: string
  /** dual stack: IPv6Network fc00::/48 beside 10.244.0.0/16, an IPv6 underlay (vxlan only) */
  ipv6?: boolean
  nodes: number
  podsPerNode: number
  keep: boolean
  iperfSeconds: number
  cniPath: string
  out: (line: string) => void
  signal: AbortSignal
}

interface Pod { name: string, ns: string, node: number, ip: string, ip6?: string }

const MAIN_JS = path.join(__dirname, '..', 'main.js')
const CNI_JS = path.join(__dirname, '..', 'cni', 'main.js')
const configFor = (backend: string, ipv6: boolean): string => JSON.stringify({ Network: '10.244.0.0/16', ...(ipv6 ? { EnableIPv6: true, IPv6Network: 'fc00::/48' } : {}), Backend: { Type: backend } })
/** Where a wireguard node's `wg show` socket goes: a tmpfs of its own there (see the top). */
const WG_RUN_DIR = '/run/wireguard'

async function which (bin: string): Promise<boolean> {
  return (await sh(['sh', '-c', `command -v ${bin}`], { allowFail: true })).code === 0
}

async function preflight (o: DemoOptions): Promise<void> {
  const missing: string[] = []
  if (process.getuid?.() !== 0) missing.push('root (run it with sudo): namespaces and TUN devices need it')
  if (!fs.existsSync('/dev/net/tun')) missing.push('/dev/net/tun (modprobe tun)')
  for (const b of ['ip', 'ping', 'iperf3']) if (!(await which(b))) missing.push(`${b} (apt-get install ${b === 'ip' ? 'iproute2' : b === 'ping' ? 'iputils-ping' : b})`)
  for (const p of ['bridge', 'host-local']) if (!fs.existsSync(path.join(o.cniPath, p))) missing.push(`${o.cniPath}/${p} (apt-get install containernetworking-plugins)`)
  if (missing.length > 0) throw new WeftError('EDEMO', `the demo needs:\n  - ${missing.join('\n  - ')}\n(./scripts/setup.sh installs all of it on Debian)`)
}

function table (rows: string[][]): string[] {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) => '  ' + r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd())
}

async function waitFile (file: string, ms: number, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + ms
  while (!fs.existsSync(file)) {
    if (Date.now() > deadline || signal.aborted) throw new WeftError('EDEMO', `timed out waiting for ${file}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function attachPod (net: DemoNet, dir: string, node: number, j: number, cniPath: string): Promise<Pod> {
  const ns = await net.addNamespace(`${net.prefix}n${node}p${j}`)
  const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'weft-demo', type: 'weft', subnetFile: `${dir}/n${node}/subnet.env`, dataDir: `${dir}/n${node}/cni`, ipam: { dataDir: `${dir}/n${node}/ipam` }, delegate: { hairpinMode: true } })
  const env = { ...process.env, CNI_COMMAND: 'ADD', CNI_CONTAINERID: `n${node}p${j}`, CNI_NETNS: `/var/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: cniPath }
  const r = await sh(inNs(`${net.prefix}n${node}`, [process.execPath, CNI_JS]), { input: conf, env, allowFail: true })
  let result: { ips?: Array<{ address: string }>, msg?: string }
  try { result = JSON.parse(r.stdout) as typeof result } catch { throw new WeftError('EDEMO', `the CNI plugin printed no result: ${r.stderr}`) }
  if (r.code !== 0 || result.ips === undefined) throw new WeftError('EDEMO', `CNI ADD for n${node}p${j} failed: ${result.msg ?? r.stdout}`)
  const addrs = result.ips.map((x) => x.address.split('/')[0])
  const ip6 = addrs.find((a) => a.includes(':'))
  return { name: `n${node}p${j}`, ns, node, ip: addrs.find((a) => !a.includes(':')) ?? addrs[0], ...(ip6 !== undefined ? { ip6 } : {}) }
}

async function pingMatrix (pods: Pod[], out: (l: string) => void, family: 4 | 6 = 4): Promise<number> {
  const pairs = pods.flatMap((a) => pods.filter((b) => b !== a).map((b) => [a, b] as const))
  const ok = new Set<string>()
  let next = 0
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < pairs.length) {
      const [a, b] = pairs[next++]
      const to = family === 6 ? b.ip6 : b.ip
      if (to === undefined) continue
      const r = await sh(inNs(a.ns, ['ping', '-c', '2', '-i', '0.2', '-w', '3', to]), { allowFail: true })
      if (r.code === 0) ok.add(`${a.name}>${b.name}`)
    }
  }))
  const rows = [['from \\ to', ...pods.map((p) => p.name)]]
  for (const a of pods) rows.push([a.name, ...pods.map((b) => (a === b ? '-' : ok.has(`${a.name}>${b.name}`) ? 'ok' : 'FAIL'))])
  for (const l of table(rows)) out(l)
  return pairs.length - ok.size
}

/** iperf3 between two pods, printing each second's rate as it comes (progress), then the result. */
/** family: which of the pods' addresses; named in the result only when the demo is dual stack (named) */
async function iperf (server: Pod, client: Pod, seconds: number, out: (l: string) => void, net: DemoNet, dir: string, signal: AbortSignal, path: string, family: 4 | 6 = 4, named = false): Promise<void> {
  const serverIp = family === 6 ? server.ip6 ?? server.ip : server.ip
  net.spawn(server.ns, ['iperf3', '-s', '-1'], `${dir}/iperf-server.log`)
  for (let i = 0; i < 50; i++) {
    if ((await sh(inNs(server.ns, ['ss', '-Hltn', 'sport = :5201']), { allowFail: true })).stdout.trim() !== '') break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const child = spawn('ip', inNs(client.ns, ['iperf3', '-c', serverIp, '-t', String(seconds), '-i', '1', '-f', 'g', '--forceflush', '--connect-timeout', '3000']).slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
  const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000)
  const onAbort = (): void => { child.kill('SIGKILL') }
  signal.addEventListener('abort', onAbort, { once: true })
  let receiver = ''
  let error = ''
  const lines = readline.createInterface({ input: child.stdout })
  lines.on('line', (l) => {
    const m = /\[\s*\d+\]\s+([\d.]+)-([\d.]+)\s+sec\s+\S+\s+\S+\s+([\d.]+) Gbits\/sec/.exec(l)
    if (m === null) { if (/error/i.test(l)) error = l; return }
    if (/receiver/.test(l)) receiver = m[3]
    else if (!/sender/.test(l)) out(`  ${Number(m[2]).toFixed(0).padStart(2)} s  ${m[3]} Gbit/s`)
  })
  child.stderr.on('data', (d: Buffer) => { error += d.toString() })
  await new Promise((resolve) => child.once('close', resolve))
  clearTimeout(timer)
  signal.removeEventListener('abort', onAbort)
  if (signal.aborted) return
  if (receiver !== '') out(`  ${client.name} -> ${server.name}: ${receiver} Gbit/s over ${seconds} s (${named ? `TCP over IPv${family}` : 'TCP'}, one stream, ${path})`)
  else out(`  iperf3 failed: ${error.trim()}`)
}

/** Node 1's WireGuard sessions, from its `weft status`: one line per peer. */
async function wireguardSessions (dir: string, nodes: number, out: (l: string) => void): Promise<void> {
  const r = await sh([process.execPath, MAIN_JS, 'status', '--json', '--state-dir', `${dir}/n1`], { allowFail: true })
  let s: { peers?: Array<Record<string, unknown>> }
  try { s = JSON.parse(r.stdout) as typeof s } catch { out(`  weft status failed: ${r.stderr.trim()}`); return }
  const nodeOf = new Map<string, string>()
  for (let i = 2; i <= nodes; i++) nodeOf.set(`198.18.0.${i}`, `n${i}`)
  for (const p of s.peers ?? []) {
    const at = typeof p.latestHandshake === 'string' ? Date.parse(p.latestHandshake) : NaN
    const shake = Number.isFinite(at) ? `handshake ${Math.max(0, Math.round((Date.now() - at) / 1000))} s ago` : 'no handshake yet'
    const key = typeof p.publicKey === 'string' ? `, key ${p.publicKey.slice(0, 8)}...` : ''
    out(`  n1 -> ${nodeOf.get(String(p.publicIP)) ?? String(p.publicIP)} (${String(p.subnet)}) at ${String(p.endpoint ?? '-')}: ${p.session === true ? 'session up' : 'no session'}, ${shake}${key}`)
  }
}

export async function runDemo (o: DemoOptions): Promise<number> {
  const backend = o.backend ?? 'vxlan'
  const kind = DEMO_BACKENDS[backend]
  if (kind === undefined) throw new WeftError('EDEMO', `the demo runs the backends ${Object.keys(DEMO_BACKENDS).join(', ')}; not ${JSON.stringify(backend)}`)
  const ipv6 = o.ipv6 === true
  if (ipv6 && backend !== 'vxlan') throw new WeftError('EDEMO', `--ipv6 runs with the vxlan backend only (weft's ${backend} backend is IPv4-only${backend === 'wireguard' ? ' for now' : ', as flannel\'s is'})`)
  await preflight(o)
  const id = `${process.pid.toString(36)}`
  const prefix = `${DEMO_PREFIX}${id}-`
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-demo-'))
  fs.writeFileSync(path.join(dir, 'prefix'), prefix)
  const net = new DemoNet(prefix, path.join(dir, 'pids'))
  const step = (n: number, text: string): void => o.out(`[${n}/6] ${text}`)
  let failures = 0
  try {
    step(1, `building ${o.nodes} nodes on a bridge underlay (198.18.0.0/24${ipv6 ? ` and ${DEMO_UNDERLAY6}/64` : ''}) in network namespaces`)
    await net.init()
    for (let i = 1; i <= o.nodes; i++) await net.addNode(i, ipv6)

    step(2, `storing the network config (10.244.0.0/16${ipv6 ? ' and fc00::/48, dual stack' : ''}, ${kind.name}) in the embedded store`)
    const store = new SqliteStore({ path: `${dir}/store.db` })
    await store.putConfig(configFor(backend, ipv6))
    await store.close()

    step(3, `starting a weft daemon on each node (logs in ${dir}/nN/weft.log)`)
    const wireguard = backend === 'wireguard'
    if (wireguard) fs.mkdirSync(WG_RUN_DIR, { recursive: true, mode: 0o755 })
    const pids: number[] = []
    for (let i = 1; i <= o.nodes; i++) {
      fs.mkdirSync(`${dir}/n${i}`, { recursive: true })
      const run = [process.execPath, MAIN_JS, 'run', '--store', `sqlite:${dir}/store.db`, '--iface', 'eth0', '--subnet-file', `${dir}/n${i}/subnet.env`, '--state-dir', `${dir}/n${i}`]
      const argv = wireguard ? ['sh', '-c', `mount -t tmpfs -o mode=0755,size=64k weft-demo-wg ${WG_RUN_DIR} && exec "$@"`, 'sh', ...run] : run
      const env = wireguard ? { ...process.env, WIREGUARD_KEY_FILE: `${dir}/n${i}/wgkey` } : undefined
      pids.push(net.spawn(`${prefix}n${i}`, argv, `${dir}/n${i}/weft.log`, env))
    }
    for (let i = 1; i <= o.nodes; i++) {
      await waitFile(`${dir}/n${i}/subnet.env`, 20_000, o.signal)
      o.out(`  node n${i}: leased ${leased(`${dir}/n${i}/subnet.env`)}`)
    }

    step(4, `attaching ${o.podsPerNode} pods per node through weft's CNI plugin (delegating to bridge + host-local)`)
    const pods: Pod[] = []
    for (let i = 1; i <= o.nodes; i++) for (let j = 1; j <= o.podsPerNode; j++) pods.push(await attachPod(net, dir, i, j, o.cniPath))
    const rows = ipv6 ? [['POD', 'NODE', 'POD IP', 'POD IPV6', 'NODE SUBNETS']] : [['POD', 'NODE', 'POD IP', 'NODE SUBNET']]
    for (const p of pods) rows.push([p.name, `n${p.node} (198.18.0.${p.node})`, p.ip, ...(ipv6 ? [p.ip6 ?? '-'] : []), leased(`${dir}/n${p.node}/subnet.env`)])
    for (const l of table(rows)) o.out(l)

    step(5, `ping from every pod to every pod (${pods.length * (pods.length - 1)} pairs)`)
    await new Promise((resolve) => setTimeout(resolve, 300)) // the last node's FDB entry reaches the others
    failures = await pingMatrix(pods, o.out)
    o.out(failures === 0 ? `  every pod reaches every pod${ipv6 ? ' over IPv4' : ''}` : `  ${failures} pairs failed`)
    if (ipv6) {
      const f6 = await pingMatrix(pods, o.out, 6)
      o.out(f6 === 0 ? '  every pod reaches every pod over IPv6' : `  ${f6} pairs failed over IPv6`)
      failures += f6
    }
    if (wireguard) await wireguardSessions(dir, o.nodes, o.out)

    const a = pods.find((p) => p.node === 1)
    const b = pods.find((p) => p.node === 2)
    if (a !== undefined && b !== undefined && o.iperfSeconds > 0) {
      step(6, `iperf3 for ${o.iperfSeconds} s from ${b.name} (node n2) to ${a.name} (node n1)`)
      await iperf(a, b, o.iperfSeconds, o.out, net, dir, o.signal, kind.path, 4, ipv6)
      if (ipv6) await iperf(a, b, o.iperfSeconds, o.out, net, dir, o.signal, kind.path, 6, true)
    }
    if (o.keep) {
      o.out('')
      o.out('left running (--keep). Try:')
      o.out(`  sudo ip netns exec ${prefix}n1p1 ping ${pods[pods.length - 1].ip}`)
      o.out(`  sudo ${process.execPath} ${MAIN_JS} status --state-dir ${dir}/n1`)
      o.out(`  sudo ${process.execPath} ${MAIN_JS} leases --store sqlite:${dir}/store.db`)
      if (wireguard) o.out(`  sudo nsenter -m -t ${pids[0]} wg show weft-wg      # WireGuard's own tool, on n1's socket`)
      o.out(`  sudo ${process.execPath} ${MAIN_JS} demo clean      # when done`)
      return failures === 0 ? 0 : 1
    }
  } finally {
    if (!o.keep || o.signal.aborted) {
      o.out(o.signal.aborted ? 'interrupted: tearing down' : 'tearing down')
      await net.destroy()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  return failures === 0 ? 0 : 1
}

/** `weft demo clean`: remove what a --keep (or killed) demo left behind. */
export async function cleanDemos (out: (l: string) => void): Promise<void> {
  const tmp = os.tmpdir()
  for (const d of fs.readdirSync(tmp).filter((n) => n.startsWith('weft-demo-'))) {
    const dir = path.join(tmp, d)
    try {
      const pids = fs.readFileSync(path.join(dir, 'pids'), 'utf8').split('\n').filter((x) => x !== '').map(Number)
      await stopPids(pids)
    } catch { /* no pids */ }
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const list = (await sh(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(DEMO_PREFIX))
  for (const ns of list.sort().reverse()) await sh(['ip', 'netns', 'delete', ns], { allowFail: true })
  out(`removed ${list.length} namespaces`)
}
