// deploy/kube-weft.yml and deploy/Containerfile, checked here without a
// cluster or a container engine (these machines have neither): the manifest
// against the Kubernetes API's own types and against weft's code (the calls
// it makes, the flags it takes, its config parsers, its privilege check), the
// install-cni script run for real in a temporary directory, and the
// Containerfile read for what can be known without building it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { KubernetesObject, V1ClusterRole, V1ClusterRoleBinding, V1ConfigMap, V1Container, V1DaemonSet, V1Namespace, V1ServiceAccount } from '@kubernetes/client-node' with { 'resolution-mode': 'import' }
import { SUPPORTED_VERSIONS } from '../../src/cni/plugin'
import { DEFAULT_SUBNET_FILE, parseConf } from '../../src/cni/delegate'
import { checkNetworkName, pluginNameProblem } from '../../src/cni/validate'
import { parseRunFlags, RUN_FLAGS } from '../../src/daemon/flags'
import { backendNeeds } from '../../src/daemon/privileges'
import { requiredCapabilities, TUN_PATH } from '../../src/kernel/privileges'
import { KUBE_CALLS } from '../../src/kube/calls'
import { formatCidr } from '../../src/packet/net'
import { BACKEND_TYPES, parseNetworkConfig } from '../../src/subnet/config'

// an ES module, loaded through require() (Node 20.19+), as src/kube/client.ts loads it
const k8s = require('@kubernetes/client-node') as typeof import('@kubernetes/client-node', { with: { 'resolution-mode': 'import' } })

const ROOT = path.join(__dirname, '..', '..', '..')
/** where weft run reads the network config in kube mode unless --net-config-path says otherwise (flanneld's default) */
const KUBE_NET_CONFIG_PATH = '/etc/kube-flannel/net-conf.json'
const MANIFEST_TEXT = fs.readFileSync(path.join(ROOT, 'deploy', 'kube-weft.yml'), 'utf8')
const CONTAINERFILE = fs.readFileSync(path.join(ROOT, 'deploy', 'Containerfile'), 'utf8')
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

const docs = k8s.loadAllYaml(MANIFEST_TEXT) as KubernetesObject[]
function one<T extends KubernetesObject> (kind: string): T {
  const found = docs.filter((d) => d.kind === kind)
  assert.equal(found.length, 1, `one ${kind} in the manifest`)
  return found[0] as T
}
const namespace = one<V1Namespace>('Namespace')
const role = one<V1ClusterRole>('ClusterRole')
const binding = one<V1ClusterRoleBinding>('ClusterRoleBinding')
const account = one<V1ServiceAccount>('ServiceAccount')
const configMap = one<V1ConfigMap>('ConfigMap')
const ds = one<V1DaemonSet>('DaemonSet')
const pod = ds.spec!.template.spec!
const initContainers = pod.initContainers ?? []
const main = pod.containers.find((c) => c.name === 'kube-weft')!
const installCni = initContainers.find((c) => c.name === 'install-cni')!
const NS = namespace.metadata!.name!

function envOf (c: V1Container, name: string): string {
  const v = c.env?.find((e) => e.name === name)?.value
  assert.ok(v !== undefined, `${c.name} sets ${name}`)
  return v
}
function volume (name: string): NonNullable<typeof pod.volumes>[number] {
  const v = pod.volumes?.find((x) => x.name === name)
  assert.ok(v !== undefined, `a volume ${name}`)
  return v
}
/** The volume mounted at `mountPath` in `c`, and that it comes from the host's same path. */
function hostPathMount (c: V1Container, mountPath: string): { hostPath: string, type?: string } {
  const m = c.volumeMounts?.find((x) => x.mountPath.replace(/\/$/, '') === mountPath)
  assert.ok(m !== undefined, `${c.name} mounts ${mountPath}`)
  const hp = volume(m.name).hostPath
  assert.ok(hp !== undefined, `${mountPath} in ${c.name} is a hostPath volume`)
  return { hostPath: hp.path, ...(hp.type !== undefined ? { type: hp.type } : {}) }
}

test('the manifest holds the six objects of kube-flannel.yml, each of a kind and apiVersion the API serves', () => {
  assert.deepEqual(docs.map((d) => `${d.apiVersion} ${d.kind}`).sort(), [
    'apps/v1 DaemonSet',
    'rbac.authorization.k8s.io/v1 ClusterRole',
    'rbac.authorization.k8s.io/v1 ClusterRoleBinding',
    'v1 ConfigMap',
    'v1 Namespace',
    'v1 ServiceAccount'
  ])
})

