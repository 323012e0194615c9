// Hostile CNI input: the plugin runs as root with a config from
// /etc/cni/net.d (or a Multus NetworkAttachmentDefinition a namespace admin
// wrote), an environment from the runtime, and files it saved itself. Random
// configs and environments, aimed at the fields that become paths or
// programs (delegate and ipam types, CNI_PATH, dataDir, subnetFile, container
// IDs, interface names), with hostile saved configs planted before every run.
// Whatever comes in: the plugin prints exactly one JSON object when the spec
// asks for output (an error, ADD's result, VERSION) and nothing otherwise, and
// never runs a program outside CNI_PATH: marker programs wait at every place a
// hostile value points (outside CNI_PATH, below it, relative to the working
// directory), and each would leave a file behind if it ever ran.
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import fc from 'fast-check'
import { Sandbox, savedConf, specError } from '../cni/sandbox'
import type { Call } from '../cni/sandbox'
import { budget } from './budget'

const s = new Sandbox('weft-cni-fuzz-')
after(() => { process.chdir('/'); s.remove() })
// relative values resolve in here, where markers wait too
const cwd = path.join(s.root, 'cwd')
fs.mkdirSync(cwd)
process.chdir(cwd)

const outside = path.join(s.root, 'outside', 'x')
s.marker(outside, 'outside')
s.marker(path.join(s.bin, 'sub', 'x'), 'below-cni-path')
s.marker(path.join(s.bin, 'sub', 'bridge'), 'below-cni-path-bridge')
for (const name of ['bridge', 'host-local', 'x']) {
  s.marker(path.join(cwd, name), `cwd-${name}`)
  s.marker(path.join(cwd, 'rel', name), `rel-${name}`)
}

// names that lead to a marker if they are ever run, and names that are wrong in other ways
const MARKED = [path.relative(s.bin, outside), '../'.repeat(s.bin.split('/').length) + outside.slice(1), outside, 'sub/x', 'sub/bridge']
const MALFORMED = ['./bridge', 'bridge/', '../bin/bridge', 'rel/bridge', '..', '.', '', ' ', 'bri\u0000dge']
const pluginName = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...MARKED) },
  { weight: 2, arbitrary: fc.constantFrom(...MALFORMED) },
  { weight: 2, arbitrary: fc.constantFrom('bridge', 'host-local', 'x', 'missing') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }
)
const idLike = (common: string[]): fc.Arbitrary<string> => fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...common) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) }
)
const cniPathEntry = fc.constantFrom(s.bin, `${s.bin}/`, `${s.bin}/../bin`, 'rel', '.', '', 'bin', '/nonexistent-weft-cni-path')

/**
 * Each input as a value that works and one that may not. A run takes the
 * working values but for a few fields (none, a third of the time), so that
 * most runs get far enough to reach a delegate, where running the wrong
 * program would happen.
 */
const FIELDS = {
  cniVersion: [fc.constantFrom('1.0.0', '1.1.0', '0.4.0'), fc.oneof(fc.constantFrom('', '9.9.9', '0.3.1'), fc.jsonValue({ maxDepth: 0 }))],
  name: [fc.constantFrom('net-a', 'net-b'), idLike(['../x', 'a/b', 'a:b', '', '.a'])],
  dataDir: [fc.constant(s.data), fc.constantFrom(undefined, `${s.data}/`, 'data', '', path.join(s.root, 'etc'), 5, null)],
  subnetFile: [fc.constant(path.join(s.root, 'subnet.env')), fc.constantFrom(undefined, 'subnet.env', '/dev/zero', '', 7)],
  delegate: [fc.constantFrom(undefined, { type: 'bridge' }, { hairpinMode: true }), fc.oneof(fc.record({ type: pluginName, hairpinMode: fc.boolean() }, { requiredKeys: [] }), fc.jsonValue({ maxDepth: 1 }))],
  ipam: [fc.constantFrom(undefined, { type: 'host-local' }), fc.oneof(fc.record({ type: pluginName }, { requiredKeys: [] }), fc.jsonValue({ maxDepth: 1 }))],
  attachments: [
    fc.array(fc.record({ containerID: fc.constantFrom('c1', 'c2', 'c3'), ifname: fc.constantFrom('eth0', 'net1') }), { maxLength: 3 }),
    fc.oneof(fc.array(fc.record({ containerID: idLike(['c1', '', '../x']), ifname: idLike(['eth0', '', '..']) }, { requiredKeys: [] }), { maxLength: 3 }), fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined))
  ],
  extra: [fc.constant({}), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 })],
  CNI_CONTAINERID: [fc.constantFrom('c1', 'c2', 'c3', 'fail1'), fc.option(idLike(['../outside/x', 'a/b', '.x', '-x', '', '..']), { nil: undefined })],
  CNI_IFNAME: [fc.constantFrom('eth0', 'net1'), fc.option(idLike(['.', '..', 'a/b', 'a:b', 'a b', 'x'.repeat(16), '']), { nil: undefined })],
  CNI_NETNS: [fc.constant('/var/run/netns/weft-fuzz-none'), fc.constantFrom(undefined, '', 'netns/x', '.')],
  CNI_PATH: [fc.constantFrom(s.bin, `::${s.bin}:`, `/nonexistent-weft-cni-path:${s.bin}`), fc.option(fc.array(cniPathEntry, { maxLength: 3 }).map((e) => e.join(':')), { nil: undefined })]
} satisfies Record<string, [fc.Arbitrary<unknown>, fc.Arbitrary<unknown>]>
type Field = keyof typeof FIELDS
const KEYS = Object.keys(FIELDS) as Field[]