test('every field is one the Kubernetes API has (kubectl refuses a misspelt one, an older kubectl drops it silently)', () => {
  // The client reads the kinds it knows into its typed models, which keep
  // only the API's fields; a kind it does not know it keeps as written (all
  // but metadata). What the typed reading lost is a field the API lacks.
  const raw = k8s.loadAllYaml(MANIFEST_TEXT.replace(/^kind: (\S+)$/gm, 'kind: Unknown$1')) as Array<Record<string, unknown>>
  assert.equal(raw.length, docs.length)
  docs.forEach((typed, i) => {
    for (const key of Object.keys(raw[i])) {
      if (key === 'kind' || key === 'apiVersion' || key === 'metadata') continue
      const kept = JSON.parse(JSON.stringify((typed as unknown as Record<string, unknown>)[key] ?? null)) as unknown
      assert.deepEqual(kept, raw[i][key], `${typed.kind} ${typed.metadata?.name}: .${key} as the API reads it`)
    }
  })
})

test('cluster-scoped objects have no namespace; the others are in the manifest\'s, which admits privileged pods', () => {
  for (const d of docs) {
    assert.ok((d.metadata?.name ?? '') !== '', `${d.kind} has a name`)
    const clusterScoped = ['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(d.kind!)
    assert.equal(d.metadata?.namespace, clusterScoped ? undefined : NS, `${d.kind} ${d.metadata?.name}'s namespace`)
  }
  // hostNetwork, hostPath and NET_ADMIN are the "privileged" Pod Security level
  assert.equal(namespace.metadata?.labels?.['pod-security.kubernetes.io/enforce'], 'privileged')
})

test('the ClusterRole grants exactly the calls in src/kube/calls.ts, to the ServiceAccount the DaemonSet runs as', () => {
  const granted: string[] = []
  for (const rule of role.rules ?? []) {
    assert.deepEqual(rule.apiGroups, [''], 'core API group only')
    assert.equal(rule.resourceNames, undefined)
    assert.equal(rule.nonResourceURLs, undefined)
    for (const resource of rule.resources ?? []) for (const verb of rule.verbs) granted.push(`${resource} ${verb}`)
  }
  assert.deepEqual(granted.sort(), KUBE_CALLS.map((c) => `${c.resource} ${c.verb}`).sort())
  assert.equal(new Set(granted).size, granted.length, 'no permission granted twice')

  assert.deepEqual({ ...binding.roleRef }, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata!.name })
  assert.deepEqual(binding.subjects?.map((s) => ({ ...s })), [{ kind: 'ServiceAccount', name: account.metadata!.name, namespace: NS }])
  assert.equal(pod.serviceAccountName, account.metadata!.name)
})

test('applying with -l app=weft takes weft\'s ServiceAccount, RBAC and DaemonSet, and leaves flannel\'s namespace and ConfigMap as they are', () => {
  const selected = docs.filter((d) => d.metadata?.labels?.app === 'weft').map((d) => d.kind).sort()
  assert.deepEqual(selected, ['ClusterRole', 'ClusterRoleBinding', 'DaemonSet', 'ServiceAccount'])
  // the shared objects under flannel's names, so a kube-flannel cluster's own are the ones read
  assert.equal(NS, 'kube-flannel')
  assert.equal(configMap.metadata?.name, 'kube-flannel-cfg')
})

test('the DaemonSet runs on every Linux node not labelled weft/overlay=flannel, in the host\'s network, node-critical, tolerating what flannel tolerates', () => {
  const selector = ds.spec!.selector.matchLabels ?? {}
  assert.ok(Object.keys(selector).length > 0)
  for (const [k, v] of Object.entries(selector)) assert.equal(ds.spec!.template.metadata?.labels?.[k], v, `the pods carry the selector's ${k}`)
  assert.equal(pod.hostNetwork, true)
  assert.equal(pod.priorityClassName, 'system-node-critical')
  assert.deepEqual(pod.tolerations?.map((t) => ({ ...t })), [{ operator: 'Exists', effect: 'NoSchedule' }])
  const terms = pod.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []
  assert.equal(terms.length, 1)
  assert.deepEqual(terms[0].matchExpressions?.map((e) => ({ ...e })), [
    { key: 'kubernetes.io/os', operator: 'In', values: ['linux'] },
    { key: 'weft/overlay', operator: 'NotIn', values: ['flannel'] }
  ])
})

test('every container runs the image built from this checkout, tagged with its version, with a command', () => {
  for (const c of [...initContainers, ...pod.containers]) {
    assert.equal(c.image, `weft:${VERSION}`, `${c.name}'s image`)
    assert.ok((c.command?.length ?? 0) > 0, `${c.name} has a command`)
    // the kubelet replaces $(NAME) of the container's env, and $$, in command and args before the shell sees them
    for (const word of [...(c.command ?? []), ...(c.args ?? [])]) {
      for (const e of c.env ?? []) assert.ok(!word.includes(`$(${e.name})`), `${c.name}: no $(${e.name}) for the kubelet to expand`)
      assert.ok(!word.includes('$$'), `${c.name}: no $$ for the kubelet to halve`)
    }
  }
  assert.deepEqual(initContainers.map((c) => c.name), ['install-cni', 'remove-flannel-vtep'])
})

test('every volume mount names a declared volume, every volume is mounted, and every file read from the ConfigMap is one of its keys', () => {
  const declared = new Set(pod.volumes?.map((v) => v.name))
  const mounted = new Set<string>()
  for (const c of [...initContainers, ...pod.containers]) {
    for (const m of c.volumeMounts ?? []) {
      assert.ok(declared.has(m.name), `${c.name} mounts ${m.name}, which is declared`)
      mounted.add(m.name)
    }
  }
  assert.deepEqual([...declared].sort(), [...mounted].sort())

  const cm = volume('flannel-cfg').configMap
  assert.equal(cm?.name, configMap.metadata?.name)
  assert.equal(cm?.items, undefined, 'every key is a file')
  const keys = Object.keys(configMap.data ?? {})
  const read = (c: V1Container, extra: string[]): string[] => {
    const at = c.volumeMounts?.find((m) => m.name === 'flannel-cfg')?.mountPath.replace(/\/?$/, '/')
    assert.ok(at !== undefined, `${c.name} mounts the ConfigMap`)
    const mentioned = [...(c.env ?? []).map((e) => e.value ?? ''), ...(c.args ?? []), ...extra]
    return mentioned.filter((s) => s.startsWith(at)).map((s) => s.slice(at.length))
  }
  assert.deepEqual(read(main, [KUBE_NET_CONFIG_PATH]), ['net-conf.json'])
  assert.deepEqual(read(installCni, []), ['cni-conf.json'])
  for (const k of ['net-conf.json', 'cni-conf.json']) assert.ok(keys.includes(k), `the ConfigMap has ${k}`)
})

test('the daemon has what weft run\'s privilege check asks for, from the host\'s own paths, without being privileged', () => {
  // the capabilities every backend needs, by weft's own check (flannel's default UDP ports are unprivileged)
  const needed = new Set<string>()
  for (const type of BACKEND_TYPES) {
    const cfg = parseNetworkConfig(JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: type } }))
    for (const cap of requiredCapabilities(backendNeeds(cfg.backend), { unprivilegedPortStart: 1024 })) needed.add(cap.replace(/^CAP_/, ''))
  }
  assert.deepEqual([...needed].sort(), ['NET_ADMIN', 'NET_RAW'])
  // and BPF, which weft asks for but does not need: the peer offload (without it, weft's pipeline carries everything)
  assert.deepEqual([...(main.securityContext?.capabilities?.add ?? [])].sort(), [...needed, 'BPF'].sort())
  assert.equal(main.securityContext?.privileged, false)

  assert.deepEqual(hostPathMount(main, TUN_PATH), { hostPath: TUN_PATH, type: 'CharDevice' })
  // the VTEP MAC, kept across restarts
  assert.deepEqual(hostPathMount(main, String(RUN_FLAGS['state-dir'].default)), { hostPath: String(RUN_FLAGS['state-dir'].default), type: 'DirectoryOrCreate' })
  // subnet.env, read on the host by the CNI plugin at the path weft writes it
  const runDir = path.dirname(String(RUN_FLAGS['subnet-file'].default))
  assert.equal(hostPathMount(main, runDir).hostPath, runDir)
  assert.equal(hostPathMount(main, '/run/xtables.lock').hostPath, '/run/xtables.lock')

  const remover = initContainers.find((c) => c.name === 'remove-flannel-vtep')!
  assert.deepEqual(remover.securityContext?.capabilities?.add, ['NET_ADMIN'])
  assert.equal(installCni.securityContext, undefined, 'install-cni only writes files')
})