const pick = (i: 0 | 1): fc.Arbitrary<Record<Field, unknown>> => fc.record(Object.fromEntries(KEYS.map((k) => [k, FIELDS[k][i]])) as Record<Field, fc.Arbitrary<unknown>>)
// the fields that name programs and paths are bent more often than the rest
const AIMED = [...KEYS, 'delegate', 'delegate', 'ipam', 'CNI_PATH', 'CNI_PATH', 'dataDir', 'CNI_CONTAINERID', 'CNI_IFNAME'] as Field[]
const bent = fc.oneof({ weight: 1, arbitrary: fc.constant([] as Field[]) }, { weight: 2, arbitrary: fc.uniqueArray(fc.constantFrom(...AIMED), { minLength: 1, maxLength: 2 }) })

interface Input { command: string, stdin: string, env: Record<string, string | undefined> }

const input: fc.Arbitrary<Input> = fc.tuple(
  fc.constantFrom('ADD', 'ADD', 'ADD', 'DEL', 'DEL', 'CHECK', 'GC', 'GC', 'STATUS', 'VERSION', 'FROB', ''),
  pick(0), pick(1), bent,
  fc.oneof({ weight: 10, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.string({ maxLength: 40 }) }, { weight: 1, arbitrary: fc.constant(' '.repeat(1 << 20)) })
).map(([command, good, bad, keys, junk]) => {
  const v = { ...good }
  for (const k of keys) v[k] = bad[k]
  const conf = { ...(v.extra as object), cniVersion: v.cniVersion, name: v.name, type: 'weft', dataDir: v.dataDir, subnetFile: v.subnetFile, delegate: v.delegate, ipam: v.ipam, 'cni.dev/valid-attachments': v.attachments }
  const text = JSON.stringify(conf)
  return {
    command,
    // junk instead of the config, or the config padded past the 1 MiB limit
    stdin: junk === undefined ? text : junk.length > 100 ? text + junk : junk,
    env: { CNI_CONTAINERID: v.CNI_CONTAINERID, CNI_IFNAME: v.CNI_IFNAME, CNI_NETNS: v.CNI_NETNS, CNI_PATH: v.CNI_PATH } as Record<string, string | undefined>
  }
})

// every run starts with saved configs naming programs outside CNI_PATH, under
// the new layout and the old, for the networks and containers the fuzzer uses
const hostile = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...MARKED) }, { weight: 1, arbitrary: fc.constantFrom(...MALFORMED) })
function plantHostile (type: string): void {
  s.clearMarkers()
  for (const net of ['net-a', 'net-b']) s.plant(`${net}:c1:eth0`, savedConf(net, type))
  s.plant('c2', savedConf('net-a', type))
  s.plant('fail1', savedConf('net-b', type))
}

/** The output contract: one JSON object for an error, ADD's result or VERSION; nothing for other successes. */
function checkOutput (command: string, c: Call): void {
  if (c.code !== 0) {
    specError(c)
    return
  }
  if (command === 'ADD' || command === 'VERSION') {
    assert.equal(c.lines.length, 1, `${command} printed ${JSON.stringify(c.lines)}`)
    assert.ok(c.out !== undefined && typeof c.out === 'object' && !Array.isArray(c.out))
  } else {
    assert.deepEqual(c.lines, [], `${command} succeeded but printed ${JSON.stringify(c.lines)}`)
  }
}

test('any config, environment and saved state: one JSON object where the spec wants one, and nothing outside CNI_PATH ever runs', (t) => {
  const tally: Record<string, number> = {}
  fc.assert(fc.property(input, hostile, (i, type) => {
    plantHostile(type)
    const c = s.call(i.command, i.stdin, { ...i.env, CNI_COMMAND: i.command })
    checkOutput(i.command, c)
    assert.deepEqual(s.ran(), [], `ran a program outside CNI_PATH: ${JSON.stringify({ ...i, stdin: i.stdin.slice(0, 300) })}`)
    const k = `${i.command} ${c.code === 0 ? 'ok' : `error ${String(c.out?.code)}`}`
    tally[k] = (tally[k] ?? 0) + 1
  }), budget(400, 6))
  t.diagnostic(Object.entries(tally).sort().map(([k, n]) => `${k}: ${n}`).join(', '))
  // the fuzzer must reach the delegates, or it proves nothing about running them
  const calls = s.delegateCalls().map((c) => c.command)
  t.diagnostic(`delegate calls: ${calls.length} (${['ADD', 'DEL', 'VERSION'].map((c) => `${c} ${calls.filter((x) => x === c).length}`).join(', ')})`)
  assert.ok(calls.includes('ADD') && calls.includes('DEL'), 'no run reached a delegate')
})

test('the same through bin/weft, as a runtime starts it: stdout is one JSON object or nothing, and nothing outside CNI_PATH runs', () => {
  fc.assert(fc.property(input, hostile, (i, type) => {
    // bin/weft is the plugin only when CNI_COMMAND is set; without it, it is the CLI
    fc.pre(i.command !== '')
    plantHostile(type)
    const c = s.exec(i.command, i.stdin, { ...i.env, CNI_COMMAND: i.command }, { cwd })
    checkOutput(i.command, c)
    assert.deepEqual(s.ran(), [])
  }), budget(15, 4))
})