test('the daemon\'s flags are all ones weft run accepts; the probes ask its health port; the node\'s name comes from the downward API', () => {
  const args = main.args ?? []
  assert.equal(args[0], 'run')
  const flags = args.slice(1)
  for (const f of flags) {
    const name = /^--([a-z0-9-]+)(=.*)?$/.exec(f)?.[1]
    assert.ok(name !== undefined, `${f} is a --flag`)
    assert.ok(RUN_FLAGS[name] !== undefined, `weft run has no --${name} (src/daemon/flags.ts RUN_FLAGS)`)
  }
  const parsed = parseRunFlags(flags, {})
  assert.equal(parsed.ipMasq, true)
  assert.ok(flags.includes('--kube-subnet-mgr'))

  const port = main.ports?.find((p) => p.name === 'healthz')
  assert.equal(port?.containerPort, parsed.healthzPort)
  assert.deepEqual({ ...main.livenessProbe?.httpGet }, { path: '/healthz', port: 'healthz' })
  assert.deepEqual({ ...main.readinessProbe?.httpGet }, { path: '/readyz', port: 'healthz' })

  const field = (name: string): string | undefined => main.env?.find((e) => e.name === name)?.valueFrom?.fieldRef?.fieldPath
  assert.equal(field('NODE_NAME'), 'spec.nodeName')
  assert.equal(field('POD_NAME'), 'metadata.name')
  assert.equal(field('POD_NAMESPACE'), 'metadata.namespace')
  assert.match(envOf(main, 'EVENT_QUEUE_DEPTH'), /^[1-9][0-9]*$/)
  assert.match(envOf(main, 'CONT_WHEN_CACHE_NOT_READY'), /^(true|false)$/)
})

test('net-conf.json is flannel\'s default, and weft\'s own parser takes it', () => {
  const cfg = parseNetworkConfig(configMap.data!['net-conf.json'])
  assert.equal(formatCidr(cfg.network), '10.244.0.0/16')
  assert.equal(cfg.backend.type, 'vxlan')
  assert.equal(cfg.backendDefaulted, false)
})

test('cni-conf.json is a conflist weft\'s plugin accepts, standing in for flannel\'s and reading the delegate configs flannel\'s plugin saved', () => {
  const list = JSON.parse(configMap.data!['cni-conf.json']) as { name: string, cniVersion: string, plugins: Array<Record<string, unknown>> }
  checkNetworkName(list.name)
  assert.ok(SUPPORTED_VERSIONS.includes(list.cniVersion), `cniVersion ${list.cniVersion} is one the plugin speaks`)
  for (const p of list.plugins) assert.equal(pluginNameProblem(p.type), undefined, `plugin type ${String(p.type)}`)
  // libcni gives each plugin the list's name and cniVersion
  const conf = parseConf(JSON.stringify({ ...list.plugins[0], name: list.name, cniVersion: list.cniVersion }))
  assert.equal(conf.type, 'flannel')
  assert.equal(conf.dataDir, '/var/lib/cni/flannel', 'flannel\'s plugin\'s default dataDir')
  assert.equal(conf.subnetFile ?? DEFAULT_SUBNET_FILE, RUN_FLAGS['subnet-file'].default)
  assert.deepEqual(list.plugins.map((p) => p.type), ['flannel', 'portmap'])
})

test('install-cni mounts the CNI directories at their host paths, so the paths it writes into the plugin\'s wrapper hold on the host', () => {
  const bin = envOf(installCni, 'CNI_BIN_DIR')
  assert.deepEqual(hostPathMount(installCni, bin), { hostPath: bin })
  const conf = envOf(installCni, 'CNI_CONF_DIR')
  assert.deepEqual(hostPathMount(installCni, conf), { hostPath: conf })
})

// install-cni's script, run here as the init container runs it, in a temporary
// directory standing for the host's /opt/cni/bin and /etc/cni/net.d, with
// this machine's node and this checkout standing for the image's.
const SCRIPT = installCni.command![2]
const missingTools = ['patchelf', 'ldd', 'sha256sum'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0)

function runInstallCni (dir: string, confFile: string): { status: number | null, out: string } {
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NODE: process.execPath,
    WEFT_HOME: ROOT,
    CNI_BIN_DIR: path.join(dir, 'bin'),
    CNI_CONF_DIR: path.join(dir, 'net.d'),
    CNI_CONF: confFile
  }
  const r = spawnSync('/bin/sh', ['-c', SCRIPT], { env, encoding: 'utf8' })
  return { status: r.status, out: r.stdout + r.stderr }
}

test('install-cni puts on the host a plugin that runs on its own Node and libraries, and the ConfigMap\'s conflist beside it', { skip: missingTools.length > 0 ? `needs ${missingTools.join(', ')} (as the image has)` : false }, (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-install-cni-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const confFile = path.join(dir, 'cni-conf.json')
  fs.writeFileSync(confFile, configMap.data!['cni-conf.json'])
  // a runtime an earlier image left
  fs.mkdirSync(path.join(dir, 'bin', 'weft.d', 'earlier'), { recursive: true })

  const first = runInstallCni(dir, confFile)
  assert.equal(first.status, 0, first.out)
  const runtimes = fs.readdirSync(path.join(dir, 'bin', 'weft.d'))
  assert.equal(runtimes.length, 1, 'the earlier runtime is gone')
  const rt = path.join(dir, 'bin', 'weft.d', runtimes[0])

  const plugin = path.join(dir, 'bin', 'flannel')
  assert.ok(fs.readFileSync(plugin, 'utf8').includes(`exec "${rt}/node" "${rt}/dist/src/cni/main.js"`), 'the wrapper runs the runtime\'s Node on the runtime\'s plugin')
  const version = spawnSync(plugin, [], { env: { CNI_COMMAND: 'VERSION' }, encoding: 'utf8' })
  assert.equal(version.status, 0, version.stderr)
  assert.ok((JSON.parse(version.stdout) as { supportedVersions: string[] }).supportedVersions.includes('0.3.1'))
  assert.equal(fs.readFileSync(path.join(dir, 'net.d', '10-flannel.conflist'), 'utf8'), configMap.data!['cni-conf.json'])

  // every shared library the plugin's Node maps is the runtime's own: the host's libc does not matter
  const maps = spawnSync(path.join(rt, 'node'), ['-e', 'process.stdout.write(require("fs").readFileSync("/proc/self/maps", "utf8"))'], { env: {}, encoding: 'utf8' })
  const libs = new Set(maps.stdout.split('\n').map((l) => l.split(/\s+/)[5] ?? '').filter((f) => /\.so(\.|$)/.test(f)))
  assert.ok(libs.size > 0)
  for (const lib of libs) assert.ok(lib.startsWith(`${rt}/lib/`), `${lib} is the runtime's`)

  // a restart of the pod reuses the runtime as it is
  const stamp = fs.statSync(path.join(rt, 'ok')).mtimeMs
  const again = runInstallCni(dir, confFile)
  assert.equal(again.status, 0, again.out)
  assert.equal(fs.statSync(path.join(rt, 'ok')).mtimeMs, stamp)

  // a conflist the plugin would refuse at the first pod is refused now, before it is installed
  const bad = path.join(dir, 'bad.json')
  fs.writeFileSync(bad, JSON.stringify({ name: 'cbr0', cniVersion: '0.3.1', plugins: [{ type: 'flannel', delegate: { ipam: {} } }] }))
  fs.rmSync(path.join(dir, 'net.d'), { recursive: true })
  const refused = runInstallCni(dir, bad)
  assert.notEqual(refused.status, 0)
  assert.match(refused.out, /"ipam" may not be set inside "delegate"/)
  assert.equal(fs.existsSync(path.join(dir, 'net.d', '10-flannel.conflist')), false)
})

// The Containerfile, read as a builder reads it: instructions (continued
// lines joined, comments dropped) in stages.
interface Instruction { op: string, args: string, workdir: string }
interface Stage { name: string, from: string, workdir: string, steps: Instruction[] }

function stagesOf (text: string): { args: Record<string, string>, stages: Stage[] } {
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l))
  const joined = lines.join('\n').replace(/\\\n/g, ' ').split('\n').filter((l) => l.trim() !== '')
  const args: Record<string, string> = {}
  const stages: Stage[] = []
  for (const line of joined) {
    const m = /^(\w+)\s+(.*)$/.exec(line.trim())
    assert.ok(m !== null, `an instruction: ${line}`)
    const [op, rest] = [m[1].toUpperCase(), m[2]]
    if (op === 'ARG' && stages.length === 0) {
      const [k, v] = rest.split('=')
      args[k] = v ?? ''
    } else if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!
      stages.push({ name: f[2] ?? String(stages.length), from: f[1].replace(/\$\{(\w+)\}/g, (_, k: string) => args[k] ?? ''), workdir: '/', steps: [] })
    } else {
      const s = stages[stages.length - 1]
      if (op === 'WORKDIR') s.workdir = path.posix.resolve(s.workdir, rest.trim())
      s.steps.push({ op, args: rest.trim(), workdir: s.workdir })
    }
  }
  return { args, stages }
}

/** COPY [--from=stage] src... dest, with dest resolved against the WORKDIR it ran in. */
function copies (s: Stage): Array<{ from?: string, srcs: string[], dest: string }> {
  return s.steps.filter((i) => i.op === 'COPY').map((i) => {
    const words = i.args.split(/\s+/)
    const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length)
    const rest = words.filter((w) => !w.startsWith('--'))
    return { ...(from !== undefined ? { from } : {}), srcs: rest.slice(0, -1), dest: path.posix.resolve(i.workdir, rest[rest.length - 1]) }
  })
}

const image = stagesOf(CONTAINERFILE)
const [buildStage, finalStage] = image.stages

test('the Containerfile builds on node:20-bookworm-slim in two stages, and every COPY from the build context names a file of this repository', () => {
  assert.equal(image.stages.length, 2)
  for (const s of image.stages) assert.equal(s.from, 'node:20-bookworm-slim')
  assert.equal(buildStage.name, 'build')
  for (const s of image.stages) {
    for (const c of copies(s).filter((x) => x.from === undefined)) {
      for (const src of c.srcs) assert.ok(fs.existsSync(path.join(ROOT, src)), `COPY ${src}: in the repository`)
    }
  }
})

test('what the image takes from the build stage is what npm ci and tsc make of this checkout', () => {
  const taken = copies(finalStage).filter((c) => c.from === buildStage.name)
  assert.ok(taken.length > 0)
  for (const c of taken) {
    for (const src of c.srcs) {
      const rel = path.posix.relative(buildStage.workdir, src)
      assert.ok(!rel.startsWith('..'), `${src} is in the build's WORKDIR`)
      assert.ok(fs.existsSync(path.join(ROOT, rel)), `${rel} exists after npm ci and tsc here`)
    }
  }
  // the paths the code loads at run time, relative to each other as in the checkout
  const dests = taken.map((c) => c.dest)
  for (const p of ['package.json', 'bin', 'dist/src', 'build/Release/weft_native.node', 'node_modules']) {
    assert.ok(dests.includes(path.posix.join(finalStage.workdir, p)), `${p} lands in ${finalStage.workdir}`)
  }
})

test('the entrypoint is made in the image, runs weft from it, and with CMD is the DaemonSet\'s command and args', () => {
  const entrypoint = JSON.parse(finalStage.steps.find((i) => i.op === 'ENTRYPOINT')!.args) as string[]
  const cmd = JSON.parse(finalStage.steps.find((i) => i.op === 'CMD')!.args) as string[]
  assert.deepEqual(main.command, entrypoint)
  assert.deepEqual(main.args, cmd)

  const runs = finalStage.steps.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n')
  const made = entrypoint[0]
  assert.ok(runs.includes(`> ${made}`), `a RUN writes ${made}`)
  assert.ok(runs.includes(`chmod 0755 ${made}`), 'and makes it executable')
  // it execs /usr/local/bin/weft, a link to bin/weft as copied into the image
  assert.match(runs, /'exec \/usr\/local\/bin\/weft "\$@"'/)
  const link = /ln -s (\S+) \/usr\/local\/bin\/weft/.exec(runs)
  assert.ok(link !== null)
  assert.equal(link[1], path.posix.join(finalStage.workdir, 'bin', 'weft'))
  assert.ok(fs.existsSync(path.join(ROOT, 'bin', 'weft')))
})

test('the image has what the manifest\'s scripts and weft run call, where install-cni looks for weft', () => {
  const runs = finalStage.steps.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n')
  for (const pkg of ['iproute2', 'iptables', 'nftables', 'libpcap0.8', 'patchelf']) assert.match(runs, new RegExp(`\\s${pkg.replace('.', '\\.')}(\\s|$)`), `the image installs ${pkg}`)
  const build = buildStage.steps.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n')
  for (const pkg of ['python3', 'make', 'g++', 'libpcap-dev']) assert.ok(build.includes(` ${pkg}`), `the build installs ${pkg}`)
  // install-cni's default WEFT_HOME is where the image puts weft
  assert.equal(/home=\$\{WEFT_HOME:-([^}]+)\}/.exec(SCRIPT)?.[1], finalStage.workdir)
})
